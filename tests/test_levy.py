"""Lévy α-stable density, fits, streaming histogram and the `anodiff levy` verb."""
from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from scipy import integrate, stats

import anodiff
from anodiff import _core
from anodiff.errors import InputError
from anodiff.levy import (StableHistogram, fit_levy_stable, fit_levy_stable_binned, fit_levy_stable_stream,
                          levy_stable_logpdf, levy_stable_pdf)


from conftest import run_cli

def fresh_rng():
    return np.random.default_rng()


def stable_sample(alpha, n, seed, scale=1.0, loc=0.0):
    rng = np.random.default_rng(seed)
    return stats.levy_stable.rvs(alpha, 0.0, size=n, random_state=rng) * scale + loc


# ----------------------------------------------------------------------------- density

def test_closed_forms_random_points():
    rng = fresh_rng()
    n = int(rng.integers(101, 301)) | 1
    x = np.concatenate([rng.standard_normal(n) * 3, np.sinh(rng.uniform(-6, 6, n))])
    # Gaussian: alpha = 2 is N(0, 2)
    # atol: far-tail values are subnormal (~1e-318), where a relative comparison is meaningless
    np.testing.assert_allclose(levy_stable_pdf(x, 2.0), stats.norm.pdf(x, scale=math.sqrt(2)), rtol=1e-12, atol=1e-300)
    # Cauchy: alpha = 1, beta = 0
    np.testing.assert_allclose(levy_stable_pdf(x, 1.0), stats.cauchy.pdf(x), rtol=1e-12)
    # Lévy: alpha = 1/2, beta = 1; S0 location shift zeta = -tan(pi/4) = -1, so x1 = x + 1
    xl = np.abs(x) + 1e-3 - 1.0
    np.testing.assert_allclose(levy_stable_pdf(xl, 0.5, 1.0), stats.levy.pdf(xl + 1.0), rtol=1e-10)
    assert levy_stable_pdf(np.array([-1.5]), 0.5, 1.0)[0] == 0.0  # outside the support


def _fourier_reference(x, alpha):
    """f(x) = (1/pi) int_0^inf cos(t x) exp(-t^alpha) dt by adaptive QUADPACK (QAWF for x != 0)."""
    if x == 0:
        return integrate.quad(lambda t: math.exp(-t ** alpha), 0, np.inf, epsabs=0, epsrel=1e-13, limit=500)[0] / math.pi
    v = integrate.quad(lambda t: math.exp(-t ** alpha), 0, np.inf, weight="cos", wvar=abs(x), limlst=200)[0]
    return v / math.pi


@pytest.mark.parametrize("alpha", [0.7, 1.09, 1.46, 1.9])
def test_symmetric_density_vs_adaptive_quadrature(alpha):
    rng = fresh_rng()
    xs = np.concatenate([[0.0], rng.uniform(-8, 8, 7)])
    ours = levy_stable_pdf(xs, alpha)
    ref = np.array([_fourier_reference(x, alpha) for x in xs])
    np.testing.assert_allclose(ours, ref, rtol=1e-8)


@pytest.mark.parametrize("alpha,beta", [(1.46, 0.0), (1.3, -0.6), (0.8, 0.4), (1.75, 0.9)])
def test_density_vs_scipy(alpha, beta):
    rng = fresh_rng()
    x = rng.uniform(-15, 15, 9)
    d = stats.levy_stable
    old = d.parameterization
    d.parameterization = "S0"
    try:
        ref = d.pdf(x, alpha, beta)
    finally:
        d.parameterization = old
    np.testing.assert_allclose(levy_stable_pdf(x, alpha, beta), ref, rtol=1e-8)


def test_far_tail_matches_leading_asymptotics():
    # Bergström: f(x) = (1/pi) sum_k (-1)^{k+1} Gamma(k alpha+1)/k! sin(k pi alpha/2) x^{-k alpha-1};
    # two terms leave a relative error O(x^{-2 alpha}) <= 1e-9 here
    for alpha in (0.6, 1.2, 1.8):
        x = np.array([1e8, 1e12, 1e30])
        two = sum((-1) ** (k + 1) * math.gamma(k * alpha + 1) / math.factorial(k) * math.sin(k * math.pi * alpha / 2)
                  * x ** (-k * alpha - 1) for k in (1, 2)) / math.pi
        np.testing.assert_allclose(levy_stable_pdf(x, alpha), two, rtol=1e-8)


