"""`anodiff report` on partial results, and `anodiff compare` across runs (Figs. 3–4)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import anodiff
from anodiff.compare import compare_runs, group_over_seeds

from conftest import run_cli, write_run


def _analysed_run(tmp_path, rng, name, model, batch_size, lr, seed, drift):
    """A small run file with the attributes `anodiff train` writes, analysed into DIR."""
    steps = (1e-2 * rng.standard_normal((400, 40)) + drift).cumsum(axis=0)
    loss = np.exp(-np.arange(400) / 100.0) + 0.01 * rng.random(400)
    run = write_run(tmp_path / f"{name}.h5", steps.astype(np.float32), loss=loss.astype(np.float32),
                    attrs=dict(model=model, batch_size=batch_size, lr=lr, seed=seed, complete=True))
    out = tmp_path / name
    anodiff.analyze(run, T=200, tw_step=100).save(out)
    return out


def test_report_draws_what_is_there_and_lists_the_rest(tmp_path, rng):
    out = _analysed_run(tmp_path, rng, "a", "resnet14", 128, 0.1, 0, 1e-3)
    proc = run_cli("report", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "fig2ab_msd" in summary["figures"] and "fig6c_msl" in summary["figures"]
    assert "fig7_hessian" in summary["figures_skipped"]      # no hessian results here
    assert summary["generated_by"] == "anodiff report"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Not drawn" in html
    # Running it again reads the analyze summary kept inside the report's own summary.json.
    assert run_cli("report", out, "--no-progress").returncode == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["figures"] == summary["figures"]


def test_report_of_an_empty_directory_is_one_line(tmp_path):
    proc = run_cli("report", tmp_path)
    assert proc.returncode == 2 and "no results found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_compare_groups_seeds_and_plots(tmp_path, rng):
    dirs = [
        _analysed_run(tmp_path, rng, "r14_s0", "resnet14", 128, 0.1, 0, 1e-3),
        _analysed_run(tmp_path, rng, "r14_s1", "resnet14", 128, 0.1, 1, 1e-3),
        _analysed_run(tmp_path, rng, "r14_b512", "resnet14", 512, 0.1, 0, 1e-3),
        _analysed_run(tmp_path, rng, "r20_noshort", "resnet20_noshort", 128, 0.05, 0, 1e-3),
    ]
    rows, png = compare_runs(dirs, tmp_path / "cmp")
    assert png.is_file() and png.stat().st_size > 10_000
    assert [r["depth"] for r in rows] == [14, 14, 14, 20]
    assert [r["shortcut"] for r in rows] == [True, True, True, False]
    groups = group_over_seeds(rows)
    seeds2 = [g for g in groups if g["n_seeds"] == 2]
    assert len(groups) == 3 and len(seeds2) == 1
    vals = [r["alpha_first"] for r in rows[:2]]
    assert seeds2[0]["alpha_first"] == pytest.approx(np.mean(vals))
    assert seeds2[0]["alpha_first_std"] == pytest.approx(np.std(vals, ddof=1))
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert len(data["runs"]) == 4


def test_compare_cli_bad_directory(tmp_path):
    proc = run_cli("compare", tmp_path / "missing", "--out", tmp_path / "cmp")
    assert proc.returncode == 2 and "no summary.json" in proc.stderr


def test_compare_reads_train_attrs_from_any_directory(tmp_path, rng):
    """Run files as `anodiff train` writes them (array attributes such as image_shape), analysed
    with a relative path, compared from another working directory; a run without `model`."""
    work = tmp_path / "work"
    work.mkdir()
    # Other working directories: a relative PYTHONPATH of a source checkout must stay valid.
    env = dict(os.environ, ANODIFF_NO_PROGRESS="1")
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep))
    steps = (1e-2 * rng.standard_normal((300, 30)) + 1e-3).cumsum(axis=0).astype(np.float32)
    for name, attrs in (("a", dict(model="resnet8", image_shape=np.array([1, 8, 8]))),
                        ("b", dict(image_shape=np.array([1, 8, 8])))):
        write_run(work / f"{name}.h5", steps, loss=np.linspace(1, 0, 300, dtype=np.float32),
                  attrs=dict(batch_size=32, lr=0.1, seed=0, complete=True, **attrs))
        proc = subprocess.run([sys.executable, "-m", "anodiff", "analyze", f"{name}.h5", "--T", "150",
                               "--out", name], cwd=work, capture_output=True, text=True,
                              env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-W", "error::UserWarning", "-m", "anodiff", "compare",
                           str(work / "a"), str(work / "b"), "--out", str(tmp_path / "cmp")],
                          cwd=elsewhere, capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["runs"]
    assert [r["depth"] for r in rows] == [8, None]
    assert [r["shortcut"] for r in rows] == [True, None]
