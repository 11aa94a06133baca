"""`anodiff toy`: the simplified SGD model on 2D landscapes (paper §III.E, Fig. 8)."""
from __future__ import annotations

import argparse

from ._common import add_progress_flag, positive_int


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def register(sub) -> None:
    from ..toy import (DEFAULT_ETA, DEFAULT_EXTENT, DEFAULT_ITERATIONS, DEFAULT_SIGMA,  # noqa: PLC0415
                       DEFAULT_SIZE, DEFAULT_TRIALS)

    p = sub.add_parser(
        "toy", help="simplified SGD model on fractal / random / convex 2D landscapes",
        description="Walkers w(t+1) = w(t) - eta*grad L(w(t)) + eta*sigma*Z(t), Z ~ N(0, I2), on a 2D "
                    "landscape sampled on a SIZE x SIZE grid over [0, EXTENT]^2 (w-units), gradient by "
                    "central differences with bilinear interpolation; a walker that leaves the landscape "
                    "is stopped and flagged. Measures the trial-averaged MSD before and after t0 (entry "
                    "into the final basin), the gradient distribution (Levy fit when available) and "
                    "escapes from local minima. Writes OUT/results.h5 and OUT/summary.json "
                    "(--landscape all: OUT/<landscape>/... for fractal, random and convex with the same "
                    "seeds, and OUT/summary.json with the three summaries).")
    p.add_argument("--landscape", default="fractal", choices=["fractal", "random", "convex", "all"],
                   help="fractal: diamond-square (amplitude 3 halved per level) holding a wide minimum; "
                        "random: the fractal shuffled then Gaussian-smoothed (8 cells); convex: "
                        "paraboloid; all: the three, same seeds (default fractal)")
    p.add_argument("--eta", type=_float, default=DEFAULT_ETA, help=f"learning rate eta > 0 (default {DEFAULT_ETA})")
    p.add_argument("--sigma", type=_float, default=DEFAULT_SIGMA,
                   help=f"noise scale sigma >= 0 (default {DEFAULT_SIGMA})")
    p.add_argument("--trials", type=positive_int, default=DEFAULT_TRIALS,
                   help=f"number of walkers (default {DEFAULT_TRIALS})")
    p.add_argument("--iterations", type=positive_int, default=DEFAULT_ITERATIONS,
                   help=f"SGD steps per walker (default {DEFAULT_ITERATIONS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the landscape, starts and noise (default 0)")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help=f"grid nodes per side, 2^k+1 for the fractal (default {DEFAULT_SIZE})")
    p.add_argument("--extent", type=_float, default=DEFAULT_EXTENT,
                   help=f"side of the landscape in w-units (default {DEFAULT_EXTENT:g})")
    p.add_argument("--method", default="diamond-square", choices=["diamond-square", "spectral"],
                   help="fractal generator (default diamond-square, the paper's)")
    p.add_argument("--hurst", type=_float, default=None,
                   help="Hurst exponent of the spectral generator (default 0.8)")
    p.add_argument("--roughness", type=_float, default=0.5,
                   help="diamond-square amplitude factor per level (default 0.5 = halved)")
    p.add_argument("--start", default="same", choices=["same", "random"],
                   help="all walkers from one high-altitude point (default, as the paper) or each "
                        "from its own")
    p.add_argument("--max-store", type=positive_int, default=1000,
                   help="store the paths of at most this many walkers in results.h5 (default 1000)")
    p.add_argument("--out", default="toy_out", help="output directory (default toy_out)")
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from .. import toy  # noqa: PLC0415

    progress = not args.no_progress
    lkw = {"method": args.method, "roughness": args.roughness}
    if args.hurst is not None:
        lkw["hurst"] = args.hurst
    kw = dict(eta=args.eta, sigma=args.sigma, trials=args.trials, iterations=args.iterations,
              size=args.size, extent=args.extent, start=args.start, landscape_kw=lkw)
    # Validate cheap parameters before building a landscape.
    toy._check_walk_params(args.eta, args.sigma, args.iterations)
    toy._check_size(args.size)
    toy._check_extent(args.extent)
    out = Path(args.out)
    if args.landscape == "all":
        results = toy.compare(None, seed=args.seed, progress=progress, **kw)
        for kind, res in results.items():
            toy.save(res, out / kind, max_walkers=args.max_store)
        with open(out / "summary.json", "w") as fh:
            json.dump({k: r.summary() for k, r in results.items()}, fh, indent=2, allow_nan=False)
    else:
        results = {args.landscape: toy.simulate(args.landscape, seed=args.seed, progress=progress, **kw)}
        toy.save(results[args.landscape], out, max_walkers=args.max_store)
    for kind, res in results.items():
        s = res.summary()

        def fmt(v):
            return "null" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

        print(f"{kind:8s} alpha_early={fmt(s['alpha_early'])} alpha_late={fmt(s['alpha_late'])} "
              f"alpha_whole={fmt(s['alpha_whole'])} t0={fmt(s['t0'])} "
              f"escaped_fraction={fmt(s['escaped_fraction'])} grad_alpha={fmt(s['grad_alpha'])}")
    print(f"-> {out}/" + ("{fractal,random,convex}/results.h5, summary.json" if args.landscape == "all"
                          else "results.h5, summary.json"))
    return 0