def test_scale_and_location():
    rng = fresh_rng()
    x = rng.standard_normal(37) * 5e-4
    a = levy_stable_logpdf(x, 1.4, 0.0, scale=2e-4, loc=1e-4)
    b = levy_stable_logpdf((x - 1e-4) / 2e-4, 1.4) - math.log(2e-4)
    np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("alpha,beta", [(1.46, 0.0), (1.09, 0.0), (1.99, 0.0), (0.7, 0.0), (1.3, 0.4)])
def test_table_matches_direct(alpha, beta):
    rng = fresh_rng()
    tab = _core.levy_build_table(alpha, beta, 0.25, 1)
    z = np.concatenate([rng.standard_normal(201) * 3, np.sinh(rng.uniform(-15, 15, 201))])
    l, d1, d2 = _core.levy_table_eval(tab, z)
    ref = levy_stable_logpdf(z, alpha, beta)
    assert np.max(np.abs(l - ref)) < 1e-8  # |log f error| <= 1e-8, i.e. relative density error <= 1e-8
    h = 1e-5
    fd = (levy_stable_logpdf(z + h, alpha, beta) - levy_stable_logpdf(z - h, alpha, beta)) / (2 * h)
    np.testing.assert_allclose(d1, fd, rtol=1e-5, atol=1e-6)


def test_bad_parameters():
    with pytest.raises(InputError):
        levy_stable_pdf([0.0], 2.5)
    with pytest.raises(InputError):
        levy_stable_pdf([0.0], 1.5, beta=1.5)
    with pytest.raises(InputError):
        levy_stable_pdf([0.0], 1.5, scale=0.0)


# ----------------------------------------------------------------------------- histogram kernel

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_vs_numpy(dtype):
    rng = fresh_rng()
    n = int(rng.integers(10_001, 30_001)) | 1
    x = (stats.levy_stable.rvs(1.3, 0, size=n, random_state=rng) * 1e-4).astype(dtype)
    x[:3] = [np.nan, np.inf, -np.inf]
    h = StableHistogram(1e-5, 1e-4, nbins=1001, u_max=8.0)
    h.add(x)
    assert h.n_nonfinite == 3
    xf = x[3:].astype(np.float64)
    u = np.arcsinh((xf - 1e-5) / 1e-4)
    pos = (u + 8.0) * (1001 / 16.0)
    idx = np.where(pos < 0, 0, np.where(pos >= 1001, 1002, np.floor(pos).astype(np.int64) + 1))
    ref = np.bincount(idx, minlength=1003)
    np.testing.assert_array_equal(h.counts, ref)
    assert h.n == n - 3


# ----------------------------------------------------------------------------- fits

@pytest.mark.parametrize("alpha", [1.09, 1.46, 1.9])
def test_fit_recovers_alpha_fast(alpha):
    x = stable_sample(alpha, 20_000, seed=int(alpha * 1000), scale=1e-4, loc=3e-5)
    fit = fit_levy_stable(x)
    assert abs(fit.alpha - alpha) < 0.05
    lo, hi = fit.ci["alpha"]
    assert lo <= alpha <= hi
    assert fit.scale == pytest.approx(1e-4, rel=0.05)
    assert fit.loc == pytest.approx(3e-5, abs=5e-6)
    assert fit.llr_gauss > 0 and fit.vuong_p < 0.05
    assert fit.beta == 0.0 and fit.symmetric and fit.interval.startswith("iid")
    assert fit.loglik > fit.loglik_gauss


def test_fit_matches_direct_likelihood():
    x = stable_sample(1.3, 3001, seed=11, scale=2.0, loc=-1.0)
    fit = fit_levy_stable(x)
    ll = levy_stable_logpdf(x, fit.alpha, 0.0, fit.scale, fit.loc).sum()
    assert fit.loglik == pytest.approx(ll, abs=1e-6)
    # the MLE: small moves do not increase the exact likelihood
    for da, ds in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        ll2 = levy_stable_logpdf(x, fit.alpha + da, 0.0, fit.scale * (1 + ds), fit.loc).sum()
        assert ll2 <= ll + 1e-6


