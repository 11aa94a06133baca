"""`anodiff levy`: α-stable fit of a run's minibatch gradients, overall and per window."""
from __future__ import annotations

from ._common import add_progress_flag, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "levy", help="Lévy α-stable fit of the minibatch gradients of a run file",
        description="Fits a Lévy α-stable law (Nolan S0; symmetric by default) to the gradient values of "
                    "RUN by maximum likelihood, streamed: every value of steps [t-start, t-stop) is binned "
                    "once into a fine asinh-spaced histogram (2^16 bins) and the binned likelihood is "
                    "maximised, so 1e9 values need no memory. Gradients come from /grads, or, when absent "
                    "and the run used plain SGD (momentum = weight_decay = 0), from -(w[t+1]-w[t])/lr of "
                    "/weights. Also fits each window [t_w, t_w+T) (α vs t_w), compares with the Gaussian "
                    "(log-likelihood ratio, Vuong test) and writes DIR/levy.h5 (histogram, fitted stable "
                    "and Gaussian densities, tail) and DIR/levy.json (scalar summary).")
    p.add_argument("run_file", metavar="RUN", help="run file (HDF5 with /grads or /weights)")
    p.add_argument("--T", type=positive_int, default=1000, help="window length in steps (default 1000)")
    p.add_argument("--tw-step", type=positive_int, default=None,
                   help="distance between window starts in steps (default: T)")
    p.add_argument("--t-start", type=int, default=0, help="first step of the overall fit (default 0)")
    p.add_argument("--t-stop", type=int, default=None,
                   help="end (exclusive) of the overall fit, e.g. t0 from `anodiff analyze` (default: all steps)")
    p.add_argument("--general", action="store_true", help="fit the skewness β too (default: symmetric, β = 0)")
    p.add_argument("--blocks", type=int, default=20,
                   help="report the batch-means interval over this many contiguous blocks of steps "
                        "(robust to correlated gradients; 0 = report the iid Fisher interval; default 20)")
    p.add_argument("--nbins", type=positive_int, default=1 << 16,
                   help="histogram bins of the overall fit (default 65536)")
    p.add_argument("--out", default="levy_out", help="output directory (default ./levy_out)")
    add_progress_flag(p)
    p.set_defaults(run=run)


def _tail_ccdf(hist, loc):
    """Empirical P(|X - loc| > r) on log-spaced r from a StableHistogram (bin edges as the grid)."""
    import numpy as np  # noqa: PLC0415

    e = hist.edges
    c = hist.counts[1:-1].astype(np.float64)
    n = c.sum()
    mids = 0.5 * (e[1:] + e[:-1])
    r = np.abs(mids - loc)
    order = np.argsort(r)
    rs, cs = r[order], c[order]
    ccdf = 1.0 - np.cumsum(cs) / n
    keep = (rs > 0) & (ccdf > 0)
    rs, ccdf = rs[keep], ccdf[keep]
    if rs.size < 2:
        return rs, ccdf
    grid = np.geomspace(rs[0], rs[-1], 200)
    return grid, np.interp(grid, rs, ccdf)


