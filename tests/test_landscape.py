"""anodiff.landscape: directions, loss surfaces, box counting on sets of known dimension."""
from __future__ import annotations

import math

import numpy as np
import pytest

from anodiff.errors import InputError
from anodiff.landscape import (_pixel_ranges, box_counting_dimension, filter_normalize,
                               level_set, level_set_box_count, level_set_dimensions,
                               pca_directions, refine_surface)

KOCH = math.log(4) / math.log(3)


def _seed():
    return int(np.random.SeedSequence().entropy % 2**31)


# --------------------------------------------------------------------------
# synthetic sets and surfaces
# --------------------------------------------------------------------------
def fbm_surface(n, H, seed, R=2.0):
    """Exact fractional Brownian surface on an n × n grid of [0, 1]² (Stein 2002,
    circulant embedding of a locally equivalent covariance; valid for H <= 0.75)."""
    assert 0 < H <= 0.75
    rng = np.random.default_rng(seed)
    alpha = 2 * H
    c2 = alpha / 2
    c0 = 1 - alpha / 2
    t = np.arange(1, n + 1) / n
    r = np.hypot(t[None, :] - t[0], t[:, None] - t[0])
    rows = np.where(r <= 1, c0 - r ** alpha + c2 * r ** 2, 0.0)
    top = np.hstack([rows, rows[:, -2:0:-1]])
    blk = np.vstack([top, np.hstack([rows[-2:0:-1, :], rows[-2:0:-1, -2:0:-1]])])
    lam = np.sqrt(np.maximum(np.real(np.fft.fft2(blk)) / (4 * (n - 1) ** 2), 0))
    Z = rng.standard_normal(blk.shape) + 1j * rng.standard_normal(blk.shape)
    F = np.fft.fft2(lam * Z)[:n, :n].real
    F -= F[0, 0]
    return F + np.outer(t * rng.standard_normal(), t * rng.standard_normal()) * np.sqrt(2 * c2)


def koch_curve(depth):
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    c, s = 0.5, math.sqrt(3) / 2
    rot = np.array([[c, -s], [s, c]])
    for _ in range(depth):
        a, b = pts[:-1], pts[1:]
        d = (b - a) / 3
        p1, p2 = a + d, a + 2 * d
        peak = p1 + d @ rot.T
        new = np.stack([a, p1, peak, p2], axis=1).reshape(-1, 2)
        pts = np.vstack([new, pts[-1:]])
    return pts


def rasterise(pts, n):
    """Polyline -> boolean n × n image (sub-pixel sampling of every segment)."""
    img = np.zeros((n, n), dtype=bool)
    lo = pts.min(axis=0)
    span = (pts.max(axis=0) - lo).max()
    q = (pts - lo) / span * (n - 1)
    seg = q[1:] - q[:-1]
    m = int(np.ceil(np.abs(seg).max() * 3)) + 2
    t = np.linspace(0, 1, m)
    allp = (q[:-1, None, :] + seg[:, None, :] * t[None, :, None]).reshape(-1, 2)
    p = np.rint(allp).astype(int)
    img[p[:, 1], p[:, 0]] = True
    return img


# --------------------------------------------------------------------------
# box counting
# --------------------------------------------------------------------------
@pytest.mark.parametrize("angle", [0.0, 0.37, 1.0, 1.5707963])
def test_straight_line_has_dimension_one(angle):
    pts = np.array([[0.0, 0.0], [math.cos(angle), math.sin(angle)]])
    r = box_counting_dimension(rasterise(pts, 513))
    assert abs(r.dimension - 1.0) < 0.05
    assert r.r2 > 0.99 and r.kind == "set"


def test_koch_curve():
    r = box_counting_dimension(rasterise(koch_curve(7), 1024))
    assert abs(r.dimension - KOCH) < 0.05, r
    assert r.fit_range == (2, 128) and r.r2 > 0.99


def test_filled_square_and_points():
    a = np.ones((512, 512), dtype=bool)
    assert abs(box_counting_dimension(a).dimension - 2.0) < 0.05
    b = np.zeros((256, 256), dtype=bool)
    b[[10, 200, 77], [5, 100, 250]] = True
    assert abs(box_counting_dimension(b).dimension) < 0.05


