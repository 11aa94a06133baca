"""Tests of anodiff.train: models, datasets, the recorder, resume after SIGKILL, DDP."""
from __future__ import annotations

import gzip
import os
import pickle
import re
import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import anodiff

from anodiff.cli import main as cli_main
from anodiff.errors import InputError
from anodiff.io import Trajectory, list_checkpoints, model_from_run, read_checkpoint
from anodiff.train import MODEL_NAMES, build_model, count_parameters, epoch_permutation, load_dataset, train
from anodiff.train.recorder import RecordingError

# The directory holding the anodiff package under test (the checkout's python/ in a
# developer build, site-packages when installed), so subprocesses import the same copy.
PY = os.path.dirname(os.path.dirname(os.path.abspath(anodiff.__file__)))
TINY = dict(model="resnet8", dataset="synthetic:n=48,test=16", batch_size=16, progress=False)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread here and in the subprocesses (same arithmetic, no oversubscription)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _env():
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = PY + os.pathsep + env.get("PYTHONPATH", "")
    env["ANODIFF_NO_PROGRESS"] = "1"
    return env


def _datasets(path):
    """{name: array} of every dataset in a run file except the resume state."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("resume"):
                out[name] = obj[()]
        f.visititems(visit)
        attrs = dict(f.attrs)
    return out, attrs


def _assert_same_run(a, b):
    da, aa = _datasets(a)
    db, ab = _datasets(b)
    assert sorted(da) == sorted(db)
    for name in da:
        assert np.array_equal(da[name], db[name]), name
    assert sorted(aa) == sorted(ab)
    for key in aa:
        assert np.array_equal(np.asarray(aa[key]), np.asarray(ab[key])), key


@pytest.fixture(scope="module")
def ref_run(tmp_path_factory):
    """3 epochs x 3 steps of resnet8 with every optional record, committed every 2 steps."""
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    res = train(path, epochs=3, eval_batch=8, record_grads="all", flush_every=2, **TINY)
    return path, res


# -- models -----------------------------------------------------------------
def test_parameter_counts_match_published():
    assert count_parameters(build_model("resnet20", 3, 10)) == 269_722          # 0.27 M
    assert count_parameters(build_model("resnet110", 3, 10)) == 1_727_962       # 1.7 M
    assert count_parameters(build_model("resnet56", 3, 10)) == 853_018          # 0.85 M
    assert count_parameters(build_model("resnet20_noshort", 3, 10)) == 269_722


def test_models_forward_and_noshort_differs():
    x = torch.randn(3, 1, 9, 7)
    for name in ("resnet8", "resnet14", "resnet8_noshort"):
        torch.manual_seed(0)
        out = build_model(name, 1, 4)(x)
        assert out.shape == (3, 4)
    torch.manual_seed(0)
    a = build_model("resnet8", 1, 4).eval()
    torch.manual_seed(0)
    b = build_model("resnet8_noshort", 1, 4).eval()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.allclose(a(x), b(x))
    assert set(MODEL_NAMES) >= {"resnet14", "resnet20", "resnet56", "resnet110", "resnet110_noshort"}
    with pytest.raises(InputError, match="unknown model"):
        build_model("resnet21", 3, 10)


# -- datasets ----------------------------------------------------------------
def test_digits_split_is_deterministic():
    tr, te, info = load_dataset("digits", seed=0)
    assert (len(tr), len(te)) == (1437, 360)
    assert tr.tensors[0].shape == (1437, 1, 8, 8) and tr.tensors[0].dtype == torch.float32
    assert tr.tensors[1].dtype == torch.int64
    assert info["in_channels"] == 1 and info["num_classes"] == 10 and info["name"] == "digits"
    assert abs(float(tr.tensors[0].mean())) < 1e-5 and abs(float(tr.tensors[0].std()) - 1) < 1e-3
    tr2, _, _ = load_dataset("digits", seed=0)
    assert torch.equal(tr.tensors[0], tr2.tensors[0])
    tr3, _, _ = load_dataset("digits", seed=1)
    assert not torch.equal(tr.tensors[1], tr3.tensors[1])


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def _write_mnist(root: Path, gz: bool, rng, n_train=20, n_test=7):
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind, arr in (("images-idx3", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                          ("labels-idx1", rng.integers(0, 10, n, dtype=np.uint8))):
            data = _idx_bytes(arr)
            name = root / f"{split}-{kind}-ubyte"
            if gz:
                (root / (name.name + ".gz")).write_bytes(gzip.compress(data))
            else:
                name.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, gz):
    rng = np.random.default_rng()
    _write_mnist(tmp_path / "m", gz, rng)
    tr, te, info = load_dataset(f"mnist:{tmp_path / 'm'}")
    assert tr.tensors[0].shape == (20, 1, 28, 28) and te.tensors[0].shape == (7, 1, 28, 28)
    assert info["num_classes"] == 10 and info["in_channels"] == 1


def test_mnist_errors(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        load_dataset(f"mnist:{tmp_path / 'nope'}")
    (tmp_path / "e").mkdir()
    with pytest.raises(InputError, match="missing train-images-idx3-ubyte"):
        load_dataset(f"mnist:{tmp_path / 'e'}")
    _write_mnist(tmp_path / "bad", False, np.random.default_rng())
    p = tmp_path / "bad" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(InputError, match="declares shape"):
        load_dataset(f"mnist:{tmp_path / 'bad'}")
    p.write_bytes(b"garbage!")
    with pytest.raises(InputError, match="bad magic"):
        load_dataset(f"mnist:{tmp_path / 'bad'}")


def _write_cifar(root: Path, rng, per_batch=6):
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
             b"labels": [int(v) for v in rng.integers(0, 10, per_batch)], b"batch_label": b"x"}
        with open(root / name, "wb") as fh:
            pickle.dump(d, fh)


def test_cifar10_pickles(tmp_path):
    rng = np.random.default_rng()
    _write_cifar(tmp_path / "c" / "cifar-10-batches-py", rng)
    tr, te, info = load_dataset(f"cifar10:{tmp_path / 'c'}")
    assert tr.tensors[0].shape == (30, 3, 32, 32) and te.tensors[0].shape == (6, 3, 32, 32)
    assert info["in_channels"] == 3 and info["num_classes"] == 10
    (tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(InputError, match="missing batch file"):
        load_dataset(f"cifar10:{tmp_path / 'c'}")
    (tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a CIFAR-10 pickle batch"):
        load_dataset(f"cifar10:{tmp_path / 'c'}")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    with open(tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(InputError, match="refusing to load"):
        load_dataset(f"cifar10:{tmp_path / 'c'}")


def test_unknown_dataset():
    with pytest.raises(InputError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(InputError, match="bad option"):
        load_dataset("synthetic:foo=1")


# -- recorded run: format and alignment -----------------------------------------
def test_run_file_format(ref_run):
    path, res = ref_run
    assert res.n_steps == 9 and res.n_rows == 9
    with h5py.File(path, "r") as f:
        w = f["weights"][()]
        d = int(f.attrs["n_params"])
        assert w.shape == (9, d) and w.dtype == np.float32
        assert f["weights"].chunks == (9, 4096)
        assert f["loss"].shape == (9,) and f["eval_loss"].shape == (9,)
        assert f["grads"].shape == (9, d) and f.attrs["grads"] == "all"
        assert np.array_equal(f["grads_index"][()], np.arange(d))
        assert bool(f.attrs["complete"]) and int(f.attrs["n_steps_written"]) == 9
        assert "resume" not in f
        assert list(f["epoch/step"][()]) == [3, 6, 9]
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert f[f"epoch/{key}"].shape == (3,) and np.isfinite(f[f"epoch/{key}"][()]).all()
        sizes = f["layout/sizes"][()]
        assert int(sizes.sum()) == d and f["layout/offsets"][0] == 0
        assert f["layout/names"][0].decode() == "conv1.weight"
        assert f["layout/shapes"][0].decode() == "16,1,3,3"
        for key in ("model", "dataset", "in_channels", "num_classes", "loss", "lr", "batch_size",
                    "momentum", "weight_decay", "seed", "record_every", "anodiff_version"):
            assert key in f.attrs
    # consecutive rows differ (a recorder storing views of the live parameters repeats rows)
    assert (np.abs(np.diff(w, axis=0)).max(axis=1) > 0).all()


def test_alignment_weights_loss_grads(ref_run):
    """Row t is w_t before update t: w_{t+1} - w_t = -lr * grads[t]; loss[t] is the loss at w_t."""
    path, _ = ref_run
    with h5py.File(path, "r") as f:
        w, g, loss, ev = f["weights"][()], f["grads"][()], f["loss"][()], f["eval_loss"][()]
        lr = float(f.attrs["lr"])
        ckpt_steps = f["epoch/step"][()]
    step = (w[1:] - w[:-1]).astype(np.float64)
    np.testing.assert_allclose(step, -lr * g[:-1].astype(np.float64), rtol=0, atol=1e-6)
    # checkpoints: epoch_0 = w_0, epoch_1 = w after 3 updates = row 3
    d = w.shape[1]
    assert np.array_equal(np.concatenate([t.reshape(-1).numpy() for t in read_checkpoint(path, 0).values()])[:d], w[0])
    st1 = read_checkpoint(path, 1)
    flat1 = np.concatenate([t.reshape(-1).float().numpy() for t in st1.values()])
    assert np.array_equal(flat1[:d], w[int(ckpt_steps[0])])
    assert st1["bn1.num_batches_tracked"].dtype == torch.int64 and int(st1["bn1.num_batches_tracked"]) == 3
    # loss[0]: recompute the first minibatch loss at w_0 from the initial checkpoint
    model, info = model_from_run(path, 0)
    assert info["epoch"] == 0 and info["model"] == "resnet8"
    tr, _, _ = load_dataset(TINY["dataset"])
    idx = torch.from_numpy(epoch_permutation(0, 0, len(tr))[:16])
    model.train()
    with torch.no_grad():
        l0 = torch.nn.functional.cross_entropy(model(tr.tensors[0][idx]), tr.tensors[1][idx])
    assert abs(float(l0) - float(loss[0])) < 1e-5
    assert np.isfinite(ev).all() and not np.array_equal(ev, loss)


def test_checkpoint_readers(ref_run, tmp_path):
    path, _ = ref_run
    assert list_checkpoints(path) == [0, 1, 2, 3]
    with pytest.raises(InputError, match=r"epoch 7 was not recorded; recorded: 0, 1, 2, 3"):
        read_checkpoint(path, 7)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("weights", data=np.zeros((2, 3), np.float32))
    assert list_checkpoints(empty) == []
    with pytest.raises(InputError, match="run has no checkpoints"):
        read_checkpoint(empty, 0)


def test_msd_reads_run_file(ref_run, tmp_path):
    path, _ = ref_run
    out = tmp_path / "msd.h5"
    assert cli_main(["msd", str(path), "--T", "4", "--tw-step", "2", "--out", str(out), "--no-progress"]) == 0
    with h5py.File(out, "r") as f:
        assert f["msd"].shape == (3, 3) and (f["msd"][()] > 0).all()


def test_same_seed_same_trajectory(ref_run, tmp_path):
    path, _ = ref_run
    again = tmp_path / "again.h5"
    train(again, epochs=3, eval_batch=8, record_grads="all", flush_every=5, **TINY)
    _assert_same_run(path, again)     # the commit interval does not change the file
    other = tmp_path / "other.h5"
    train(other, epochs=1, seed=1, **TINY)
    with h5py.File(path) as a, h5py.File(other) as b:
        assert not np.array_equal(a["weights"][0], b["weights"][0])


def test_subset_every_k_compression(tmp_path):
    p = tmp_path / "s.h5"
    res = train(p, epochs=2, record_every=2, record_subset=100, record_grads=7, compression="gzip",
                loss="kl", momentum=0.9, weight_decay=1e-4, **TINY)
    assert res.n_steps == 6 and res.n_rows == 3
    with h5py.File(p) as f:
        assert f["weights"].shape == (3, 100) and bool(f.attrs["subset"])
        idx = f["weights_index"][()]
        assert len(np.unique(idx)) == 100 and f["weights"].compression == "gzip"
        assert f["grads"].shape == (3, 7) and f.attrs["grads"] == "subset"
        assert f.attrs["loss"] == "kl" and f.attrs["record_every"] == 2
        ck = read_checkpoint(p, 0)
        flat = np.concatenate([t.reshape(-1).float().numpy() for t in ck.values()])
        assert np.array_equal(flat[idx], f["weights"][0])   # rows are w_0, w_2, w_4
    # kl on one-hot targets equals cross-entropy: same loss values
    q = tmp_path / "ce.h5"
    train(q, epochs=2, record_every=2, record_subset=100, loss="ce", momentum=0.9, weight_decay=1e-4,
          **TINY)
    with h5py.File(p) as a, h5py.File(q) as b:
        np.testing.assert_allclose(a["loss"][()], b["loss"][()], rtol=1e-5)


# -- CLI ------------------------------------------------------------------------
def test_cli_train_and_errors(tmp_path, capsys):
    out = tmp_path / "run.h5"
    args = ["train", "--model", "resnet8", "--dataset", "synthetic:n=32,test=8", "--epochs", "1",
            "--batch-size", "16", "--out", str(out), "--no-progress"]
    assert cli_main(args) == 0
    assert "2 steps" in capsys.readouterr().out
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "exists; pass --resume" in err and len(err.strip().splitlines()) == 1
    assert cli_main(args + ["--overwrite"]) == 0
    assert cli_main(args[:-3] + ["--model", "resnet7", "--overwrite", "--out", str(tmp_path / "x.h5")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert cli_main(["train", "--dataset", f"cifar10:{tmp_path}/none", "--out", str(tmp_path / "y.h5")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert cli_main(["train", "--out", str(out), "--resume"]) == 2
    assert "already complete" in capsys.readouterr().err
    assert cli_main(["train", "--out", str(tmp_path / "nothing.h5"), "--resume"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()


# -- crash safety -----------------------------------------------------------------
_KILLER = """
import os, signal, sys
from anodiff.train import train
kill_at = int(sys.argv[2])
comp = sys.argv[3]
def cb(step, loss):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
train(sys.argv[1], model="resnet8", dataset="synthetic:n=48,test=16", batch_size=16, epochs=3,
      eval_batch=8, record_grads="all", flush_every=2, progress=False, callback=cb, compression=comp)
