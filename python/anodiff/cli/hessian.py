"""`anodiff hessian`: top Hessian eigenvalues at each recorded checkpoint (paper Fig. 7)."""
from __future__ import annotations

from ._common import add_progress_flag, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "hessian", help="top-k Hessian eigenvalues at each recorded epoch (Fig. 7)",
        description="For each selected checkpoint /checkpoints/epoch_N of RUN, the k largest "
                    "(algebraic) eigenvalues of the Hessian of the mean training loss over a fixed "
                    "random subset of the run's training data, by thick-restart Lanczos with full "
                    "re-orthogonalisation; Hessian-vector products by double back-propagation, "
                    "BatchNorm in eval mode. Each eigenpair's relative residual "
                    "||Hv - λv|| / |λ| is reported. Writes OUT/hessian.h5 (epochs, eigenvalues, "
                    "residuals, converged, n_products, loss) and OUT/hessian.json.")
    p.add_argument("run_file", metavar="RUN", help="run file written by anodiff train")
    p.add_argument("--k", type=positive_int, default=20, help="number of eigenvalues (default 20)")
    p.add_argument("--epochs", default="all",
                   help="checkpoints: all (default), last, a list 0,5,10 or a range 0:100:10")
    p.add_argument("--samples", type=positive_int, default=2048,
                   help="training examples in the fixed data subset (default 2048)")
    p.add_argument("--batch-size", type=positive_int, default=256,
                   help="examples per forward pass (memory only; default 256)")
    p.add_argument("--tol", type=float, default=1e-4,
                   help="relative residual every eigenpair must reach (default 1e-4)")
    p.add_argument("--max-products", type=positive_int, default=None,
                   help="budget of Hessian-vector products per epoch (default 50 × basis size)")
    p.add_argument("--no-verify", action="store_true",
                   help="report Lanczos' residual estimates instead of recomputing each residual "
                        "with one explicit product (saves k products per epoch; the estimates "
                        "do not see the float32 rounding of the products)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="precision of the products (default float32)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="seed of the data subset and start vector")
    p.add_argument("--out", default="hessian_out", help="output directory (default hessian_out)")
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import time  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    import h5py  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from ..errors import InputError  # noqa: PLC0415
    from ..hessian import HessianOperator, lanczos_top  # noqa: PLC0415
    from . import _runmodel as rm  # noqa: PLC0415

    if not (args.tol > 0):
        raise InputError(f"--tol must be positive, got {args.tol}")
    attrs = rm.run_attrs(args.run_file)
    available = rm.checkpoints(args.run_file)
    epochs = rm.parse_epochs(args.epochs, available, args.run_file)
    device = rm.resolve_device(args.device)
    loss_fn = rm.loss_function(attrs.get("loss", "ce"))
    batches = rm.data_batches(attrs, args.run_file, args.samples, args.batch_size, args.seed)
    out = rm.out_dir(args.out)
    progress = not args.no_progress

    rows = []
    bar = _bar(len(epochs), progress)
    try:
        for e in epochs:
            model, _ = rm.load_model(args.run_file, e, device)
            op = HessianOperator(model, loss_fn, batches,
                                 dtype=None if args.dtype == "float32" else "float64")
            if args.k > op.n_params:
                raise InputError(f"--k {args.k} is larger than the model's {op.n_params} parameters")
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                spec = lanczos_top(op.matvec, op.n_params, k=args.k, tol=args.tol,
                                   max_products=args.max_products, seed=args.seed,
                                   verify=not args.no_verify,
                                   device=op.device, dtype=op.dtype, progress=progress,
                                   desc=f"epoch {e}")
            seconds = time.perf_counter() - t0
            op.release()
            loss = op.loss()
            rows.append((e, spec, seconds, loss))
            for w in caught:
                bar.write(f"anodiff hessian: warning: epoch {e}: {w.message}")
            bar.set_postfix_str(f"epoch {e}: λ1={spec.eigenvalues[0]:.4g}, {spec.n_products} Hv")
            bar.update(1)
    finally:
        bar.close()

    k = args.k
    ev = np.array([r[1].eigenvalues for r in rows])
    res = np.array([r[1].residuals for r in rows])
    conv = np.array([r[1].converged for r in rows])
    prods = np.array([r[1].n_products for r in rows], dtype=np.int64)
    secs = np.array([r[2] for r in rows])
    losses = np.array([r[3] for r in rows])
    n_params = rows[0][1].n_params
    n_samples = sum(len(b[1]) for b in batches)
    h5 = out / "hessian.h5"
    try:
        with h5py.File(h5, "w") as f:
            f.create_dataset("epochs", data=np.array(epochs, dtype=np.int64))
            f.create_dataset("eigenvalues", data=ev)
            f.create_dataset("residuals", data=res)
            f.create_dataset("converged", data=conv)
            f.create_dataset("n_products", data=prods)
            f.create_dataset("seconds", data=secs)
            f.create_dataset("loss", data=losses)
            f.attrs.update({
                "k": k, "tol": args.tol, "n_samples": n_samples, "n_params": n_params,
                "dtype": args.dtype, "device": device, "seed": args.seed,
                "residuals_verified": not args.no_verify,
                "source": str(args.run_file), "order": "largest algebraic first",
                "units": "eigenvalues in loss units per squared weight unit; residuals relative "
                         "||Hv - lambda v|| / |lambda|; loss = mean training loss on the subset",
                "method": "thick-restart Lanczos, full re-orthogonalisation, HVP by double backprop, "
                          "BatchNorm in eval mode"})
    except OSError as exc:
        raise InputError(f"{h5}: cannot write ({exc})") from None
    rm.write_json(out / "hessian.json", {
        "source": str(args.run_file), "k": k, "tol": args.tol, "n_samples": n_samples,
        "n_params": n_params, "dtype": args.dtype, "device": device,
        "order": "largest algebraic first", "residuals_verified": not args.no_verify,
        "epochs": [{"epoch": int(e), "eigenvalues": [float(v) for v in s.eigenvalues],
                    "residuals": [float(v) for v in s.residuals],
                    "all_converged": bool(np.all(s.converged)), "n_products": int(s.n_products),
                    "seconds": float(t), "loss": float(lo)} for e, s, t, lo in rows],
    })
    print(f"top-{k} Hessian eigenvalues of {n_params} parameters on {n_samples} samples, "
          f"{len(epochs)} epochs -> {out}/hessian.h5")
    for e, s, t, _ in rows[:20]:
        flag = "" if np.all(s.converged) else f"  ({int(np.sum(~s.converged))} not converged)"
        print(f"  epoch {e:>5d}  λ1={s.eigenvalues[0]:.5g}  λ{k}={s.eigenvalues[-1]:.5g}  "
              f"max residual {np.max(s.residuals):.1e}  {s.n_products} Hv  {t:.1f} s{flag}")
    return 0


def _bar(total, enabled):
    from .._progress import progress_bar  # noqa: PLC0415

    return progress_bar(total, desc="hessian", unit="epoch", enabled=enabled)