def test_gaussian_data():
    rng = np.random.default_rng(2024)
    x = rng.standard_normal(20_000) * 1e-4
    fit = fit_levy_stable(x)
    assert fit.alpha >= 1.95
    # the stable family contains the Gaussian (alpha = 2): the LLR is 0 at the boundary and
    # at most the 95 % point of 1/2 chi2_0 + 1/2 chi2_1 when the optimum is interior
    assert fit.llr_gauss <= 1.36
    assert fit.gauss_scale == pytest.approx(1e-4, rel=0.02)


def test_general_beta_fit():
    rng = np.random.default_rng(77)
    x = stats.levy_stable.rvs(1.5, 0.5, size=6000, random_state=rng)  # scipy S1 sample
    fit = fit_levy_stable(x, symmetric=False)
    assert abs(fit.alpha - 1.5) < 0.08
    assert abs(fit.beta - 0.5) < 0.2
    assert "beta" in fit.ci and not fit.symmetric
    # S0 location = S1 location + beta * scale * tan(pi alpha/2) = 0.5 tan(3 pi/4) = -0.5
    assert fit.loc == pytest.approx(0.5 * math.tan(math.pi * 1.5 / 2), abs=0.15)


def test_block_interval_2d():
    x = stable_sample(1.5, 30_000, seed=5).reshape(300, 100)
    fit = fit_levy_stable(x)
    assert fit.interval.startswith("block sandwich")
    iid = fit_levy_stable(x, interval="iid")
    assert iid.interval.startswith("iid")
    assert fit.alpha == pytest.approx(iid.alpha, abs=1e-9)
    w_block = fit.ci["alpha"][1] - fit.ci["alpha"][0]
    w_iid = iid.ci["alpha"][1] - iid.ci["alpha"][0]
    assert 0.5 < w_block / w_iid < 2.0  # independent data: both estimate the same variance


def test_block_interval_widens_for_correlated_steps():
    # each step's 50 values share a common stable factor: strong within-step correlation
    rng = np.random.default_rng(9)
    common = stats.levy_stable.rvs(1.5, 0, size=(400, 1), random_state=rng)
    x = common + 0.05 * stats.levy_stable.rvs(1.5, 0, size=(400, 50), random_state=rng)
    block = fit_levy_stable(x, interval="block", block_steps=4)
    iid = fit_levy_stable(x, interval="iid")
    assert (block.ci["alpha"][1] - block.ci["alpha"][0]) > 2 * (iid.ci["alpha"][1] - iid.ci["alpha"][0])


def test_coverage_small_samples():
    hits, reps = 0, 30
    for r in range(reps):
        x = stable_sample(1.5, 300, seed=1000 + r)
        fit = fit_levy_stable(x)
        lo, hi = fit.ci["alpha"]
        hits += lo <= 1.5 <= hi
    assert 0.8 <= hits / reps <= 1.0


@pytest.mark.slow
def test_coverage_many_small_samples():
    hits, reps = 0, 300
    for r in range(reps):
        x = stable_sample(1.46, 1000, seed=5000 + r)
        lo, hi = fit_levy_stable(x).ci["alpha"]
        hits += lo <= 1.46 <= hi
    assert 0.92 <= hits / reps <= 0.98, hits / reps


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [1.09, 1.46, 1.9])
def test_fit_recovers_alpha_1e6(alpha):
    x = stable_sample(alpha, 1_000_000, seed=int(alpha * 100), scale=1e-4)
    fit = fit_levy_stable(x)
    assert abs(fit.alpha - alpha) < 0.01
    lo, hi = fit.ci["alpha"]
    assert lo <= alpha <= hi


@pytest.mark.slow
def test_gaussian_1e6():
    x = np.random.default_rng(3).standard_normal(1_000_000)
    fit = fit_levy_stable(x)
    assert fit.alpha >= 1.95 and fit.llr_gauss <= 1.36


