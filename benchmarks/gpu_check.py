"""The GPU check: everything the suite does on a GPU, timed and checked, in one script (< 10 min).

On a CUDA device (``--device cuda``, the default when one is present):

1. **training** at the paper-d4 shape (d_model 512, depth 4, 4 heads, 32 examples, p = 29,
   the authors' 384 tasks, batch ``--batch``): synchronized step time in bf16 autocast
   eager and with ``torch.compile``, tokens/s, MFU against the device's bf16 matmul peak
   measured in the same run, the input pipeline's share of a step, peak memory, the loss
   finite;
2. **resume**: a short ``compare train`` run stopped and resumed on the device, its
   ``last.pt`` loaded on the CPU (same weights);
3. **predictor parity** on the bundled ``d4.pt``: device fp32 against CPU fp32 (max |dp|,
   bar 1e-5), and the bf16 flip rate (answers that change);
4. **ablate** plain rows equal ``compare run`` on the device;
5. **compare run** on a random p = 29 paper-shaped checkpoint: cells/s and prefixes/s at
   several batch sizes, model calls, peak memory against the predictor's estimate;
6. **inspect** on the device;
7. with two or more GPUs, a 2-process ``torchrun`` training run against one process (same
   final weights).

``--reduced`` runs the same code at toy sizes on whatever device is given (the CPU in the
test suite, so the script cannot rot): fp32 instead of bf16, no compile, a tiny model.
Prints human lines, then one JSON object as the last line.

    python benchmarks/gpu_check.py [--device cuda] [--batch 384] [--save benchmarks/results/gpu_check.json]
    python benchmarks/gpu_check.py --reduced --device cpu
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import emit

ROOT = Path(__file__).resolve().parents[1]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_matmul_tflops(dev: torch.device, dtype: torch.dtype, n: int) -> float:
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        _sync(dev)
        best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * n**3 / best / 1e12


def check_training(dev: torch.device, reduced: bool, batch: int, steps: int) -> dict:
    from algos.tasks import TaskSetting
    from model.config import ModelConfig
    from model.data import TrainBatches
    from model.device import autocast
    from model.gpt import GPT

    if reduced:
        setting = TaskSetting.build(7, n_base_tasks=4, alpha=0.8, task_seed=1, split_seed=0)
        mcfg = ModelConfig(p=7, vocab_size=7, d_model=32, n_head=2, n_layer=2, n_examples=8)
        batch, precision, compile_modes = 4 * len(setting.pretrain_tasks), "fp32", [False]
    else:
        setting = TaskSetting.authors_replay(29, n_base_tasks=96, alpha=0.8, task_seed=1, split_seed=0)
        mcfg = ModelConfig(p=29, vocab_size=47, d_model=512, n_head=4, n_layer=4, n_examples=32)
        precision, compile_modes = "bf16", [False, True]
    data = TrainBatches(setting, n_examples=mcfg.n_examples, batch_size=batch, seed=1)
    out: dict = {"batch": batch, "tokens_per_step": batch * 3 * mcfg.n_examples, "precision": precision}
    t0 = time.perf_counter()
    for s in range(5):
        data.batch(s)
    out["input_ms"] = round(1e3 * (time.perf_counter() - t0) / 5, 2)
    d, L, T, V = mcfg.d_model, mcfg.n_layer, 3 * mcfg.n_examples, mcfg.vocab_size
    flops = batch * T * (6 * 12 * L * d * d + 6 * d * V + 12 * L * d * T)
    peak = _peak_matmul_tflops(dev, torch.bfloat16 if precision == "bf16" else torch.float32, 512 if reduced else 8192)
    out["matmul_peak_tflops"] = round(peak, 2)
    for compiled in compile_modes:
        torch.manual_seed(0)
        net = GPT(mcfg).to(dev)
        opt = torch.optim.AdamW(net.param_groups(0.1), lr=1e-4, fused=dev.type == "cuda")
        fwd = torch.compile(net) if compiled else net
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times, losses = [], []
        for step in range(steps):
            idx, tgt = (t.to(dev, non_blocking=True) for t in data.batch(step))
            _sync(dev)
            t0 = time.perf_counter()
            with autocast(dev, precision):
                _, loss = fwd(idx, tgt)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            _sync(dev)
            times.append(time.perf_counter() - t0)
            losses.append(float(loss.detach()))
        step_s = statistics.median(times[2:] if len(times) > 4 else times)
        key = "compiled" if compiled else "eager"
        out[key] = {
            "step_ms": round(1e3 * step_s, 2),
            "tokens_per_s": round(out["tokens_per_step"] / step_s),
            "mfu": round(flops / step_s / 1e12 / peak, 4),
            "input_share": round(out["input_ms"] / 1e3 / (step_s + out["input_ms"] / 1e3), 3),
            "loss_finite": bool(np.isfinite(losses).all()),
            "peak_memory_gb": round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None,
        }
        print(f"training ({key}): {out[key]}")
    return out


def check_resume(dev: torch.device, tmp: Path) -> dict:
    from compare.cli.main import main
    from model.checkpoint import load_checkpoint

    args = [
        "train",
        "--preset",
        "smoke",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--save-every",
        "20",
        "--no-progress",
        "--device",
        dev.type,
        "--threads",
        "1",
    ]
    a, b = tmp / "resumed", tmp / "straight"
    assert main([*args, "--out", str(a), "--stop-at", "20"]) == 0
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b)]) == 0
    ca, cb = load_checkpoint(a / "last.pt", map_location="cpu"), load_checkpoint(b / "last.pt", map_location="cpu")
    diff = max(float((ca.state_dict[k].float() - cb.state_dict[k].float()).abs().max()) for k in cb.state_dict)
    out = {"resumed_step": ca.step, "max_abs_weight_diff": diff, "loaded_on_cpu": True}
    print(f"resume: {out}")
    return out


def check_parity(dev: torch.device, reduced: bool) -> dict:
    import compare

    kw = dict(k=(2, 8) if reduced else range(1, 9), tasks="ood", n_boot=0)
    cpu = compare.compare_checkpoint("d4.pt", device="cpu", **kw).cells()
    fp32 = compare.compare_checkpoint("d4.pt", device=dev.type, **kw).cells()
    bf16 = compare.compare_checkpoint("d4.pt", device=dev.type, precision="bf16", **kw).cells()
    out = {
        "max_abs_dp_fp32": float(np.abs(cpu["p_true_model"].to_numpy() - fp32["p_true_model"].to_numpy()).max()),
        "fp32_flips": int((cpu["pred_model"].to_numpy() != fp32["pred_model"].to_numpy()).sum()),
        "bf16_flip_rate": float((cpu["pred_model"].to_numpy() != bf16["pred_model"].to_numpy()).mean()),
        "cells": len(cpu),
    }
    out["parity_ok"] = out["max_abs_dp_fp32"] < 1e-5
    print(f"parity: {out}")
    return out


def check_ablate(dev: torch.device) -> dict:
    import compare

    run = compare.compare_checkpoint("d4.pt", k=[2, 8], tasks="ood", n_boot=50, device=dev.type)
    abl = compare.ablate("d4.pt", k=[2, 8], tasks="ood", components="L0H0", n_boot=50, device=dev.type)
    none = abl.table[abl.table["component"] == "none"].set_index(["split", "k"])["model_accuracy"]
    model = run.summary[run.summary["predictor"] == "model"].set_index(["split", "k"])["accuracy"]
    out = {"plain_rows_equal_run": bool(np.array_equal(none.to_numpy(), model.to_numpy()))}
    print(f"ablate: {out}")
    return out


def check_compare_run(dev: torch.device, reduced: bool, tmp: Path) -> dict:
    from algos.solvers import reference_solvers
    from compare.engine.comparison import run_comparison
    from compare.engine.grid import build_sequences, select_tasks
    from model.checkpoint import load_checkpoint
    from model.predictor import ModelPredictor
    from model.testing import tiny_checkpoint

    shape = dict(d_model=64, n_layer=2, n_head=2) if reduced else dict(d_model=512, n_layer=4, n_head=4)
    ck = load_checkpoint(tiny_checkpoint(tmp / "p29.pt", p=29, n_base_tasks=8, n_examples=33, **shape))
    tasks = select_tasks(ck.setting, "ood")[: 1 if reduced else 4]
    seqs = build_sequences(29, 32, n_random=2 if reduced else 16, seed=0)
    ks = (1, 8, 32) if reduced else tuple(range(1, 33))
    refs = [r for r in reference_solvers(ck.setting) if r.name == "ratio_matching"]
    out: dict = {"tasks": len(tasks), "sequences": len(seqs), "ks": len(ks), "by_batch": {}}
    for batch in (4, None) if reduced else (16, 64, 256, None):
        pred = ModelPredictor(ck, device=dev.type, batch_prefixes=batch)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        res = run_comparison(ck.setting, tasks, seqs, ks, pred, refs)
        wall = time.perf_counter() - t0
        row = {
            "cells_per_s": round(len(res.cells) / wall),
            "prefixes_per_s": round(pred.stats["prefixes"] / wall, 1),
            "calls": pred.stats["calls"],
            "prefixes_per_call": round(pred.stats["prefixes"] / pred.stats["calls"], 1),
            "oom_retries": pred.stats["oom_retries"],
            "memory_factor": pred.memory_factor,
        }
        if dev.type == "cuda":
            row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 3)
        out["by_batch"][str(batch or "auto")] = row
        print(f"compare run, batch {batch or 'auto'}: {row}")
    return out


def check_inspect(dev: torch.device) -> dict:
    import compare

    t0 = time.perf_counter()
    res = compare.inspect_checkpoint("d4.pt", device=dev.type, layers=[0])
    out = {"seconds": round(time.perf_counter() - t0, 2), "scores": len(res.scores)}
    print(f"inspect: {out}")
    return out


def check_torchrun(tmp: Path) -> dict:
    args = ["train", "--preset", "smoke", "--steps", "40", "--eval-every", "20", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "compare", *args, "--out", str(tmp / "one")], env=env, cwd=ROOT)
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "-m",
            "compare",
            *args,
            "--out",
            str(tmp / "two"),
        ],
        env=env,
        cwd=ROOT,
    )
    from model.checkpoint import load_checkpoint

    a, b = load_checkpoint(tmp / "one" / "last.pt"), load_checkpoint(tmp / "two" / "last.pt")
    diff = max(float((a.state_dict[k] - b.state_dict[k]).abs().max()) for k in a.state_dict)
    return {"returncodes": [one.returncode, two.returncode], "max_abs_weight_diff": diff}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reduced", action="store_true", help="toy sizes on any device (the test suite's form)")
    ap.add_argument("--batch", type=int, default=384, help="training batch at the paper shape (default 384)")
    ap.add_argument("--steps", type=int, default=12, help="training steps timed per mode")
    ap.add_argument("--save")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    t_start = time.perf_counter()
    result: dict = {"benchmark": "gpu_check", "device": args.device, "reduced": args.reduced}
    if dev.type == "cuda":
        result["device_name"] = torch.cuda.get_device_name(dev)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        result["training"] = check_training(dev, args.reduced, args.batch, 4 if args.reduced else args.steps)
        result["resume"] = check_resume(dev, tmp)
        result["parity"] = check_parity(dev, args.reduced)
        result["ablate"] = check_ablate(dev)
        result["compare_run"] = check_compare_run(dev, args.reduced, tmp)
        result["inspect"] = check_inspect(dev)
        if dev.type == "cuda" and torch.cuda.device_count() >= 2:
            result["torchrun"] = check_torchrun(tmp)
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    ok = (
        result["parity"]["parity_ok"]
        and result["ablate"]["plain_rows_equal_run"]
        and all(v["loss_finite"] for k, v in result["training"].items() if isinstance(v, dict))
    )
    result["ok"] = bool(ok)
    emit(result, args.save)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
