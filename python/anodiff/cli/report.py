"""`anodiff report DIR`: the paper's figures and one self-contained HTML page."""
from __future__ import annotations

from ._common import add_progress_flag


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="draw the paper's figures from a results directory into report.html",
        description="Reads what analyze, levy, hessian, landscape and toy wrote in DIR (directly or "
                    "in sub-directories of those names) and writes DIR/report.html (one file, "
                    "figures embedded, no network), DIR/figures/*.png and *.svg, and "
                    "DIR/summary.json. Figures whose data are absent are listed as not drawn.")
    p.add_argument("results_dir", metavar="DIR", help="directory of results")
    p.add_argument("--format", action="append", choices=["png", "svg", "pdf"], default=None,
                   help="figure file formats (repeatable; default png and svg)")
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path  # noqa: PLC0415

    from ..report import write_report  # noqa: PLC0415

    formats = tuple(args.format or ("png", "svg"))
    summary = write_report(args.results_dir, formats=formats, progress=not args.no_progress)
    root = Path(args.results_dir)
    print(f"{len(summary['figures'])} figures -> {(root / 'report.html').resolve()}")
    for name, why in summary["figures_skipped"].items():
        print(f"  not drawn: {name}: {why}")
    return 0
