"""Time and peak memory of ``compare inspect`` on a paper-sized model (p = 29, d_model 512).

A checkpoint with random weights of the paper's d = 4 shape (p = 29, d_model 512, 4 heads,
4 layers, 32 examples a sequence) is written to a temporary folder and ``compare inspect
--ckpt big.pt --k 8`` runs on it as a fresh process: every layer and head, the per-head
Pearson maps included (841 prompts, 841 x 841 maps). Wall time by the clock, peak memory
as the child's maximum resident set size (``resource.getrusage``). Targets (issue 14):
at most 120 s and 4 GB. Prints one JSON object as the last line.

    python benchmarks/inspect_p29.py [--k 8] [--threads N] [--save benchmarks/results/inspect_p29.json]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import emit

TARGET_SECONDS = 120.0
TARGET_MB = 4096.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--save", metavar="PATH", help="also write the JSON line there")
    args = ap.parse_args()

    from model.testing import tiny_checkpoint

    with tempfile.TemporaryDirectory(prefix="inspect-bench-") as tmp:
        ck = tiny_checkpoint(Path(tmp) / "big.pt", p=29, n_base_tasks=96, d_model=512, n_layer=4, n_head=4,
                             n_examples=32)
        env = dict(os.environ)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        cmd = [sys.executable, "-m", "compare", "inspect", "--ckpt", str(ck), "--k", str(args.k), "--quiet",
               "--device", "cpu", "--out", str(Path(tmp) / "out")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        print(proc.stdout.strip())
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        n_figures = len(list((Path(tmp) / "out").glob("*.png")))
    print(f"p = 29, d_model 512, 4 x 4 heads, k = {args.k}: {wall:.1f} s (target <= {TARGET_SECONDS:.0f}), "
          f"peak RSS {peak_mb:,.0f} MB (target <= {TARGET_MB:,.0f})")
    emit({"benchmark": "inspect_p29", "p": 29, "d_model": 512, "n_layer": 4, "n_head": 4, "k": args.k,
          "prompts": 29 * 29, "figures": n_figures, "total_seconds": round(wall, 2),
          "peak_rss_mb": round(peak_mb, 1), "target_seconds": TARGET_SECONDS, "target_mb": TARGET_MB,
          "threads": args.threads}, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