@pytest.mark.parametrize("bad,msg", [
    ([], "empty"),
    (np.ones(100), "equal"),
    (np.r_[np.arange(100.0), np.nan], "non-finite"),
    (np.r_[np.arange(100.0), np.inf], "non-finite"),
    (np.arange(49.0), "at least 50"),
])
def test_bad_input(bad, msg):
    with pytest.raises(InputError, match=msg):
        fit_levy_stable(bad)


def test_bad_interval_name():
    with pytest.raises(InputError):
        fit_levy_stable(np.arange(100.0), interval="bootstrap")


def test_exports():
    assert anodiff.fit_levy_stable is fit_levy_stable
    assert anodiff.LevyFit.__name__ == "LevyFit"


# ----------------------------------------------------------------------------- binned / streaming

def test_binned_matches_exact():
    x = stable_sample(1.4, 50_000, seed=21, scale=3e-4, loc=1e-4)
    exact = fit_levy_stable(x)
    h = StableHistogram(float(np.median(x)), 3e-4)
    h.add(x.astype(np.float32))
    binned = fit_levy_stable_binned(h)
    assert binned.alpha == pytest.approx(exact.alpha, abs=2e-3)
    assert binned.scale == pytest.approx(exact.scale, rel=2e-3)
    assert binned.binned and binned.n == x.size


def test_binned_bad_input():
    h = StableHistogram(0.0, 1.0)
    with pytest.raises(InputError):
        fit_levy_stable_binned(h)
    h.add(np.full(1000, 0.5))
    with pytest.raises(InputError, match="equal"):
        fit_levy_stable_binned(h)


def _write_run(path, grads=None, weights=None, momentum=0.0, weight_decay=0.0, lr=0.1):
    with h5py.File(path, "w") as f:
        if weights is not None:
            f.create_dataset("weights", data=weights.astype(np.float32))
            f.create_dataset("loss", data=np.zeros(weights.shape[0], dtype=np.float32))
        if grads is not None:
            f.create_dataset("grads", data=grads.astype(np.float32))
            f.create_dataset("grads_index", data=np.arange(grads.shape[1], dtype=np.int64))
            f.attrs["grads"] = "all"
        f.attrs.update(lr=lr, momentum=momentum, weight_decay=weight_decay, complete=True, record_every=1,
                       batch_size=32, seed=0, model="toy", dataset="toy", loss="ce")


def test_stream_grads_route(tmp_path):
    g = stable_sample(1.5, 333 * 97, seed=4, scale=1e-3).reshape(333, 97)
    path = tmp_path / "run.h5"
    _write_run(path, grads=g, weights=np.zeros((333, 97)))
    fit, per, hist = fit_levy_stable_stream(path, windows=[(0, 100), (100, 200)], progress=False, chunk_values=5000)
    assert fit.route == "/grads" and fit.n == g.size
    exact = fit_levy_stable(g.ravel())
    assert fit.alpha == pytest.approx(exact.alpha, abs=5e-3)
    assert len(per) == 2 and all(p is not None and p.n == 100 * 97 for p in per)


def test_stream_weights_route(tmp_path):
    rng = np.random.default_rng(8)
    lr = 0.05
    g = stable_sample(1.3, 401 * 61, seed=6, scale=1e-2).reshape(401, 61)
    w = np.cumsum(np.vstack([rng.standard_normal((1, 61)), -lr * g]), axis=0)  # w_{t+1} = w_t - lr g_t
    path = tmp_path / "run.h5"
    _write_run(path, weights=w, lr=lr)
    fit, _, _ = fit_levy_stable_stream(path, progress=False)
    assert fit.route.startswith("-(w[t+1]-w[t])/lr")
    assert fit.n == g.size
    assert abs(fit.alpha - 1.3) < 0.1
    _write_run(path, weights=w, lr=lr, momentum=0.9)
    with pytest.raises(InputError, match="momentum"):
        fit_levy_stable_stream(path, progress=False)


def test_stream_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        fit_levy_stable_stream(tmp_path / "missing.h5", progress=False)
    path = tmp_path / "run.h5"
    _write_run(path, grads=np.ones((20, 5)))
    with pytest.raises(InputError):
        fit_levy_stable_stream(path, progress=False)
    with pytest.raises(InputError, match="empty step range"):
        fit_levy_stable_stream(path, t_start=30, progress=False)


# ----------------------------------------------------------------------------- CLI

