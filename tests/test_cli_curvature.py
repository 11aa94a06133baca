"""`anodiff hessian` and `anodiff landscape` on a tiny recorded run (needs anodiff.train)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
train_mod = pytest.importorskip("anodiff.train")
h5py = pytest.importorskip("h5py")

from anodiff.cli import main  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("ANODIFF_NO_PROGRESS", "1")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.h5"
    train_mod.train(str(path), model="resnet8", dataset="synthetic:n=48,test=16,shape=1x6x6,classes=3",
                    epochs=2, batch_size=16, lr=0.05, progress=False)
    return path


@pytest.fixture(scope="module")
def run_without_checkpoints(run_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("nock") / "run.h5"
    shutil.copy(run_file, path)
    with h5py.File(path, "a") as f:
        del f["checkpoints"]
    return path


def test_hessian_cli(run_file, tmp_path):
    out = tmp_path / "h"
    rc = main(["hessian", str(run_file), "--k", "3", "--samples", "32", "--tol", "1e-3",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    with h5py.File(out / "hessian.h5") as f:
        epochs = f["epochs"][()]
        ev = f["eigenvalues"][()]
        assert list(epochs) == [0, 1, 2]
        assert ev.shape == (3, 3) and np.all(np.diff(ev, axis=1) <= 0)
        assert f["residuals"].shape == (3, 3) and np.all(f["n_products"][()] > 3)
    summary = json.loads((out / "hessian.json").read_text())
    assert summary["k"] == 3 and len(summary["epochs"]) == 3
    assert summary["epochs"][0]["eigenvalues"] == pytest.approx(list(ev[0]))


def test_hessian_cli_bad_input(run_file, run_without_checkpoints, tmp_path, capsys):
    assert main(["hessian", str(run_file), "--epochs", "7", "--out", str(tmp_path)]) == 2
    assert "epoch 7 was not recorded" in capsys.readouterr().err
    assert main(["hessian", str(run_file), "--k", "10000000", "--samples", "8",
                 "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "larger than" in capsys.readouterr().err
    assert main(["hessian", str(run_without_checkpoints), "--out", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    assert main(["hessian", str(tmp_path / "missing.h5"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["hessian", str(run_file), "--epochs", "x:y", "--out", str(tmp_path)]) == 2


def test_landscape_cli_random(run_file, tmp_path):
    out = tmp_path / "l"
    rc = main(["landscape", str(run_file), "--grid", "9", "--samples", "24", "--out", str(out),
               "--no-progress"])
    assert rc == 0
    with h5py.File(out / "landscape.h5") as f:
        assert f["loss"].shape == (9, 9)
        assert f["fine/loss"].shape == (257, 257)
        assert f.attrs["directions"] == "random"
    s = json.loads((out / "landscape.json").read_text())
    assert s["epoch"] == 2 and s["grid"] == 9
    bc = s["box_counting"]
    assert bc["fine_method"] == "interp" and len(bc["level_sets"]["dimensions"]) >= 1
    assert np.isfinite(bc["surface"]["dimension"]) and bc["surface"]["fit_range"][0] == 32
    assert bc["level_sets"]["std"] >= 0


def test_landscape_cli_pca_and_evaluate(run_file, tmp_path):
    out = tmp_path / "p"
    rc = main(["landscape", str(run_file), "--epoch", "1", "--directions", "pca", "--grid", "5",
               "--samples", "16", "--fine", "none", "--out", str(out)])
    assert rc == 0
    with h5py.File(out / "landscape.h5") as f:
        assert f["trajectory"].shape[1] == 2 and f["loss"].shape == (5, 5)
    s = json.loads((out / "landscape.json").read_text())
    assert len(s["info"]["explained_variance_ratio"]) == 2


def test_landscape_cli_bad_input(run_file, run_without_checkpoints, tmp_path, capsys):
    assert main(["landscape", str(run_file), "--epoch", "9", "--out", str(tmp_path)]) == 2
    assert "epoch 9 was not recorded" in capsys.readouterr().err
    assert main(["landscape", str(run_without_checkpoints), "--out", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    assert main(["landscape", str(run_file), "--fine-grid", "100", "--out", str(tmp_path)]) == 2
    assert "at least 257" in capsys.readouterr().err
