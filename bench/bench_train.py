"""Recording overhead of `anodiff train`: time per SGD step with and without recording every step.

ResNet-20 (0.27 M parameters), batch 128, 3×32×32 synthetic CIFAR-sized inputs,
CPU, one intra-op thread. Each round trains 1 epoch of 16 steps; the time per step is measured from
the end of the first step (warm-up excluded) to the return of `train`, so
that with recording it includes every block write, commit and the final drain
of the writer thread. Run with

    PYTHONPATH=python python -m pytest bench/bench_train.py --benchmark-only -s

and compare the two rows: ratio = record / no-record (target ≤ 1.15).
"""
from __future__ import annotations

import time

import pytest
import torch

from anodiff.train import train

DATASET = "synthetic:n=2048,test=128,shape=3x32x32,classes=10"
THREADS = 1   # intra-op threads (the shared 2-core host is oversubscribed otherwise)
RESULTS: dict[str, float] = {}


@pytest.mark.parametrize("mode", ["no-record", "record"])
def test_step_time_resnet20_b128(benchmark, tmp_path, mode):
    def run():
        out = None if mode == "no-record" else tmp_path / "bench.h5"
        t0 = None

        def cb(step, loss):
            nonlocal t0
            if step == 1:
                t0 = time.perf_counter()

        prev = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        try:
            res = train(out, model="resnet20", dataset=DATASET, epochs=1, batch_size=128,
                        overwrite=True, progress=False, device="cpu", callback=cb)
        finally:
            torch.set_num_threads(prev)
        per_step = (time.perf_counter() - t0) / (res.n_steps - 1)
        return per_step

    per_step = benchmark.pedantic(run, rounds=1, iterations=1)
    RESULTS[mode] = min(RESULTS.get(mode, float("inf")), per_step)
    benchmark.extra_info["seconds_per_step_last_round"] = per_step
    if len(RESULTS) == 2:
        ratio = RESULTS["record"] / RESULTS["no-record"]
        print(f"\nresnet20 b128 CPU: {RESULTS['no-record']:.3f} s/step without recording, "
              f"{RESULTS['record']:.3f} s/step recording every step: ratio {ratio:.3f}")
