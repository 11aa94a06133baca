"""Figures after the paper, and one self-contained HTML report.

`write_report(DIR)` draws every figure that the results present in DIR allow
(what `analyze`, `levy`, `hessian`, `landscape` and `toy` wrote), saves each
as PNG and SVG under DIR/figures/, and writes DIR/report.html (figures
embedded as base64 PNG: no network, one file) and DIR/summary.json (the
summaries of every analysis, merged). A figure whose data are absent is
skipped and listed at the end of the page with the reason.

Each figure function takes the loaded results and returns a matplotlib Figure
(or raises `Skip` with a reason).
"""
from __future__ import annotations

import base64
import html
import io as _io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import InputError


class Skip(Exception):
    """A figure cannot be drawn from the results at hand (the message says why)."""


@dataclass
class FigureSpec:
    name: str
    title: str
    caption: str
    draw: Callable[["Results"], Any]
    section: str


@dataclass
class Results:
    """Everything found in a results directory, loaded lazily by `load_results`."""

    root: Path
    json: dict[str, Any] = field(default_factory=dict)  # stem -> parsed JSON
    h5: dict[str, Path] = field(default_factory=dict)  # stem -> path of an HDF5 file

    def has(self, stem: str) -> bool:
        return stem in self.json or stem in self.h5

    def read(self, stem: str, dataset: str, default=None):
        """A dataset of DIR/<stem>.h5 as an array (default when absent)."""
        import h5py  # noqa: PLC0415

        path = self.h5.get(stem)
        if path is None:
            return default
        with h5py.File(path, "r") as f:
            if dataset not in f:
                return default
            obj = f[dataset]
            return obj[()] if hasattr(obj, "shape") else default

    def h5_keys(self, stem: str, group: str = "/") -> list[str]:
        import h5py  # noqa: PLC0415

        path = self.h5.get(stem)
        if path is None:
            return []
        with h5py.File(path, "r") as f:
            if group not in f:
                return []
            return sorted(f[group].keys())

    def attrs(self, stem: str, dataset: str = "/") -> dict:
        import h5py  # noqa: PLC0415

        path = self.h5.get(stem)
        if path is None:
            return {}
        with h5py.File(path, "r") as f:
            if dataset not in f:
                return {}
            return dict(f[dataset].attrs)


# Where each analysis writes (stem -> relative sub-path candidates).
_SOURCES = {
    "analyze": ["results", "analyze/results"],
    "analyze_summary": ["summary", "analyze/summary"],
    "levy": ["levy", "levy/levy"],
    "hessian": ["hessian", "hessian/hessian"],
    "landscape": ["landscape", "landscape/landscape"],
    "toy": ["toy/fractal/results", "toy/results"],
    "toy_summary": ["toy/summary"],
}


def load_results(root) -> Results:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory of results")
    res = Results(root=root)
    for stem, candidates in _SOURCES.items():
        for rel in candidates:
            h5 = root / f"{rel}.h5"
            js = root / f"{rel}.json"
            if h5.is_file() and stem not in res.h5:
                res.h5[stem] = h5
            if js.is_file() and stem not in res.json:
                try:
                    content = json.loads(js.read_text())
                except json.JSONDecodeError as exc:
                    raise InputError(f"{js}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
                if isinstance(content, dict) and content.get("generated_by") == "anodiff report":
                    # Our own earlier output in the same DIR: it carries the analyze summary.
                    content = content.get("analyze") if stem == "analyze_summary" else None
                if content is not None:
                    res.json[stem] = content
    return res


# -- drawing helpers -------------------------------------------------------------

def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "font.size": 9,
                         "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8})
    return plt


def jet_colours(values):
    """Colours of a jet colourmap for values (the paper's t_w colouring) and the ScalarMappable."""
    plt = _plt()
    values = np.asarray(values, dtype=float)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    norm = plt.Normalize(lo, hi if hi > lo else lo + 1)
    cmap = plt.get_cmap("jet")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    return [cmap(norm(v)) for v in values], sm


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def fmt(x, digits=3) -> str:
    return f"{x:.{digits}g}" if finite(x) else "—"


# -- the report ------------------------------------------------------------------

def figure_specs() -> list[FigureSpec]:
    from . import report_figures  # noqa: PLC0415

    return report_figures.SPECS


def write_report(root, formats=("png", "svg"), progress: bool = False) -> dict:
    """Draw every available figure, write DIR/report.html and DIR/summary.json; return the summary."""
    plt = _plt()
    res = load_results(root)
    if not any(res.has(s) for s in ("analyze", "analyze_summary", "levy", "hessian", "landscape",
                                    "toy", "toy_summary")):
        raise InputError(f"{res.root}: no results found (expected what analyze, levy, hessian, "
                         "landscape or toy wrote)")
    fig_dir = res.root / "figures"
    fig_dir.mkdir(exist_ok=True)
    drawn, skipped = [], []
    specs = figure_specs()
    iterator = specs
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        iterator = tqdm(specs, desc="report", unit="fig")
    for spec in iterator:
        try:
            fig = spec.draw(res)
        except Skip as why:
            skipped.append((spec, str(why)))
            continue
        files = {}
        for ext in formats:
            path = fig_dir / f"{spec.name}.{ext}"
            fig.savefig(path, bbox_inches="tight")
            files[ext] = path
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        drawn.append((spec, files, base64.b64encode(buf.getvalue()).decode("ascii")))
    summary = build_summary(res)
    summary["figures"] = [spec.name for spec, _, _ in drawn]
    summary["figures_skipped"] = {spec.name: why for spec, why in skipped}
    (res.root / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2))
    (res.root / "report.html").write_text(_html(res, drawn, skipped, summary))
    return summary


