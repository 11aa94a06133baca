"""Comparing runs (Figs. 3–4): α above τ0, α in the second regime and τ0 against hyperparameters.

Each run is an `anodiff analyze` output directory. Its hyperparameters come
from the run file's attributes (model → depth and shortcut, batch_size, lr,
seed), found through `summary.json` (`run` entry, or the `source` path).
Runs with equal hyperparameters but different seeds are grouped: the figure
shows their mean with the standard deviation as error bar.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import InputError

QUANTITIES = [
    ("alpha_first", "α (τ > τ0), first window"),
    ("alpha_second_regime", "α, windows from t0 on"),
    ("tau0_first", "τ0 of the first window (steps)"),
]
FACTORS = [("batch_size", "batch size"), ("depth", "depth"), ("lr", "learning rate η")]


def _attr_value(value):
    """An HDF5 attribute as a plain Python value: bytes decoded, size-1 arrays as scalars,
    longer arrays (e.g. `image_shape`) as lists."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    return value.item() if hasattr(value, "item") else value


def _source_path(source, where: Path) -> Path | None:
    """The run file a summary names: as written (absolute, or relative to where `analyze` ran),
    else relative to the summary's own directory, else its file name beside that directory."""
    if not source:
        return None
    given = Path(source)
    for candidate in (given, where / given, where.parent / given.name, where / given.name):
        if candidate.is_file():
            return candidate
    return None


def _run_attrs(summary: dict, where: Path) -> dict:
    attrs = dict(summary.get("run") or {})
    source = summary.get("source")
    path = _source_path(source, where)
    if not attrs and path is not None:
        import h5py  # noqa: PLC0415

        try:
            with h5py.File(path, "r") as f:
                attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        except OSError as exc:
            raise InputError(f"{path}: not a readable HDF5 run file ({exc})") from None
    if not attrs:
        raise InputError(f"{where}: no run attributes (summary.json has no 'run' entry and its "
                         f"source run file {source!r} was not found as given, nor beside {where})")
    return attrs


def run_row(directory) -> dict:
    """One run's hyperparameters and headline numbers from its analyze summary.json."""
    directory = Path(directory)
    path = directory / "summary.json"
    if not path.is_file():
        raise InputError(f"{directory}: no summary.json (run `anodiff analyze RUN --out {directory}`)")
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
    if "analyze" in summary and "windows" not in summary:
        summary = summary["analyze"]
    windows = summary.get("windows") or []
    if not windows:
        raise InputError(f"{path}: no windows in the analyze summary")
    attrs = _run_attrs(summary, directory)
    model = str(attrs.get("model", ""))
    match = re.search(r"(\d+)", model)
    T = windows[0].get("T")
    same_T = [w for w in windows if w.get("T") == T]
    t0 = summary.get("t0")
    second = [w.get("alpha") for w in same_T
              if t0 is not None and w.get("t_w", -1) >= t0 and w.get("alpha") is not None]
    first = same_T[0]
    return {
        "dir": str(directory),
        "model": model,
        "depth": int(match.group(1)) if match else None,
        # No model attribute (a run not written by `anodiff train`): shortcuts unknown.
        "shortcut": (not model.endswith("_noshort")) if model else None,
        "batch_size": attrs.get("batch_size"),
        "lr": attrs.get("lr"),
        "seed": attrs.get("seed"),
        "alpha_first": first.get("alpha2") if first.get("alpha2") is not None else first.get("alpha"),
        "alpha_second_regime": float(np.mean(second)) if second else None,
        "tau0_first": first.get("tau0"),
        "T": T,
    }


def group_over_seeds(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of each quantity over runs that differ only in the seed."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["depth"], r["shortcut"], r["batch_size"], r["lr"], r["T"])
        groups.setdefault(key, []).append(r)
    out = []
    for (depth, shortcut, batch, lr, T), members in groups.items():
        g = {"depth": depth, "shortcut": shortcut, "batch_size": batch, "lr": lr, "T": T,
             "n_seeds": len(members)}
        for q, _ in QUANTITIES:
            vals = np.array([m[q] for m in members if m[q] is not None], dtype=float)
            g[q] = float(vals.mean()) if vals.size else None
            g[q + "_std"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0 if vals.size else None
        out.append(g)
    return out


def compare_runs(dirs, out_dir) -> tuple[list[dict], Path]:
    """Write OUT/compare.json, OUT/compare.png and .svg; return the per-run table and the PNG path."""
    from .report import _json_safe, _plt  # noqa: PLC0415

    rows = [run_row(d) for d in dirs]
    grouped = group_over_seeds(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    fig, axes = plt.subplots(len(QUANTITIES), len(FACTORS), figsize=(12, 9), squeeze=False)
    for j, (factor, flabel) in enumerate(FACTORS):
        for i, (q, qlabel) in enumerate(QUANTITIES):
            ax = axes[i][j]
            for shortcut, colour, label in ((True, "C1", "with shortcuts"), (False, "C0", "no shortcuts"),
                                            (None, "C7", "model not recorded")):
                pts = [g for g in grouped if g["shortcut"] == shortcut and g[factor] is not None
                       and g[q] is not None]
                if not pts:
                    continue
                pts.sort(key=lambda g: g[factor])
                ax.errorbar([g[factor] for g in pts], [g[q] for g in pts],
                            yerr=[g[q + "_std"] or 0.0 for g in pts], fmt="o-", color=colour,
                            capsize=3, ms=4, label=label)
            if factor in ("batch_size", "lr"):
                ax.set_xscale("log")
            if i == len(QUANTITIES) - 1:
                ax.set_xlabel(flabel)
            if j == 0:
                ax.set_ylabel(qlabel)
            if i == 0 and j == 0 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.suptitle("Anomalous diffusion across runs (mean ± s.d. over seeds)")
    fig.tight_layout()
    png = out / "compare.png"
    fig.savefig(png, bbox_inches="tight")
    fig.savefig(out / "compare.svg", bbox_inches="tight")
    plt.close(fig)
    (out / "compare.json").write_text(json.dumps(_json_safe({"runs": rows, "groups": grouped}), indent=1))
    return rows, png
