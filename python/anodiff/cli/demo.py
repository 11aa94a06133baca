"""`anodiff demo`: the whole pipeline on scikit-learn's digits, one command, no network."""
from __future__ import annotations

import time
from pathlib import Path

# (full, quick) settings. The digits training set has 1,437 images; at batch 32
# an epoch is 45 SGD steps.
PROFILES = {
    "full": dict(model="resnet14", epochs=40, batch_size=32, lr=0.1, T=500, tw_step=250,
                 grads=2000, hessian_k=10, hessian_samples=512, hessian_epochs="0:41:4",
                 landscape_grid=41, toy_trials=10, toy_iterations=1000),
    "quick": dict(model="resnet8", epochs=16, batch_size=32, lr=0.1, T=200, tw_step=100,
                  grads=500, hessian_k=5, hessian_samples=256, hessian_epochs="0:17:4",
                  landscape_grid=21, toy_trials=10, toy_iterations=1000),
}


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="train, record, analyse and report on scikit-learn's digits (no arguments needed)",
        description="Runs the whole anodiff pipeline on the handwritten digits that scikit-learn "
                    "ships (no download): trains a small ResNet with and without shortcut "
                    "connections under plain SGD, records every step, runs analyze, levy, hessian, "
                    "landscape and the simplified SGD model, and writes an HTML report. About 10 "
                    "minutes on 2 CPU cores; --quick takes about 3.")
    p.add_argument("--out", default="anodiff-demo", help="output directory (default ./anodiff-demo)")
    p.add_argument("--quick", action="store_true", help="smaller model and fewer steps (~3 minutes)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="do not draw progress bars")
    p.set_defaults(run=run)


def _step(title: str):
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run(args) -> int:
    import json  # noqa: PLC0415

    from . import main as cli_main  # noqa: PLC0415
    from ..errors import InputError  # noqa: PLC0415

    cfg = PROFILES["quick" if args.quick else "full"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = [] if not args.no_progress else ["--no-progress"]
    started = time.perf_counter()

    def call(*argv) -> None:
        code = cli_main([str(a) for a in argv] + progress)
        if code != 0:
            raise InputError(f"demo step `anodiff {' '.join(map(str, argv))}` failed (exit {code})")

    runs = {}
    for shortcut in (True, False):
        model = cfg["model"] + ("" if shortcut else "_noshort")
        path = out / f"run_{model}.h5"
        t = _step(f"train {model} on digits ({cfg['epochs']} epochs, batch {cfg['batch_size']})")
        call("train", "--model", model, "--dataset", "digits", "--epochs", cfg["epochs"],
             "--batch-size", cfg["batch_size"], "--lr", cfg["lr"], "--seed", args.seed,
             "--record-grads", cfg["grads"], "--out", path, "--overwrite")
        print(f"   {time.perf_counter() - t:.0f} s")
        runs[model] = path

    main_model = cfg["model"]
    main_run = runs[main_model]
    for model, path in runs.items():
        target = out / ("analyze" if model == main_model else f"analyze_{model}")
        t = _step(f"analyze {path.name}: MSD, regimes, fractal path and landscape")
        call("analyze", path, "--T", cfg["T"], "--tw-step", cfg["tw_step"], "--out", target)
        print(f"   {time.perf_counter() - t:.0f} s")

    t0 = None
    summary_path = out / "analyze" / "summary.json"
    if summary_path.exists():
        t0 = json.loads(summary_path.read_text()).get("t0")
    t = _step("levy: α-stable fit of the minibatch gradients")
    levy_args = ["levy", main_run, "--T", cfg["T"], "--tw-step", cfg["tw_step"], "--out", out / "levy"]
    if t0:
        levy_args += ["--t-stop", t0]
    call(*levy_args)
    print(f"   {time.perf_counter() - t:.0f} s")

    t = _step(f"hessian: top-{cfg['hessian_k']} eigenvalues at every epoch checkpoint")
    # tol 1e-3: float32 Hessian-vector products leave a ~1e-4 residual floor on the
    # smallest of the top eigenvalues late in training.
    call("hessian", main_run, "--k", cfg["hessian_k"], "--epochs", cfg["hessian_epochs"], "--tol", 1e-3,
         "--samples", cfg["hessian_samples"], "--out", out / "hessian")
    print(f"   {time.perf_counter() - t:.0f} s")

    t = _step("landscape: filter-normalised 2D projection and box counting")
    call("landscape", main_run, "--epoch", cfg["epochs"], "--grid", cfg["landscape_grid"],
         "--out", out / "landscape")
    print(f"   {time.perf_counter() - t:.0f} s")

    t = _step("toy: the simplified SGD model on fractal, random and convex landscapes")
    call("toy", "--landscape", "all", "--trials", cfg["toy_trials"],
         "--iterations", cfg["toy_iterations"], "--seed", args.seed, "--out", out / "toy")
    print(f"   {time.perf_counter() - t:.0f} s")

    t = _step("report")
    call("report", out)
    summary = json.loads((out / "summary.json").read_text())
    print(f"\nreport: {(out / 'report.html').resolve()}   ({time.perf_counter() - started:.0f} s in all)")
    print(f"  alpha early {_f(summary.get('alpha_early'))}, alpha late {_f(summary.get('alpha_late'))}")
    if summary.get("t0") is None:
        print(f"  t0 not reached: {summary.get('t0_reason', 'no window fitted by one power law')}")
    else:
        print(f"  t0 = {summary['t0']} steps")
    print(f"  alpha_dist (Levy stability of gradients) = {_f(summary.get('alpha_dist'))}")
    return 0


def _f(x) -> str:
    return "n/a" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))
