"""MSD engine: float64 direct reference, additivity, physics, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import anodiff
from anodiff import _core
from anodiff.msd import WindowAccumulator, msd_from_sums

from physics import ballistic, brownian, fbm


def direct_msd(W, max_lag=None):
    """O(T²·d) float64 reference: MSD(τ) = mean_t Σ_i (w_i(t+τ) − w_i(t))²."""
    W = np.asarray(W, dtype=np.float64)
    T = W.shape[0]
    max_lag = T - 1 if max_lag is None else max_lag
    return np.array([np.sum((W[tau:] - W[:-tau]) ** 2) / (T - tau) for tau in range(1, max_lag + 1)])


@pytest.mark.parametrize("T,d", [(2, 1), (3, 5), (17, 1), (101, 37), (333, 33), (1000, 19), (257, 1031)])
def test_float64_matches_direct_reference(rng, T, d):
    W = rng.standard_normal((T, d)).cumsum(axis=0) + rng.uniform(-5, 5, size=d)
    lags, m = anodiff.msd(W)
    assert lags.dtype == np.int64 and m.dtype == np.float64
    np.testing.assert_array_equal(lags, np.arange(1, T))
    np.testing.assert_allclose(m, direct_msd(W), rtol=1e-9, atol=0)


@pytest.mark.parametrize("T,d", [(999, 257), (513, 4099), (64, 3)])
def test_float32_with_large_offset(rng, T, d):
    """Weights ~1e3 with steps ~1e-4: centring keeps the signal (contract: 1e-6)."""
    W = (1e3 + 1e-4 * rng.standard_normal((T, d)).cumsum(axis=0)).astype(np.float32)
    _, m = anodiff.msd(W)
    np.testing.assert_allclose(m, direct_msd(W), rtol=1e-6, atol=0)


def test_max_lag(rng):
    W = rng.standard_normal((211, 7)).cumsum(axis=0)
    lags, m = anodiff.msd(W, max_lag=50)
    assert lags[-1] == 50 and m.shape == (50,)
    np.testing.assert_allclose(m, direct_msd(W, 50), rtol=1e-9)


def test_accumulator_is_additive_over_dimension_chunks(rng):
    W = rng.standard_normal((301, 1000)).astype(np.float32).cumsum(axis=0)
    whole = WindowAccumulator(301)
    whole.add(W)
    parts = [WindowAccumulator(301) for _ in range(3)]
    for acc, cols in zip(parts, np.array_split(np.arange(1000), 3)):
        acc.add(W[:, cols])
    merged = parts[0].merge(parts[1]).merge(parts[2])
    # acf[T-1] is exactly 0 (x(0) = 0 after centring): compare against the scale of acf.
    np.testing.assert_allclose(merged.acf, whole.acf, rtol=1e-12, atol=1e-12 * whole.acf[0])
    np.testing.assert_allclose(merged.sumsq, whole.sumsq, rtol=1e-12)
    np.testing.assert_allclose(merged.msd()[1], whole.msd()[1], rtol=1e-10)
    assert merged.n_dims == 1000


def test_thread_count_does_not_change_result(rng):
    W = rng.standard_normal((257, 517)).cumsum(axis=0)
    out = []
    for threads in (1, 2, 3):
        anodiff.set_num_threads(threads)
        out.append(anodiff.msd(W)[1])
    anodiff.set_num_threads(None)
    np.testing.assert_allclose(out[1], out[0], rtol=1e-12)
    np.testing.assert_allclose(out[2], out[0], rtol=1e-12)


def test_non_contiguous_and_integer_input(rng):
    W = rng.integers(-100, 100, size=(50, 40)).cumsum(axis=0)
    np.testing.assert_allclose(anodiff.msd(W)[1], direct_msd(W), rtol=1e-9)
    Wf = rng.standard_normal((60, 80))[:, ::3]
    np.testing.assert_allclose(anodiff.msd(Wf)[1], direct_msd(Wf), rtol=1e-9)


def test_core_rejects_bad_accumulator_shapes():
    block = np.zeros((10, 4))
    with pytest.raises(ValueError):
        _core.msd_accumulate(block, np.zeros(20), np.zeros(10), 1)
    with pytest.raises(ValueError):
        _core.msd_accumulate(block, np.zeros(5), np.zeros(9), 1)


def test_fft_length_is_power_of_two_at_least_2T_minus_1():
    for T in (2, 3, 4, 5, 1000, 1024, 1025):
        n = _core.msd_fft_length(T)
        assert n >= 2 * T - 1 and n & (n - 1) == 0


def test_zero_motion_gives_zero_msd():
    lags, m = anodiff.msd(np.full((30, 4), 7.0))
    assert np.all(m == 0.0)
    assert msd_from_sums(np.zeros(30), np.zeros(30))[1].min() == 0.0


# -- physics ------------------------------------------------------------------

def fitted_alpha(W, lag_max=None):
    lags, m = anodiff.msd(W)
    return anodiff.fit_power_law(lags, m, lag_min=1, lag_max=lag_max).alpha


def test_brownian_motion_has_alpha_1(rng):
    W = brownian(rng, 2000, 500)
    assert fitted_alpha(W, lag_max=200) == pytest.approx(1.0, abs=0.05)


def test_ballistic_motion_has_alpha_2(rng):
    W = ballistic(rng, 1000, 50) + rng.standard_normal(50)
    assert fitted_alpha(W) == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("hurst", [0.25, 0.75])
def test_fractional_brownian_motion_has_alpha_2H(rng, hurst):
    W = fbm(rng, 2000, 400, hurst)
    assert fitted_alpha(W, lag_max=200) == pytest.approx(2 * hurst, abs=0.05)


# -- bad input ----------------------------------------------------------------

@pytest.mark.parametrize("W,match", [
    (np.zeros(10), "2-D"),
    (np.zeros((1, 5)), "at least 2 steps"),
    (np.zeros((5, 0)), "at least 2 steps"),
])
def test_bad_shapes(W, match):
    with pytest.raises(ValueError, match=match):
        anodiff.msd(W)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_refused(rng, bad):
    W = rng.standard_normal((40, 9))
    W[17, 3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        anodiff.msd(W)


@pytest.mark.parametrize("max_lag", [0, 40, -3])
def test_bad_max_lag(rng, max_lag):
    with pytest.raises(ValueError, match="max_lag"):
        anodiff.msd(rng.standard_normal((40, 3)), max_lag=max_lag)
