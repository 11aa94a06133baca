"""Top-20 Hessian eigenvalues of a ResNet-20: anodiff's thick-restart Lanczos against the
deflated power iteration of pytorch-hessian-eigenthings, side by side.

Both solvers call the *same* Hessian-vector product (anodiff.hessian.HessianOperator,
double back-propagation, gradient graph cached), so the products each one needs are
counted identically and their times differ only through that count and the solver's
own vector work. Accuracy is then checked on both results with explicit products
(not counted): relative residual ‖Hv − λv‖/|λ| of every pair.

Run:  PYTHONPATH=python python -m pytest bench/bench_hessian.py --benchmark-only -s
Sizes: ANODIFF_BENCH_SAMPLES (default 16) synthetic 3×32×32 images, 10 classes;
ANODIFF_BENCH_K (20); ANODIFF_BENCH_TOL (1e-4); ANODIFF_BENCH_POWER_MAX_ITER (1000 per pair).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from anodiff.hessian import HessianOperator, lanczos_top  # noqa: E402

SAMPLES = int(os.environ.get("ANODIFF_BENCH_SAMPLES", "16"))
K = int(os.environ.get("ANODIFF_BENCH_K", "20"))
TOL = float(os.environ.get("ANODIFF_BENCH_TOL", "1e-4"))
POWER_MAX_ITER = int(os.environ.get("ANODIFF_BENCH_POWER_MAX_ITER", "1000"))
THREADS = int(os.environ.get("ANODIFF_BENCH_THREADS", "1"))
RESULTS: dict = {}


# -- the standard CIFAR ResNet-20 (He et al. 2016 §4.2), used when anodiff.train is absent --
class _Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class _ResNet20(nn.Module):
    def __init__(self, in_channels=3, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(_Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet20():
    try:
        from anodiff.train.models import build_model  # noqa: PLC0415

        return build_model("resnet20", 3, 10), "anodiff.train.models.build_model('resnet20')"
    except ImportError:
        return _ResNet20(), "bench-local ResNet-20"


@pytest.fixture(scope="module")
def problem():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model, source = resnet20()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(SAMPLES, 3, 32, 32, generator=g)
    teacher = torch.randn(3 * 32 * 32, 10, generator=g)
    y = (X.reshape(SAMPLES, -1) @ teacher).argmax(1)
    # leave the initial point: BatchNorm statistics and 30 SGD steps on the batch
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    model.eval()
    op = HessianOperator(model, F.cross_entropy, [(X, y)], cache_graph=True)
    info = {"model": source, "n_params": op.n_params, "samples": SAMPLES, "k": K, "tol": TOL,
            "threads": torch.get_num_threads(), "loss": op.loss(),
            "load_avg_at_start": os.getloadavg()[0]}
    t = time.perf_counter()
    op.matvec(torch.randn(op.n_params))
    info["seconds_per_product_first"] = time.perf_counter() - t
    RESULTS["setup"] = info
    return op


def _true_residuals(op, vals, vecs):
    out = []
    for lam, v in zip(vals, vecs):
        r = op.matvec(v) - float(lam) * v
        out.append(float(r.norm()) / max(abs(float(lam)), 1e-30))
    return np.array(out)


def test_lanczos_top20(benchmark, problem):
    op = problem
    n0 = op.n_products
    res = {}

    def run():
        res["spec"] = lanczos_top(op.matvec, op.n_params, k=K, tol=TOL, return_eigenvectors=True,
                                  device=op.device, dtype=op.dtype, seed=0)

    t = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = time.perf_counter() - t
    spec = res["spec"]
    products = op.n_products - n0
    true = _true_residuals(op, spec.eigenvalues, spec.eigenvectors)
    RESULTS["lanczos"] = {"products": products, "seconds": seconds,
                          "eigenvalues": spec.eigenvalues.tolist(),
                          "reported_residuals": spec.residuals.tolist(),
                          "true_residuals": true.tolist(), "converged": int(spec.converged.sum()),
                          "restarts": spec.n_restarts}
    benchmark.extra_info.update({"products": products, "max_true_residual": float(true.max())})
    _dump()


class _Budget(Exception):
    pass


def test_power_iteration_top20(benchmark, problem):
    """hessian-eigenthings' deflated power iteration; each finished pair is logged, and an
    optional wall budget (ANODIFF_BENCH_POWER_BUDGET_S) stops it with the partial count."""
    he = pytest.importorskip("hessian_eigenthings")
    import hessian_eigenthings.algorithms.power_iteration as hpi  # noqa: PLC0415

    op = problem
    n0 = op.n_products
    budget = float(os.environ.get("ANODIFF_BENCH_POWER_BUDGET_S", "0"))
    t_start = time.perf_counter()
    pairs = []

    def matvec(v):
        if budget and time.perf_counter() - t_start > budget:
            raise _Budget
        return op.matvec(v)

    one = hpi.power_iteration_one

    def logged_one(*a, **kw):
        out = one(*a, **kw)
        lam, _, resid, iters, conv = out
        pairs.append({"eigenvalue": float(lam), "iterations": int(iters), "converged": bool(conv),
                      "rel_residual_reported": float(resid) / max(abs(float(lam)), 1e-30),
                      "products_so_far": op.n_products - n0,
                      "seconds_so_far": time.perf_counter() - t_start})
        RESULTS["power_iteration_pairs"] = pairs
        _dump(final=False)
        return out

    lop = he.LambdaOperator(matvec, size=op.n_params, device=op.device, dtype=op.dtype)
    res = {}

    def run():
        try:
            res["r"] = he.deflated_power_iteration(lop, k=K, max_iter=POWER_MAX_ITER, tol=TOL, seed=0)
        except _Budget:
            res["r"] = None

    hpi.power_iteration_one = logged_one
    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        hpi.power_iteration_one = one
    seconds = time.perf_counter() - t_start
    products = op.n_products - n0
    r = res["r"]
    entry = {"package": f"hessian-eigenthings {he.__version__}", "products": products,
             "seconds": seconds, "max_iter_per_pair": POWER_MAX_ITER,
             "pairs_finished": len(pairs), "stopped_by_budget": r is None}
    if r is not None:
        vals = r.eigenvalues.double().numpy()
        order = np.argsort(vals)[::-1]  # it sorts by |λ|; compare in algebraic order
        vals = vals[order]
        vecs = r.eigenvectors[torch.as_tensor(order.copy())]
        entry.update({"eigenvalues": vals.tolist(), "converged": int(r.converged.sum()),
                      "true_residuals": _true_residuals(op, vals, vecs).tolist()})
    RESULTS["power_iteration"] = entry
    benchmark.extra_info.update({"products": products, "pairs_finished": len(pairs)})
    _dump()


def _dump(final=True):
    path = os.environ.get("ANODIFF_BENCH_JSON", "bench/hessian_results.json")
    try:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1)
    except OSError:
        pass
    if final and "lanczos" in RESULTS and "power_iteration" in RESULTS:
        la, pi = RESULTS["lanczos"], RESULTS["power_iteration"]
        print(f"\nLanczos: {la['products']} products, {la['seconds']:.1f} s, max true residual "
              f"{max(la['true_residuals']):.1e}, {la['converged']}/{K} converged; power iteration: "
              f"{pi['products']} products, {pi['seconds']:.1f} s, {pi['pairs_finished']}/{K} pairs "
              f"finished{' (stopped by the time budget)' if pi['stopped_by_budget'] else ''}; "
              f"product ratio {pi['products'] / la['products']:.2f}x")


# -- box counting speed (numpy only; no maintained peer package to compare with) --
@pytest.mark.parametrize("n", [257, 1025])
def test_box_counting_surface_and_levels(benchmark, n):
    from anodiff.landscape import box_counting_dimension, level_set_dimensions  # noqa: PLC0415

    rng = np.random.default_rng(0)
    z = np.cumsum(np.cumsum(rng.standard_normal((n, n)), 0), 1)  # a rough test surface

    def run():
        box_counting_dimension(z)
        level_set_dimensions(z)

    benchmark.pedantic(run, rounds=3, iterations=1)
