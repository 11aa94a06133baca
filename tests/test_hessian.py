"""anodiff.hessian: Lanczos top eigenpairs against dense float64 references."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from anodiff.errors import InputError  # noqa: E402
from anodiff.hessian import (HessianOperator, hessian_vector_product, lanczos_top,  # noqa: E402
                             top_eigenvalues)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _flat_fn(model, loss_fn, batches):
    """w -> weighted mean loss with the model's parameters replaced by w (eval mode)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for n, p in model.named_parameters() if p.requires_grad]
    sizes = [int(np.prod(s)) for s in shapes]
    N = sum(len(y) for _, y in batches)

    def f(w):
        ps, o = {}, 0
        for n, s, k in zip(names, shapes, sizes):
            ps[n] = w[o:o + k].view(s)
            o += k
        total = 0
        for x, y in batches:
            total = total + loss_fn(torch.func.functional_call(model, ps, (x,)), y) * (len(y) / N)
        return total

    w0 = torch.cat([p.detach().reshape(-1) for n, p in model.named_parameters() if p.requires_grad])
    return f, w0


def _dense_hessian(model, loss_fn, batches):
    f, w0 = _flat_fn(model, loss_fn, batches)
    was = model.training
    model.eval()
    H = torch.autograd.functional.hessian(f, w0, vectorize=True).numpy()
    model.train(was)
    return 0.5 * (H + H.T)


def _tiny_net(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Tanh(), nn.Linear(7, 3)).double()
    # non-trivial running statistics so that eval mode differs from train mode
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return net


@pytest.fixture
def tiny():
    seed = int(np.random.SeedSequence().entropy % 2**31)
    net = _tiny_net(seed)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(41, 5, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (41,), generator=g)
    batches = [(X[:17], y[:17]), (X[17:30], y[17:30]), (X[30:], y[30:])]  # unequal sizes
    return net, batches


def test_tiny_net_top10_matches_dense_hessian(tiny):
    net, batches = tiny
    net.train()
    H = _dense_hessian(net, F.cross_entropy, batches)
    ref = np.sort(np.linalg.eigvalsh(H))[::-1][:10]
    spec = top_eigenvalues(net, F.cross_entropy, batches, k=10, tol=1e-10, dtype=torch.float64,
                           return_eigenvectors=True, verify=True)
    assert net.training, "model mode must be restored"
    np.testing.assert_allclose(spec.eigenvalues, ref, rtol=1e-6)
    assert np.all(np.diff(spec.eigenvalues) <= 0)
    assert np.all(spec.converged) and spec.verified
    assert np.all(spec.residuals < 1e-8)
    V = spec.eigenvectors.numpy()
    np.testing.assert_allclose(V @ V.T, np.eye(10), atol=1e-8)
    np.testing.assert_allclose(H @ V.T, V.T * spec.eigenvalues, atol=1e-7 * abs(ref[0]))
    assert spec.n_params == H.shape[0] and spec.n_samples == 41
    assert spec.n_products > 10


def test_hessian_is_that_of_the_sample_weighted_mean(tiny):
    net, batches = tiny
    H = _dense_hessian(net, F.cross_entropy, batches)
    g = torch.Generator().manual_seed(3)
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=g)
    hv = hessian_vector_product(net, F.cross_entropy, batches, v).numpy()
    np.testing.assert_allclose(hv, H @ v.numpy(), rtol=1e-9, atol=1e-12)
    # one big batch gives the same operator
    X = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    hv1 = hessian_vector_product(net, F.cross_entropy, [(X, y)], v).numpy()
    np.testing.assert_allclose(hv1, hv, rtol=1e-9, atol=1e-12)


def test_cached_and_uncached_products_agree(tiny):
    net, batches = tiny
    a = HessianOperator(net, F.cross_entropy, batches, cache_graph=True)
    b = HessianOperator(net, F.cross_entropy, batches, cache_graph=False)
    v = torch.randn(a.n_params, dtype=torch.float64)
    for _ in range(2):
        np.testing.assert_allclose(a.matvec(v).numpy(), b.matvec(v).numpy(), rtol=1e-12, atol=1e-14)
    assert a.n_products == 2


def _least_squares(seed, n=113, d=47):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.2, 3.0, d)  # spread spectrum
    y = rng.standard_normal(n)
    model = nn.Linear(d, 1, bias=False).double()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    batches = [(Xt[:50], yt[:50]), (Xt[50:], yt[50:])]
    H = X.T @ X / n  # Hessian of 0.5 mean (Xw - y)^2, independent of w
    return model, batches, H


def _half_mse(out, y):
    return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()


def test_least_squares_closed_form():
    seed = int(np.random.SeedSequence().entropy % 2**31)
    model, batches, H = _least_squares(seed)
    ref = np.sort(np.linalg.eigvalsh(H))[::-1]
    spec = top_eigenvalues(model, _half_mse, batches, k=10, tol=1e-9, dtype="float64")
    np.testing.assert_allclose(spec.eigenvalues, ref[:10], rtol=1e-6)
    # array-like result
    np.testing.assert_allclose(np.asarray(spec), spec.eigenvalues)
    assert len(spec) == 10 and spec[0] == spec.eigenvalues[0]


