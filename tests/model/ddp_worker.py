"""Run under ``torchrun`` (gloo, CPU): does each rank end a step with the whole batch's gradient?

Each rank trains the same float64 smoke-preset model through the trainer's own
:func:`model.train.data_parallel` and :func:`model.train.accumulate_step_gradients`, and
compares its ``.grad`` after every step with the gradient a single process computes on the
whole global batch. float64 makes the comparison meaningful to ~1e-12 whatever the CPU's
kernels or summation order (fp32 would leave ~1e-6 of honest rounding). ``--fault``
injects one of the data-parallel bugs the test must catch:

- ``drop-rank``: rank 1 contributes a zero gradient (its loss times 0);
- ``no-divide``: the ranks' gradients are summed, not averaged (loss times world size);
- ``same-shard``: every rank trains on rank 0's slice of the batch.

Writes ``{"rank": r, "max_rel_err": e, "per_step": [...]}`` to ``OUT/rank<r>.json``, where
the error of a step is the largest over parameters of max|g - g_ref| / max|g_ref|.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from model.config import get_preset
from model.data import TrainBatches
from model.device import init_distributed, shutdown_distributed
from model.gpt import GPT
from model.train import accumulate_step_gradients, data_parallel

FAULTS = ("none", "drop-rank", "no-divide", "same-shard")
STEPS = 3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--fault", choices=FAULTS, default="none")
    args = ap.parse_args()

    info, device = init_distributed("cpu")
    torch.set_num_threads(1)
    preset = get_preset("smoke")
    setting = preset.setting.build()
    torch.manual_seed(0)
    net = GPT(preset.model).double()
    reference = copy.deepcopy(net)  # single process, whole batch
    batches = TrainBatches(setting, preset.model.n_examples, batch_size=32, seed=5)
    whole = TrainBatches(setting, preset.model.n_examples, batch_size=32, seed=5)

    if args.fault == "same-shard":
        own = batches.batch
        batches.batch = lambda step, rank=0, world=1: own(step, 0, world)
    if args.fault in ("drop-rank", "no-divide"):
        scale = float(info.world) if args.fault == "no-divide" else float(info.rank != 1)
        forward = net.forward
        net.forward = lambda idx, targets=None: (lambda out: (out[0], out[1] * scale))(forward(idx, targets))

    model = data_parallel(net, info, device)
    errors = []
    for step in range(STEPS):
        net.zero_grad(set_to_none=True)
        accumulate_step_gradients(model, batches, step, info, device, "fp32")
        reference.zero_grad(set_to_none=True)
        idx, tgt = whole.batch(step, 0, 1)
        reference(idx, tgt)[1].backward()
        err = 0.0
        for (_, g), (_, r) in zip(net.named_parameters(), reference.named_parameters(), strict=True):
            ref = r.grad
            err = max(err, float((g.grad - ref).abs().max() / ref.abs().max().clamp_min(1e-300)))
        errors.append(err)
    Path(args.out, f"rank{info.rank}.json").write_text(
        json.dumps({"rank": info.rank, "world": info.world, "max_rel_err": max(errors), "per_step": errors})
    )
    shutdown_distributed()


if __name__ == "__main__":
    main()
