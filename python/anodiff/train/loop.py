"""The training loop of `anodiff train`: plain SGD on a ResNet, every step recorded.

At SGD step t (t = 0, 1, …) with minibatch B_t and learning rate η::

    w_{t+1} = w_t − η ∇L̃_t(w_t),   L̃_t(w) = 1/|B_t| Σ_{i∈B_t} ℓ(f(x_i; w), y_i)

(with optional momentum and weight decay, `torch.optim.SGD`). Row r of
`/weights` is w_{r·k} (k = record_every), the weights *before* update r·k;
`/loss[r]` is L̃_{r·k}(w_{r·k}), the minibatch loss that produced that update;
`/eval_loss[r]` is the mean loss on a fixed batch at w_{r·k}, computed with
batch-norm on the batch's own statistics (a function of w alone; the running
statistics are not touched); `/grads[r]` is ∇L̃_{r·k}(w_{r·k}) at the recorded
coordinates. Losses are in nats.

Data order: epoch e visits the training set in the permutation drawn from
numpy's SeedSequence([seed, e]); the minibatches are consecutive slices of it
(the last one smaller unless drop_last). Under torchrun (WORLD_SIZE > 1) each
global minibatch is split across the ranks (rank r takes every world-th
sample), gradients are averaged by DistributedDataParallel so that the update
is that of the global batch, and rank 0 records. Batch-norm statistics are
per rank, as usual with DDP.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from ..errors import InputError

#: defaults of a new run (train(...) arguments left as None take these)
DEFAULTS = {
    "model": "resnet14", "dataset": "digits", "epochs": 10, "batch_size": 128, "lr": 0.1,
    "momentum": 0.0, "weight_decay": 0.0, "loss": "ce", "seed": 0, "record_every": 1,
    "record_subset": 0, "record_grads": "none", "eval_batch": 0, "compression": "none",
    "drop_last": False,
}
LOSSES = ("ce", "kl")


@dataclass
class TrainResult:
    """Summary of a finished run. Losses in nats, accuracies in [0, 1], seconds of wall time."""

    path: Path | None
    n_steps: int           # SGD updates made in total
    n_rows: int            # rows of /weights
    n_dims: int            # recorded coordinates per row
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    seconds: float         # wall time of the training loop (this process, after setup)
    steps_run: int         # SGD updates made by this call (less than n_steps after --resume)
    resumed_at: int | None  # SGD step the run was resumed from, if it was


def _config(overrides: dict, recorded: dict | None) -> dict:
    cfg = dict(DEFAULTS)
    if recorded is not None:
        for key in cfg:
            if key in recorded:
                value = recorded[key]
                cfg[key] = value.item() if hasattr(value, "item") else value
                if isinstance(DEFAULTS[key], bool):
                    cfg[key] = bool(cfg[key])
                elif isinstance(DEFAULTS[key], str):
                    cfg[key] = str(cfg[key])
    for key, value in overrides.items():
        if value is None:
            continue
        if recorded is not None and key != "dataset" and _norm(value) != _norm(cfg[key]):
            raise InputError(f"--resume: the run was recorded with {key}={cfg[key]!r}, not {value!r}")
        cfg[key] = value
    return cfg


def _norm(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return str(v)


def _check_config(cfg: dict) -> None:
    from .models import MODEL_NAMES  # noqa: PLC0415

    if str(cfg["model"]).lower() not in MODEL_NAMES:
        raise InputError(f"unknown model {cfg['model']!r}; choose one of {', '.join(MODEL_NAMES)}")
    if cfg["loss"] not in LOSSES:
        raise InputError(f"unknown loss {cfg['loss']!r}; choose ce or kl")
    for key in ("epochs", "batch_size", "record_every"):
        if int(cfg[key]) < 1:
            raise InputError(f"{key} must be a positive integer, got {cfg[key]}")
    for key in ("record_subset", "eval_batch"):
        if int(cfg[key]) < 0:
            raise InputError(f"{key} must be >= 0, got {cfg[key]}")
    if not float(cfg["lr"]) > 0 or not math.isfinite(float(cfg["lr"])):
        raise InputError(f"learning rate must be positive, got {cfg['lr']}")
    for key in ("momentum", "weight_decay"):
        if not 0 <= float(cfg[key]) < math.inf:
            raise InputError(f"{key} must be >= 0, got {cfg[key]}")
    g = str(cfg["record_grads"])
    if g not in ("none", "all") and not (g.isdigit() and int(g) > 0):
        raise InputError(f"record_grads must be a positive integer K, 'all' or 'none', got {g!r}")


def _seeded_indices(seed: int, tag: int, n: int, k: int) -> np.ndarray:
    rng = np.random.default_rng([int(seed), tag])
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch `epoch` (0-based) visits the n training samples."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def _clone(obj):
    import torch  # noqa: PLC0415

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return copy.copy(obj)


class _Dist:
    """WORLD_SIZE/RANK from torchrun; a no-op for a single process."""

    def __init__(self, device_arg: str):
        import torch  # noqa: PLC0415

        self.world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        self.rank = int(os.environ.get("RANK", "0") or 0)
        self.local = int(os.environ.get("LOCAL_RANK", "0") or 0)
        dev = device_arg or "auto"
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(dev)
        except RuntimeError:
            raise InputError(f"unknown device {device_arg!r}; use auto, cpu, cuda or cuda:N") from None
        if self.device.type == "cuda":
            # deterministic cuBLAS (torch.use_deterministic_algorithms); must precede the first handle
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            if not torch.cuda.is_available():
                raise InputError("device cuda requested but no CUDA device is available")
            if self.world > 1 or self.device.index is None:
                self.device = torch.device("cuda", self.local if self.world > 1 else 0)
            torch.cuda.set_device(self.device)
        self.owns_group = False
        if self.world > 1:
            import torch.distributed as dist  # noqa: PLC0415

            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
                self.owns_group = True
            self.rank = dist.get_rank()

    def broadcast(self, obj):
        if self.world == 1:
            return obj
        import torch.distributed as dist  # noqa: PLC0415

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce(self, t):
        if self.world > 1:
            import torch.distributed as dist  # noqa: PLC0415

            dist.all_reduce(t)
        return t

    def close(self):
        if self.owns_group:
            import torch.distributed as dist  # noqa: PLC0415

            dist.destroy_process_group()


def train(out="run.h5", *, model: str | None = None, dataset: str | None = None,
          epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
          momentum: float | None = None, weight_decay: float | None = None, loss: str | None = None,
          seed: int | None = None, record_every: int | None = None, record_subset: int | None = None,
          record_grads: int | str | None = None, eval_batch: int | None = None,
          compression: str | None = None, drop_last: bool | None = None,
          resume: bool = False, overwrite: bool = False, device: str = "auto",
          progress: bool = True, flush_every: int | None = None, flush_seconds: float = 60.0,
          callback=None) -> TrainResult:
    """Train a CIFAR-style ResNet with SGD and record every step to the HDF5 file `out`.

    Parameters left as None take `DEFAULTS` for a new run, or the recorded
    values with `resume=True` (giving a different value is an error).
    `out=None` trains without recording (benchmarks). `record_subset=K`
    records K seeded random coordinates (0 = all); `record_grads` is K, 'all'
    or 'none'; `eval_batch=N` records the loss on N fixed training samples.
    `callback(step, loss)` runs after every update. Returns a `TrainResult`.
    """
    import torch  # noqa: PLC0415

    from .. import __version__  # noqa: PLC0415
    from .data import load_dataset  # noqa: PLC0415
    from .models import build_model  # noqa: PLC0415
    from .recorder import (Recorder, RecordingError, chunk_rows_for,  # noqa: PLC0415
                           create_run_file, open_for_resume)

    overrides = dict(model=model, dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr,
                     momentum=momentum, weight_decay=weight_decay, loss=loss, seed=seed,
                     record_every=record_every, record_subset=record_subset,
                     record_grads=None if record_grads is None else str(record_grads).lower(),
                     eval_batch=eval_batch,
                     compression=None if compression is None else str(compression).lower(),
                     drop_last=drop_last)
    path = None if out is None else Path(out)
    if path is not None and path.is_dir():
        raise InputError(f"{path}: is a directory; --out needs a file name")
    first_rank = int(os.environ.get("RANK", "0") or 0) == 0   # the others never touch the file
    if first_rank and path is not None and not resume and path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --resume to continue it or --overwrite to replace it")
    if resume and path is None:
        raise InputError("--resume needs an output file")

    dd = _Dist(device)
    recorder = None
    f = None
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        # -- configuration (rank 0 opens the file to resume; the others get its contents)
        state = None
        recorded = None
        if resume:
            msg = None
            if dd.rank == 0:
                try:
                    f, state = open_for_resume(path)
                    recorded = dict(f.attrs)
                except InputError as exc:
                    msg = str(exc)
            msg, recorded, state = dd.broadcast((msg, recorded, state))
            if msg:
                raise InputError(msg)
        cfg = _config(overrides, recorded)
        _check_config(cfg)
        if recorded is not None and overrides["dataset"] is None:
            cfg["dataset"] = str(recorded["dataset"])
        seed = int(cfg["seed"])
        train_set, test_set, info = load_dataset(cfg["dataset"], seed=0)
        if recorded is not None:
            for key in ("in_channels", "num_classes", "n_train", "n_test"):
                if int(recorded[key]) != int(info[key]):
                    raise InputError(f"--resume: dataset {cfg['dataset']!r} has {key}={info[key]}, "
                                     f"the run was recorded with {int(recorded[key])}")
            if str(recorded.get("dataset_name", info["name"])) != info["name"]:
                raise InputError(f"--resume: the run was recorded on {recorded['dataset_name']}, "
                                 f"not {info['name']}")

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        if dd.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        net = build_model(cfg["model"], info["in_channels"], info["num_classes"]).to(dd.device)
        net.train()
        params = [p for p in net.parameters()]
        n_params = sum(p.numel() for p in params)
        opt = torch.optim.SGD(params, lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                              weight_decay=float(cfg["weight_decay"]))
        ddp = net
        if dd.world > 1:
            from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

            ddp = DistributedDataParallel(net, device_ids=[dd.device.index] if dd.device.type == "cuda"
                                          else None)

        B = int(cfg["batch_size"])
        n_train = info["n_train"]
        n_batches = n_train // B if cfg["drop_last"] else -(-n_train // B)
        if n_batches == 0:
            raise InputError(f"batch size {B} is larger than the {n_train} training samples with --drop-last")
        last = n_train - (n_batches - 1) * B
        if dd.world > 1 and (B < dd.world or (not cfg["drop_last"] and last < dd.world)):
            raise InputError(f"a minibatch of {min(B, last)} samples cannot be split across "
                             f"{dd.world} processes; use a larger --batch-size or --drop-last")
        E = int(cfg["epochs"])
        k = int(cfg["record_every"])
        K_sub = int(cfg["record_subset"])
        if K_sub > n_params:
            raise InputError(f"--record-subset {K_sub} exceeds the model's {n_params} parameters")
        widx = _seeded_indices(seed, 0x5B5E7, n_params, K_sub) if K_sub else None
        g = str(cfg["record_grads"])
        if g.isdigit() and int(g) > n_params:
            raise InputError(f"--record-grads {g} exceeds the model's {n_params} parameters")
        gidx = (np.arange(n_params, dtype=np.int64) if g == "all" else
                _seeded_indices(seed, 0x96AD, n_params, int(g)) if g.isdigit() else None)
        n_eval = min(int(cfg["eval_batch"]), n_train)
        xtr = train_set.tensors[0].to(dd.device)
        ytr = train_set.tensors[1].to(dd.device)
        xte = test_set.tensors[0].to(dd.device)
        yte = test_set.tensors[1].to(dd.device)
        if n_eval:
            eidx = torch.from_numpy(_seeded_indices(seed, 0xE7A1, n_train, n_eval)).to(dd.device)
            xev, yev = xtr[eidx], ytr[eidx]
        widx_t = None if widx is None else torch.from_numpy(widx).to(dd.device)
        gidx_t = None if gidx is None or g == "all" else torch.from_numpy(gidx).to(dd.device)
        n_rec = K_sub or n_params
        E = int(cfg["epochs"])
        chunk_rows = min(chunk_rows_for(n_rec), -(-E * n_batches // k))
        flush_every = int(flush_every or chunk_rows * k)
        C = info["num_classes"]

        def per_sample(outp, y):
            if cfg["loss"] == "ce":
                return torch.nn.functional.cross_entropy(outp, y, reduction="none")
            logp = torch.nn.functional.log_softmax(outp, dim=1)
            onehot = torch.nn.functional.one_hot(y, C).to(logp.dtype)
            return torch.nn.functional.kl_div(logp, onehot, reduction="none").sum(1)

        bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

        def fixed_batch_loss() -> float:
            saved = [m.track_running_stats for m in bns]
            for m in bns:
                m.track_running_stats = False   # batch statistics, running stats untouched
            try:
                with torch.no_grad():
                    return float(per_sample(net(xev), yev).mean())
            finally:
                for m, s in zip(bns, saved):
                    m.track_running_stats = s

        def flat_params() -> torch.Tensor:
            # torch.cat allocates: a fresh copy, never a view of the live parameters
            flat = torch.cat([p.detach().reshape(-1) for p in params])
            if widx_t is not None:
                flat = flat[widx_t]
            return flat.to("cpu", torch.float32)

        state_items = list(net.named_parameters()) + list(net.named_buffers())

        def checkpoint() -> np.ndarray:
            return torch.cat([t.detach().reshape(-1).to(torch.float32) for _, t in state_items]).cpu().numpy()

        def evaluate() -> tuple[float, float]:
            net.eval()
            tot = torch.zeros(3, dtype=torch.float64, device=dd.device)
            with torch.no_grad():
                idx_all = torch.arange(dd.rank, len(xte), dd.world, device=dd.device)
                for s0 in range(0, len(idx_all), 1024):
                    idx = idx_all[s0:s0 + 1024]
                    o = net(xte[idx])
                    tot[0] += per_sample(o, yte[idx]).sum().double()
                    tot[1] += (o.argmax(1) == yte[idx]).sum().double()
                    tot[2] += len(idx)
            net.train()
            dd.all_reduce(tot)
            return float(tot[0] / tot[2]), float(tot[1] / tot[2])

        # -- state: fresh or resumed
        if state is not None:
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optim"])
            torch.set_rng_state(state["rng"])
            epoch0, batch0, step = int(state["epoch"]), int(state["batch"]), int(state["step"])
            rows, epochs_done = int(state["rows"]), int(state["epochs_done"])
            acc = [float(v) for v in state["acc"]]
            resumed_at = step
        else:
            epoch0 = batch0 = step = rows = epochs_done = 0
            acc = [0.0, 0.0, 0.0]
            resumed_at = None

        def snapshot(epoch, batch):
            return {"model": _clone(net.state_dict()), "optim": _clone(opt.state_dict()),
                    "rng": torch.get_rng_state(), "epoch": epoch, "batch": batch, "step": step,
                    "rows": rows, "epochs_done": epochs_done, "acc": list(acc)}

        record = dd.rank == 0 and path is not None
        if record:
            if f is None:
                layout = _layout(list(net.named_parameters()))
                state_layout = _layout(state_items, dtypes=True)
                attrs = {
                    "model": str(cfg["model"]).lower(), "dataset": str(cfg["dataset"]),
                    "dataset_name": info["name"], "in_channels": info["in_channels"],
                    "num_classes": C, "image_shape": list(info["image_shape"]),
                    "n_train": n_train, "n_test": info["n_test"], "loss": cfg["loss"],
                    "lr": float(cfg["lr"]), "batch_size": B, "momentum": float(cfg["momentum"]),
                    "weight_decay": float(cfg["weight_decay"]), "seed": seed, "epochs": E,
                    "steps_per_epoch": n_batches, "drop_last": bool(cfg["drop_last"]),
                    "record_every": k, "record_subset": K_sub, "subset": bool(K_sub),
                    "record_grads": g, "eval_batch": n_eval, "compression": str(cfg["compression"]),
                    "n_params": n_params, "chunk_rows": chunk_rows, "world_size": dd.world,
                    "device": dd.device.type, "anodiff_version": __version__,
                    "torch_version": str(torch.__version__),
                    "units": "weights in parameter units; losses in nats; step = SGD update index",
                }
                f = create_run_file(path, attrs, layout, state_layout, n_dims=n_rec,
                                    weights_index=widx, grads_index=gidx,
                                    grads_kind=None if gidx is None else ("all" if g == "all" else "subset"),
                                    eval_loss=bool(n_eval), compression=str(cfg["compression"]),
                                    chunk_rows=chunk_rows)
            recorder = Recorder(f, path=path, state=state)
            if state is None:
                recorder.epoch(0, {}, checkpoint())
                recorder.commit(snapshot(0, 0))

        # -- the loop
        total = E * n_batches
        bar = _bar(total, step, progress and dd.rank == 0)
        t_start = time.perf_counter()
        last_commit_step, last_commit_time = step, time.monotonic()
        steps_run = 0
        stats = tot = None
        err = torch.zeros(1, dtype=torch.float64, device=dd.device)
        for epoch in range(epoch0, E):
            perm = torch.from_numpy(epoch_permutation(seed, epoch, n_train)).to(dd.device)
            bar.set_description(f"epoch {epoch + 1}/{E}", refresh=False)
            for b in range(batch0 if epoch == epoch0 else 0, n_batches):
                if record and step != last_commit_step and (
                        (step - last_commit_step) >= flush_every
                        or time.monotonic() - last_commit_time > flush_seconds):
                    recorder.commit(snapshot(epoch, b))
                    last_commit_step, last_commit_time = step, time.monotonic()
                gb = perm[b * B:(b + 1) * B]
                idx = gb[dd.rank::dd.world]
                on_row = step % k == 0
                if on_row and record:
                    row = flat_params().numpy()
                    ev = fixed_batch_loss() if n_eval else None
                xb, yb = xtr[idx], ytr[idx]
                outp = ddp(xb)
                ls = per_sample(outp, yb)
                opt.zero_grad(set_to_none=True)
                (ls.sum() * (dd.world / len(gb))).backward()
                tot = torch.stack([ls.detach().sum().double(), (outp.detach().argmax(1) == yb).sum().double()])
                if dd.world > 1:
                    if record:
                        err.fill_(1.0 if recorder.error is not None else 0.0)
                    tot = dd.all_reduce(torch.cat([tot, err]))
                    if float(tot[2]) > 0:
                        if record:
                            recorder._check()
                        raise RecordingError("rank 0 failed to write the run file")
                mb_loss = float(tot[0]) / len(gb)
                if not math.isfinite(mb_loss):
                    raise InputError(f"training diverged at step {step} (minibatch loss {mb_loss}); "
                                     "lower the learning rate")
                if on_row and record:
                    grads = None
                    if gidx is not None:
                        gflat = torch.cat([p.grad.reshape(-1) for p in params])
                        if gidx_t is not None:
                            gflat = gflat[gidx_t]
                        grads = gflat.to("cpu", torch.float32).numpy()
                    recorder.step(row, mb_loss, ev, grads)
                if on_row:
                    rows += 1
                opt.step()
                step += 1
                steps_run += 1
                acc[0] += float(tot[0])
                acc[1] += float(tot[1])
                acc[2] += len(gb)
                bar.update(1)
                if steps_run % 4 == 1 or b == n_batches - 1:
                    bar.set_postfix(loss=f"{mb_loss:.4f}", refresh=False)
                if callback is not None:
                    callback(step, mb_loss)
            test_loss, test_acc = evaluate()
            stats = {"train_loss": acc[0] / max(acc[2], 1), "train_acc": acc[1] / max(acc[2], 1),
                     "test_loss": test_loss, "test_acc": test_acc, "step": step}
            acc = [0.0, 0.0, 0.0]
            epochs_done = epoch + 1
            if record:
                recorder.epoch(epoch + 1, stats, checkpoint())
                recorder.commit(snapshot(epoch + 1, 0))
                last_commit_step, last_commit_time = step, time.monotonic()
            bar.set_postfix(loss=f"{mb_loss:.4f}", test_acc=f"{test_acc:.3f}", refresh=False)
        if record:
            recorder.finish()
        seconds = time.perf_counter() - t_start
        bar.close()
        if stats is None:   # resumed at the very end
            stats = {"train_loss": math.nan, "train_acc": math.nan, "test_loss": math.nan,
                     "test_acc": math.nan}
        return TrainResult(path=path, n_steps=step, n_rows=rows, n_dims=n_rec, epochs=E,
                           train_loss=stats["train_loss"], train_acc=stats["train_acc"],
                           test_loss=stats["test_loss"], test_acc=stats["test_acc"],
                           seconds=seconds, steps_run=steps_run, resumed_at=resumed_at)
    except BaseException:
        if recorder is not None:
            recorder.abort()
            if recorder.error is not None:
                raise RecordingError(recorder._error_line()) from None
        elif f is not None:
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass
        raise
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_det_warn)
        dd.close()


def _layout(items, dtypes: bool = False) -> dict:
    names, shapes, sizes, offsets, types = [], [], [], [], []
    off = 0
    for name, t in items:
        names.append(name)
        shapes.append(",".join(str(s) for s in t.shape))
        sizes.append(t.numel())
        offsets.append(off)
        types.append(str(t.dtype).replace("torch.", ""))
        off += t.numel()
    out = {"names": names, "shapes": shapes, "offsets": offsets, "sizes": sizes}
    if dtypes:
        out["dtypes"] = types
    return out


def _bar(total: int, initial: int, enabled: bool):
    return progress_bar(total, unit="steps", enabled=enabled, initial=initial, dynamic_ncols=True)
