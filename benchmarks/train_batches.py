"""Time one rank's training-batch construction at the paper-d4 shape, for 1/2/4/8 simulated ranks.

The paper's d = 4 run: p = 29, 384 pre-training tasks (the authors' replay of 96 base
tasks), alpha = 0.8 (673 train inputs), 32 examples a sequence, global batch 1536. Each
simulated rank calls ``TrainBatches.batch(step, rank, world)`` as under ``torchrun`` (one
intra-op thread per rank); the figure is the median time per call of rank 0, and the
check that the slices of all ranks join into the one global batch (bit for bit) is made
for every world size. ``--baseline`` also times the construction as it was before ranks
built slices (the whole global batch on every rank, then the slice), in the same run.

    python benchmarks/train_batches.py [--steps 5] [--save benchmarks/results/train_batches.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from machine import emit

from algos.tasks import TaskSetting
from model.data import TrainBatches, _mix, encode, loss_targets


def whole_batch_then_slice(tb: TrainBatches, step: int, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The construction before this change: every rank builds the whole global batch."""
    g = torch.Generator().manual_seed(_mix(tb.seed, step))
    tasks, inputs, n, p = tb._tasks, tb._inputs, tb.n_examples, tb.setting.p
    B, m = tasks.shape[0] * tb.per_task, inputs.shape[0]
    pick = torch.rand(B, m, generator=g).argsort(dim=1)[:, :n]
    xy = inputs[pick]
    ab = tasks.repeat_interleave(tb.per_task, dim=0)
    ex = torch.cat([xy, ((xy * ab[:, None, :]).sum(-1) % p)[..., None]], dim=-1)
    ex = ex[torch.randperm(B, generator=g)]
    local = B // world
    ex = ex[rank * local : (rank + 1) * local]
    return encode(ex), loss_targets(ex)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--save")
    args = ap.parse_args()
    torch.set_num_threads(1)
    setting = TaskSetting.authors_replay(29, n_base_tasks=96, alpha=0.8, task_seed=1, split_seed=0)
    tb = TrainBatches(setting, n_examples=32, batch_size=1536, seed=1)
    result: dict = {
        "benchmark": "train_batches",
        "p": 29,
        "n_tasks": len(setting.pretrain_tasks),
        "batch": 1536,
        "n_examples": 32,
        "threads": 1,
        "per_world": {},
    }
    for world in (1, 2, 4, 8):
        new_t, old_t = [], []
        for step in range(args.steps):
            t0 = time.perf_counter()
            idx, _ = tb.batch(step, 0, world)
            new_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref_idx, _ = whole_batch_then_slice(tb, step, 0, world)
            old_t.append(time.perf_counter() - t0)
            assert torch.equal(idx, ref_idx)
        joined = torch.cat([tb.batch(0, r, world)[0] for r in range(world)])
        identical = bool(torch.equal(joined, whole_batch_then_slice(tb, 0, 0, 1)[0]))
        row = {
            "rank0_ms": round(1e3 * statistics.median(new_t), 2),
            "whole_batch_ms": round(1e3 * statistics.median(old_t), 2),
            "bit_identical": identical,
        }
        result["per_world"][str(world)] = row
        print(
            f"world {world}: rank 0 builds its slice in {row['rank0_ms']} ms "
            f"(whole batch then slice: {row['whole_batch_ms']} ms); slices join bit for bit: {identical}"
        )
    w1, w8 = result["per_world"]["1"]["rank0_ms"], result["per_world"]["8"]["rank0_ms"]
    result["speedup_8_ranks"] = round(w1 / w8, 2)
    emit(result, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
