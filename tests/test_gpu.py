"""GPU backend (anodiff.gpu / anodiff._cuda) and the per-pair arithmetic it shares with the CPU.

The first part runs everywhere (CI has no GPU): the package imports without
the CUDA module, cuda_available() explains itself, and the ANODIFF_HD
functions of cpp/pair_math.hpp, compiled for the host in anodiff._core, are
checked against float64 NumPy references. The second part (marker `gpu`)
needs a CUDA device and CuPy and is skipped otherwise.
"""
from __future__ import annotations

import numpy as np
import pytest

import anodiff
from anodiff import _core
from anodiff.errors import InputError

RNG = np.random.default_rng()


def random_walk(T, d, offset=1e3, step=1e-4, dtype=np.float32, rng=RNG):
    steps = rng.standard_normal((T, d)) * step
    steps[0] = 0.0
    return (offset + rng.standard_normal(d) + np.cumsum(steps, axis=0)).astype(dtype)


def centred_gram(W):
    X = np.asarray(W, dtype=np.float64)
    X = X - X[0]
    return X @ X.T, X


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


# ----------------------------------------------------------------------------- everywhere
def test_import_and_availability_is_explained():
    ok = anodiff.cuda_available()
    assert isinstance(ok, bool)
    reason = anodiff.cuda_unavailable_reason()
    if ok:
        assert reason is None
    else:
        assert isinstance(reason, str) and reason and "\n" not in reason


def test_missing_cuda_module_is_explained(monkeypatch):
    import sys

    import anodiff.gpu as g

    monkeypatch.setattr(g, "_state", None)
    monkeypatch.setitem(sys.modules, "anodiff._cuda", None)  # import fails as if never built
    monkeypatch.delattr(anodiff, "_cuda", raising=False)
    try:
        assert g.cuda_available() is False
        assert "built without its CUDA module" in g.cuda_unavailable_reason()
        with pytest.raises(InputError, match="not available"):
            g.msd(np.zeros((3, 2)))
    finally:
        g._state = None


def test_gpu_calls_without_gpu_are_one_line_input_errors():
    if anodiff.cuda_available():
        pytest.skip("a GPU is available here")

    class FakeDeviceArray:
        __cuda_array_interface__ = {"shape": (5, 3), "typestr": "<f4", "data": (0, False),
                                    "version": 3, "strides": None}

    with pytest.raises(InputError, match="CUDA backend is not available"):
        anodiff.msd(FakeDeviceArray())


def test_delta_r2_and_line_distance_match_geometry():
    T, d = 37, 11
    W = random_walk(T, d, offset=0.0, step=1.0, dtype=np.float64)
    G, X = centred_gram(W)
    s = RNG.integers(0, T, 200)
    t = RNG.integers(0, T, 200)
    u = RNG.integers(0, T, 200)
    ref = np.sum((X[t] - X[s]) ** 2, axis=1)
    np.testing.assert_allclose(_core.pair_delta_r2(G, s, t), ref, rtol=1e-9, atol=1e-9 * ref.max())
    # distance of x(u) from the line through x(s), x(t), by projection in float64
    a = X[t] - X[s]
    b = X[u] - X[s]
    a2 = np.sum(a * a, axis=1)
    safe = np.where(a2 > 0, a2, 1.0)
    proj = np.where(a2[:, None] > 0, (np.sum(a * b, axis=1) / safe)[:, None] * a, 0.0)
    ref_line = np.sum((b - proj) ** 2, axis=1)
    got = _core.pair_line_distance2(G, s, t, u)
    np.testing.assert_allclose(got, ref_line, rtol=1e-7, atol=1e-9 * np.sum(X ** 2, axis=1).max())


def test_transverse_distance_is_max_over_intermediate_points():
    T, d = 23, 5
    G, X = centred_gram(random_walk(T, d, offset=0.0, step=1.0, dtype=np.float64))
    pairs = [(s, t) for s in range(T) for t in range(s + 1, T)]
    s = np.array([p[0] for p in pairs])
    t = np.array([p[1] for p in pairs])
    got = _core.pair_transverse_distance2(G, s, t)
    for k, (i, j) in enumerate(pairs):
        if j - i < 2:
            assert got[k] == 0.0
            continue
        a = X[j] - X[i]
        best = 0.0
        for u in range(i + 1, j):
            b = X[u] - X[i]
            best = max(best, b @ b - (a @ b) ** 2 / (a @ a))
        assert got[k] == pytest.approx(best, rel=1e-7, abs=1e-9 * (X ** 2).sum(axis=1).max())