def run(args) -> int:
    import json  # noqa: PLC0415
    import math  # noqa: PLC0415
    import os  # noqa: PLC0415

    import h5py  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from scipy.special import gamma as gamma_fn  # noqa: PLC0415

    from ..errors import InputError  # noqa: PLC0415
    from ..levy import fit_levy_stable_stream, levy_stable_pdf  # noqa: PLC0415
    from ..io import _open_h5  # noqa: PLC0415
    from ..levy import _grad_source  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    tw_step = args.T if args.tw_step is None else args.tw_step
    with _open_h5(Path(args.run_file)) as f:
        _, n_rows, _ = _grad_source(f, Path(args.run_file))
    t_stop = n_rows if args.t_stop is None else min(args.t_stop, n_rows)
    if args.t_start < 0 or args.t_start >= t_stop:
        raise InputError(f"empty step range [--t-start {args.t_start}, --t-stop {t_stop}) "
                         f"({n_rows} gradient steps in {args.run_file})")
    if args.T > t_stop - args.t_start:
        raise InputError(f"{args.run_file}: window length T={args.T} is larger than the "
                         f"{t_stop - args.t_start} gradient steps in [{args.t_start}, {t_stop})")
    windows = [(t, t + args.T) for t in range(args.t_start, t_stop - args.T + 1, tw_step)]
    n_blocks = args.blocks if args.blocks and (t_stop - args.t_start) >= args.blocks else 0
    if args.blocks and not n_blocks:
        print(f"note: {t_stop - args.t_start} steps are too few for {args.blocks} blocks; "
              "reporting the iid interval")
    fit, per, hist = fit_levy_stable_stream(args.run_file, t_start=args.t_start, t_stop=t_stop,
                                            symmetric=not args.general, nbins=args.nbins, windows=windows,
                                            progress=not args.no_progress, n_blocks=n_blocks)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{args.out}: cannot create output directory ({exc})") from None
    # curves: densities over the central range, histogram density, tail
    e = hist.edges
    c = hist.counts[1:-1].astype(np.float64)
    n = c.sum()
    dens = c / (n * np.diff(e))
    lo_q, hi_q = fit.loc - 30 * fit.scale, fit.loc + 30 * fit.scale
    xg = np.linspace(lo_q, hi_q, 2001)
    f_stable = levy_stable_pdf(xg, fit.alpha, fit.beta, fit.scale, fit.loc)
    f_gauss = np.exp(-0.5 * ((xg - fit.gauss_loc) / fit.gauss_scale) ** 2) / (fit.gauss_scale * math.sqrt(2 * math.pi))
    r, ccdf = _tail_ccdf(hist, fit.loc)
    # P(|X - loc| > r) ~ 2 Γ(α) sin(πα/2)/π · γ^α r^{-α} (symmetric law, first Bergström term)
    a = fit.alpha
    tail_c = 2 * gamma_fn(a) * math.sin(math.pi * a / 2) / math.pi * fit.scale ** a if a < 2 else 0.0
    out_h5 = os.path.join(args.out, "levy.h5")
    try:
        with h5py.File(out_h5, "w") as o:
            o.attrs.update(run_file=str(args.run_file), parameterization="S0", route=fit.route,
                           interval=fit.interval, t_start=args.t_start, t_stop=t_stop, T=args.T, tw_step=tw_step,
                           units="x in gradient units; densities per gradient unit")
            g = o.create_group("histogram")
            g.create_dataset("edges", data=e)
            g.create_dataset("counts", data=hist.counts[1:-1])
            g.create_dataset("density", data=dens)
            g.attrs.update(n_underflow=int(hist.counts[0]), n_overflow=int(hist.counts[-1]),
                           n_nonfinite=int(hist.n_nonfinite), center=hist.center, width=hist.width)
            g = o.create_group("fit")
            g.create_dataset("x", data=xg)
            g.create_dataset("stable_pdf", data=f_stable)
            g.create_dataset("gauss_pdf", data=f_gauss)
            for k in ("alpha", "beta", "scale", "loc", "loglik", "llr_gauss", "vuong_p", "gauss_loc", "gauss_scale"):
                g.attrs[k] = getattr(fit, k)
            g = o.create_group("tail")
            g.create_dataset("r", data=r)
            g.create_dataset("ccdf", data=ccdf)
            g.create_dataset("power_law", data=tail_c * r ** (-a) if a < 2 else np.zeros_like(r))
            g.attrs.update(formula="P(|X-loc|>r) ~ C r^-alpha, C = 2 Gamma(alpha) sin(pi alpha/2)/pi scale^alpha",
                           C=tail_c, alpha=a)
            g = o.create_group("windows")
            g.create_dataset("t_w", data=np.array([w[0] for w in windows], dtype=np.int64))
            for k in ("alpha", "scale", "loc", "llr_gauss"):
                g.create_dataset(k, data=np.array([getattr(p, k) if p else np.nan for p in per]))
            g.create_dataset("alpha_lo", data=np.array([p.ci["alpha"][0] if p else np.nan for p in per]))
            g.create_dataset("alpha_hi", data=np.array([p.ci["alpha"][1] if p else np.nan for p in per]))
    except OSError as exc:
        raise InputError(f"{out_h5}: cannot write ({exc})") from None
    summary = fit.to_dict()
    summary.update(run_file=str(args.run_file), t_start=args.t_start, t_stop=t_stop, T=args.T, tw_step=tw_step,
                   tail_constant=tail_c, block_alphas=fit.extra.get("block_alpha"),
                   ci_kind=fit.interval,
                   windows=[{"t_w": int(w[0]), "alpha": p.alpha if p else None,
                             "ci_alpha": list(p.ci["alpha"]) if p else None,
                             "reason": None if p else "too few finite values"}
                            for w, p in zip(windows, per)])
    with open(os.path.join(args.out, "levy.json"), "w") as fh:
        json.dump(summary, fh, indent=1, allow_nan=False, default=float)
    lo, hi = fit.ci["alpha"]
    print(f"alpha = {fit.alpha:.5f} [{lo:.5f}, {hi:.5f}] ({fit.interval}), scale = {fit.scale:.4g}, "
          f"loc = {fit.loc:.4g}, n = {fit.n}, route: {fit.route}")
    print(f"LLR vs Gaussian = {fit.llr_gauss:.6g}, Vuong p = {fit.vuong_p:.3g}; "
          f"{len(windows)} windows -> {args.out}/levy.h5, levy.json")
    return 0