def test_float32_reaches_tolerance():
    model, batches, H = _least_squares(11)
    ref = np.sort(np.linalg.eigvalsh(H))[::-1]
    model = model.float()
    batches = [(x.float(), y.float()) for x, y in batches]
    spec = top_eigenvalues(model, _half_mse, batches, k=20, tol=1e-4, verify=True)
    assert np.all(spec.converged)
    np.testing.assert_allclose(spec.eigenvalues, ref[:20], rtol=2e-4)


def test_rank_deficient_hessian_breakdown():
    """Fewer samples than parameters: H has rank n < k, trailing eigenvalues are 0."""
    rng = np.random.default_rng(5)
    n, d = 7, 31
    X = rng.standard_normal((n, d))
    model = nn.Linear(d, 1, bias=False).double()
    batches = [(torch.from_numpy(X), torch.from_numpy(rng.standard_normal(n)))]
    ref = np.sort(np.linalg.eigvalsh(X.T @ X / n))[::-1]
    spec = top_eigenvalues(model, _half_mse, batches, k=12, tol=1e-8, dtype="float64")
    np.testing.assert_allclose(spec.eigenvalues[:n], ref[:n], rtol=1e-8)
    np.testing.assert_allclose(spec.eigenvalues[n:], 0.0, atol=1e-10 * ref[0])


def test_lanczos_on_matrix_with_restarts_and_full_space():
    rng = np.random.default_rng(int(np.random.SeedSequence().entropy % 2**31))
    n = 301
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([np.linspace(10, 1, 25) ** 2, rng.uniform(-2, 1, n - 25)])
    A = torch.from_numpy((Q * lam) @ Q.T)
    spec = lanczos_top(lambda v: A @ v, n, k=15, tol=1e-10, ncv=25, dtype=torch.float64,
                       return_eigenvectors=True)
    assert spec.n_restarts > 0
    np.testing.assert_allclose(spec.eigenvalues, np.sort(lam)[::-1][:15], rtol=1e-9)
    # the reported residual is the true one
    R = A.numpy() @ spec.eigenvectors.numpy().T - spec.eigenvectors.numpy().T * spec.eigenvalues
    np.testing.assert_allclose(np.linalg.norm(R, axis=0), spec.residual_norms, atol=1e-9)
    # tiny operator: Krylov space becomes the whole space, exact answer
    small = torch.diag(torch.tensor([3.0, -1.0, 2.0, 0.5], dtype=torch.float64))
    s2 = lanczos_top(lambda v: small @ v, 4, k=4, tol=1e-12, dtype=torch.float64)
    np.testing.assert_allclose(s2.eigenvalues, [3.0, 2.0, 0.5, -1.0], atol=1e-12)


def test_unconverged_pairs_are_flagged():
    rng = np.random.default_rng(2)
    n = 400
    A = torch.from_numpy(np.diag(1.0 + 1e-3 * rng.standard_normal(n)))  # clustered spectrum
    with pytest.warns(RuntimeWarning, match="did not reach"):
        spec = lanczos_top(lambda v: A @ v, n, k=5, tol=1e-12, max_products=30, dtype=torch.float64)
    assert not np.all(spec.converged)
    assert spec.n_products == 30


def test_bad_input():
    model, batches, _ = _least_squares(1, n=20, d=6)
    with pytest.raises(InputError, match="larger than the number of trainable parameters"):
        top_eigenvalues(model, _half_mse, batches, k=7)
    with pytest.raises(InputError, match="k must be at least 1"):
        top_eigenvalues(model, _half_mse, batches, k=0)
    with pytest.raises(InputError, match="empty"):
        top_eigenvalues(model, _half_mse, [], k=2)
    with pytest.raises(InputError, match="tol"):
        top_eigenvalues(model, _half_mse, batches, k=2, tol=-1)
    with pytest.raises(InputError, match="scalar"):
        top_eigenvalues(model, lambda o, y: (o.squeeze(-1) - y) ** 2, batches, k=2)
    frozen = nn.Linear(3, 1)
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(InputError, match="no trainable"):
        top_eigenvalues(frozen, _half_mse, batches, k=1)
    bad = [(torch.full((4, 6), float("nan"), dtype=torch.float64), torch.zeros(4, dtype=torch.float64))]
    with pytest.raises(InputError, match="not finite"):
        top_eigenvalues(model, _half_mse, bad, k=2)


def test_conv_batchnorm_net_float32_vs_float64():
    """A small conv net with BatchNorm: float32 run agrees with a float64 run to ~tol."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(1)
    X = torch.randn(24, 1, 6, 6, generator=g)
    y = torch.randint(0, 3, (24,), generator=g)
    s64 = top_eigenvalues(net, F.cross_entropy, [(X, y)], k=5, tol=1e-10, dtype="float64")
    s32 = top_eigenvalues(net, F.cross_entropy, [(X[:10], y[:10]), (X[10:], y[10:])], k=5, tol=1e-4)
    assert np.all(s32.converged)
    np.testing.assert_allclose(s32.eigenvalues, s64.eigenvalues, rtol=1e-3)
    assert next(net.parameters()).dtype == torch.float32  # the caller's model is untouched


@pytest.mark.gpu
def test_gpu_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model, batches, H = _least_squares(4)
    ref = np.sort(np.linalg.eigvalsh(H))[::-1][:5]
    spec = top_eigenvalues(model.cuda(), _half_mse, batches, k=5, tol=1e-9, dtype="float64",
                           return_eigenvectors=True)
    assert spec.eigenvectors.is_cuda
    np.testing.assert_allclose(spec.eigenvalues, ref, rtol=1e-6)
