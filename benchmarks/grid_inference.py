"""The k-shot grid through the transformer: prefix reuse (KV cache) against full recomputation.

A randomly initialized d_model-128, depth-4, 4-head model at p = 29 (a tiny checkpoint
written to a temporary folder with ``model.testing.tiny_checkpoint``) answers every one
of the p^2 queries after the same k = 8 examples of each of ``--tasks`` tasks (the
paper's grid: one input sequence shared by all tasks, labels differ).

- prefix reuse: ``ModelPredictor.predict_grid`` (prefix once, then one token per x and
  one per query);
- full recomputation: the base class's ``Predictor.predict_grid`` on the same predictor,
  which runs ``predict`` on every (prefix, query) sequence of 3k + 2 tokens. It is timed
  on the first ``--full-tasks`` tasks and scaled per task.

The two must agree: the largest absolute difference of the predicted probabilities (and
of their logarithms) over the tasks both computed is reported, with the share of cells
whose arg-max differs. At initialization (std 0.02) the output is close to uniform and
such a check would say little, so every weight matrix is first rescaled to std
``--weight-std``: the distributions then differ from cell to cell and are not one-hot
(``mean_top_prob`` shows how peaked they are).
Times are CPU time of this process (``--threads`` 1 by default, so it is compute time
even on a busy machine) and wall time. Prints human lines, then one JSON object last.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import emit

from algos.prompts import make_examples, query_grid, random_sequences
from algos.solvers.base import Predictor
from model.checkpoint import load_checkpoint
from model.predictor import ModelPredictor
from model.testing import tiny_checkpoint


def timed(fn):
    """(result, wall seconds, process CPU seconds)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=32, help="tasks (prefixes) in the batch")
    ap.add_argument("--full-tasks", type=int, default=4, help="tasks timed with full recomputation (scaled per task)")
    ap.add_argument("--k", type=int, default=8, help="examples before each query")
    ap.add_argument("--p", type=int, default=29)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weight-std", type=float, default=0.2,
                    help="rescale every weight matrix to this std (0: keep init)")
    ap.add_argument("--save", metavar="PATH",
                    help="also write the JSON line there (e.g. benchmarks/results/grid_inference.json)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    p, k = args.p, args.k
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_checkpoint(Path(tmp) / "bench.pt", p=p, n_base_tasks=2, d_model=128, n_layer=4, n_head=4,
                               n_examples=32, seed=args.seed)
        ck = load_checkpoint(path)
    if args.weight_std > 0:
        for w in ck.state_dict.values():  # the tied embedding is stored twice (wte, lm_head): same factor
            if w.ndim == 2:
                w.mul_(args.weight_std / float(w.std()))
    mp = ModelPredictor(ck, device="cpu")
    rng = np.random.default_rng(args.seed)
    tasks = np.stack([rng.integers(0, p, args.tasks), rng.integers(0, p, args.tasks)], axis=1)  # (n, 2)
    sequence = random_sequences(p, 1, k, seed=args.seed)[0]  # (k, 2), shared by all tasks
    examples = make_examples(p, tasks, sequence, k)  # (n, k, 3)
    queries = query_grid(p)  # (p^2, 2)
    n_full = min(args.full_tasks, args.tasks)

    mp.predict_grid(examples[:1], queries[:64])  # warm-up (allocations, kernels)
    fast, fast_wall, fast_cpu = timed(lambda: mp.predict_grid(examples, queries))
    full, full_wall, full_cpu = timed(lambda: Predictor.predict_grid(mp, examples[:n_full], queries))

    diff = float(np.abs(fast.probs[:n_full] - full.probs).max())
    tiny = np.finfo(np.float32).tiny
    log_diff = float(np.abs(np.log(fast.probs[:n_full] + tiny) - np.log(full.probs + tiny)).max())
    top = float(full.probs.max(-1).mean())
    argmax_mismatch = float((fast.pred[:n_full] != full.pred).mean())
    cells = args.tasks * queries.shape[0]
    scale = args.tasks / n_full
    full_cpu_all, full_wall_all = full_cpu * scale, full_wall * scale
    result = {
        "benchmark": "grid_inference",
        "p": p,
        "k": k,
        "tasks": args.tasks,
        "queries_per_task": int(queries.shape[0]),
        "cells": cells,
        "d_model": ck.model_config.d_model,
        "n_layer": ck.model_config.n_layer,
        "n_head": ck.model_config.n_head,
        "threads": threads,
        "prefix_reuse_seconds_cpu": round(fast_cpu, 4),
        "prefix_reuse_seconds_wall": round(fast_wall, 4),
        "full_recompute_tasks_timed": n_full,
        "full_recompute_seconds_cpu": round(full_cpu_all, 4),
        "full_recompute_seconds_wall": round(full_wall_all, 4),
        "full_recompute_scaled": n_full < args.tasks,
        "prefix_reuse_speedup": round(full_cpu_all / fast_cpu, 2),
        "prefix_reuse_speedup_wall": round(full_wall_all / fast_wall, 2),
        "cells_per_second_prefix_reuse": round(cells / fast_cpu, 1),
        "cells_per_second_full_recompute": round(cells / full_cpu_all, 1),
        "max_abs_prob_diff": diff,
        "max_abs_log_prob_diff": log_diff,
        "argmax_mismatch_fraction": argmax_mismatch,
        "mean_top_prob": round(top, 4),
        "torch": torch.__version__,
    }
    print(f"model: d_model {ck.model_config.d_model}, depth {ck.model_config.n_layer}, random weights, p = {p}, "
          f"{threads} thread(s)")
    print(f"grid: {args.tasks} tasks x {queries.shape[0]} queries at k = {k} ({cells:,} cells)")
    print(f"prefix reuse: {fast_cpu:.3f} s CPU ({fast_wall:.3f} s wall), {cells / fast_cpu:,.0f} cells/s")
    print(f"full recomputation: {full_cpu:.3f} s CPU for {n_full} task(s) -> {full_cpu_all:.3f} s for {args.tasks} "
          f"({cells / full_cpu_all:,.0f} cells/s)")
    print(f"speedup {full_cpu_all / fast_cpu:.1f}x (CPU time), {full_wall_all / fast_wall:.1f}x (wall)")
    print(f"agreement on {n_full} task(s): max |prob difference| {diff:.2e}, max |log-prob difference| {log_diff:.2e}, "
          f"arg-max differs on {argmax_mismatch:.2%} of cells (mean top probability {top:.2f})")
    emit(result, args.save)
    return result


if __name__ == "__main__":
    main()
