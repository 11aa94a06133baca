"""Top Hessian eigenpairs of a network's loss by restarted Lanczos (paper Fig. 7).

The Hessian is that of the *mean* loss over every sample of the given batches,

    L(w) = Σ_b (n_b / N) · loss_fn(model(x_b), y_b),     N = Σ_b n_b,

where `loss_fn` returns the mean loss of a batch, with respect to the model's
trainable parameters (in `model.parameters()` order, flattened). Products
`H v` come from double back-propagation: for each batch the gradient g_b is
formed with a graph, and `∂(g_b · v)/∂w = H_b v` (Pearlmutter's trick). Units:
eigenvalues are in loss units per squared weight unit.

The eigensolver is Lanczos with full re-orthogonalisation (twice, classical
Gram–Schmidt, "twice is enough") and thick restart (Wu & Simon 2000): when the
basis reaches `ncv` vectors, the best Ritz vectors are kept together with the
last residual direction and the Krylov process goes on from there. Each Ritz
pair (θ, y) has the residual ‖H y − θ y‖ = |β_j s_jᵢ| for free (β_j the last
off-diagonal, s_jᵢ the last component of the small eigenvector), so every
returned pair carries its own convergence measure. That estimate assumes exact
products; float32 products carry rounding noise of order ε₃₂‖H‖, which sets a
floor ~1e-7·λ₁/|λ| under the true relative residual. `verify=True` recomputes
every residual with one explicit product (k more products) and reports those.

"Top" means largest *algebraic* eigenvalues (most positive first), which is
what "the top 20 eigenvalues" of the paper's Fig. 7 are; negative curvature is
not sought. BatchNorm and dropout layers are put in eval mode for the products
(running statistics, no randomness), so the operator is a fixed symmetric matrix.
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from ._progress import progress_bar
from .errors import InputError

__all__ = ["HessianOperator", "HessianSpectrum", "hessian_vector_product", "lanczos_top",
           "top_eigenvalues"]


# --------------------------------------------------------------------------
# Hessian-vector products
# --------------------------------------------------------------------------
class HessianOperator:
    """The Hessian of the sample-weighted mean loss over `batches`, as a matrix-free operator.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated in eval mode during products (its mode is restored afterwards).
    loss_fn : callable
        ``loss_fn(model(inputs), targets)`` -> scalar mean loss of the batch.
    batches : iterable of (inputs, targets)
        Materialised once and moved to the model's device; batch b gets weight n_b / N
        with n_b = len(targets).
    dtype : torch.dtype, optional
        Work in this floating dtype (e.g. ``torch.float64`` for exact checks). The model
        is then deep-copied and converted; floating inputs and targets are cast too.
    cache_graph : bool, optional
        Keep each batch's gradient graph between products, so a product costs one
        backward instead of forward + two backwards. Memory grows with the data, so
        the default (None) caches only when the batches hold at most 1024 samples.

    Attributes
    ----------
    n_params : int      number of trainable scalars (the matrix is n_params × n_params)
    n_samples : int     N
    n_products : int    products computed so far
    """

    def __init__(self, model, loss_fn: Callable, batches: Iterable, dtype=None,
                 cache_graph: bool | None = None):
        import torch  # noqa: PLC0415

        if dtype is not None:
            dtype = _torch_dtype(dtype)
            model = copy.deepcopy(model).to(dtype)
        self.model = model
        self.loss_fn = loss_fn
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise InputError("model has no trainable parameters")
        self.device = self.params[0].device
        self.dtype = self.params[0].dtype
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.n_params = int(sum(self.sizes))
        self.batches = []
        for item in batches:
            try:
                x, y = item
            except (TypeError, ValueError):
                raise InputError("each batch must be an (inputs, targets) pair") from None
            x = _to(x, self.device, dtype)
            y = _to(y, self.device, dtype)
            n_b = len(y)
            if n_b == 0:
                continue
            self.batches.append((x, y, n_b))
        if not self.batches:
            raise InputError("no data: the batches are empty")
        self.n_samples = int(sum(b[2] for b in self.batches))
        self.weights = [b[2] / self.n_samples for b in self.batches]
        if cache_graph is None:
            cache_graph = self.n_samples <= 1024
        self.cache_graph = bool(cache_graph)
        self._grads = None
        self.n_products = 0
        self._torch = torch

    # -- helpers -------------------------------------------------------------
    def flat_params(self):
        """The current trainable parameters as one flat vector (a copy)."""
        return self._torch.cat([p.detach().reshape(-1) for p in self.params])

    def split(self, v):
        """Views of a flat vector shaped like the parameters."""
        out, o = [], 0
        for s, n in zip(self.shapes, self.sizes):
            out.append(v[o:o + n].view(s))
            o += n
        return out

    def _batch_grads(self, x, y):
        torch = self._torch
        loss = self.loss_fn(self.model(x), y)
        if loss.dim() != 0:
            raise InputError(f"loss_fn must return a scalar (the batch mean), got shape "
                             f"{tuple(loss.shape)}")
        grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        return grads

    def loss(self) -> float:
        """The weighted mean loss L(w) over all batches."""
        torch = self._torch
        total = 0.0
        with _eval_mode(self.model), torch.no_grad():
            for (x, y, _), wgt in zip(self.batches, self.weights):
                total += wgt * float(self.loss_fn(self.model(x), y))
        return total

    def matvec(self, v):
        """H v for a flat vector v (length n_params, on the model's device and dtype)."""
        torch = self._torch
        if v.shape != (self.n_params,):
            raise InputError(f"vector must have shape ({self.n_params},), got {tuple(v.shape)}")
        v = v.to(device=self.device, dtype=self.dtype)
        vs = self.split(v)
        out = torch.zeros(self.n_params, device=self.device, dtype=self.dtype)
        with _eval_mode(self.model), torch.enable_grad():
            if self.cache_graph and self._grads is None:
                self._grads = [self._batch_grads(x, y) for x, y, _ in self.batches]
            for i, ((x, y, _), wgt) in enumerate(zip(self.batches, self.weights)):
                grads = self._grads[i] if self.cache_graph else self._batch_grads(x, y)
                pairs = [(g, u, j) for j, (g, u) in enumerate(zip(grads, vs))
                         if g is not None and g.requires_grad]
                if not pairs:  # loss is linear in every parameter
                    continue
                hv = torch.autograd.grad([g for g, _, _ in pairs], self.params,
                                         grad_outputs=[u for _, u, _ in pairs],
                                         retain_graph=self.cache_graph, allow_unused=True)
                o = 0
                for h, n in zip(hv, self.sizes):
                    if h is not None:
                        out[o:o + n].add_(h.reshape(-1), alpha=wgt)
                    o += n
        self.n_products += 1
        return out

    __call__ = matvec

    def release(self) -> None:
        """Drop cached gradient graphs."""
        self._grads = None


def hessian_vector_product(model, loss_fn, batches, v, dtype=None):
    """H v of the mean loss over `batches` (see `HessianOperator`); v is a flat tensor."""
    return HessianOperator(model, loss_fn, batches, dtype=dtype, cache_graph=False).matvec(v)


class _eval_mode:
    """Context manager: model.eval() inside, previous modes of every submodule restored after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc):
        for m, mode in self.modes:
            m.training = mode


def _to(x, device, dtype):
    import torch  # noqa: PLC0415

    if isinstance(x, torch.Tensor):
        x = x.to(device)
        if dtype is not None and x.is_floating_point():
            x = x.to(dtype)
        return x
    if isinstance(x, (tuple, list)):
        return type(x)(_to(e, device, dtype) for e in x)
    return x


def _torch_dtype(dtype):
    import torch  # noqa: PLC0415

    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32,
             "float": torch.float32}
    try:
        return names[str(dtype).replace("torch.", "")]
    except KeyError:
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}") from None


# --------------------------------------------------------------------------
# Thick-restart Lanczos
# --------------------------------------------------------------------------
@dataclass
class HessianSpectrum:
    """Top-k eigenpairs of a symmetric operator, largest algebraic first.

    Behaves like the eigenvalue array (``np.asarray(spec)``, ``spec[0]``, ``len(spec)``).

    Attributes
    ----------
    eigenvalues : (k,) float64, descending (loss units per squared weight unit)
    residuals : (k,) float64, relative residual ‖H v − λ v‖ / max(|λ|, 1e-6·|λ|max)
    residual_norms : (k,) float64, absolute ‖H v − λ v‖
    converged : (k,) bool, residuals <= tol
    n_products : int, Hessian-vector products used (including verification)
    eigenvectors : (k, n_params) torch tensor of unit vectors, or None
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    residual_norms: np.ndarray
    converged: np.ndarray
    n_products: int
    n_params: int
    tol: float
    n_restarts: int = 0
    n_samples: int = 0
    verified: bool = False
    eigenvectors: object = field(default=None, repr=False)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.eigenvalues, dtype=dtype)

    def __len__(self):
        return len(self.eigenvalues)

    def __getitem__(self, i):
        return self.eigenvalues[i]

    def __iter__(self):
        return iter(self.eigenvalues)


