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


def _binned_curves(res: Results, curve: str, missing: str, xlabel: str, ylabel: str, title):
    """One log-log line per window of a binned pair curve (contour, transverse or msl), jet by t_w."""
    plt = _plt()
    ws, T, _, _ = _windows(res)
    ws = [w for w in ws if curve in w and len(w[curve].get("x", []))]
    if not ws:
        raise Skip(missing)
    colours, sm = jet_colours([w["t_w"] for w in ws])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for w, c in zip(ws, colours):
        x, y = np.asarray(w[curve]["x"]), np.asarray(w[curve]["y"])
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        ax.loglog(x[ok], y[ok], color=c, lw=1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title(ws[0]))
    fig.colorbar(sm, ax=ax).set_label("t_w (steps)")
    return fig, ax


def fig_path(res: Results):
    """Fig. 6(b): squared end-to-end distance against contour length (smoothed, 40 steps)."""
    fig, ax = _binned_curves(
        res, "contour", "no contour/end-to-end curves in the analyze results",
        "contour length Δs (weight units)", "end-to-end Δr² (weight units²)",
        lambda w: "Fractal path: Δr² ~ Δs^λ, D_f = 2/λ")
    first = _windows(res)[0][0]
    label = (f"first window: λ = {fmt(_value(first, 'lambda_short'))} / {fmt(_value(first, 'lambda_long'))}"
             f" (below/above l = {fmt(_value(first, 'crossover_l'))}), D_f = {fmt(_value(first, 'D_f'))}")
    ax.text(0.03, 0.97, label, transform=ax.transAxes, va="top", fontsize=8,
            bbox=dict(facecolor="white", alpha=0.8, lw=0))
    return fig


def fig_transverse(res: Results):
    """§III.C: transverse distance against end-to-end distance (self-affine vs self-similar)."""
    return _binned_curves(
        res, "transverse", "no transverse-distance curves in the analyze results",
        "end-to-end distance Δr (weight units)", "mean transverse distance (weight units)",
        lambda w: f"Transverse distance, first-window exponent {fmt(_value(w, 'transverse_exponent'))}")[0]


def fig_msl(res: Results):
    """Fig. 6(c): mean squared loss difference of point pairs against Δr, fitted 2H."""
    return _binned_curves(
        res, "msl", "no MSL curves (the run has no /loss)",
        "end-to-end distance Δr (weight units)", "MSL (loss units²)",
        lambda w: f"Fractal landscape: MSL ∝ Δr^2H, first window 2H = {fmt(_value(w, 'msl_2H'))}")[0]


# -- levy (Fig. 5a–d) -------------------------------------------------------------------


def _levy_fit(res: Results):
    if "levy" not in res.h5:
        raise Skip("no levy results (run `anodiff levy RUN --out DIR`)")
    import h5py  # noqa: PLC0415

    with h5py.File(res.h5["levy"], "r") as f:
        if "fit" not in f or "histogram" not in f:
            raise Skip(f"{res.h5['levy'].name} has no fit")
        data = {"edges": f["histogram/edges"][()], "density": f["histogram/density"][()],
                "x": f["fit/x"][()], "stable": f["fit/stable_pdf"][()], "gauss": f["fit/gauss_pdf"][()],
                "fit": dict(f["fit"].attrs), "attrs": dict(f.attrs)}
        if "tail" in f:
            data["tail"] = {k: f["tail"][k][()] for k in f["tail"]}
        if "windows" in f:
            data["windows"] = {k: f["windows"][k][()] for k in f["windows"]}
    return data