def test_log_bin_index():
    lo, hi, n = 0.013, 71.0, 17
    x = np.concatenate([np.exp(RNG.uniform(np.log(lo) - 1, np.log(hi) + 1, 5001)),
                        [0.0, -1.0, np.nan, np.inf, lo, hi]])
    got = _core.pair_log_bin_index(x, lo, hi, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (np.log(x) - np.log(lo)) * n / (np.log(hi) - np.log(lo))
    ref = np.where((x > 0) & (v >= 0) & (v < n), np.floor(np.nan_to_num(v, nan=-1)), -1).astype(np.int64)
    np.testing.assert_array_equal(got, ref)
    assert got[-2] == 0 and got[-1] == -1  # [lo, hi)
    # inside the range, the bin agrees with the edges (away from rounding at the edges)
    edges = np.exp(np.linspace(np.log(lo), np.log(hi), n + 1))
    inside = (got >= 0)
    k = got[inside]
    xi = x[inside]
    assert np.all(xi >= edges[k] * (1 - 1e-12)) and np.all(xi < edges[k + 1] * (1 + 1e-12))


def test_linear_slot_matches_numpy_histogram():
    lo, hi, n = -2.5, 3.75, 41
    x = np.concatenate([RNG.standard_normal(10007) * 2, [np.nan, np.inf, -np.inf, lo, hi]])
    slots = _core.pair_linear_slot(x, lo, hi, n)
    counts = np.bincount(slots, minlength=n + 3)
    finite = x[np.isfinite(x)]
    ref_hist = np.histogram(finite[(finite >= lo) & (finite < hi)], bins=n, range=(lo, hi))[0]
    # np.histogram and floor((x-lo)*n/(hi-lo)) can only disagree for x on an edge
    assert np.abs(counts[:n] - ref_hist).sum() <= 2
    assert counts[:n].sum() == ref_hist.sum()
    assert counts[n] == np.sum(x < lo)
    assert counts[n + 1] == np.sum(x >= hi)
    assert counts[n + 2] == 1


def numpy_pair_curves(G, P, L, s_bins, r_bins, transverse=True):
    """Independent float64 NumPy reference of the binned pair curves."""
    T = G.shape[0]
    s_idx, t_idx = np.triu_indices(T, 1)
    dg = np.diag(G)
    dr2 = np.maximum(dg[s_idx] + dg[t_idx] - 2 * G[s_idx, t_idx], 0.0)
    ds = P[t_idx] - P[s_idx]
    dr = np.sqrt(dr2)

    def bins(x, lo, hi, n):
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (np.log(x) - np.log(lo)) * n / (np.log(hi) - np.log(lo))
        ok = (x > 0) & (v >= 0) & (v < n)
        return np.where(ok, np.floor(np.where(ok, v, 0)), -1).astype(np.int64)

    ks = bins(ds, *s_bins)
    kr = bins(dr, *r_bins)
    S = np.zeros((3, s_bins[2]))
    R = np.zeros((6, r_bins[2]))
    m = ks >= 0
    for row, val in enumerate([np.ones(m.sum()), ds[m], dr2[m]]):
        np.add.at(S[row], ks[m], val)
    m = kr >= 0
    msl = (L[t_idx] - L[s_idx]) ** 2 if L is not None else np.zeros_like(dr)
    np.add.at(R[0], kr[m], 1.0)
    np.add.at(R[1], kr[m], dr[m])
    np.add.at(R[2], kr[m], msl[m])
    if transverse:
        h = np.zeros_like(dr)
        for k, (i, j) in enumerate(zip(s_idx, t_idx)):
            if j - i >= 2:
                u = np.arange(i + 1, j)
                a2 = dr2[k]
                b2 = np.maximum(dg[i] + dg[u] - 2 * G[i, u], 0.0)
                ab = G[j, u] - G[j, i] - G[i, u] + G[i, i]
                v = b2 - ab * ab / a2 if a2 > 0 else b2
                h[k] = np.sqrt(max(np.max(np.maximum(v, 0.0)), 0.0))
        mt = m & (t_idx - s_idx >= 2)
        np.add.at(R[3], kr[mt], 1.0)
        np.add.at(R[4], kr[mt], dr[mt])
        np.add.at(R[5], kr[mt], h[mt])
    return S, R


@pytest.mark.parametrize("with_loss", [True, False])
def test_pair_curves_serial_matches_numpy(with_loss):
    T, d = 41, 13
    W = random_walk(T, d, step=1e-2, dtype=np.float64)
    G, X = centred_gram(W)
    P = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(X, axis=0), axis=1))))
    L = RNG.standard_normal(T) if with_loss else None
    s_bins = (np.diff(P).min() * 0.9, P[-1] * 1.01, 7)
    dr_all = np.sqrt(np.maximum(np.diag(G)[:, None] + np.diag(G)[None] - 2 * G, 0))
    r_bins = (dr_all[dr_all > 0].min() * 0.9, dr_all.max() * 1.01, 9)
    S, R = _core.pair_curves_serial(G, P, L, *s_bins, *r_bins, True)
    S_ref, R_ref = numpy_pair_curves(G, P, L, s_bins, r_bins)
    np.testing.assert_array_equal(S[0], S_ref[0])
    np.testing.assert_array_equal(R[0], R_ref[0])
    np.testing.assert_array_equal(R[3], R_ref[3])
    np.testing.assert_allclose(S, S_ref, rtol=1e-10, atol=0)
    np.testing.assert_allclose(R, R_ref, rtol=1e-10, atol=1e-300)
    assert S[0].sum() == T * (T - 1) // 2  # every pair lands in a Δs bin here
    # the public driver's CPU path gives the same
    pc = anodiff.gpu.pair_curves(G, P, L, s_bins=s_bins, r_bins=r_bins, device="cpu")
    np.testing.assert_array_equal(pc.S, S)
    mean_ds, mean_dr2 = pc.end_to_end
    filled = S[0] > 0
    np.testing.assert_allclose(mean_ds[filled], S[1][filled] / S[0][filled])


