"""The report's figures, one function each, after the paper's Figs. 1–8.

Each function takes `report.Results` and returns a matplotlib Figure or
raises `report.Skip` with the reason the data do not allow it.
"""
from __future__ import annotations

import json

import numpy as np

from .report import FigureSpec, Results, Skip, _plt, finite, fmt, jet_colours

# -- analyze (Figs. 2, 5e–f, 6) -----------------------------------------------------


def _windows(res: Results, T=None):
    """Per-window groups of analyze/results.h5 as dicts (attrs + the datasets we draw)."""
    import h5py  # noqa: PLC0415

    path = res.h5.get("analyze")
    if path is None:
        raise Skip("no analyze results (run `anodiff analyze RUN --out DIR`)")
    out = []
    with h5py.File(path, "r") as f:
        if "windows" not in f:
            raise Skip(f"{path.name} holds no windows")
        for name in sorted(f["windows"]):
            g = f["windows"][name]
            w = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
            for key in ("lags", "msd", "beta_tau", "beta", "path_ds", "path_dr2", "path_ds_smooth",
                        "path_dr2_smooth", "abs_dl"):
                if key in g:
                    w[key] = g[key][()]
            for curve in ("contour", "transverse", "msl"):
                if curve in g:
                    w[curve] = {k: g[curve][k][()] for k in g[curve]}
            out.append(w)
        meta = dict(f.attrs)
        moving_var = f["loss/moving_var"][()] if "loss/moving_var" in f else None
    if not out:
        raise Skip("no windows in the analyze results")
    Ts = sorted({int(w["T"]) for w in out})
    T = T if T is not None else Ts[0]
    return [w for w in out if int(w["T"]) == T], T, meta, moving_var


def _value(w, key):
    v = w.get(key)
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def fig_msd(res: Results):
    """Fig. 2(a–b): MSD curves of every window, coloured by t_w (jet), α and τ0 annotated."""
    plt = _plt()
    ws, T, _, _ = _windows(res)
    colours, sm = jet_colours([w["t_w"] for w in ws])
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for w, c in zip(ws, colours):
        ax.loglog(w["lags"], w["msd"], color=c, lw=1.0)
    for w in (ws[0], ws[-1]):
        tau0 = _value(w, "tau0")
        if tau0 is not None:
            k = int(np.searchsorted(w["lags"], tau0))
            if k < len(w["lags"]):
                ax.plot(w["lags"][k], w["msd"][k], "ko", ms=4)
                ax.annotate(f"τ0={tau0:.0f}", (w["lags"][k], w["msd"][k]), textcoords="offset points",
                            xytext=(6, -10), fontsize=8)
    a0, a1 = _value(ws[0], "alpha2") or _value(ws[0], "alpha"), _value(ws[-1], "alpha")
    ax.text(0.03, 0.97, f"first window: α(τ>τ0) = {fmt(a0)}\nlast window: α = {fmt(a1)}",
            transform=ax.transAxes, va="top", fontsize=8,
            bbox=dict(facecolor="white", alpha=0.8, lw=0))
    ax.set_xlabel("lag τ (steps)")
    ax.set_ylabel("MSD Δr²(τ) (weight units²)")
    ax.set_title(f"Time-averaged MSD, windows of T = {T} steps")
    cb = fig.colorbar(sm, ax=ax)
    cb.set_label("window start t_w (steps)")
    return fig


def fig_beta(res: Results):
    """Fig. 2(c): logarithmic derivative β(τ) with Δτ = 20."""
    plt = _plt()
    ws, T, _, _ = _windows(res)
    ws = [w for w in ws if "beta" in w and len(w["beta"])]
    if not ws:
        raise Skip("windows too short for β(τ) with Δτ = 20")
    colours, sm = jet_colours([w["t_w"] for w in ws])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for w, c in zip(ws, colours):
        ax.semilogx(w["beta_tau"], w["beta"], color=c, lw=0.9)
    ax.axhline(1.0, color="k", ls="--", lw=0.8)
    ax.set_xlabel("lag τ (steps)")
    ax.set_ylabel("β(τ) = Δ ln MSD / Δ ln τ")
    ax.set_title(f"Logarithmic derivative of the MSD (Δτ = 20), T = {T}")
    fig.colorbar(sm, ax=ax).set_label("t_w (steps)")
    return fig