# One 513² realisation scatters by sd 0.01 (H=0.3) to 0.025 (H=0.7) around 3 − H (bias
# <= 0.011, measured over 40 seeds): the checks use the mean of 4 independent surfaces.
@pytest.mark.parametrize("H", [0.3, 0.5, 0.7])
def test_fbm_surface_dimension(H):
    seed = _seed()
    fits = [box_counting_dimension(fbm_surface(513, H, seed + i)) for i in range(4)]
    r = fits[0]
    assert r.kind == "surface" and r.fit_range == (1, 32)
    dims = [f.dimension for f in fits]
    assert abs(np.mean(dims) - (3 - H)) < 0.05, (seed, dims)
    assert all(f.r2 > 0.99 for f in fits)
    z = fbm_surface(129, H, seed)
    # the estimate does not depend on the unit of the heights
    assert box_counting_dimension(1e3 * z + 7).dimension == pytest.approx(
        box_counting_dimension(z).dimension, abs=1e-9)


@pytest.mark.parametrize("H", [0.3, 0.5, 0.7])
def test_fbm_level_sets(H):
    seed = _seed()
    results = [level_set_dimensions(fbm_surface(513, H, seed + i)) for i in range(4)]
    res = results[0]
    assert len(res.dimensions) == 9
    means = [r.mean for r in results]
    assert abs(np.mean(means) - (2 - H)) < 0.05, (seed, means)
    assert res.std < 0.1 and res.min <= res.mean <= res.max
    d = res.as_dict()
    assert len(d["fit_range"]) == 9 and np.all(np.array(d["r2"]) > 0.95)


def test_smooth_surface_has_dimension_two():
    x = np.linspace(-1, 1, 257)
    z = x[None, :] ** 2 + 0.5 * x[:, None] ** 2 + 0.3 * np.sin(3 * x)[None, :]
    assert abs(box_counting_dimension(z).dimension - 2.0) < 0.02
    # level sets of a smooth bowl are smooth curves
    res = level_set_dimensions(z)
    assert abs(res.mean - 1.0) < 0.05


def test_pixel_ranges_against_brute_force():
    rng = np.random.default_rng(_seed())
    z = rng.standard_normal((37, 42))
    for s in (1, 2, 3, 5, 8):
        r = _pixel_ranges(z, s)
        ny, nx = 36 // s, 41 // s
        ref = np.array([[np.ptp(z[i * s:i * s + s + 1, j * s:j * s + s + 1]) for j in range(nx)]
                        for i in range(ny)])
        np.testing.assert_array_equal(r, ref)