"""


@pytest.mark.parametrize("kill_at,comp", [(5, "none"), pytest.param(7, "gzip", marks=pytest.mark.slow)])
def test_sigkill_mid_epoch_then_resume(ref_run, tmp_path, kill_at, comp):
    ref, _ = ref_run
    if comp != "none":
        ref = tmp_path / "ref_comp.h5"
        train(ref, epochs=3, eval_batch=8, record_grads="all", flush_every=2, compression=comp, **TINY)
    path = tmp_path / "killed.h5"
    r = subprocess.run([sys.executable, "-c", _KILLER, str(path), str(kill_at), comp], env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    with Trajectory(path, allow_incomplete=True) as t:     # readable, honest, not complete
        assert not t.complete and t.n_steps <= kill_at
        assert t.n_steps > 0 or comp != "none"   # compressed: whole chunk rows only (9 rows here)
        n = t.n_steps
        part = t.read(0, n)
    with h5py.File(ref) as f:
        assert np.array_equal(part, f["weights"][:n])
    with pytest.raises(InputError, match="incomplete"):
        Trajectory(path)
    with pytest.raises(InputError, match="recorded with lr=0.1"):
        train(path, resume=True, lr=0.05, progress=False)
    with pytest.raises(InputError, match="exists; pass --resume"):
        train(path, **TINY)
    res = train(path, resume=True, progress=False, flush_every=2)
    assert res.resumed_at is not None and res.resumed_at <= kill_at and res.n_steps == 9
    _assert_same_run(ref, path)


# -- write failures -----------------------------------------------------------------
def test_failing_writer_keeps_committed_steps(ref_run, tmp_path, monkeypatch):
    from anodiff.train import recorder as rec

    ref, _ = ref_run
    calls = {"n": 0}
    orig = rec.Recorder._write_weights

    def failing(self, upto):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        return orig(self, upto)

    monkeypatch.setattr(rec.Recorder, "_write_weights", failing)
    path = tmp_path / "fail.h5"
    with pytest.raises(RecordingError, match="No space left on device") as info:
        train(path, epochs=3, eval_batch=8, record_grads="all", flush_every=2, **TINY)
    assert len(str(info.value).splitlines()) == 1
    with Trajectory(path, allow_incomplete=True) as t:
        n = t.n_steps
        assert 0 < n < 9 and not t.complete
        with h5py.File(ref) as f:
            assert np.array_equal(t.read(0, n), f["weights"][:n])
    monkeypatch.setattr(rec.Recorder, "_write_weights", orig)
    train(path, resume=True, progress=False, flush_every=2)     # space freed: finish the run
    _assert_same_run(ref, path)


def _limit_file_size(limit):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_full_disk_cli_one_line(ref_run, tmp_path):
    """A file-size quota (RLIMIT_FSIZE) hit mid-run: one line, exit 2, committed steps readable."""
    ref, _ = ref_run
    path = tmp_path / "quota.h5"
    limit = os.path.getsize(ref) - 400_000
    r = subprocess.run([sys.executable, "-m", "anodiff", "train", "--model", "resnet8", "--dataset",
                        "synthetic:n=48,test=16", "--batch-size", "16", "--epochs", "3", "--eval-batch", "8",
                        "--record-grads", "all", "--out", str(path), "--no-progress"],
                       env=_env(), capture_output=True, text=True, timeout=300,
                       preexec_fn=_limit_file_size(limit))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "writing failed" in lines[0] and "File too large" in lines[0]
    with Trajectory(path, allow_incomplete=True) as t, h5py.File(ref) as f:
        n = t.n_steps
        assert n < 9
        assert np.array_equal(t.read(0, n), f["weights"][:n]) if n else True
        assert np.array_equal(h5py.File(path)["loss"][:n], f["loss"][:n])


# -- DDP ---------------------------------------------------------------------------
@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    ddp = tmp_path / "ddp.h5"
    single = tmp_path / "single.h5"
    args = ["train", "--model", "resnet8", "--dataset", "synthetic:n=48,test=16", "--batch-size", "16",
            "--epochs", "2", "--eval-batch", "8", "--record-grads", "5", "--no-progress", "--device", "cpu"]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                        "2", "-m", "anodiff", *args, "--out", str(ddp)], env=_env(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert cli_main([*args, "--out", str(single)]) == 0
    da, aa = _datasets(ddp)
    db, ab = _datasets(single)
    assert sorted(da) == sorted(db)
    for name in da:
        assert da[name].shape == db[name].shape, name
    assert int(aa["world_size"]) == 2 and int(ab["world_size"]) == 1
    assert int(aa["n_steps_written"]) == int(ab["n_steps_written"]) == 6
    assert bool(aa["complete"])
    # the first row is the same initial model; the first update differs only through per-rank batch-norm
    assert np.array_equal(da["weights"][0], db["weights"][0])
    assert np.array_equal(da["grads_index"], db["grads_index"])
    assert np.array_equal(da["eval_loss"][:1], db["eval_loss"][:1])


@pytest.mark.slow
@pytest.mark.parametrize("after", [3, 6])
def test_external_sigkill_of_cli_then_resume(tmp_path, after):
    """SIGKILL from outside, at whatever point the writer thread happens to be, then --resume."""
    args = ["-m", "anodiff", "train", "--model", "resnet8", "--dataset", "synthetic:n=96,test=16",
            "--batch-size", "16", "--epochs", "3", "--eval-batch", "8", "--record-grads", "9"]
    ref = tmp_path / "ref.h5"
    subprocess.run([sys.executable, *args, "--out", str(ref), "--no-progress"], env=_env(), check=True,
                   timeout=600)
    path = tmp_path / "k.h5"
    env = _env()
    env.pop("ANODIFF_NO_PROGRESS")
    proc = subprocess.Popen([sys.executable, *args, "--out", str(path)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    buf = b""
    while True:
        ch = proc.stderr.read(1)
        if not ch:
            break
        buf += ch
        if ch == b"\r" or ch == b"\n":
            line = buf.decode(errors="replace")
            buf = b""
            m = re.search(r"\| *(\d+)/18 ", line)
            if m and int(m.group(1)) >= after:
                proc.kill()
                break
    proc.wait(timeout=60)
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the run finished before it could be killed")
    with Trajectory(path, allow_incomplete=True) as t:
        if t.complete and t.n_steps == 18:
            # The kill landed after the last commit (during interpreter exit): a finished run.
            pytest.skip("the run finished before the kill took effect")
        assert not t.complete
    r = subprocess.run([sys.executable, "-m", "anodiff", "train", "--out", str(path), "--resume",
                        "--no-progress"], env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    _assert_same_run(ref, path)


def test_divergence_is_one_line_and_keeps_file_readable(tmp_path):
    path = tmp_path / "div.h5"
    with pytest.raises(InputError, match="training diverged at step"):
        train(path, epochs=2, lr=1e30, **TINY)
    with Trajectory(path, allow_incomplete=True) as t:
        assert not t.complete and t.n_steps >= 0


def test_interrupt_then_resume_every_k_subset(tmp_path):
    """Ctrl-C mid-epoch with --record-every 2 and a coordinate subset, then resume: same file."""
    kw = dict(epochs=3, record_every=2, record_subset=333, record_grads=5, eval_batch=4,
              flush_every=3, compression="lzf", **TINY)
    ref = tmp_path / "ref.h5"
    train(ref, **kw)
    path = tmp_path / "int.h5"

    def stop(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(path, callback=stop, **kw)
    with h5py.File(path) as f:
        assert not f.attrs["complete"] and "resume" in f
    res = train(path, resume=True, progress=False, flush_every=3)
    assert res.resumed_at == 3 and res.n_rows == 5
    _assert_same_run(ref, path)
