"""Time and peak memory of ``compare ablate --ckpt d4.pt --k 1..8 --components all``.

The bundled d4 (p = 11, 4 layers x 4 heads): the plain model and 24 ablations (16 heads,
4 attention layers, 4 MLPs), each scored by the engine over 121 tasks x 8 k. Runs the
command as a fresh process (start-up counts); wall time by the clock, peak memory as the
child's maximum resident set size. Target (issue 15): at most 5 minutes on a 2-core CPU.
Prints one JSON object as the last line.

    python benchmarks/ablate_d4.py [--mode zero|mean] [--save benchmarks/results/ablate_d4.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import emit

TARGET_SECONDS = 300.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="d4.pt")
    ap.add_argument("--mode", default="zero", choices=["zero", "mean"])
    ap.add_argument("--save", metavar="PATH", help="also write the JSON line there")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ablate-bench-") as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "compare", "ablate", "--ckpt", args.ckpt, "--k", "1..8", "--components", "all",
               "--mode", args.mode, "--quiet", "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        print(proc.stdout.strip())
        man = json.loads((out / "manifest.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n = len(man["ablation"]["components"]) + 1
    print(f"{n} comparisons in {wall:.1f} s ({wall / n:.2f} s each; target <= {TARGET_SECONDS:.0f} s), "
          f"peak RSS {peak_mb:,.0f} MB")
    emit({"benchmark": "ablate_d4", "checkpoint": args.ckpt, "mode": args.mode, "comparisons": n,
          "total_seconds": round(wall, 2), "seconds_per_comparison": round(wall / n, 3),
          "peak_rss_mb": round(peak_mb, 1), "target_seconds": TARGET_SECONDS}, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