def build_summary(res: Results) -> dict:
    """The documented headline numbers plus every analysis' own summary."""
    from . import report_figures  # noqa: PLC0415

    return report_figures.headline(res)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85;font-size:13px}
main{padding:18px 28px;max-width:1400px}
table.kv{border-collapse:collapse;margin:8px 0 18px;font-size:13px;background:#fff}
table.kv td,table.kv th{border:1px solid #ddd;padding:4px 10px;text-align:left}
table.kv th{background:#eef2f6}
h2{border-bottom:2px solid #1f3b57;padding-bottom:4px;margin-top:28px;font-size:18px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px}
figure{background:#fff;border:1px solid #ddd;margin:0;padding:10px;border-radius:4px}
figure img{width:100%;height:auto}
figcaption{font-size:12.5px;color:#444;margin-top:6px} figcaption b{color:#111}
.skipped{font-size:12.5px;color:#666}
"""


def _html(res: Results, drawn, skipped, summary) -> str:
    from . import __version__  # noqa: PLC0415

    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in _headline_rows(summary))
    sections: dict[str, list[str]] = {}
    for spec, files, b64 in drawn:
        links = " · ".join(f'<a href="figures/{p.name}">{ext.upper()}</a>' for ext, p in files.items())
        sections.setdefault(spec.section, []).append(
            f'<figure id="{spec.name}"><img alt="{html.escape(spec.title)}" '
            f'src="data:image/png;base64,{b64}"><figcaption><b>{html.escape(spec.title)}.</b> '
            f"{html.escape(spec.caption)} ({links})</figcaption></figure>")
    body = "".join(f"<h2>{html.escape(name)}</h2><div class='grid'>{''.join(items)}</div>"
                   for name, items in sections.items())
    skipped_html = ""
    if skipped:
        items = "".join(f"<li><b>{html.escape(s.title)}</b>: {html.escape(why)}</li>" for s, why in skipped)
        skipped_html = f"<h2>Not drawn</h2><ul class='skipped'>{items}</ul>"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>anodiff report — {html.escape(res.root.name)}</title><style>{_CSS}</style></head>"
            f"<body><header><h1>Anomalous diffusion of SGD — {html.escape(res.root.name)}</h1>"
            f"<p>anodiff {__version__} · figures after Chen, Qu &amp; Gong, <i>Anomalous diffusion dynamics "
            f"of learning in deep neural networks</i></p></header><main>"
            f"<h2>Summary</h2><table class='kv'>{rows}</table>{body}{skipped_html}</main></body></html>")


def _headline_rows(summary: dict):
    labels = [
        ("alpha_early", "α early (first window, τ > τ0)"),
        ("alpha_late", "α late (last window)"),
        ("t0", "t0 (steps): first window fitted by one power law"),
        ("alpha_dist", "Lévy stability α_dist of gradients"),
        ("D_f", "fractal dimension of the path D_f (first window)"),
        ("msl_2H", "MSL exponent 2H (first window)"),
        ("hessian_top_first", "largest Hessian eigenvalue, first epoch"),
        ("hessian_top_last", "largest Hessian eigenvalue, last epoch"),
        ("landscape_box_dimension", "box-counting dimension of landscape level sets"),
        ("toy_alpha_early", "toy model α before t0"),
        ("toy_alpha_late", "toy model α after t0"),
    ]
    for key, label in labels:
        if key in summary:
            value = summary[key]
            if value is None and key == "t0":
                yield label, f"not reached: {summary.get('t0_reason', 'no window fitted by one power law')}"
                continue
            yield label, fmt(value, 4) if not isinstance(value, str) else value