def test_default_bins_hold_every_pair():
    T, d = 53, 9
    G, X = centred_gram(random_walk(T, d, step=1e-3, dtype=np.float64))
    P = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(X, axis=0), axis=1))))
    pc = anodiff.gpu.pair_curves(G, P, RNG.standard_normal(T), device="cpu")
    n_pairs = T * (T - 1) // 2
    assert pc.S[0].sum() == n_pairs and pc.R[0].sum() == n_pairs
    assert pc.R[3].sum() == n_pairs - (T - 1)  # pairs with an intermediate point
    mean_dr, h = pc.transverse
    ok = np.isfinite(h)
    assert ok.any() and np.all(h[ok] >= 0) and np.all(np.isfinite(mean_dr[ok]))


def test_pair_curves_rejects_bad_bins():
    G = np.eye(5)
    with pytest.raises(InputError, match="s_bins"):
        anodiff.gpu.pair_curves(G, np.arange(5.0), s_bins=(0, 1, 3), r_bins=(1, 2, 3), device="cpu")


# ----------------------------------------------------------------------------- on a GPU
gpu = pytest.mark.skipif(not anodiff.cuda_available(),
                         reason=f"no GPU: {anodiff.cuda_unavailable_reason()}")


@pytest.fixture
def cp():
    return pytest.importorskip("cupy")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [None, 256])
