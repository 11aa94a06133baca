"""`anodiff msd` end to end, and its one-line errors with exit status 2."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import run_cli, write_run
from test_msd import direct_msd


def test_msd_cli_writes_curves(tmp_path, rng):
    W = rng.standard_normal((120, 33)).cumsum(axis=0).astype(np.float32)
    run = write_run(tmp_path / "run.h5", W, chunks=(40, 8))
    out = tmp_path / "msd.h5"
    proc = run_cli("msd", run, "--T", 50, "--tw-step", 35, "--out", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["t_w"][:], [0, 35, 70])
        np.testing.assert_allclose(f["msd"][1], direct_msd(W[35:85]), rtol=1e-6)
        assert f["alpha"].shape == (3,)
    assert "3 windows" in proc.stdout


def test_help_lists_verbs():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "msd" in proc.stdout
    proc = run_cli("msd", "--help")
    assert proc.returncode == 0 and "--tw-step" in proc.stdout


@pytest.fixture
def nan_run(tmp_path, rng):
    W = rng.standard_normal((60, 5)).astype(np.float32)
    W[10, 2] = np.nan
    return write_run(tmp_path / "nan.h5", W)


@pytest.fixture
def good_run(tmp_path, rng):
    return write_run(tmp_path / "good.h5", rng.standard_normal((60, 5)).astype(np.float32))


@pytest.mark.parametrize("case,match", [
    ("missing", "no such file"),
    ("no_weights", "no dataset /weights"),
    ("nan", "NaN or inf"),
    ("T_too_large", "larger than the 60 recorded steps"),
    ("tw_step_zero", "tw-step must be positive"),
    ("tw_step_negative", "tw-step must be positive"),
])
def test_bad_input_exit_2_one_line(tmp_path, nan_run, good_run, case, match):
    args = {
        "missing": ["msd", tmp_path / "nope.h5"],
        "no_weights": ["msd", _no_weights(tmp_path)],
        "nan": ["msd", nan_run, "--T", 30],
        "T_too_large": ["msd", good_run, "--T", 100],
        "tw_step_zero": ["msd", good_run, "--T", 30, "--tw-step", 0],
        "tw_step_negative": ["msd", good_run, "--T", 30, "--tw-step", -5],
    }[case]
    proc = run_cli(*args, "--out", tmp_path / "o.h5")
    assert proc.returncode == 2
    assert match in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _no_weights(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("loss", data=np.zeros(3))
    return path