def fig_alpha_vs_tw(res: Results):
    """α, α2 and τ0 against t_w, with t0 marked."""
    plt = _plt()
    ws, T, meta, _ = _windows(res)
    if len(ws) < 2:
        raise Skip("only one window: α against t_w needs several")
    t_w = np.array([w["t_w"] for w in ws], dtype=float)
    alpha = np.array([_value(w, "alpha") or np.nan for w in ws])
    alpha2 = np.array([_value(w, "alpha2") or np.nan for w in ws])
    tau0 = np.array([_value(w, "tau0") or np.nan for w in ws])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True)
    ax1.plot(t_w, alpha, "o-", ms=3, label="α (whole lag range)")
    if np.isfinite(alpha2).any():
        ax1.plot(t_w, alpha2, "s--", ms=3, label="α2 (τ > τ0)")
    ax1.axhline(1.0, color="k", lw=0.8, ls=":")
    ax1.set_ylabel("diffusion exponent α")
    ax1.legend(loc="best")
    ax2.plot(t_w, tau0, "o-", ms=3, color="C2")
    ax2.set_ylabel("crossover τ0 (steps)")
    ax2.set_xlabel("window start t_w (steps)")
    t0 = _t0(res, T)
    for ax in (ax1, ax2):
        if t0 is not None:
            ax.axvline(t0, color="C3", lw=1.0, ls="--")
    ax1.set_title(f"Regimes across training (T = {T})" + (f", t0 = {t0}" if t0 is not None else ", t0 not reached"))
    return fig


def _t0(res: Results, T):
    summary = res.json.get("analyze_summary") or {}
    by_T = summary.get("t0_by_T") or {}
    value = by_T.get(str(T), summary.get("t0"))
    return int(value) if finite(value) else None


def fig_loss(res: Results):
    """Fig. 5(e–f): |ΔL| per window and the moving variance of the loss."""
    plt = _plt()
    ws, T, _, moving_var = _windows(res)
    have_dl = [w for w in ws if "abs_dl" in w and len(w["abs_dl"])]
    if not have_dl and moving_var is None:
        raise Skip("no loss in the run file (/loss)")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    colours, sm = jet_colours([w["t_w"] for w in have_dl] or [0])
    for w, c in zip(have_dl, colours):
        dl = np.asarray(w["abs_dl"], dtype=float)
        dl = dl[dl > 0]
        if dl.size < 5:
            continue
        bins = np.logspace(np.log10(dl.min()), np.log10(dl.max()), 30)
        hist, edges = np.histogram(dl, bins=bins, density=True)
        centres = np.sqrt(edges[1:] * edges[:-1])
        ax1.loglog(centres[hist > 0], hist[hist > 0], color=c, lw=0.9)
    ax1.set_xlabel("|ΔL| (loss units)")
    ax1.set_ylabel("probability density")
    ax1.set_title("Loss changes per step, by window")
    if have_dl:
        fig.colorbar(sm, ax=ax1).set_label("t_w (steps)")
    if moving_var is not None:
        ax2.semilogy(np.arange(len(moving_var)), np.maximum(moving_var, 1e-300), lw=0.8)
        ax2.set_xlabel("step t")
        ax2.set_ylabel("moving variance of L (loss units²)")
        ax2.set_title("Loss fluctuations (100-step window)")
    else:
        ax2.set_axis_off()
    fig.tight_layout()
    return fig


def fig_path(res: Results):
    """Fig. 6(b): squared end-to-end distance against contour length (smoothed, 40 steps)."""
    plt = _plt()
    ws, T, _, _ = _windows(res)
    ws = [w for w in ws if "contour" in w and len(w["contour"].get("x", []))]
    if not ws:
        raise Skip("no contour/end-to-end curves in the analyze results")
    colours, sm = jet_colours([w["t_w"] for w in ws])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for w, c in zip(ws, colours):
        x, y = np.asarray(w["contour"]["x"]), np.asarray(w["contour"]["y"])
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        ax.loglog(x[ok], y[ok], color=c, lw=1.0)
    first = ws[0]
    label = (f"first window: λ = {fmt(_value(first, 'lambda_short'))} / {fmt(_value(first, 'lambda_long'))}"
             f" (below/above l = {fmt(_value(first, 'crossover_l'))}), D_f = {fmt(_value(first, 'D_f'))}")
    ax.text(0.03, 0.97, label, transform=ax.transAxes, va="top", fontsize=8,
            bbox=dict(facecolor="white", alpha=0.8, lw=0))
    ax.set_xlabel("contour length Δs (weight units)")
    ax.set_ylabel("end-to-end Δr² (weight units²)")
    ax.set_title("Fractal path: Δr² ~ Δs^λ, D_f = 2/λ")
    fig.colorbar(sm, ax=ax).set_label("t_w (steps)")
    return fig