def test_counts_against_direct_definition():
    rng = np.random.default_rng(_seed())
    a = rng.random((61, 70)) < 0.05
    r = box_counting_dimension(a, min_size=1, max_size=16)
    for s, c in zip(r.sizes, r.counts):
        ref = sum(a[i:i + s, j:j + s].any() for i in range(0, 61, s) for j in range(0, 70, s))
        assert c == ref
    z = rng.standard_normal((65, 65))
    rs = box_counting_dimension(z)
    for s, c in zip(rs.sizes, rs.counts):
        zz = z[::s, ::s]
        ref = sum(np.ptp(zz[i:i + 2, j:j + 2]) for i in range(zz.shape[0] - 1)
                  for j in range(zz.shape[1] - 1)) / s
        m = (64 // s) * s / 64.0  # covered fraction of each axis
        assert c == pytest.approx(ref / m ** 2, rel=1e-12)


def test_level_set_raster_and_methods():
    x = np.linspace(-1, 1, 129)
    z = np.hypot(x[None, :], x[:, None])
    s = level_set(z, 0.5)
    assert s.shape == (128, 128) and s.any()
    # every flagged cell straddles the circle
    ii, jj = np.nonzero(s)
    corners = np.stack([z[ii, jj], z[ii + 1, jj], z[ii, jj + 1], z[ii + 1, jj + 1]])
    assert np.all((corners.min(axis=0) < 0.5) & (corners.max(axis=0) >= 0.5))
    for method in ("corners", "pixels"):
        r = level_set_box_count(z, 0.5, method=method, min_size=1, max_size=16)
        assert abs(r.dimension - 1.0) < 0.08


def test_box_counting_errors():
    with pytest.raises(InputError, match="2-D"):
        box_counting_dimension(np.zeros(100))
    with pytest.raises(InputError, match="empty"):
        box_counting_dimension(np.zeros((64, 64), dtype=bool))
    with pytest.raises(InputError, match="NaN"):
        box_counting_dimension(np.full((64, 64), np.nan))
    with pytest.raises(InputError, match="constant"):
        box_counting_dimension(np.ones((64, 64)))
    with pytest.raises(InputError, match="too small"):
        box_counting_dimension(np.zeros((4, 4)))
    with pytest.raises(InputError, match="fewer than 3 scales"):
        box_counting_dimension(np.random.default_rng(0).random((64, 64)), min_size=8, max_size=9)
    with pytest.raises(InputError, match="method"):
        box_counting_dimension(np.random.default_rng(0).random((64, 64)), method="dbc")
    with pytest.raises(InputError, match="quantiles"):
        level_set_dimensions(np.random.default_rng(0).random((64, 64)), quantiles=[0.0, 0.5])


def test_refine_surface_reproduces_smooth_function():
    x = np.linspace(-1, 1, 51)
    y = np.linspace(-2, 2, 41)
    f = lambda X, Y: np.sin(X) * np.cos(0.5 * Y) + 0.1 * X * Y  # noqa: E731
    z = f(x[None, :], y[:, None])
    xf, yf, zf = refine_surface(x, y, z, 257)
    assert zf.shape == (257, 257) and xf[0] == -1 and yf[-1] == 2
    np.testing.assert_allclose(zf, f(xf[None, :], yf[:, None]), atol=1e-4)


# --------------------------------------------------------------------------
# PCA directions
# --------------------------------------------------------------------------
def _pca_reference(X, k):
    Xc = X - X.mean(axis=0)
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    return Vt[:k], s[:k] ** 2 / np.sum(s ** 2)


def test_pca_directions_against_svd():
    rng = np.random.default_rng(_seed())
    n, d = 53, 301
    t = np.linspace(0, 1, n)[:, None]
    W = 5.0 + 3 * t * rng.standard_normal(d) + np.sin(6 * t) * rng.standard_normal(d) \
        + 0.01 * rng.standard_normal((n, d))
    origin = W[-1] + 0.1 * rng.standard_normal(d)
    res = pca_directions(W, origin=origin, block_cols=64)
    ref, ratio = _pca_reference(W - origin, 2)
    for i in range(2):
        assert abs(abs(res.directions[i] @ ref[i]) - 1) < 1e-9
    np.testing.assert_allclose(res.explained_variance_ratio, ratio, rtol=1e-9)
    np.testing.assert_allclose(res.directions @ res.directions.T, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(res.coords, (W - origin) @ res.directions.T, rtol=1e-9, atol=1e-9)
    # a subset of rows, read from an HDF5 dataset in column blocks
    h5py = pytest.importorskip("h5py")
    import tempfile
    import os
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("weights", data=W.astype(np.float32), chunks=(16, 64))
        rows = np.arange(0, n, 3)
        with h5py.File(path, "r") as f:
            r2 = pca_directions(f["weights"], rows=rows, block_cols=100)
        W32 = W.astype(np.float32).astype(np.float64)[rows]
        ref2, _ = _pca_reference(W32 - W32[-1], 2)
        assert abs(abs(r2.directions[0] @ ref2[0]) - 1) < 1e-8
        np.testing.assert_array_equal(r2.rows, rows)


def test_pca_errors():
    W = np.ones((10, 5))
    with pytest.raises(InputError, match="does not move"):
        pca_directions(W)
    W2 = np.outer(np.arange(10.0), np.ones(5))  # a straight line: 1 dimension
    with pytest.raises(InputError, match="fewer than 2"):
        pca_directions(W2)
    with pytest.raises(InputError, match="rows"):
        pca_directions(W2, rows=[3, 1])
    with pytest.raises(InputError, match="origin"):
        pca_directions(W2 + np.random.default_rng(0).random((10, 5)), origin=np.zeros(3))


# --------------------------------------------------------------------------
# torch parts: filter normalisation, surfaces
# --------------------------------------------------------------------------
torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from anodiff.landscape import hessian_directions, loss_surface, random_directions  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _convnet(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 3, 2, bias=False),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 4))


def _split(model, v):
    out, o = [], 0
    for p in model.parameters():
        out.append(v[o:o + p.numel()].view(p.shape))
        o += p.numel()
    return out


def test_filter_normalisation_matches_each_filter():
    net = _convnet(_seed())
    dirs = random_directions(net, 2, seed=3)
    assert dirs.shape == (2, sum(p.numel() for p in net.parameters()))
    for d in dirs:
        for p, dp in zip(net.parameters(), _split(net, d)):
            if p.dim() <= 1:  # biases, BatchNorm weight and bias: not moved
                assert torch.all(dp == 0)
            else:
                wn = p.detach().reshape(p.shape[0], -1).norm(dim=1)
                dn = dp.reshape(p.shape[0], -1).norm(dim=1)
                torch.testing.assert_close(dn, wn, rtol=1e-5, atol=1e-7)
    # the two directions differ, and the seed fixes them
    assert not torch.allclose(dirs[0], dirs[1])
    torch.testing.assert_close(random_directions(net, 2, seed=3), dirs)
    # ignore=None: 1-D parameters move along themselves
    d2 = random_directions(net, 1, seed=1, ignore=None)[0]
    for p, dp in zip(net.parameters(), _split(net, d2)):
        if p.dim() <= 1:
            torch.testing.assert_close(dp, p.detach())