def fig_levy(res: Results):
    """Fig. 5(a): gradient distribution, stable and Gaussian fits; inset: the power-law tail."""
    plt = _plt()
    d = _levy_fit(res)
    fit = d["fit"]
    centres = 0.5 * (d["edges"][1:] + d["edges"][:-1])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    keep = d["density"] > 0
    ax.semilogy(centres[keep], d["density"][keep], ".", ms=2.5, color="0.3", label="gradients")
    ax.semilogy(d["x"], d["stable"], "r-", lw=1.3, label=f"SαS fit, α = {fit['alpha']:.3f}")
    g = d["gauss"]
    ax.semilogy(d["x"][g > 1e-300], g[g > 1e-300], "b--", lw=1.0, label="Gaussian fit")
    half = 12 * float(fit["scale"])
    ax.set_xlim(float(fit["loc"]) - half, float(fit["loc"]) + half)
    lo = max(d["density"][keep].min() if keep.any() else 1e-8, 1e-6 * d["stable"].max())
    ax.set_ylim(lo, 3 * max(d["density"].max(), d["stable"].max()))
    ax.set_xlabel("minibatch gradient ∂L/∂w_i (loss per weight unit)")
    ax.set_ylabel("probability density")
    llr = fit.get("llr_gauss")
    ax.set_title(f"Heavy-tailed gradients (LLR vs Gaussian = {fmt(float(llr), 3)}, "
                 f"Vuong p = {fmt(float(fit.get('vuong_p', np.nan)), 2)})")
    ax.legend(loc="upper left", fontsize=7.5)
    if "tail" in d and len(d["tail"].get("r", [])):
        ins = ax.inset_axes([0.68, 0.56, 0.30, 0.36])
        r, ccdf = d["tail"]["r"], d["tail"]["ccdf"]
        ok = (r > 0) & (ccdf > 0)
        ins.loglog(r[ok], ccdf[ok], ".", ms=2, color="0.3")
        pl = d["tail"].get("power_law")
        if pl is not None and np.any(pl > 0):
            ins.loglog(r[ok & (pl > 0)], pl[ok & (pl > 0)], "r-", lw=1)
        ins.set_title("tail: P(|g − δ| > r)", fontsize=7, pad=2)
        ins.set_xlabel("r", fontsize=7, labelpad=1)
        ins.tick_params(labelsize=6)
    return fig


