"""`anodiff landscape`: a 2-D loss surface around a checkpoint and its box-counting dimension."""
from __future__ import annotations

from ._common import add_progress_flag, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "landscape", help="2-D loss landscape around a checkpoint + box-counting dimension (Fig. 1)",
        description="Loss L(w0 + a·d1 + b·d2) on a GRID × GRID grid of (a, b) in [-R, R]², w0 = "
                    "checkpoint EPOCH of RUN, averaged over a fixed random subset of the run's "
                    "training data (BatchNorm in eval mode). Directions: 'random' = Gaussian, "
                    "normalised filter by filter to the weights (Li et al. 2018), biases and "
                    "BatchNorm parameters not moved; 'hessian' = top-2 Hessian eigenvectors "
                    "scaled to ||w0||; 'pca' = top-2 principal axes of the recorded trajectory "
                    "/weights around w0, with the trajectory projected on the plane. Then the "
                    "box-counting dimension of the surface and of its level sets (contours) at "
                    "several levels, on a FINE × FINE grid (>= 257) made by spline interpolation "
                    "of the coarse surface ('interp', default; box sizes below the coarse spacing "
                    "are left out of the fit) or by evaluating the loss on the fine grid over "
                    "--fine-samples examples ('evaluate'). Writes OUT/landscape.h5 and "
                    "OUT/landscape.json.")
    p.add_argument("run_file", metavar="RUN", help="run file written by anodiff train")
    p.add_argument("--epoch", type=int, default=None, help="checkpoint epoch (default: the last one)")
    p.add_argument("--grid", type=positive_int, default=51, help="points per axis (default 51)")
    p.add_argument("--directions", choices=["random", "hessian", "pca"], default="random",
                   help="plane of the projection (default random)")
    p.add_argument("--range", type=float, default=None, dest="span",
                   help="half-width R of the grid in direction units (default 1; for pca the "
                        "trajectory's extent plus 10%%)")
    p.add_argument("--samples", type=positive_int, default=1024,
                   help="training examples the loss is averaged over (default 1024)")
    p.add_argument("--batch-size", type=positive_int, default=512, help="examples per forward pass")
    p.add_argument("--fine", choices=["interp", "evaluate", "none"], default="interp",
                   help="how the fine grid for box counting is made (default interp)")
    p.add_argument("--fine-grid", type=positive_int, default=257,
                   help="points per axis of the fine grid (default 257, at least 257)")
    p.add_argument("--fine-samples", type=positive_int, default=128,
                   help="examples for --fine evaluate (default 128)")
    p.add_argument("--levels", type=positive_int, default=9,
                   help="number of contour levels, at evenly spaced quantiles (default 9)")
    p.add_argument("--pca-steps", type=positive_int, default=500,
                   help="trajectory rows (evenly spaced) used for pca directions (default 500)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="seed of the data subset and directions")
    p.add_argument("--out", default="landscape_out", help="output directory (default landscape_out)")
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import h5py  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from .. import landscape as ls  # noqa: PLC0415
    from ..errors import InputError  # noqa: PLC0415
    from . import _runmodel as rm  # noqa: PLC0415

    if args.grid < 3:
        raise InputError(f"--grid must be at least 3, got {args.grid}")
    if args.fine != "none" and args.fine_grid < 257:
        raise InputError(f"--fine-grid must be at least 257 for box counting, got {args.fine_grid}")
    if args.span is not None and not args.span > 0:
        raise InputError(f"--range must be positive, got {args.span}")
    attrs = rm.run_attrs(args.run_file)
    available = rm.checkpoints(args.run_file)
    epoch = available[-1] if args.epoch is None else int(args.epoch)
    if epoch not in available:
        raise InputError(f"{args.run_file}: epoch {epoch} was not recorded; recorded: "
                         f"{rm._fmt(available)}")
    device = rm.resolve_device(args.device)
    progress = not args.no_progress
    loss_fn = rm.loss_function(attrs.get("loss", "ce"))
    batches = rm.data_batches(attrs, args.run_file, args.samples, args.batch_size, args.seed)
    model, _ = rm.load_model(args.run_file, epoch, device)
    params = [q for q in model.parameters() if q.requires_grad]
    w0 = torch.cat([q.detach().reshape(-1) for q in params])
    n_params = w0.numel()
    out = rm.out_dir(args.out)

    info: dict = {"directions": args.directions}
    traj = traj_rows = None
    if args.directions == "random":
        dirs = ls.random_directions(model, 2, seed=args.seed)
        info["normalisation"] = ("filter-wise (Li et al. 2018): each filter (slice along dim 0) "
                                 "of a >=2-D parameter scaled to the weights' filter norm; "
                                 "biases and BatchNorm parameters zero; buffers untouched")
        span = 1.0 if args.span is None else args.span
        xs = ys = np.linspace(-span, span, args.grid)
    elif args.directions == "hessian":
        dirs, spec = ls.hessian_directions(model, loss_fn, batches, seed=args.seed, progress=progress)
        info.update({"eigenvalues": [float(v) for v in spec.eigenvalues],
                     "residuals": [float(v) for v in spec.residuals],
                     "n_products": int(spec.n_products),
                     "normalisation": "unit eigenvectors times ||w0|| (all trainable parameters)"})
        span = 1.0 if args.span is None else args.span
        xs = ys = np.linspace(-span, span, args.grid)
    else:
        pca, traj_rows = _pca(args, attrs, w0, n_params)
        dirs = torch.as_tensor(pca.directions).to(device=w0.device, dtype=w0.dtype)
        traj = pca.coords
        info.update({"explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio],
                     "normalisation": "unit principal axes (weight units)",
                     "trajectory_rows": int(len(traj_rows))})
        lo, hi = traj.min(axis=0), traj.max(axis=0)
        if args.span is None:
            pad = 0.1 * np.maximum(hi - lo, 1e-12)
            xs = np.linspace(min(lo[0], 0) - pad[0], max(hi[0], 0) + pad[0], args.grid)
            ys = np.linspace(min(lo[1], 0) - pad[1], max(hi[1], 0) + pad[1], args.grid)
        else:
            xs = ys = np.linspace(-args.span, args.span, args.grid)
    surf = ls.loss_surface(model, loss_fn, batches, dirs[0], dirs[1], xs, ys, origin=w0,
                           kind=args.directions, progress=progress)
    finite = np.isfinite(surf.loss)
    result: dict = {"source": str(args.run_file), "epoch": epoch, "directions": args.directions,
                    "grid": args.grid, "x_range": [float(xs[0]), float(xs[-1])],
                    "y_range": [float(ys[0]), float(ys[-1])], "n_samples": surf.n_samples,
                    "n_params": n_params, "loss_at_origin": _center(surf),
                    "loss_min": float(np.nanmin(surf.loss)) if finite.any() else None,
                    "loss_max": float(np.nanmax(surf.loss)) if finite.any() else None,
                    "info": info}

    fine = None
    if args.fine != "none":
        if not finite.all():
            result["box_counting"] = None
            result["box_counting_reason"] = "surface has non-finite losses (diverged far from w0)"
        else:
            fine, bc = _box_counting(args, ls, surf, model, loss_fn, attrs, dirs, w0, progress, xs, ys)
            result["box_counting"] = bc

    h5 = out / "landscape.h5"
    try:
        with h5py.File(h5, "w") as f:
            f.create_dataset("xs", data=xs)
            f.create_dataset("ys", data=ys)
            f.create_dataset("loss", data=surf.loss)
            f.create_dataset("directions", data=dirs.detach().cpu().numpy().astype(np.float32))
            if traj is not None:
                f.create_dataset("trajectory", data=traj)
                f.create_dataset("trajectory_steps", data=traj_rows)
            if fine is not None:
                g = f.create_group("fine")
                g.create_dataset("xs", data=fine[0])
                g.create_dataset("ys", data=fine[1])
                g.create_dataset("loss", data=fine[2])
                g.attrs["method"] = args.fine
            f.attrs.update({"epoch": epoch, "directions": args.directions,
                            "n_samples": surf.n_samples, "source": str(args.run_file),
                            "layout": "loss[i, j] = L(w0 + xs[j]*d1 + ys[i]*d2); directions (2, "
                                      "n_params) over trainable parameters in model.parameters() "
                                      "order",
                            "units": "loss in nats (mean over the data subset); xs, ys in "
                                     "direction units"})
    except OSError as exc:
        raise InputError(f"{h5}: cannot write ({exc})") from None
    rm.write_json(out / "landscape.json", result)
    print(f"{args.grid}×{args.grid} landscape ({args.directions} directions) around epoch {epoch}, "
          f"{surf.n_samples} samples -> {h5}")
    bc = result.get("box_counting")
    if bc:
        lv = bc["level_sets"]
        print(f"  surface box-counting dimension {bc['surface']['dimension']:.3f} "
              f"(R²={bc['surface']['r2']:.4f}, boxes {bc['surface']['fit_range']})")
        print(f"  level sets at {len(lv['dimensions'])} levels: dimension {lv['mean']:.3f} ± "
              f"{lv['std']:.3f} (min {lv['min']:.3f}, max {lv['max']:.3f})")
    return 0


def _center(surf):
    import numpy as np  # noqa: PLC0415

    i = int(np.argmin(np.abs(surf.ys)))
    j = int(np.argmin(np.abs(surf.xs)))
    return float(surf.loss[i, j]) if np.isfinite(surf.loss[i, j]) else None


def _pca(args, attrs, w0, n_params):
    import numpy as np  # noqa: PLC0415

    from .. import landscape as ls  # noqa: PLC0415
    from ..errors import InputError  # noqa: PLC0415
    from ..io import _open_h5  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    with _open_h5(Path(args.run_file)) as f:
        if "weights" not in f:
            raise InputError(f"{args.run_file}: no /weights trajectory, cannot compute pca directions")
        if "weights_index" in f or bool(f.attrs.get("subset", False)):
            raise InputError(f"{args.run_file}: only a subset of the weights was recorded; pca "
                             "directions need the full trajectory (use random or hessian)")
        W = f["weights"]
        n_rows = int(f.attrs.get("n_steps_written", W.shape[0]))
        if W.shape[1] != n_params:
            raise InputError(f"{args.run_file}: /weights has {W.shape[1]} columns but the model has "
                             f"{n_params} trainable parameters")
        if n_rows < 3:
            raise InputError(f"{args.run_file}: only {n_rows} recorded steps, too few for pca")
        rows = np.unique(np.linspace(0, n_rows - 1, min(args.pca_steps, n_rows)).round().astype(np.int64))
        pca = ls.pca_directions(W, origin=w0.detach().cpu().double().numpy(), rows=rows)
    step = int(attrs.get("record_every", 1) or 1)
    return pca, rows * step


def _box_counting(args, ls, surf, model, loss_fn, attrs, dirs, w0, progress, xs, ys):
    import numpy as np  # noqa: PLC0415

    from . import _runmodel as rm  # noqa: PLC0415

    n = args.fine_grid
    if args.fine == "interp":
        xf, yf, zf = ls.refine_surface(xs, ys, surf.loss, n)
        # the spline adds no structure below the coarse spacing: fit only above it
        min_size = int(np.ceil((n - 1) / (args.grid - 1)))
        max_size = max((n - 1) // 8, 4 * min_size)
        note = (f"bicubic spline of the {args.grid}×{args.grid} surface onto {n}×{n}; box sizes "
                f"below the coarse spacing ({min_size} fine steps) left out of the fit")
    else:
        fb = rm.data_batches(attrs, args.run_file, args.fine_samples, args.batch_size, args.seed)
        xf = np.linspace(xs[0], xs[-1], n)
        yf = np.linspace(ys[0], ys[-1], n)
        fs = ls.loss_surface(model, loss_fn, fb, dirs[0], dirs[1], xf, yf, origin=w0,
                             progress=progress)
        zf = fs.loss
        min_size, max_size = None, None
        note = f"loss evaluated on the {n}×{n} grid over {fs.n_samples} examples"
        if not np.all(np.isfinite(zf)):
            return (xf, yf, zf), None
    surface = ls.box_counting_dimension(zf, min_size=min_size, max_size=max_size)
    qs = np.round(np.linspace(0, 1, args.levels + 2)[1:-1], 6)
    levels = ls.level_set_dimensions(zf, quantiles=qs, min_size=min_size, max_size=max_size)
    bc = {"fine_method": args.fine, "fine_grid": n, "note": note,
          "surface": surface.as_dict(), "level_sets": levels.as_dict(),
          "method": "box sizes four per octave; surface: N(s) = Σ_cells oscillation/s on the "
                    "grid resampled at s (corners); level sets: cells of the grid resampled at s "
                    "whose corners straddle the level; levels at evenly spaced quantiles "
                    "(level-set dimensions do not change under monotone maps such as log L)"}
    return (xf, yf, zf), bc