def test_gpu_msd_matches_cpu(cp, dtype, chunk):
    T, d = int(RNG.integers(150, 400)), int(RNG.integers(500, 3000)) | 1
    W = random_walk(T, d, dtype=dtype)
    lags, ref = anodiff.msd(W)
    glags, got = anodiff.gpu.msd(cp.asarray(W), chunk=chunk)
    np.testing.assert_array_equal(glags, lags)
    assert rel(got, ref) <= 1e-6
    # anodiff.msd dispatches device arrays to the GPU
    _, got2 = anodiff.msd(cp.asarray(W), max_lag=T // 3)
    assert rel(got2, ref[: T // 3]) <= 1e-6
    _, got3 = anodiff.gpu.msd(W, chunk=chunk)  # host array: copied up
    assert rel(got3, ref) <= 1e-6


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("chunk", [None, 300])
def test_gpu_gram_steps_and_acf_from_gram(cp, chunk):
    T, d = 211, 2049
    W = random_walk(T, d)
    G_ref, X = centred_gram(W)
    s = anodiff.gpu.window_sums(cp.asarray(W), gram=True, acf_from="gram", chunk=chunk)
    assert rel(s.gram, G_ref) <= 1e-6
    np.testing.assert_allclose(s.gram, s.gram.T, rtol=0, atol=0)
    assert rel(s.steps2, np.sum(np.diff(X, axis=0) ** 2, axis=1)) <= 1e-6
    assert rel(s.sumsq, np.sum(X ** 2, axis=1)) <= 1e-6
    assert rel(s.msd()[1], anodiff.msd(W)[1]) <= 1e-6
    s_fft = anodiff.gpu.window_sums(cp.asarray(W), gram=True, acf_from="fft", chunk=chunk)
    assert rel(s_fft.acf, s.acf) <= 1e-9
    assert rel(s_fft.gram, s.gram) <= 1e-12
    g32 = anodiff.gpu.gram(cp.asarray(W), gram_precision="float32", chunk=chunk)
    assert rel(g32, G_ref) <= 1e-4  # float32 products: documented looser accuracy


@pytest.mark.gpu
@gpu
def test_gpu_pair_curves_match_cpu(cp):
    T, d = 97, 301
    W = random_walk(T, d, step=1e-2)
    s = anodiff.gpu.window_sums(cp.asarray(W), gram=True)
    P = s.contour()
    L = RNG.standard_normal(T)
    cpu = anodiff.gpu.pair_curves(s.gram, P, L, device="cpu")
    dev = anodiff.gpu.pair_curves(cp.asarray(s.gram), P, L, device="cuda")
    np.testing.assert_array_equal(dev.S[0], cpu.S[0])
    np.testing.assert_array_equal(dev.R[0], cpu.R[0])
    assert rel(dev.S, cpu.S) <= 1e-9 and rel(dev.R, cpu.R) <= 1e-9
    # against the independent NumPy reference from a float64 Gram matrix
    G_ref, _ = centred_gram(W)
    S_ref, R_ref = numpy_pair_curves(G_ref, P, L, (cpu.s_edges[0], cpu.s_edges[-1], 50),
                                     (cpu.r_edges[0], cpu.r_edges[-1], 50))
    for got, ref in ((dev.S, S_ref), (dev.R, R_ref)):
        both = (got[0] > 0) & (ref[0] > 0)
        assert np.abs(got[0] - ref[0]).sum() <= 0.001 * ref[0].sum() + 2  # edge flips only
        assert np.all(np.isfinite(got[:, both]))


@pytest.mark.gpu
@gpu
def test_gpu_histogram(cp):
    lo, hi, n = -3.0, 2.5, 101
    x = np.concatenate([RNG.standard_cauchy(100003), [np.nan, np.inf, -np.inf]]).astype(np.float32)
    counts = anodiff.gpu.histogram(cp.asarray(x), lo, hi, n)
    ref = np.bincount(_core.pair_linear_slot(x.astype(np.float64), lo, hi, n), minlength=n + 3)
    np.testing.assert_array_equal(counts, ref)
    counts = anodiff.gpu.histogram(cp.asarray(x[::2]), lo, hi, n, counts=counts)  # streaming
    assert counts.sum() == x.size + x[::2].size


@pytest.mark.gpu
@gpu
def test_gpu_torch_and_dlpack_inputs(cp):
    T, d = 65, 777
    W = random_walk(T, d)
    ref = anodiff.msd(W)[1]
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert rel(anodiff.msd(torch.from_numpy(W).cuda())[1], ref) <= 1e-6

    class OnlyDLPack:
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    assert rel(anodiff.gpu.msd(OnlyDLPack(cp.asarray(W)))[1], ref) <= 1e-6


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("memory_mb", [0.05, 64.0])
def test_gpu_streaming_from_hdf5_matches_cpu(tmp_path, memory_mb):
    h5py = pytest.importorskip("h5py")
    n, d = 333, 2001
    W = random_walk(n, d)
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=W, chunks=(64, 256))
        f.attrs["complete"] = True
    ref = anodiff.msd_windows(path, T=101, tw_step=57)
    got = anodiff.gpu.msd_windows(path, T=101, tw_step=57, memory_mb=memory_mb)
    np.testing.assert_array_equal(got.t_w, ref.t_w)
    assert rel(got.msd, ref.msd) <= 1e-6
    via_api = anodiff.msd_windows(path, T=101, tw_step=57, device="cuda", memory_mb=memory_mb)
    assert rel(via_api.msd, ref.msd) <= 1e-6
    # window sums with the Gram matrix, streamed: G of each window against float64 NumPy
    starts, sums = anodiff.gpu.window_sums_file(path, 101, 57, gram=True, memory_mb=memory_mb)
    for t_w, s in zip(starts, sums):
        G_ref, _ = centred_gram(W[t_w:t_w + 101])
        assert rel(s.gram, G_ref) <= 1e-6


def test_cli_device_cuda_without_gpu_exits_2(tmp_path):
    if anodiff.cuda_available():
        pytest.skip("a GPU is available here")
    import subprocess
    import sys

    h5py = pytest.importorskip("h5py")
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=random_walk(20, 7))
        f.attrs["complete"] = True
    proc = subprocess.run([sys.executable, "-m", "anodiff", "msd", str(path), "--T", "10",
                           "--device", "cuda", "--out", str(tmp_path / "m.h5"), "--no-progress"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "CUDA backend is not available" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_device_array_detection_on_host_objects():
    import torch

    from anodiff.gpu import _is_device_array

    assert not _is_device_array(np.zeros(3))
    assert not _is_device_array(torch.zeros(3))
    assert not _is_device_array(torch.zeros(3, requires_grad=True))
    assert not _is_device_array([1.0, 2.0])
    # host torch tensors still go through the CPU engine
    W = random_walk(9, 4, dtype=np.float64)
    np.testing.assert_allclose(anodiff.msd(torch.from_numpy(W))[1], anodiff.msd(W)[1])