def test_filter_normalize_numpy_and_errors():
    rng = np.random.default_rng(_seed())
    shapes = [(4, 3, 2), (4,), (3, 5)]
    n = 24 + 4 + 15
    w = rng.standard_normal(n)
    d = rng.standard_normal(n)
    out = filter_normalize(d, w, shapes)
    np.testing.assert_allclose(np.linalg.norm(out[:24].reshape(4, 6), axis=1),
                               np.linalg.norm(w[:24].reshape(4, 6), axis=1))
    assert np.all(out[24:28] == 0)
    np.testing.assert_allclose(np.linalg.norm(out[28:].reshape(3, 5), axis=1),
                               np.linalg.norm(w[28:].reshape(3, 5), axis=1))
    assert np.all(d == rng.standard_normal(0).sum() + d)  # input untouched
    with pytest.raises(InputError, match="flat vectors"):
        filter_normalize(d[:-1], w, shapes)
    with pytest.raises(InputError, match="ignore"):
        filter_normalize(d, w, shapes, ignore="bn")


def test_loss_surface_matches_direct_evaluation():
    seed = _seed()
    net = _convnet(seed)
    net.train()
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(23, 2, 6, 6, generator=g)
    y = torch.randint(0, 4, (23,), generator=g)
    net(X)  # give BatchNorm running statistics
    batches = [(X[:10], y[:10]), (X[10:], y[10:])]
    d1, d2 = random_directions(net, 2, seed=seed)
    xs = np.linspace(-0.5, 0.5, 5)
    ys = np.linspace(-0.3, 0.6, 4)
    w_before = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).clone()
    surf = loss_surface(net, F.cross_entropy, batches, d1, d2, xs, ys, kind="random")
    assert surf.loss.shape == (4, 5) and surf.n_samples == 23 and net.training
    torch.testing.assert_close(torch.cat([p.detach().reshape(-1) for p in net.parameters()]), w_before)
    ref_net = _convnet(seed)
    ref_net.load_state_dict(net.state_dict())
    ref_net.eval()
    for i, j in [(0, 0), (2, 3), (3, 1)]:
        torch.nn.utils.vector_to_parameters(w_before + xs[j] * d1 + ys[i] * d2, ref_net.parameters())
        with torch.no_grad():
            ref = float(F.cross_entropy(ref_net(X), y))
        assert surf.loss[i, j] == pytest.approx(ref, rel=1e-5)


def test_least_squares_surface_is_the_quadratic_form():
    rng = np.random.default_rng(_seed())
    n, d = 40, 9
    X = rng.standard_normal((n, d))
    yv = rng.standard_normal(n)
    model = nn.Linear(d, 1, bias=False).double()
    w0 = model.weight.detach().numpy().ravel().copy()
    d1, d2 = rng.standard_normal(d), rng.standard_normal(d)
    xs, ys = np.linspace(-1, 1, 7), np.linspace(-2, 1, 6)

    def half_mse(out, y):
        return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()

    batches = [(torch.from_numpy(X), torch.from_numpy(yv))]
    surf = loss_surface(model, half_mse, batches, torch.from_numpy(d1), torch.from_numpy(d2), xs, ys)
    W = w0[None, None, :] + xs[None, :, None] * d1 + ys[:, None, None] * d2
    ref = 0.5 * np.mean((W @ X.T - yv) ** 2, axis=-1)
    np.testing.assert_allclose(surf.loss, ref, rtol=1e-12)
    # Hessian directions of least squares are the top eigenvectors of XᵀX/n
    dirs, spec = hessian_directions(model, half_mse, batches, tol=1e-10, scale="unit", dtype="float64")
    lam, V = np.linalg.eigh(X.T @ X / n)
    for i in range(2):
        assert abs(abs(dirs[i].numpy() @ V[:, -1 - i]) - 1) < 1e-8
    dirs_w, _ = hessian_directions(model, half_mse, batches, tol=1e-10, dtype="float64")
    assert float(dirs_w[0].norm()) == pytest.approx(np.linalg.norm(w0), rel=1e-9)


def test_loss_surface_errors():
    net = nn.Linear(3, 2)
    b = [(torch.randn(4, 3), torch.randint(0, 2, (4,)))]
    d = torch.zeros(8)
    with pytest.raises(InputError, match="d1 has 7"):
        loss_surface(net, F.cross_entropy, b, torch.zeros(7), d, [0], [0])
    with pytest.raises(InputError, match="empty"):
        loss_surface(net, F.cross_entropy, b, d, d, [], [0])
    with pytest.raises(InputError, match="no data"):
        loss_surface(net, F.cross_entropy, [], d, d, [0], [0])
