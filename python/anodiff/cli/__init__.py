"""The `anodiff` command line: one sub-command per verb, each in its own module.

Every verb module defines `register(subparsers)`, adding its parser with
`set_defaults(run=...)`; heavy imports stay inside the run functions so that
`anodiff --help` is instant. User mistakes (`InputError`) print one line and
exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import InputError

# Verb modules, in the order `--help` lists them.
VERBS = ["train", "msd", "analyze", "levy", "hessian", "landscape", "toy", "report", "compare", "demo"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="anodiff",
        description="Anomalous diffusion of SGD in deep networks: record a training run, "
                    "then measure MSD, regimes, fractal path and landscape, Lévy gradients "
                    "and Hessian spectra from it.",
    )
    parser.add_argument("--version", action="version", version=f"anodiff {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERBS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        result = args.run(args)
    except InputError as exc:
        print(f"anodiff {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"anodiff {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
