"""Time one training step (forward + backward + AdamW) and report model FLOP utilization (MFU).

The model is the project's GPT at d_model 128, depth 4, 4 heads, p = 29 (vocabulary 29),
trained on sequences of ``--tokens`` tokens (default 96 = 32 examples) at batch
``--batch`` (default 64), in fp32 on the CPU with ``--threads`` intra-op threads.

Model FLOPs per step (the usual accounting: a multiply-add is 2 FLOPs, the backward pass
costs twice the forward):

    FLOPs = B * T * (6 * N + 6 * d * V + 12 * L * d * T)

with N = 12 * L * d^2 the non-embedding matrix parameters (q, k, v, o: 4d^2; MLP: 8d^2),
6 * d * V the tied output layer's product, and 12 * L * d * T the attention scores and
weighted sums over all T positions (the PaLM convention; the causal half is not
subtracted). LayerNorm, softmax, RoPE and the optimizer are not counted.

The peak is measured in the same process with the same thread count: ``torch.mm`` of two
square fp32 matrices, 2 n^3 FLOPs, best over several repetitions and sizes
(``--peak-sizes``; the largest may spill the shared L3 cache), taken before and after
the training steps. ``mfu`` = achieved FLOP/s (median step) / that peak.

Two clocks are kept for every timing: wall time, and this process's CPU time. On a
machine shared with other busy processes the wall clock also counts the time the OS
gives to them, so with one thread (the default) ``mfu`` uses CPU time, which is the
compute time of this process alone; ``mfu_wall`` is reported beside it. With more
threads CPU time sums over threads, so ``mfu`` falls back to wall time.

Prints human-readable lines, then one JSON object as the last line.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from machine import emit, matmul_peak

from model.config import ModelConfig
from model.gpt import GPT


def model_flops_per_step(cfg: ModelConfig, batch: int, tokens: int) -> float:
    """The formula of the module docstring."""
    d, L, V, T = cfg.d_model, cfg.n_layer, cfg.vocab_size, tokens
    n_matrix = 12 * L * d * d
    return float(batch * T * (6 * n_matrix + 6 * d * V + 12 * L * d * T))


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def make_batch(cfg: ModelConfig, batch: int, tokens: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sequences x y z ...; loss on z, predicted at the y positions (as in training)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, cfg.p, (batch, tokens), generator=g)
    targets = torch.full_like(idx, -100)
    targets[:, 1::3] = idx[:, 2::3]
    return idx, targets


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="sequences per step")
    ap.add_argument("--tokens", type=int, default=96, help="tokens per sequence (3 per example)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (peak uses the same)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=15, help="timed steps (median reported)")
    ap.add_argument("--peak-sizes", type=int, nargs="+", default=[512, 1024, 2048],
                    help="sides of the square matmuls for the peak (the best is used)")
    ap.add_argument("--peak-reps", type=int, default=5)
    ap.add_argument("--save", metavar="PATH",
                    help="also write the JSON line there (e.g. benchmarks/results/train_step.json)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    cfg = ModelConfig(p=29, vocab_size=29, d_model=128, n_head=4, n_layer=4, n_examples=32)
    net = GPT(cfg).train()
    opt = torch.optim.AdamW(net.param_groups(2.0), lr=1e-4, betas=(0.9, 0.98), eps=1e-8)
    idx, targets = make_batch(cfg, args.batch, args.tokens)

    def peaks() -> dict[int, tuple[float, float]]:
        return {n: matmul_peak(n, args.peak_reps) for n in args.peak_sizes}

    def step() -> None:
        _, loss = net(idx, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    before = peaks()
    for _ in range(args.warmup):
        step()
    times = [timed(step) for _ in range(args.steps)]
    after = peaks()

    by_size = {n: (max(before[n][0], after[n][0]), max(before[n][1], after[n][1])) for n in args.peak_sizes}
    peak_wall = max(v[0] for v in by_size.values())
    peak_cpu = max(v[1] for v in by_size.values())
    wall = statistics.median(t[0] for t in times)
    cpu = statistics.median(t[1] for t in times)
    flops = model_flops_per_step(cfg, args.batch, args.tokens)
    mfu_wall = flops / wall / peak_wall
    mfu_cpu = flops / cpu / peak_cpu
    mfu = mfu_cpu if threads == 1 else mfu_wall
    result = {
        "benchmark": "train_step",
        "d_model": cfg.d_model,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "batch": args.batch,
        "tokens": args.tokens,
        "threads": threads,
        "params": net.num_params(),
        "steps_timed": args.steps,
        "step_seconds_median_wall": round(wall, 5),
        "step_seconds_median_cpu": round(cpu, 5),
        "step_seconds_min_wall": round(min(t[0] for t in times), 5),
        "model_flops_per_step": flops,
        "achieved_gflops_cpu": round(flops / cpu / 1e9, 2),
        "achieved_gflops_wall": round(flops / wall / 1e9, 2),
        "peak_gflops_cpu": round(peak_cpu / 1e9, 2),
        "peak_gflops_wall": round(peak_wall / 1e9, 2),
        "peak_gflops_cpu_by_size": {str(n): round(v[1] / 1e9, 2) for n, v in by_size.items()},
        "mfu": round(mfu, 4),
        "mfu_clock": "cpu" if threads == 1 else "wall",
        "mfu_cpu": round(mfu_cpu, 4),
        "mfu_wall": round(mfu_wall, 4),
        "torch": torch.__version__,
    }
    print(f"model: d_model {cfg.d_model}, depth {cfg.n_layer}, {cfg.n_head} heads, {net.num_params():,} parameters")
    print(f"batch {args.batch} x {args.tokens} tokens, {threads} thread(s), fp32 on CPU")
    print(f"step (median of {args.steps}): {cpu * 1e3:.1f} ms CPU time, {wall * 1e3:.1f} ms wall")
    print(f"model FLOPs per step {flops / 1e9:.2f} G -> {flops / cpu / 1e9:.1f} GFLOP/s (CPU time), "
          f"{flops / wall / 1e9:.1f} (wall)")
    sizes = ", ".join(f"{n}: {v[1] / 1e9:.1f}" for n, v in by_size.items())
    print(f"fp32 matmul peak (CPU time, by size {sizes}): {peak_cpu / 1e9:.1f} GFLOP/s; wall {peak_wall / 1e9:.1f}")
    print(f"MFU {mfu:.3f} ({result['mfu_clock']} clock); by CPU time {mfu_cpu:.3f}, by wall {mfu_wall:.3f}")
    emit(result, args.save, peak_gflops=peak_cpu / 1e9)
    return result


if __name__ == "__main__":
    main()
