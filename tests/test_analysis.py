"""anodiff.analyze / `anodiff analyze`: known answers on synthetic trajectories, shards, errors."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import anodiff
from anodiff.analysis import accumulate_columns, finish, fit_msd_regimes, log_derivative
from anodiff.cli import main as cli_main

from conftest import run_cli
from physics import float32_hard_windows

SEED = np.random.SeedSequence().entropy


def _rng(extra=0):
    return np.random.default_rng([SEED, extra])


def write_run(path, W, loss=None, *, eval_loss=None, layout=None, complete=True, n_written=None,
              chunks=(64, 128), subset_index=None):
    W = np.asarray(W, dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=W, chunks=(min(chunks[0], W.shape[0]), min(chunks[1], W.shape[1])))
        if loss is not None:
            f.create_dataset("loss", data=np.asarray(loss, np.float32))
        if eval_loss is not None:
            f.create_dataset("eval_loss", data=np.asarray(eval_loss, np.float32))
        if layout is not None:
            g = f.create_group("layout")
            names, sizes = zip(*layout)
            g["names"] = np.array([n.encode() for n in names])
            g["sizes"] = np.array(sizes, dtype=np.int64)
            g["offsets"] = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
            g["shapes"] = np.array([str(s).encode() for s in sizes])
        if subset_index is not None:
            f["weights_index"] = np.asarray(subset_index, np.int64)
            f.attrs["subset"] = True
        f.attrs["complete"] = complete
        f.attrs["n_steps_written"] = W.shape[0] if n_written is None else n_written
    return path


# -- known answers ---------------------------------------------------------

def test_straight_line(tmp_path):
    n, d = 161, 40
    direction = np.where(_rng(1).random(d) < 0.5, -1.0, 1.0)
    t = np.arange(n)[:, None]
    W = 1.0 + t / 128.0 * direction  # exactly representable in float32: an exact line
    loss = np.arange(n, dtype=float)  # linear in the weights along the line
    res = anodiff.analyze(write_run(tmp_path / "r.h5", W, loss), T=161, tw_step=161, n_bins=12)
    w = res.windows[0]
    # binned arithmetic means: ⟨Δs²⟩ ≠ ⟨Δs⟩² within a bin, a small bias
    assert abs(w.lambda_all - 2) < 0.01 and abs(w.D_f - 1) < 0.005
    assert abs(w.lambda_short - 2) < 0.01 and abs(w.lambda_long - 2) < 0.01
    assert abs(w.alpha - 2) < 1e-6
    np.testing.assert_allclose(w.path_dr2, w.path_ds ** 2, rtol=1e-9)
    m = w.transverse.count > 0
    assert np.all(w.transverse.y[m] < 1e-6 * w.transverse.x[m])
    assert w.transverse_exponent is None and "straight" in w.reasons["transverse_exponent"]
    assert abs(w.msl_2H - 2) < 0.01


def test_contour_length_and_same_step_msl(tmp_path):
    """Δs(t_w, t_w+k) = Σ_{t<k} |Δw| exactly and MSL pairs w(s) with L(s) (not a neighbour)."""
    rng = _rng(2)
    n, d = 97, 31
    W = np.cumsum(rng.standard_normal((n, d)), axis=0).astype(np.float32)
    loss = rng.standard_normal(n)
    # float64 products: the binned MSL is compared pair by pair, where a bin edge would
    # tell a 1e-7 difference in Δr (float32 products) apart.
    res = anodiff.analyze(write_run(tmp_path / "r.h5", W, loss), T=97, n_bins=9,
                          gram_precision="float64")
    w = res.windows[0]
    X = W.astype(np.float64)
    steps = np.linalg.norm(np.diff(X, axis=0), axis=1)
    np.testing.assert_allclose(w.path_ds, np.cumsum(steps), rtol=1e-12)
    np.testing.assert_allclose(w.path_dr2, np.sum((X[1:] - X[0]) ** 2, axis=1), rtol=1e-10)
    s, t = np.triu_indices(n, 1)
    dr = np.linalg.norm(X[t] - X[s], axis=1)
    L = loss.astype(np.float32).astype(np.float64)
    e = w.msl.edges
    b = np.clip(np.searchsorted(e, dr, side="right") - 1, 0, e.size - 2)
    ref = np.bincount(b, (L[s] - L[t]) ** 2, e.size - 1) / np.bincount(b, None, e.size - 1)
    np.testing.assert_allclose(w.msl.y, ref, rtol=1e-10)


def test_brownian_motion(tmp_path):
    rng = _rng(3)
    n, d = 401, 300
    W = np.cumsum(rng.standard_normal((n, d)) * 1e-3, axis=0) + 0.5
    p = write_run(tmp_path / "bm.h5", W, rng.standard_normal(n))
    w = anodiff.analyze(p, T=401, n_bins=20).windows[0]
    assert abs(w.lambda_all - 1) < 0.1 and abs(w.D_f - 2) < 0.2
    assert abs(w.alpha - 1) < 0.15
    assert abs(w.transverse_exponent - 1) < 0.2  # Brownian paths are self-similar
    assert abs(w.msl_2H) < 0.15  # i.i.d. loss: flat MSL


def test_linear_loss_gives_2H_2(tmp_path):
    """L = a·w: for an isotropic walk E[(a·Δw)² | Δr] = |a|² Δr² / d, so MSL ∝ Δr².
    Along the walk L(t) is ONE 1-D walk, so the pair means carry sampling noise
    (σ(2H) ≈ 0.1 here): a fixed seed and a 3σ tolerance; the exact case is the
    straight line above."""
    rng = np.random.default_rng(2024)
    n, d = 2001, 30
    W = np.cumsum(rng.standard_normal((n, d)) * 1e-3, axis=0)
    a = rng.standard_normal(d)
    linear = W.astype(np.float32).astype(np.float64) @ a
    p = write_run(tmp_path / "lin.h5", W, linear.astype(np.float32))
    lo, hi = 1e-3 * np.sqrt(d), 1e-3 * np.sqrt(30 * d)  # Δr of lags ~1 … ~30 steps
    w = anodiff.analyze(p, T=n, n_bins=40, transverse=False, msl_range=(lo, hi)).windows[0]
    assert abs(w.msl_2H - 2) < 0.3


def _fgn(n, d, H, rng):
    k = np.arange(n)
    gamma = 0.5 * (np.abs(k + 1) ** (2 * H) - 2 * k ** (2 * H) + np.abs(k - 1) ** (2 * H))
    C = gamma[np.abs(k[:, None] - k[None, :])]
    return np.linalg.cholesky(C) @ rng.standard_normal((n, d))


def test_regime_switch_and_t0(tmp_path):
    rng = _rng(4)
    half, d = 1000, 200
    drift = rng.standard_normal(d)
    first = 1e-2 * rng.standard_normal((half, d)) + 7e-4 * np.arange(half)[:, None] * drift
    second = first[-1] + 2e-3 * np.cumsum(_fgn(half, d, 0.25, rng), axis=0)
    W = np.concatenate([first, second])
    p = write_run(tmp_path / "sw.h5", W, rng.standard_normal(2 * half))
    res = anodiff.analyze(p, T=200, tw_step=100, transverse=False)
    early = res.window(0)
    assert early.tau0 is not None and early.tau0 > 1 and early.alpha2 > 1.3
    assert early.rmse > 0.03
    late = res.windows[-1]
    assert late.alpha < 0.8 and late.rmse < 0.03
    assert res.t0 is not None and 900 <= res.t0 <= 1200
    assert all(w.rmse > 0.03 for w in res.windows if w.t_w + w.T <= half)


def test_fit_regimes_and_beta_on_exact_curves():
    lags = np.arange(1, 1000, dtype=float)
    two = np.where(lags < 100, lags ** 0.5, lags / 10)  # α = 0.5 then 1
    reg = fit_msd_regimes(lags, two)
    # τ0 is the smallest τ' whose tail fit has RMSE < 0.03 (the paper's rule)
    assert anodiff.fit_power_law(lags, two, lag_min=reg.tau0).rmse < 0.03
    assert anodiff.fit_power_law(lags, two, lag_min=reg.tau0 - 1).rmse >= 0.03
    assert abs(reg.alpha1 - 0.5) < 1e-9 and 0.9 < reg.alpha2 <= 1.0
    tau, beta = log_derivative(lags, lags ** 1.7, 20)
    assert tau.size == lags.size - 20 and np.allclose(beta, 1.7)
    single = fit_msd_regimes(lags, 3 * lags ** 0.7)
    assert single.tau0 == 1 and single.alpha1 is None and "single power law" in single.reasons["alpha1"]
    bad = fit_msd_regimes(lags[:2], lags[:2])
    assert bad.alpha is None and bad.reasons["alpha"]


# -- the pass: precision, shards, strides, layers, several T ---------------

def test_msd_precision_contract(tmp_path):
    """float32 weights with an offset of 1e3 and steps of 1e-4: MSD to 1e-6 of float64."""
    rng = _rng(5)
    W = (1e3 + np.cumsum(rng.standard_normal((151, 77)) * 1e-4, axis=0)).astype(np.float32)
    w = anodiff.analyze(write_run(tmp_path / "p.h5", W, np.zeros(151)), T=151, msl=False).windows[0]
    X = W.astype(np.float64)
    ref = np.array([np.mean(np.sum((X[k:] - X[:-k]) ** 2, axis=1)) for k in range(1, 151)])
    assert np.max(np.abs(w.msd - ref) / ref) < 1e-6
    fft_lags, fft_msd = anodiff.msd(X)
    np.testing.assert_allclose(w.msd, fft_msd, rtol=1e-8)


@pytest.mark.parametrize("n", [181, 250])
def test_float32_gram_contract(tmp_path, n):
    """Default float32 products of block-centred points: the MSD within 1e-6 and every pair
    distance within 3e-6 of the float64 reference, on windows where plain float32
    products (centred on the first row) lose every digit of the short distances."""
    from anodiff.analysis import window_gram  # noqa: PLC0415

    rng = _rng(13 + n)
    d = 2500 if n == 181 else 20011  # > one product chunk of 16384 dimensions
    for name, W in float32_hard_windows(rng, n, d).items():
        W = W.astype(np.float32)
        p = write_run(tmp_path / "f.h5", W, rng.standard_normal(n), chunks=(64, 4096))
        parts = accumulate_columns(p, T=n)
        G = window_gram(parts.windows[0])
        X = W.astype(np.float64)
        X -= X[0]
        ref_G = X @ X.T
        dg, rg = np.diagonal(G), np.diagonal(ref_G)
        D = dg[:, None] + dg[None, :] - 2 * G
        R = rg[:, None] + rg[None, :] - 2 * ref_G
        off = ~np.eye(n, dtype=bool)
        assert np.max(np.abs(D - R)[off] / R[off]) < 3e-6, name
        w = finish(parts).windows[0]
        ref = np.array([np.mean(np.sum((X[k:] - X[:-k]) ** 2, axis=1)) for k in range(1, n)])
        assert np.max(np.abs(w.msd - ref) / ref) < 1e-6, name
        # the exact band: distances up to 8 steps from differences (float64 rounding of G)
        rel = np.abs(w.msd - ref) / ref
        assert np.max(rel[:8]) < 1e-9, name
        exact = anodiff.analyze(p, T=n, gram_precision="float64").windows[0]
        assert np.max(np.abs(exact.msd - ref) / ref) < 1e-9, name
        assert abs(w.alpha - exact.alpha) < 1e-6, name
        if exact.lambda_all is not None:
            assert abs(w.lambda_all - exact.lambda_all) < 1e-3, name


def test_shards_add_up_and_stride(tmp_path):
    rng = _rng(6)
    n, d = 203, 517
    W = np.cumsum(rng.standard_normal((n, d)), axis=0)
    p = write_run(tmp_path / "s.h5", W, rng.standard_normal(n), chunks=(32, 64))
    kw = dict(T=[101, 67], tw_step=50, pair_stride=3, memory_mb=0.05, gram_precision="float64")
    a = accumulate_columns(p, columns=(0, 200), **kw)
    b = accumulate_columns(p, columns=(200, d), **kw)
    whole = accumulate_columns(p, **kw)
    a.merge(b)
    assert a.n_dims == d
    for x, y in zip(a.windows, whole.windows):
        np.testing.assert_allclose(x.gram, y.gram, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(x.acf, y.acf, rtol=1e-10, atol=1e-8)
    ra, rw = finish(a), finish(whole)
    for x, y in zip(ra.windows, rw.windows):
        assert x.T == y.T and x.t_w == y.t_w
        np.testing.assert_allclose(x.msd, y.msd, rtol=1e-9)
        np.testing.assert_allclose(x.contour.y, y.contour.y, rtol=1e-9)
    # Gram of the strided window against a direct float64 product
    w0 = whole.windows[0]
    X = W.astype(np.float32).astype(np.float64)[w0.t_w: w0.t_w + w0.T][::3]
    X = X - X[0]
    G = np.triu(w0.gram)
    np.testing.assert_allclose(G, np.triu(X @ X.T), rtol=1e-12, atol=1e-9 * np.abs(G).max())
    assert rw.meta["pair_stride"] == 3 and "pair stride 3" in rw.meta["pair_note"]
    assert sorted({w.T for w in rw.windows}) == [67, 101]
    assert len([w for w in rw.windows if w.T == 101]) == 3
    # analyze() (windows finished during the pass) equals accumulate + finish
    direct = anodiff.analyze(p, **kw)
    for x, y in zip(direct.windows, rw.windows):
        np.testing.assert_allclose(x.msd, y.msd, rtol=1e-12)
        assert x.lambda_all == pytest.approx(y.lambda_all, rel=1e-9)


def test_by_layer_and_subset(tmp_path):
    rng = _rng(8)
    n = 120
    W = np.cumsum(rng.standard_normal((n, 90)), axis=0)
    W[:, 60:] *= 3
    layout = [("conv.weight", 50), ("bn.bias", 10), ("fc.weight", 30)]
    p = write_run(tmp_path / "l.h5", W, rng.standard_normal(n), layout=layout, chunks=(16, 32))
    res = anodiff.analyze(p, T=119, by_layer=True, memory_mb=0.02)
    w = res.windows[0]
    assert [ly.name for ly in w.layers] == ["conv.weight", "bn.bias", "fc.weight"]
    assert [ly.n_dims for ly in w.layers] == [50, 10, 30]
    np.testing.assert_allclose(sum(ly.msd for ly in w.layers), w.msd, rtol=1e-9)
    X = W.astype(np.float32).astype(np.float64)[:119, 50:60]
    ref = np.array([np.mean(np.sum((X[k:] - X[:-k]) ** 2, axis=1)) for k in range(1, 119)])
    np.testing.assert_allclose(w.layers[1].msd, ref, rtol=1e-9)
    # a coordinate subset: columns map to layers through /weights_index
    idx = np.array([1, 3, 55, 70, 71, 89])
    q = write_run(tmp_path / "sub.h5", W[:, idx], rng.standard_normal(n), layout=layout,
                  subset_index=idx)
    rs = anodiff.analyze(q, T=50, tw_step=50, by_layer=True)
    assert [ly.n_dims for ly in rs.windows[0].layers] == [2, 1, 3]
    assert rs.summary()["coordinate_subset"] is True


def test_eval_loss_and_no_msl(tmp_path):
    rng = _rng(9)
    W = np.cumsum(rng.standard_normal((80, 20)), axis=0)
    p = write_run(tmp_path / "e.h5", W, None, eval_loss=rng.standard_normal(80))
    res = anodiff.analyze(p, T=79, loss="eval_loss")
    assert res.meta["loss_dataset"] == "/eval_loss" and res.windows[0].msl_2H is not None
    res2 = anodiff.analyze(p, T=79, msl=False)
    assert res2.windows[0].msl_2H is None and res2.windows[0].reasons["msl_2H"]
    with pytest.raises(anodiff.InputError, match="/loss is missing"):
        anodiff.analyze(p, T=79)


# -- CLI and bad input -------------------------------------------------------

def test_cli_writes_results(tmp_path, capsys):
    rng = _rng(10)
    W = np.cumsum(rng.standard_normal((300, 50)), axis=0)
    p = write_run(tmp_path / "c.h5", W, rng.standard_normal(300))
    out = tmp_path / "out"
    rc = cli_main(["analyze", str(p), "--T", "100", "--T", "151", "--tw-step", "100", "--out", str(out),
                   "--no-progress", "--pair-stride", "2"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    keys = {"t_w", "T", "alpha", "alpha1", "alpha2", "tau0", "rmse", "lambda_short", "lambda_long",
            "crossover_l", "D_f", "msl_2H", "transverse_exponent"}
    assert "t0" in summary and summary["pair_stride"] == 2 and summary["loss_dataset"] == "/loss"
    assert len(summary["windows"]) == 3 + 2
    for w in summary["windows"]:
        assert keys <= set(w)
        for k, v in w.items():
            if v is None:
                assert w["reasons"].get(k), k
    with h5py.File(out / "results.h5") as f:
        g = f["windows/00000"]
        assert g["msd"].shape == (99,) and "contour" in g and "msl" in g and "transverse" in g
        assert "loss/moving_var" in f


def _cli(args):
    return run_cli("analyze", *args)


def test_bad_input_exit_2(tmp_path):
    rng = _rng(11)
    W = np.cumsum(rng.standard_normal((60, 16)), axis=0)
    ok = write_run(tmp_path / "ok.h5", W, rng.standard_normal(60))
    noloss = write_run(tmp_path / "noloss.h5", W)
    Wn = W.copy()
    Wn[33, 4] = np.nan
    nan = write_run(tmp_path / "nan.h5", Wn, rng.standard_normal(60))
    half = write_run(tmp_path / "half.h5", W, rng.standard_normal(60), complete=False, n_written=40)
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(ok.read_bytes()[: ok.stat().st_size // 2])
    cases = [
        ([ok, "--T", "100"], "larger than"),
        ([noloss, "--T", "30"], "/loss is missing"),
        ([nan, "--T", "30"], "NaN or inf"),
        ([half, "--T", "30"], "incomplete"),
        ([trunc, "--T", "30"], str(trunc.name)),
        ([tmp_path / "missing.h5"], "no such file"),
    ]
    for args, msg in cases:
        r = _cli([*args, "--out", tmp_path / "o"])
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr, r.stderr
    r = _cli([half, "--T", "30", "--tw-step", "5", "--allow-incomplete", "--out", tmp_path / "o"])
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert max(w["t_w"] + w["T"] for w in s["windows"]) <= 40 and s["complete"] is False


@pytest.mark.parametrize("pair_stride", [1, 3])
def test_float32_shards_add_up(tmp_path, pair_stride):
    """Partials of column shards add up to those of the whole file with float32 products
    too (to their rounding: chunk boundaries differ between a shard and the whole)."""
    rng = _rng(16)
    n, d = 203, 517
    W = np.cumsum(rng.standard_normal((n, d)), axis=0)
    p = write_run(tmp_path / "s.h5", W, rng.standard_normal(n), chunks=(32, 64))
    kw = dict(T=[101, 67], tw_step=50, pair_stride=pair_stride, memory_mb=0.05)
    a = accumulate_columns(p, columns=(0, 192), **kw)
    a.merge(accumulate_columns(p, columns=(192, d), **kw))
    whole = accumulate_columns(p, **kw)
    for x, y in zip(finish(a).windows, finish(whole).windows):
        assert (x.T, x.t_w) == (y.T, y.t_w)
        np.testing.assert_allclose(x.msd, y.msd, rtol=1e-6)
        assert x.alpha == pytest.approx(y.alpha, rel=1e-6)


@pytest.mark.parametrize("sequential", [False, True])
def test_float32_small_windows_and_strides(tmp_path, monkeypatch, sequential):
    """Windows shorter than a block, odd lengths, strides; pieces concurrent or (long
    windows: one product at a time) sequential: the float32 products agree with float64."""
    import anodiff.analysis as analysis  # noqa: PLC0415

    if sequential:
        monkeypatch.setattr(analysis, "PIECE_PRODUCTS_BYTES", 0)
    rng = _rng(17)
    W = np.cumsum(rng.standard_normal((300, 700)), axis=0) + 3
    p = write_run(tmp_path / "e.h5", W, rng.standard_normal(300), chunks=(32, 64))
    for T, stride in ((2, 1), (5, 2), (16, 1), (17, 5), (33, 1), (299, 1), (299, 2)):
        fast = anodiff.analyze(p, T=T, tw_step=3 * T, pair_stride=stride, n_bins=8)
        exact = anodiff.analyze(p, T=T, tw_step=3 * T, pair_stride=stride, n_bins=8,
                                gram_precision="float64")
        assert len(fast.windows) == len(exact.windows)
        for a, b in zip(fast.windows, exact.windows):
            np.testing.assert_allclose(a.msd, b.msd, rtol=1e-6)
            np.testing.assert_allclose(a.contour.x, b.contour.x, rtol=1e-12)