def fig_levy_windows(res: Results):
    """Fig. 5(d): stability parameter α_dist of each window with its 95 % interval."""
    plt = _plt()
    d = _levy_fit(res)
    w = d.get("windows")
    if not w or len(w.get("t_w", [])) < 1 or not np.isfinite(w["alpha"]).any():
        raise Skip("no per-window Lévy fits (run shorter than one window)")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    t, a = w["t_w"], w["alpha"]
    lo, hi = w.get("alpha_lo"), w.get("alpha_hi")
    if lo is not None and hi is not None:
        ax.fill_between(t, lo, hi, color="C0", alpha=0.25, lw=0, label="95 % interval")
    ax.plot(t, a, "o-", ms=3, color="C0", label="α_dist")
    ax.axhline(2.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("window start t_w (steps)")
    ax.set_ylabel("stability parameter α_dist")
    ax.set_title("Lévy stability of gradients across training")
    ax.legend(fontsize=8)
    return fig


# -- hessian (Fig. 7) -----------------------------------------------------------------


def fig_hessian(res: Results):
    """Fig. 7: top-k Hessian eigenvalues against the training epoch."""
    plt = _plt()
    epochs = res.read("hessian", "epochs")
    ev = res.read("hessian", "eigenvalues")
    if epochs is None or ev is None or len(epochs) == 0:
        raise Skip("no Hessian spectra (run `anodiff hessian RUN --out DIR`)")
    ev = np.atleast_2d(ev)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    k = ev.shape[1]
    colours, sm = jet_colours(np.arange(k))
    for j in range(k):
        y = ev[:, j]
        ax.plot(epochs, y, "o-", ms=2.5, lw=0.9, color=colours[j])
    if np.all(ev[np.isfinite(ev)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Hessian eigenvalue (loss per weight unit²)")
    ax.set_title(f"Top {k} Hessian eigenvalues during training")
    fig.colorbar(sm, ax=ax).set_label("eigenvalue rank (0 = largest)")
    return fig


# -- landscape (Fig. 1a) ------------------------------------------------------------


def fig_landscape(res: Results):
    """Fig. 1(a): the loss (log) on a 2D projection, with the trajectory when projected."""
    plt = _plt()
    xs, ys, loss = (res.read("landscape", k) for k in ("xs", "ys", "loss"))
    if loss is None:
        raise Skip("no landscape (run `anodiff landscape RUN --out DIR`)")
    attrs = res.attrs("landscape")
    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    z = np.log10(np.maximum(loss, 1e-12))
    cs = ax.contourf(xs, ys, z, levels=40, cmap="viridis")
    ax.contour(xs, ys, z, levels=12, colors="k", linewidths=0.3, alpha=0.6)
    traj = res.read("landscape", "trajectory")
    if traj is not None and len(traj):
        ax.plot(traj[:, 0], traj[:, 1], "-", color="w", lw=0.8, alpha=0.9, label="SGD trajectory")
        ax.plot(traj[0, 0], traj[0, 1], "o", color="w", ms=4)
        ax.legend(loc="upper right", fontsize=7.5)
    ax.plot(0, 0, "r*", ms=9)
    kind = attrs.get("directions", "random")
    kind = kind.decode() if isinstance(kind, bytes) else kind
    levels = _landscape_level_sets(res)
    ax.set_title(f"Loss landscape around epoch {attrs.get('epoch', '?')} ({kind} directions)"
                 + (f"\nbox-counting dimension of level sets {levels['mean']:.2f} ± {levels['std']:.2f}"
                    f" ({len(levels.get('levels', []))} levels)" if levels else ""))
    ax.set_xlabel("direction 1 (α, direction units)")
    ax.set_ylabel("direction 2 (β, direction units)")
    fig.colorbar(cs, ax=ax).set_label("log10 loss")
    return fig


def _landscape_level_sets(res: Results) -> dict | None:
    """Box-counting summary of the landscape's level sets (mean, std, … over levels), if computed."""
    box = (res.json.get("landscape") or {}).get("box_counting")
    levels = box.get("level_sets") if isinstance(box, dict) else None
    if isinstance(levels, dict) and finite(levels.get("mean")) and finite(levels.get("std")):
        return levels
    return None


# -- toy model (Fig. 8) -------------------------------------------------------------


def _toy_dirs(res: Results) -> dict:
    found = {}
    for name in ("fractal", "random", "convex"):
        for rel in (f"toy/{name}/results.h5",):
            p = res.root / rel
            if p.is_file():
                found[name] = p
    if not found and "toy" in res.h5:
        found["toy"] = res.h5["toy"]
    if not found:
        raise Skip("no toy-model results (run `anodiff toy --landscape all --out DIR/toy`)")
    return found


def fig_toy(res: Results):
    """Fig. 8: landscape with walker paths, MSD before/after t0 on each landscape, gradients, escapes."""
    import h5py  # noqa: PLC0415

    plt = _plt()
    runs = _toy_dirs(res)
    fig, axes = plt.subplots(2, 2, figsize=(10, 8.2))
    ax_land, ax_msd, ax_grad, ax_esc = axes.ravel()
    main = runs.get("fractal") or next(iter(runs.values()))
    with h5py.File(main, "r") as f:
        z = f["landscape/z"][()]
        a = f["landscape/z"].attrs
        h, x0, y0 = float(a["h"]), float(a["x0"]), float(a["y0"])
        extent = (x0, x0 + h * (z.shape[1] - 1), y0, y0 + h * (z.shape[0] - 1))
        im = ax_land.imshow(z, origin="lower", extent=extent, cmap="terrain", aspect="equal")
        if "walkers/traj" in f:
            traj = f["walkers/traj"][()]
            for k in range(min(5, traj.shape[0])):
                ax_land.plot(traj[k, :, 0], traj[k, :, 1], lw=0.7)
        fig.colorbar(im, ax=ax_land, fraction=0.046).set_label("loss")
        ax_land.set_title("Fractal landscape and 5 walkers")
        ax_land.set_xlabel("w₁ (w-units)")
        ax_land.set_ylabel("w₂ (w-units)")
        if "gradients/hist_counts" in f:
            counts = f["gradients/hist_counts"][()]
            edges = f["gradients/hist_edges"][()]
            centres = 0.5 * (edges[1:] + edges[:-1])
            dens = counts / max(counts.sum(), 1) / np.diff(edges)
            ok = dens > 0
            ax_grad.semilogy(centres[ok], dens[ok], ".", ms=3)
            levy = f["gradients"].attrs.get("levy")
            title = "Gradient components, all steps"
            if levy:
                try:
                    title += f" (α_dist = {json.loads(levy)['alpha']:.2f})"
                except (ValueError, KeyError, TypeError):
                    pass
            ax_grad.set_title(title)
            ax_grad.set_xlabel("∂L/∂w (loss per w-unit)")
            ax_grad.set_ylabel("density")
        else:
            ax_grad.set_axis_off()
        if "escapes/step_lengths" in f and f["escapes/step_lengths"].shape[0]:
            sl = f["escapes/step_lengths"][()]
            off = f["escapes/offsets"][()] if "escapes/offsets" in f else np.arange(sl.shape[-1]) - sl.shape[-1] // 2
            mean = np.nanmean(np.atleast_2d(sl), axis=0)
            ax_esc.plot(off, mean, "o-", ms=3)
            ax_esc.axvline(0, color="k", lw=0.8, ls="--")
            ax_esc.set_title(f"Step length around {np.atleast_2d(sl).shape[0]} escapes from local minima")
            ax_esc.set_xlabel("steps relative to the escape")
            ax_esc.set_ylabel("mean |Δw| (w-units)")
        else:
            ax_esc.text(0.5, 0.5, "no escape events", ha="center", va="center", transform=ax_esc.transAxes)
            ax_esc.set_axis_off()
    styles = {"fractal": "C3", "random": "C0", "convex": "C2", "toy": "C3"}
    for name, path in runs.items():
        with h5py.File(path, "r") as f:
            for part, ls in (("early", "-"), ("late", "--"), ("whole", ":")):
                if f"msd/{part}/msd" not in f or (part == "whole" and "msd/early/msd" in f):
                    continue
                lags, m = f[f"msd/{part}/lags"][()], f[f"msd/{part}/msd"][()]
                alpha = float(f[f"msd/{part}"].attrs.get("alpha", np.nan))
                ok = m > 0
                ax_msd.loglog(lags[ok], m[ok], ls, color=styles.get(name, "k"), lw=1.1,
                              label=f"{name} {part}: α = {fmt(alpha)}")
    ax_msd.set_xlabel("lag τ (steps)")
    ax_msd.set_ylabel("MSD (w-units²)")
    ax_msd.set_title("Simplified SGD model: MSD before / after t0")
    ax_msd.legend(fontsize=7)
    fig.tight_layout()
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
    FigureSpec("fig1a_landscape", "Projected loss landscape",
               "log10 of the loss on a 2D projection around a checkpoint (red star); with PCA "
               "directions the recorded trajectory is drawn on top.", fig_landscape,
               "Fractal path and landscape"),
    FigureSpec("fig5a_levy", "Heavy-tailed minibatch gradients",
               "Histogram of gradient values with the maximum-likelihood symmetric α-stable density "
               "(red) and the Gaussian fit (blue); inset: the tail P(|g−δ| > r) and its power law.",
               fig_levy, "Gradients and curvature"),
    FigureSpec("fig5d_levy_windows", "Stability parameter across training",
               "α_dist of the gradients of each window [t_w, t_w+T) with its 95 % interval.",
               fig_levy_windows, "Gradients and curvature"),
    FigureSpec("fig7_hessian", "Hessian spectrum during training",
               "Largest eigenvalues of the Hessian of the training loss at each epoch checkpoint "
               "(Lanczos, residual-checked).", fig_hessian, "Gradients and curvature"),
    FigureSpec("fig8_toy", "Simplified SGD model on 2D landscapes",
               "w_{t+1} = w_t − η∇L(w_t) + ησZ_t: a fractal landscape with walker paths, the MSD "
               "before (solid) and after (dashed) t0 on fractal, random and convex landscapes, the "
               "distribution of gradient components, and step lengths around escapes from local minima.",
               fig_toy, "Simplified model"),
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
        if out["t0"] is None:
            reasons = analyze.get("t0_reason") or {}
            out["t0_reason"] = next(iter(reasons.values()), "no window fitted by one power law")
    for stem in ("levy", "hessian", "landscape", "toy_summary"):
        if stem in res.json:
            out[stem.replace("_summary", "")] = res.json[stem]
    levy = res.json.get("levy") or {}
    if finite(levy.get("alpha")):
        out["alpha_dist"] = levy["alpha"]
    tops = _hessian_tops(res)
    if tops:
        out["hessian_top_first"], out["hessian_top_last"] = tops
    levels = _landscape_level_sets(res)
    if levels:
        out["landscape_box_dimension"] = levels["mean"]
        out["landscape_box_dimension_std"] = levels["std"]
    toy = res.json.get("toy_summary") or {}
    toy_main = toy.get("fractal", toy) if isinstance(toy, dict) else {}
    for key in ("alpha_early", "alpha_late"):
        if finite(toy_main.get(key)):
            out[f"toy_{key}"] = toy_main[key]
    return out


def _hessian_tops(res: Results):
    ev = res.read("hessian", "eigenvalues")
    if ev is None:
        return None
    ev = np.atleast_2d(ev)
    if ev.size == 0:
        return None
    return float(np.nanmax(ev[0])), float(np.nanmax(ev[-1]))


def _dumps(obj) -> str:
    return json.dumps(obj, indent=1)
