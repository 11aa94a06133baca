"""`anodiff analyze`: every trajectory measure of each window of a run file, in one pass."""
from __future__ import annotations

import argparse

from ._common import add_progress_flag, add_scheduler_flag, positive_int


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "analyze", help="MSD regimes, fractal path and fractal landscape of every window",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "One pass over /weights of RUN computes, for each window [t_w, t_w+T):\n"
            "  MSD(τ) for every lag, α (whole range, RMSE), the crossover τ0 (smallest τ' whose\n"
            "  fit over [τ', T-1] has RMSE < --rmse) with α1 below and α2 above it, β(τ) (Δτ=20);\n"
            "  from the window's float64 Gram matrix: ⟨Δr²⟩ vs contour length Δs in log bins\n"
            "  (λ over all bins, λ below/above the crossover l of the best two-segment fit,\n"
            "  D_f = 2/λ), transverse distance vs Δr (exponent), pair MSL ⟨(ΔL)²⟩ vs Δr (2H);\n"
            "  |ΔL| per window and the moving variance of the loss.\n"
            "Across windows: t0 = first t_w whose single power law has RMSE < --rmse.\n"
            "Writes OUT/results.h5 (every curve) and OUT/summary.json (scalars; null + reason\n"
            "for fits that cannot be made)."),
        epilog="example: anodiff analyze run.h5 --T 1000 --T 10000 --tw-step 1000 --out analysis/")
    p.add_argument("run_file", metavar="RUN", help="run file (HDF5 with /weights (n_steps, d), /loss)")
    p.add_argument("--T", type=positive_int, action="append", default=None, metavar="STEPS",
                   help="window length in steps; repeat for several sets of windows (default 1000)")
    p.add_argument("--tw-step", type=positive_int, default=None, metavar="STEPS",
                   help="distance between window starts (default: T of each set)")
    p.add_argument("--out", default="analysis", metavar="DIR",
                   help="output directory for results.h5 and summary.json (default ./analysis)")
    p.add_argument("--pair-stride", type=positive_int, default=1, metavar="S",
                   help="compute the pair measures on every S-th step of a window (the MSD and "
                        "contour lengths always use every step); default 1")
    p.add_argument("--by-layer", action="store_true",
                   help="also the MSD and α of each parameter tensor (needs /layout)")
    p.add_argument("--loss", choices=("loss", "eval_loss"), default="loss",
                   help="loss dataset for the MSL and loss statistics (default /loss)")
    p.add_argument("--no-msl", action="store_true", help="skip the pair MSL (no loss needed)")
    p.add_argument("--no-transverse", action="store_true",
                   help="skip the O(P³) transverse distances")
    p.add_argument("--msl-range", nargs=2, type=float, metavar=("LO", "HI"), default=None,
                   help="Δr range (weight units) of the 2H fit (default: every populated bin)")
    p.add_argument("--msl-upper", action="store_true",
                   help="fit 2H on the upper half (in log Δr) of the populated bins")
    p.add_argument("--rmse", type=_positive_float, default=0.03,
                   help="RMSE threshold (log10 units) of τ0 and t0 (default 0.03)")
    p.add_argument("--bins", type=positive_int, default=40,
                   help="log-spaced bins of Δs and Δr (default 40)")
    p.add_argument("--t-start", type=int, default=0, help="first step of the first window (default 0)")
    p.add_argument("--t-stop", type=int, default=None, help="windows end at or before this step")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="analyse the recorded steps of a run that did not finish (complete=False)")
    p.add_argument("--gram-precision", choices=("float32", "float64"), default="float32",
                   help="products of the Gram matrix: float32 (default: products of "
                        "block-centred points with float64 sums and corrections; MSD within "
                        "1e-6, pair distances within ~2e-6 relative) or float64 (every "
                        "product in float64, ~1e-12, about twice the time)")
    p.add_argument("--band", type=positive_int, default=8,
                   help="with --gram-precision float32: points apart up to which squared "
                        "distances are formed exactly from differences (default 8)")
    p.add_argument("--memory-mb", type=_positive_float, default=256.0,
                   help="memory budget of the column strips in flight (default 256)")
    add_scheduler_flag(p)
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..analysis import analyze  # noqa: PLC0415
    from ..errors import InputError  # noqa: PLC0415

    if args.msl_range is not None and args.msl_upper:
        raise InputError("give either --msl-range or --msl-upper, not both")
    msl_range = tuple(args.msl_range) if args.msl_range else ("upper" if args.msl_upper else None)
    res = analyze(args.run_file, T=args.T or [1000], tw_step=args.tw_step,
                  pair_stride=args.pair_stride, by_layer=args.by_layer, loss=args.loss,
                  msl=not args.no_msl, transverse=not args.no_transverse,
                  rmse_threshold=args.rmse, n_bins=args.bins, msl_range=msl_range,
                  t_start=args.t_start, t_stop=args.t_stop,
                  allow_incomplete=args.allow_incomplete, memory_mb=args.memory_mb,
                  gram_precision=args.gram_precision, band=args.band,
                  progress=not args.no_progress, client=args.scheduler)
    h5, js = res.save(args.out)
    print(f"{len(res.windows)} windows over {res.meta['n_dims']} dimensions "
          f"(pair stride {res.meta['pair_stride']}) -> {h5}, {js}")
    for T, t0 in res.t0_by_T.items():
        print(f"  T={T}: t0 = {t0 if t0 is not None else 'none (' + res.t0_reason[T] + ')'}")

    def fmt(v):
        return "   null" if v is None else f"{v:7.3f}"
    for w in res.windows[:10]:
        print(f"  t_w={w.t_w:>8d} T={w.T:<6d} alpha={fmt(w.alpha)} tau0={w.tau0} "
              f"lambda={fmt(w.lambda_all)} D_f={fmt(w.D_f)} 2H={fmt(w.msl_2H)}")
    if len(res.windows) > 10:
        print(f"  … {len(res.windows) - 10} more in {js}")
    return 0
