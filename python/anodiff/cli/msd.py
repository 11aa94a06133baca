"""`anodiff msd`: the MSD of every window of a run file, streamed."""
from __future__ import annotations

from ._common import add_progress_flag, add_scheduler_flag, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "msd", help="time-averaged MSD of every window of a run file",
        description="Time-averaged MSD(τ) for every lag τ = 1…T-1 of each window "
                    "[t_w, t_w+T), t_w = 0, tw_step, 2·tw_step, …, computed in one pass over "
                    "/weights of RUN (HDF5), with float64 sums over dimensions. Writes an HDF5 "
                    "file with datasets t_w (n_windows,), lags (T-1,) and msd (n_windows, T-1) "
                    "and the fitted diffusion exponent α of each window.")
    p.add_argument("run_file", metavar="RUN", help="run file (HDF5 with /weights of shape (n_steps, d))")
    p.add_argument("--T", type=positive_int, default=1000, help="window length in steps (default 1000)")
    p.add_argument("--tw-step", type=int, default=None,
                   help="distance between window starts in steps (default: T)")
    p.add_argument("--max-lag", type=positive_int, default=None, help="largest lag (default T-1)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="analyse the recorded steps of a run that did not finish")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the kernels run: cpu (default) or cuda (needs anodiff._cuda and a GPU)")
    p.add_argument("--out", default="msd.h5", help="output HDF5 file (default msd.h5)")
    add_scheduler_flag(p)
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import h5py  # noqa: PLC0415

    from ..errors import InputError  # noqa: PLC0415
    from ..msd import fit_power_law, msd_windows  # noqa: PLC0415

    tw_step = args.T if args.tw_step is None else args.tw_step
    if tw_step <= 0:
        raise InputError(f"--tw-step must be positive, got {tw_step}")
    res = msd_windows(args.run_file, T=args.T, tw_step=tw_step, max_lag=args.max_lag,
                      progress=not args.no_progress, allow_incomplete=args.allow_incomplete,
                      client=args.scheduler, device=args.device)
    alphas = [fit_power_law(res.lags, curve).alpha for curve in res.msd]
    try:
        with h5py.File(args.out, "w") as f:
            f.create_dataset("t_w", data=res.t_w)
            f.create_dataset("lags", data=res.lags)
            f.create_dataset("msd", data=res.msd)
            f.create_dataset("alpha", data=alphas)
            f.attrs.update({"T": res.T, "n_dims": res.n_dims, "source": res.source,
                            "units": "msd in squared weight units; lags and t_w in steps"})
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write ({exc})") from None
    print(f"{len(res.t_w)} windows of T={res.T} steps over {res.n_dims} dimensions -> {args.out}")
    for t_w, a in list(zip(res.t_w, alphas))[:10]:
        print(f"  t_w={t_w:>8d}  alpha={a:.3f}")
    if len(alphas) > 10:
        print(f"  … {len(alphas) - 10} more in {args.out}")
    return 0
