"""Pair kernels of anodiff._core against direct NumPy float64 computations."""
from __future__ import annotations

import numpy as np
import pytest

from anodiff import _core
from anodiff.geometry import contour_positions, log_edges, moving_average, moving_variance, pair_measures

SEED = np.random.SeedSequence().entropy  # fresh seed each run, printed on failure


def _rng(extra: int = 0):
    return np.random.default_rng([SEED, extra])


def _window(rng, P, d=23, drift=0.3):
    """A random walk with drift, centred on its first point, float64."""
    steps = rng.standard_normal((P, d)) + drift * rng.standard_normal(d)
    X = np.cumsum(steps, axis=0)
    return X - X[0]


def _bin(x, edges):
    n = edges.size - 1
    b = np.searchsorted(edges, x, side="right") - 1
    b = np.where(x == edges[-1], n - 1, b)
    ok = (x >= edges[0]) & (x <= edges[-1])
    return np.where(ok, b, -1)


def _ref_pairs(X, contour, loss, s_edges, r_edges):
    P = X.shape[0]
    s, t = np.triu_indices(P, 1)
    dr2 = np.sum((X[t] - X[s]) ** 2, axis=1)
    ds = contour[t] - contour[s]
    dr = np.sqrt(dr2)
    bs, br = _bin(ds, s_edges), _bin(dr, r_edges)
    ns, nr = s_edges.size - 1, r_edges.size - 1
    ms, mr = bs >= 0, br >= 0
    out = {
        "s_dr2": np.bincount(bs[ms], dr2[ms], ns), "s_ds": np.bincount(bs[ms], ds[ms], ns),
        "s_n": np.bincount(bs[ms], None, ns), "r_dr": np.bincount(br[mr], dr[mr], nr),
        "r_n": np.bincount(br[mr], None, nr),
        "r_dl2": np.bincount(br[mr], ((loss[s] - loss[t]) ** 2)[mr], nr),
    }
    return out


def _ref_transverse(X):
    P = X.shape[0]
    H = np.zeros((P, P))
    D = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=2)
    for s in range(P):
        for t in range(s + 2, P):
            u = np.arange(s + 1, t)
            if D[s, t] > 0:
                a = D[s, u] + D[s, t] - D[u, t]
                h2 = D[s, u] - a * a / (4 * D[s, t])
            else:
                h2 = D[s, u]
            H[s, t] = np.sqrt(max(0.0, h2.max()))
    return H


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)) if a.size else 0.0


@pytest.mark.parametrize("P", [37, 51, 3])
@pytest.mark.parametrize("threads", [1, 3])
def test_pair_bins_match_numpy(P, threads):
    rng = _rng(P * 10 + threads)
    X = _window(rng, P)
    G = X @ X.T
    contour = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(X, axis=0), axis=1))))
    loss = rng.standard_normal(P)
    s_edges = log_edges(np.diff(contour).min(), contour[-1], 13)
    D = np.sum((X[:, None] - X[None]) ** 2, axis=2)
    r_edges = log_edges(np.sqrt(D[D > 0].min()), np.sqrt(D.max()), 11)
    out = [np.zeros(13), np.zeros(13), np.zeros(13, np.int64), np.zeros(11), np.zeros(11),
           np.zeros(11, np.int64)]
    _core.pair_bins(G, contour, loss, s_edges, r_edges, *out, threads)
    ref = _ref_pairs(X, contour, loss, s_edges, r_edges)
    np.testing.assert_array_equal(out[2], ref["s_n"])
    np.testing.assert_array_equal(out[5], ref["r_n"])
    assert out[2].sum() == P * (P - 1) // 2
    for got, key in zip((out[0], out[1], out[3], out[4]), ("s_dr2", "s_ds", "r_dr", "r_dl2")):
        assert _rel(got, ref[key]) < 1e-10, key


@pytest.mark.parametrize("P", [35, 49])
def test_transverse_matrix_and_bins_match_numpy(P):
    rng = _rng(P)
    X = _window(rng, P, d=17)
    X[5] = X[3]  # a repeated point: a pair with Δr = 0
    G = X @ X.T
    H = _core.transverse_matrix(G, 2)
    Href = _ref_transverse(X)
    iu = np.triu_indices(P, 2)
    assert _rel(H[iu], Href[iu]) < 1e-10
    D = np.sum((X[:, None] - X[None]) ** 2, axis=2)
    r_edges = log_edges(np.sqrt(D[D > 0].min()), np.sqrt(D.max()), 9)
    h, h2, dr, n = np.zeros(9), np.zeros(9), np.zeros(9), np.zeros(9, np.int64)
    _core.transverse_bins(G, r_edges, h, h2, dr, n, 3)
    s, t = iu
    drp = np.sqrt(D[s, t])
    b = _bin(drp, r_edges)
    m = (b >= 0) & (D[s, t] > 0)
    np.testing.assert_array_equal(n, np.bincount(b[m], None, 9))
    assert _rel(h, np.bincount(b[m], Href[s, t][m], 9)) < 1e-10
    assert _rel(h2, np.bincount(b[m], Href[s, t][m] ** 2, 9)) < 1e-10
    assert _rel(dr, np.bincount(b[m], drp[m], 9)) < 1e-10


