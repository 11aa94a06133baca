"""`anodiff compare DIR1 DIR2 …`: exponents and crossover across runs (the paper's Figs. 3–4)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="α and τ0 against batch size, depth, shortcuts and learning rate (Figs. 3-4)",
        description="Reads the analyze results (summary.json) of several runs and plots, against "
                    "batch size, depth, learning rate and shortcut on/off (read from each run's "
                    "attributes): α above τ0 in the first window, α in the second regime (windows "
                    "from t0 on) and τ0 of the first window. Runs that differ only in the seed are "
                    "averaged, with the standard deviation as error bar.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="analyze output directories")
    p.add_argument("--out", default="compare", help="output directory (default ./compare)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..compare import compare_runs  # noqa: PLC0415

    table, figure = compare_runs(args.dirs, args.out)
    print(f"{len(table)} runs compared -> {figure}")
    return 0