def test_cli_levy(tmp_path, capsys):
    from anodiff.cli import main

    g = stable_sample(1.5, 600 * 40, seed=12, scale=1e-4).reshape(600, 40)
    path = tmp_path / "run.h5"
    _write_run(path, grads=g, weights=np.zeros((600, 40)))
    out = tmp_path / "out"
    rc = main(["levy", str(path), "--T", "200", "--tw-step", "200", "--out", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "levy.json").read_text())
    assert abs(summary["alpha"] - 1.5) < 0.1
    assert summary["route"] == "/grads" and summary["n"] == g.size
    assert summary["interval"].startswith("block batch means (20")
    assert len(summary["windows"]) == 3
    assert {"alpha", "beta", "scale", "loc", "ci", "loglik", "llr_gauss", "vuong_p", "interval"} <= summary.keys()
    with h5py.File(out / "levy.h5") as f:
        assert f["fit/stable_pdf"].shape == f["fit/x"].shape == f["fit/gauss_pdf"].shape
        assert f["windows/alpha"].shape == (3,)
        assert f["tail/power_law"].shape == f["tail/r"].shape
    assert "alpha =" in capsys.readouterr().out


def test_cli_levy_bad_file(tmp_path, capsys):
    from anodiff.cli import main

    rc = main(["levy", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "anodiff levy: error:" in capsys.readouterr().err


def test_cli_help():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "anodiff", "levy", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--tw-step" in r.stdout and "α-stable" in r.stdout


def test_stream_batch_means_interval(tmp_path):
    g = stable_sample(1.5, 400 * 50, seed=31).reshape(400, 50)
    path = tmp_path / "run.h5"
    _write_run(path, grads=g, weights=np.zeros((400, 50)))
    fit, per, _ = fit_levy_stable_stream(path, progress=False, n_blocks=10)
    assert fit.interval.startswith("block batch means (10")
    assert per == [] and len(fit.extra["block_alpha"]) == 10
    lo, hi = fit.ci["alpha"]
    assert lo < fit.alpha < hi
    assert fit.ci_iid["alpha"] != fit.ci["alpha"]
    with pytest.raises(InputError, match="n_blocks"):
        fit_levy_stable_stream(path, progress=False, n_blocks=3)


def test_table_moments_and_pointwise_vs_reference():
    rng = fresh_rng()
    n = int(rng.integers(1001, 5001)) | 1
    x = rng.standard_cauchy(n) * 2.0 + 0.3
    w = rng.uniform(0, 3, n)
    tabs = [_core.levy_build_table(a, 0.0, 0.25, 2) for a in (1.3, 1.31)]
    loc, scale = 0.25, 1.7
    S = _core.levy_table_moments(tabs, x, w, loc, scale, 2)
    z = (x - loc) / scale
    for k, t in enumerate(tabs):
        l, d1, d2 = _core.levy_table_eval(t, z)
        ref = [np.sum(w * v) for v in (l, d1, d1 * z, d2, d2 * z, d2 * z * z, l * l, l * x, l * x * x)]
        np.testing.assert_allclose(S[k], ref, rtol=1e-12, atol=1e-9)
    L, D1 = _core.levy_table_pointwise(tabs, x, loc, scale, 2)
    l0, d10, _ = _core.levy_table_eval(tabs[0], z)
    np.testing.assert_allclose(L[0], l0, rtol=1e-13, atol=1e-13)  # z = (x-loc)*(1/scale) there
    np.testing.assert_allclose(D1[0], d10, rtol=1e-12, atol=1e-12)
    S1 = _core.levy_table_moments(tabs, x, None, loc, scale, 1)
    np.testing.assert_allclose(S1[1, 0], np.sum(_core.levy_table_eval(tabs[1], z)[0]), rtol=1e-12)


def test_levy_cli_refuses_a_window_longer_than_the_run(tmp_path):
    g = stable_sample(1.5, 24 * 11, seed=3, scale=1e-3).reshape(24, 11)
    path = tmp_path / "run.h5"
    _write_run(path, grads=g, weights=np.zeros((24, 11)))
    proc = run_cli("levy", path, "--T", "100", "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "T=100 is larger than the 24 gradient steps" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "levy.json").exists()