def test_transverse_of_a_straight_line_is_zero():
    P = 41
    v = _rng(1).standard_normal(9)
    X = np.outer(np.cumsum(_rng(2).uniform(0.5, 2, P)), v)
    X -= X[0]
    H = _core.transverse_matrix(X @ X.T, 2)
    scale = np.linalg.norm(X[-1])
    assert H.max() < 1e-6 * scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("row_step,band", [(1, 1), (3, 4), (1, 8), (2, 17)])
def test_band_sqdist_matches_numpy(dtype, row_step, band):
    rng = _rng(row_step)
    B = (1e3 + np.cumsum(rng.standard_normal((53, 2101)) * 1e-3, axis=0)).astype(dtype)
    pts = B[::row_step].astype(np.float64)
    out = np.zeros((pts.shape[0], band))
    _core.band_sqdist_accumulate(B, row_step, out, 2)
    for k in range(1, band + 1):
        ref = np.sum((pts[k:] - pts[:-k]) ** 2, axis=1)
        assert _rel(out[:-k, k - 1], ref) < 1e-12
        assert np.all(out[pts.shape[0] - k:, k - 1] == 0)
    # a column range of a strip (rows not contiguous in memory)
    out2 = np.zeros((pts.shape[0], band))
    _core.band_sqdist_accumulate(B[:, 100:1100], row_step, out2, 1)
    for k in range(1, band + 1):
        ref = np.sum((pts[k:, 100:1100] - pts[:-k, 100:1100]) ** 2, axis=1)
        assert _rel(out2[:-k, k - 1], ref) < 1e-12
    # more threads than points, fewer points than the band
    out3 = np.zeros((3, band))
    _core.band_sqdist_accumulate(B[: 2 * row_step + 1], row_step, out3, 8)
    np.testing.assert_allclose(out3[:2, 0], np.sum((pts[1:3] - pts[:2]) ** 2, axis=1), rtol=1e-12)


def test_contour_convention():
    """Δs(t1, t2) = Σ_{t=t1}^{t2-1} |w(t+1) - w(t)| (the original code was off by one)."""
    steps = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    c = contour_positions(steps ** 2)
    assert c.tolist() == [0, 1, 3, 6, 10, 15, 21]
    assert contour_positions(steps ** 2, stride=3).tolist() == [0, 6, 21]


def test_pair_measures_binned_means():
    rng = _rng(7)
    X = _window(rng, 31)
    c = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(X, axis=0), axis=1))))
    pm = pair_measures(X @ X.T, c, rng.standard_normal(31), n_bins=8)
    assert pm.contour.count.sum() == 31 * 30 // 2
    assert pm.msl.count.sum() == 31 * 30 // 2
    m = pm.contour.count > 0
    assert np.all((pm.contour.x[m] >= pm.contour.edges[:-1][m]) & (pm.contour.x[m] <= pm.contour.edges[1:][m]))


def test_moving_helpers():
    x = _rng(3).standard_normal(257) + 1e4
    ma = moving_average(x, 40)
    mv = moving_variance(x, 100)
    assert ma.shape == (218,) and mv.shape == (158,)
    assert abs(ma[5] - x[5:45].mean()) < 1e-9
    assert abs(mv[17] - x[17:117].var()) < 1e-8


@pytest.mark.skipif(not hasattr(_core, "pair_curves_serial"), reason="no pair_math host reference")
def test_cpu_kernels_agree_with_the_shared_pair_math():
    """The CPU pair kernels and cpp/pair_math.hpp (the CUDA engine's per-pair arithmetic,
    evaluated serially on the host) give the same binned curves."""
    rng = _rng(21)
    P = 45
    X = _window(rng, P, d=19)
    G = X @ X.T
    c = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(X, axis=0), axis=1))))
    loss = rng.standard_normal(P)
    pm = pair_measures(G, c, loss, n_bins=12)
    se, re = pm.contour.edges, pm.msl.edges
    S, R = _core.pair_curves_serial(G, c, loss, se[0], se[-1], 12, re[0], re[-1], 12, True)
    np.testing.assert_array_equal(pm.contour.count, S[0])
    np.testing.assert_array_equal(pm.msl.count, R[0])
    np.testing.assert_array_equal(pm.transverse.count, R[3])
    m = pm.contour.count > 0
    assert _rel(pm.contour.y[m] * pm.contour.count[m], S[2][m]) < 1e-10
    assert _rel(pm.contour.x[m] * pm.contour.count[m], S[1][m]) < 1e-10
    m = pm.msl.count > 0
    assert _rel(pm.msl.y[m] * pm.msl.count[m], R[2][m]) < 1e-10
    m = pm.transverse.count > 0
    assert _rel(pm.transverse.y[m] * pm.transverse.count[m], R[5][m]) < 1e-10
