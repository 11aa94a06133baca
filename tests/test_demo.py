"""`anodiff demo --quick` end to end: every figure the data allow, a non-trivial PNG each,
and summary.json with the documented keys and finite values."""
from __future__ import annotations

import json
import math

import pytest

from conftest import run_cli

pytest.importorskip("torch")

FIGURES = ["fig2ab_msd", "fig2c_beta", "alpha_tau0_vs_tw", "fig5ef_loss", "fig6b_path", "transverse",
           "fig6c_msl", "fig1a_landscape", "fig5a_levy", "fig5d_levy_windows", "fig7_hessian",
           "fig8_toy"]
KEYS = ["alpha_early", "alpha_late", "alpha_dist", "D_f", "msl_2H", "hessian_top_first",
        "hessian_top_last", "landscape_box_dimension", "toy_alpha_early", "toy_alpha_late"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = run_cli("demo", "--quick", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_demo_prints_report_and_summary(demo_dir):
    out, stdout = demo_dir
    assert f"report: {(out / 'report.html').resolve()}" in stdout
    assert "alpha early" in stdout and "t0 " in stdout and "alpha_dist" in stdout


def test_demo_report_has_every_figure(demo_dir):
    out, _ = demo_dir
    html = (out / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org", "")  # self-contained
    for name in FIGURES:
        png = out / "figures" / f"{name}.png"
        svg = out / "figures" / f"{name}.svg"
        assert png.is_file() and svg.is_file(), name
        assert png.stat().st_size > 10_000, f"{name}.png looks empty"
        assert f'id="{name}"' in html


def test_demo_summary_keys_are_finite(demo_dir):
    out, _ = demo_dir
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures_skipped"] == {}
    for key in KEYS:
        assert key in summary, key
        assert isinstance(summary[key], (int, float)) and math.isfinite(summary[key]), key
    assert "t0" in summary  # null when no window is fitted by one power law (with a reason)
    if summary["t0"] is None:
        assert summary["analyze"]["t0_reason"]