def lanczos_top(matvec: Callable, n: int, k: int = 20, tol: float = 1e-4, *, ncv: int | None = None,
                max_products: int | None = None, return_eigenvectors: bool = False,
                verify: bool = False, seed: int = 0, v0=None, device=None, dtype=None,
                progress: bool = False, desc: str = "lanczos") -> HessianSpectrum:
    """k largest algebraic eigenpairs of a symmetric operator by thick-restart Lanczos.

    Parameters
    ----------
    matvec : callable
        Flat torch vector (n,) -> A v, same device/dtype.
    n : int
        Dimension of the operator.
    k : int
        Number of eigenpairs (1 <= k <= n).
    tol : float
        Stop when every one of the top k Ritz pairs has relative residual
        ‖A y − θ y‖ / max(|θ|, 1e-6·max|θ|) <= tol.
    ncv : int, optional
        Largest basis size before a restart (default max(2k + 10, k + 30), capped at n).
    max_products : int, optional
        Budget of products (default 50·ncv); when it runs out the current pairs are
        returned with ``converged`` False where the tolerance was not met, and a warning.
    verify : bool
        Recompute each residual with an explicit product (k more products).
    """
    import torch  # noqa: PLC0415

    n, k = int(n), int(k)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    if k > n:
        raise InputError(f"k={k} is larger than the number of parameters ({n})")
    if not (tol > 0 and math.isfinite(tol)):
        raise InputError(f"tol must be a positive number, got {tol}")
    device = torch.device("cpu") if device is None else torch.device(device)
    dtype = torch.float32 if dtype is None else dtype
    if ncv is not None and int(ncv) < k + 2:
        raise InputError(f"ncv={ncv} must be at least k + 2 = {k + 2}")
    m = min(n, int(ncv) if ncv is not None else max(2 * k + 10, k + 30))
    max_products = int(max_products) if max_products is not None else 50 * max(m, 20)
    keep = min(m - 1, k + max((m - k) // 2, 1)) if m < n else m
    gen = torch.Generator(device="cpu").manual_seed(int(seed))

    V = torch.empty((m + 1, n), device=device, dtype=dtype)
    T = np.zeros((m + 1, m + 1))
    if v0 is None:
        v0 = torch.randn(n, generator=gen, dtype=torch.float64)
    v0 = v0.to(device=device, dtype=dtype)
    nv0 = float(torch.linalg.vector_norm(v0))
    if not nv0 > 0:
        raise InputError("starting vector is zero")
    V[0] = v0 / nv0

    products = 0
    restarts = 0
    j = 0          # columns of T computed (A applied to V[0..j-1])
    anorm = 0.0    # running estimate of ‖A‖
    theta = S = None
    done = False
    bar = _bar(max_products, desc, progress)
    eps = float(torch.finfo(dtype).eps)

    def ritz(jj):
        th, SS = np.linalg.eigh(T[:jj, :jj])
        order = np.argsort(th)[::-1]
        return th[order], SS[:, order]

    def rel_residuals(th, SS, jj):
        res = np.abs(T[jj, jj - 1] * SS[jj - 1, :]) if jj < n else np.zeros(len(th))
        big = max(np.max(np.abs(th)), anorm, 1e-300)
        return res, res / np.maximum(np.abs(th), 1e-6 * big)

    try:
        while True:
            while j < m:
                w = matvec(V[j])
                products += 1
                bar.update(1)
                if not torch.all(torch.isfinite(w)):
                    raise InputError("Hessian-vector product is not finite (NaN/Inf loss or weights?)")
                w = w.to(dtype)
                basis = V[: j + 1]
                h = (basis @ w).double()
                w = w - h.to(dtype) @ basis
                h2 = (basis @ w).double()
                w = w - h2.to(dtype) @ basis
                h = (h + h2).cpu().numpy()
                T[: j + 1, j] = h
                T[j, : j + 1] = h
                beta = float(torch.linalg.vector_norm(w))
                anorm = max(anorm, abs(h[j]) + beta, float(np.abs(h).sum()))
                if j + 1 == n:  # Krylov space is the whole space: exact
                    T[j + 1, j] = T[j, j + 1] = 0.0
                    j += 1
                    break
                if beta <= 100 * eps * max(anorm, 1e-300):
                    # invariant subspace: continue with a fresh direction orthogonal to the basis
                    T[j + 1, j] = T[j, j + 1] = 0.0
                    w = torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
                    for _ in range(2):
                        w = w - (basis @ w) @ basis
                    w = w / torch.linalg.vector_norm(w)
                else:
                    T[j + 1, j] = T[j, j + 1] = beta
                    w = w / beta
                V[j + 1] = w
                j += 1
                if j >= k:
                    theta, S = ritz(j)
                    _, rel = rel_residuals(theta, S, j)
                    bar.set_postfix_str(f"converged {int(np.sum(rel[:k] <= tol))}/{k}")
                    if np.all(rel[:k] <= tol):
                        done = True
                        break
                if products >= max_products:
                    break
            if j >= n or done or products >= max_products:
                break
            # thick restart: keep the `keep` best Ritz vectors and the residual direction
            theta, S = ritz(m)
            beta_m = T[m, m - 1]
            Sk = torch.as_tensor(S[:, :keep].T.copy(), dtype=dtype).to(device)
            newV = Sk @ V[:m]
            V[:keep] = newV
            V[keep] = V[m]
            del newV
            T[:] = 0.0
            T[np.arange(keep), np.arange(keep)] = theta[:keep]
            T[keep, :keep] = T[:keep, keep] = beta_m * S[m - 1, :keep]
            j = keep
            restarts += 1
    finally:
        bar.close()

    jj = min(j, n)
    theta, S = ritz(jj)
    res_abs, rel = rel_residuals(theta, S, jj)
    theta, S, res_abs, rel = theta[:k], S[:, :k], res_abs[:k], rel[:k]
    vecs = None
    if return_eigenvectors or verify:
        Sk = torch.as_tensor(S.T.copy(), dtype=dtype).to(device)
        vecs = Sk @ V[:jj]
        vecs = vecs / torch.linalg.vector_norm(vecs, dim=1, keepdim=True)
    if verify:
        big = max(np.max(np.abs(theta)), 1e-300)
        for i in range(k):
            r = matvec(vecs[i]).to(dtype) - float(theta[i]) * vecs[i]
            products += 1
            res_abs[i] = float(torch.linalg.vector_norm(r.double()))
        rel = res_abs / np.maximum(np.abs(theta), 1e-6 * big)
    converged = rel <= tol
    if not np.all(converged):
        warnings.warn(f"Lanczos: {int(np.sum(~converged))} of the top {k} eigenpairs did not reach "
                      f"tol={tol:g} within {products} products (largest relative residual "
                      f"{np.max(rel):.2e}); raise max_products", RuntimeWarning, stacklevel=2)
    return HessianSpectrum(eigenvalues=theta.astype(np.float64), residuals=rel.astype(np.float64),
                           residual_norms=np.asarray(res_abs, dtype=np.float64), converged=converged,
                           n_products=products, n_params=n, tol=float(tol), n_restarts=restarts,
                           verified=bool(verify),
                           eigenvectors=vecs if return_eigenvectors else None)


def top_eigenvalues(model, loss_fn: Callable, batches: Iterable, k: int = 20, tol: float = 1e-4, *,
                    return_eigenvectors: bool = False, verify: bool = False, ncv: int | None = None,
                    max_products: int | None = None, dtype=None, cache_graph: bool | None = None,
                    seed: int = 0, progress: bool = False) -> HessianSpectrum:
    """The k largest (algebraic) eigenvalues of the Hessian of the mean loss.

    H = ∇²_w L(w),  L(w) = Σ_b (n_b/N) · loss_fn(model(x_b), y_b)  over all `batches`,
    w = the model's trainable parameters, flattened in `model.parameters()` order.

    Parameters
    ----------
    model : torch.nn.Module
        On CPU or GPU; the products run on its device. BatchNorm / dropout in eval mode.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` -> mean loss of a batch (e.g. ``F.cross_entropy``).
    batches : iterable of (inputs, targets)
        The data; materialised once (kept on the model's device).
    k : int
        Number of eigenvalues (default 20, the paper's Fig. 7). Must be <= n_params.
    tol : float
        Relative residual ‖H v − λ v‖ / |λ| every returned pair must reach.
    return_eigenvectors : bool
        Also return the unit eigenvectors, a (k, n_params) tensor.
    verify : bool
        Recompute the residuals with k explicit products (counted in n_products).
    ncv, max_products, seed
        Lanczos basis size before a thick restart, product budget, seed of the start vector.
    dtype : torch.dtype or "float64", optional
        Work in this precision on a converted copy of the model (float64 for exact checks).
    cache_graph : bool, optional
        Keep the gradient graphs between products (default: when N <= 1024).
    progress : bool
        Show a tqdm bar of products.

    Returns
    -------
    HessianSpectrum
        ``.eigenvalues`` descending, ``.residuals`` (relative), ``.converged``,
        ``.n_products``, ``.eigenvectors`` (on request). Array-like over the eigenvalues.
    """
    op = HessianOperator(model, loss_fn, batches, dtype=dtype, cache_graph=cache_graph)
    if k > op.n_params:
        raise InputError(f"k={k} is larger than the number of trainable parameters ({op.n_params})")
    try:
        spec = lanczos_top(op.matvec, op.n_params, k=k, tol=tol, ncv=ncv, max_products=max_products,
                           return_eigenvectors=return_eigenvectors, verify=verify, seed=seed,
                           device=op.device, dtype=op.dtype, progress=progress, desc="hessian")
    finally:
        op.release()
    spec.n_samples = op.n_samples
    return spec


def _bar(total, desc, enabled):
    return progress_bar(total, desc=desc, unit="Hv", enabled=enabled, leave=False)