def fig_transverse(res: Results):
    """§III.C: transverse distance against end-to-end distance (self-affine vs self-similar)."""
    plt = _plt()
    ws, T, _, _ = _windows(res)
    ws = [w for w in ws if "transverse" in w and len(w["transverse"].get("x", []))]
    if not ws:
        raise Skip("no transverse-distance curves in the analyze results")
    colours, sm = jet_colours([w["t_w"] for w in ws])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for w, c in zip(ws, colours):
        x, y = np.asarray(w["transverse"]["x"]), np.asarray(w["transverse"]["y"])
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        ax.loglog(x[ok], y[ok], color=c, lw=1.0)
    ax.set_xlabel("end-to-end distance Δr (weight units)")
    ax.set_ylabel("mean transverse distance (weight units)")
    ax.set_title(f"Transverse distance, first-window exponent {fmt(_value(ws[0], 'transverse_exponent'))}")
    fig.colorbar(sm, ax=ax).set_label("t_w (steps)")
    return fig


def fig_msl(res: Results):
    """Fig. 6(c): mean squared loss difference of point pairs against Δr, fitted 2H."""
    plt = _plt()
    ws, T, _, _ = _windows(res)
    ws = [w for w in ws if "msl" in w and len(w["msl"].get("x", []))]
    if not ws:
        raise Skip("no MSL curves (the run has no /loss)")
    colours, sm = jet_colours([w["t_w"] for w in ws])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for w, c in zip(ws, colours):
        x, y = np.asarray(w["msl"]["x"]), np.asarray(w["msl"]["y"])
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        ax.loglog(x[ok], y[ok], color=c, lw=1.0)
    ax.set_xlabel("end-to-end distance Δr (weight units)")
    ax.set_ylabel("MSL (loss units²)")
    ax.set_title(f"Fractal landscape: MSL ∝ Δr^2H, first window 2H = {fmt(_value(ws[0], 'msl_2H'))}")
    fig.colorbar(sm, ax=ax).set_label("t_w (steps)")
    return fig


SPECS: list[FigureSpec] = [
    FigureSpec("fig2ab_msd", "MSD over every lag",
               "Time-averaged MSD of each window [t_w, t_w+T), coloured by t_w (jet). Black dots mark "
               "the crossover τ0 of the first and last windows.", fig_msd, "Anomalous diffusion"),
    FigureSpec("fig2c_beta", "Logarithmic derivative β(τ)",
               "β(τ) with Δτ = 20 (Eq. 6); β > 1 is superdiffusive, β < 1 subdiffusive.", fig_beta,
               "Anomalous diffusion"),
    FigureSpec("alpha_tau0_vs_tw", "Exponents and crossover across training",
               "α over the whole lag range and α2 above τ0 (top), τ0 (bottom), against the window "
               "start; the dashed line is t0, the first window fitted by one power law "
               "(RMSE < 0.03 in log10 units).", fig_alpha_vs_tw, "Anomalous diffusion"),
    FigureSpec("fig5ef_loss", "Loss fluctuations",
               "Distribution of |ΔL| per window and the moving variance of the minibatch loss.",
               fig_loss, "Anomalous diffusion"),
    FigureSpec("fig6b_path", "End-to-end distance against contour length",
               "Binned in log Δs and smoothed by a 40-step moving average; λ below and above the "
               "crossover l, D_f = 2/λ.", fig_path, "Fractal path and landscape"),
    FigureSpec("transverse", "Transverse distance",
               "Maximal distance of the path from the chord of each pair of points, binned against Δr.",
               fig_transverse, "Fractal path and landscape"),
    FigureSpec("fig6c_msl", "Mean squared loss difference",
               "MSL of point pairs in log-spaced Δr bins (each point paired with the loss at its own "
               "step); the slope is 2H (Eq. 8).", fig_msl, "Fractal path and landscape"),
]


def headline(res: Results) -> dict:
    """The documented keys of summary.json, plus every analysis' own summary."""
    out: dict = {"generated_by": "anodiff report"}
    analyze = res.json.get("analyze_summary")
    if analyze:
        out["analyze"] = analyze
        windows = analyze.get("windows") or []
        if windows:
            first, last = windows[0], windows[-1]
            out["alpha_early"] = first.get("alpha2") if finite(first.get("alpha2")) else first.get("alpha")
            out["alpha_late"] = last.get("alpha")
            out["D_f"] = first.get("D_f")
            out["msl_2H"] = first.get("msl_2H")
        out["t0"] = analyze.get("t0")
    for stem in ("levy", "hessian", "landscape", "toy_summary"):
        if stem in res.json:
            out[stem.replace("_summary", "")] = res.json[stem]
    return out


def _dumps(obj) -> str:
    return json.dumps(obj, indent=1)
