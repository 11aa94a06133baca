"""Trajectories with known diffusion exponents, for tests and benchmarks."""
from __future__ import annotations

import numpy as np


def brownian(rng, n_steps: int, n_dims: int, step: float = 1.0) -> np.ndarray:
    """Random walk with i.i.d. Gaussian steps: MSD ∝ τ (α = 1)."""
    return np.cumsum(step * rng.standard_normal((n_steps, n_dims)), axis=0)


def ballistic(rng, n_steps: int, n_dims: int) -> np.ndarray:
    """Constant random velocity per dimension: MSD ∝ τ² (α = 2)."""
    v = rng.standard_normal(n_dims)
    return np.arange(n_steps)[:, None] * v[None, :]


def fbm(rng, n_steps: int, n_dims: int, hurst: float) -> np.ndarray:
    """Fractional Brownian motion by exact circulant embedding (Davies–Harte).

    The increments are fractional Gaussian noise with autocovariance
    γ(k) = ½(|k+1|^{2H} − 2|k|^{2H} + |k−1|^{2H}); MSD ∝ τ^{2H}.
    """
    n = n_steps - 1
    k = np.arange(n + 1, dtype=np.float64)
    gamma = 0.5 * (np.abs(k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    row = np.concatenate([gamma, gamma[-2:0:-1]])
    lam = np.fft.rfft(row).real
    lam = np.maximum(lam, 0.0)  # tiny negative values from rounding
    m = row.size
    z = rng.standard_normal((m // 2 + 1, n_dims)) + 1j * rng.standard_normal((m // 2 + 1, n_dims))
    z[0] = z[0].real * np.sqrt(2)
    if m % 2 == 0:
        z[-1] = z[-1].real * np.sqrt(2)
    noise = np.fft.irfft(np.sqrt(lam)[:, None] * z, n=m, axis=0)[:n] * np.sqrt(m / 2)
    out = np.zeros((n_steps, n_dims))
    out[1:] = np.cumsum(noise, axis=0)
    return out


def float32_hard_windows(rng, n_steps: int, n_dims: int) -> dict[str, np.ndarray]:
    """Windows whose short distances plain float32 products lose: far from the origin,
    nearly ballistic, Brownian, mixed (float64 values; store them as float32)."""
    t = np.arange(n_steps)[:, None]
    v = rng.standard_normal(n_dims) * 1e-4
    walk = np.cumsum(rng.standard_normal((n_steps, n_dims)) * 1e-4, axis=0)
    return {
        "offset 1e3, steps 1e-4": 1e3 + walk,
        "brownian, weights ~N(0,1)": rng.standard_normal(n_dims) + walk,
        "ballistic + 1e-6 noise": rng.standard_normal(n_dims) + t * v
        + 1e-6 * rng.standard_normal((n_steps, n_dims)),
        "ballistic from 0": t * v,
        "noise + drift": 0.05 * rng.standard_normal(n_dims) + 0.3 * walk + 0.5 * t * v,
    }
