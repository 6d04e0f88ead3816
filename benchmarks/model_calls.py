"""Model calls of a paper-scale comparison: prefixes per call, with and without cross-sequence batching.

A random-weight p = 29 checkpoint of the paper's context (33 examples, so k up to 32; small
width so the CPU finishes) is compared with the reference solvers at ``--k 1..32`` on
``--tasks`` tasks with the authors' sequence plus 16 random ones (17 sequences: the
paper-scale command of docs/scale-and-shards.md). The engine's chunk bound gives one task
per chunk at this size, so without batching every model call holds one prefix; with
``batch_sequences`` (the default on CUDA) one call holds every sequence's prefix of a k.
Both run here on the CPU, in one process, alternating; reported: model calls, prefixes,
prefixes per call, model seconds, and whether the answers agree (probabilities to 1e-4).

    python benchmarks/model_calls.py [--tasks 4] [--save benchmarks/results/model_calls.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import emit

from algos.solvers import reference_solvers
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences, select_tasks
from model.checkpoint import load_checkpoint
from model.predictor import ModelPredictor
from model.testing import tiny_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--save")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ck = load_checkpoint(
            tiny_checkpoint(Path(tmp) / "p29.pt", p=29, n_base_tasks=8, d_model=64, n_layer=2, n_head=2, n_examples=33)
        )
    setting = ck.setting
    tasks = select_tasks(setting, "ood")[: args.tasks]
    seqs = build_sequences(29, 32, n_random=16, seed=0)
    ks = tuple(range(1, 33))
    refs = [r for r in reference_solvers(setting) if r.name in ("ratio_matching", "modular_regression")]
    result: dict = {"benchmark": "model_calls", "p": 29, "tasks": len(tasks), "sequences": len(seqs), "ks": len(ks)}
    cells = {}
    for mode in (False, True):
        pred = ModelPredictor(ck, device="cpu", batch_prefixes=None, batch_sequences=mode)
        t0 = time.perf_counter()
        res = run_comparison(setting, tasks, seqs, ks, pred, refs)
        wall = time.perf_counter() - t0
        key = "batched" if mode else "per_sequence"
        cells[key] = res.cells
        result[key] = {
            "calls": pred.stats["calls"],
            "prefixes": pred.stats["prefixes"],
            "prefixes_per_call": round(pred.stats["prefixes"] / pred.stats["calls"], 2),
            "model_seconds": round(res.timings["model"], 2),
            "total_seconds": round(wall, 2),
        }
        print(f"{key}: {result[key]}")
    a, b = cells["per_sequence"], cells["batched"]
    result["same_answers"] = bool((a["pred_model"].to_numpy() == b["pred_model"].to_numpy()).all())
    result["max_abs_dp_true"] = float(np.nanmax(np.abs(a["p_true_model"].to_numpy() - b["p_true_model"].to_numpy())))
    result["calls_ratio"] = round(result["per_sequence"]["calls"] / result["batched"]["calls"], 1)
    emit(result, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
