"""`anodiff train`: train a ResNet with SGD and record every step to HDF5."""
from __future__ import annotations

import argparse

from ._common import add_progress_flag, positive_int


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _grads(text: str) -> str:
    t = text.strip().lower()
    if t in ("all", "none") or (t.isdigit() and int(t) > 0):
        return t
    raise argparse.ArgumentTypeError(f"expected a positive integer K or 'all', got {text!r}")


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a ResNet with plain SGD, recording every step to HDF5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a CIFAR-style ResNet (depth 6n+2, or its shortcut-free '_noshort' twin) "
                    "with SGD and record the weight trajectory to an HDF5 run file: row t of "
                    "/weights is w_t, the weights before update t, /loss[t] the minibatch loss at "
                    "w_t; per-epoch train/test loss and accuracy and a checkpoint per epoch. "
                    "Options left out take the defaults below for a new run and the recorded "
                    "values with --resume.",
        epilog="examples:\n"
               "  anodiff train --model resnet14 --dataset digits --epochs 2 --out run.h5\n"
               "  anodiff train --model resnet20 --dataset cifar10:~/data/cifar-10-batches-py \\\n"
               "                --epochs 500 --batch-size 1024 --record-subset 100000 --out r20.h5\n"
               "  anodiff train --out r20.h5 --resume          # continue a killed run\n"
               "  torchrun --nproc_per_node 4 -m anodiff train ...   # data-parallel (DDP)")
    p.add_argument("--model", default=None,
                   help="resnet8|14|20|32|44|56|110, optionally with _noshort (default resnet14)")
    p.add_argument("--dataset", default=None,
                   help="digits (bundled with scikit-learn, default), mnist:DIR (IDX files), "
                        "cifar10:DIR (python pickle batches) or synthetic[:n=..,shape=CxHxW,classes=..]")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs (default 10)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="global minibatch size (default 128; split across processes under torchrun)")
    p.add_argument("--lr", type=float, default=None, help="learning rate η (default 0.1)")
    p.add_argument("--momentum", type=_nonneg_float, default=None, help="SGD momentum (default 0)")
    p.add_argument("--weight-decay", type=_nonneg_float, default=None, help="L2 weight decay (default 0)")
    p.add_argument("--loss", choices=["ce", "kl"], default=None,
                   help="cross-entropy or KL divergence to one-hot targets (default ce)")
    p.add_argument("--seed", type=int, default=None, help="seed of weights and data order (default 0)")
    p.add_argument("--drop-last", action="store_const", const=True, default=None,
                   help="drop the last, smaller minibatch of each epoch")
    g = p.add_argument_group("recording")
    g.add_argument("--out", default="run.h5", help="run file to write (default run.h5)")
    g.add_argument("--record-every", type=positive_int, default=None,
                   help="record every k-th step (default 1: every step)")
    g.add_argument("--record-subset", type=positive_int, default=None, metavar="K",
                   help="record only K seeded random coordinates (indices in /weights_index)")
    g.add_argument("--record-grads", type=_grads, default=None, metavar="K|all",
                   help="record the minibatch gradient at K random coordinates, or all of it")
    g.add_argument("--eval-batch", type=positive_int, default=None, metavar="N",
                   help="record the loss on N fixed training samples at every recorded step")
    g.add_argument("--compression", default=None, metavar="none|lzf|gzip[:L]",
                   help="HDF5 shuffle + lossless compression of /weights and /grads (default none)")
    g.add_argument("--resume", action="store_true", help="continue the killed run in --out")
    g.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    add_progress_flag(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..train import train  # noqa: PLC0415

    res = train(args.out, model=args.model, dataset=args.dataset, epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                weight_decay=args.weight_decay, loss=args.loss, seed=args.seed,
                record_every=args.record_every, record_subset=args.record_subset,
                record_grads=args.record_grads, eval_batch=args.eval_batch,
                compression=args.compression, drop_last=args.drop_last, resume=args.resume,
                overwrite=args.overwrite, device=args.device, progress=not args.no_progress)
    import os  # noqa: PLC0415

    if int(os.environ.get("RANK", "0") or 0) == 0:
        print(f"{res.n_steps} steps, {res.n_rows} rows x {res.n_dims} dims -> {res.path}; "
              f"train loss {res.train_loss:.4f} acc {res.train_acc:.3f}, "
              f"test loss {res.test_loss:.4f} acc {res.test_acc:.3f}")
    return 0
