"""``compare run`` at paper scale: throughput, peak memory against the number of tasks, bytes on disk.

A random-weight p = 29 checkpoint (small: d_model 64, 2 layers, 2 heads, 33 examples a
sequence, so that the engine, the solvers and the I/O dominate, not the model) is compared
at ``--k 1..32`` with the authors' example sequence on 1, 8, 64 and all 841 tasks; then the
paper's d = 4 shape (d_model 512, 4 layers, 4 heads; k 1..31, its context) on 8 tasks.
Each run is a fresh process that reports its own peak resident set size
(``resource.getrusage(RUSAGE_SELF)``), so one size's peak never hides another's. Then
``compare report`` rebuilds the 841-task folder from its files, also in a fresh process.

Per size: seconds, cells/s, prefixes/s, peak RSS, bytes per cell on disk (the ``cells/``
folder). The bar of issue 16: ``peak_rss_mb_841`` <= 1.5 x ``peak_rss_mb_1`` and <= 1,500 MB.
Prints one JSON object as its last line.

    python benchmarks/compare_scale.py [--sizes 1,8,64,841] [--threads N] [--save benchmarks/results/compare_scale.json]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import emit

P = 29
CHILD = (
    "import json, resource, sys, time\n"
    "from compare.cli.main import main\n"
    "t0 = time.perf_counter(); rc = main(sys.argv[1:]); wall = time.perf_counter() - t0\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "print(json.dumps({'rc': rc, 'seconds': wall, 'peak_rss_mb': peak}))\n"
)


def _child(argv: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise SystemExit(f"{' '.join(argv[:3])}: exit {out['rc']}\n{proc.stderr[-3000:]}")
    return out


def _disk_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in (folder / "cells").iterdir() if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,8,64,841", help="numbers of tasks (default 1,8,64,841)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each run (default 1)")
    ap.add_argument("--no-paper-shape", action="store_true", help="skip the d_model 512 run on 8 tasks")
    ap.add_argument("--save", metavar="PATH", help="also write the JSON line there")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from model.testing import tiny_checkpoint

    all_tasks = list(itertools.product(range(P), repeat=2))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    common = ["--sequences", "0", "--n-boot", "200", "--quiet", "--device", "cpu", "--threads", str(args.threads)]
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        tmp = Path(tmp)
        small = tiny_checkpoint(tmp / "small.pt", p=P, n_base_tasks=96, d_model=64, n_layer=2, n_head=2, n_examples=33)
        for n in sizes:
            spec = "all" if n >= len(all_tasks) else ";".join(f"{a},{b}" for a, b in all_tasks[:n])
            out = tmp / f"run{n}"
            r = _child(["run", "--ckpt", str(small), "--k", "1..32", "--tasks", spec, "--out", str(out), *common], env)
            man = json.loads((out / "manifest.json").read_text())
            cells, prefixes = man["n_cells"], man["n_tasks"] * 32
            rows[str(n)] = {"tasks": man["n_tasks"], "cells": cells, "seconds": round(r["seconds"], 2),
                            "cells_per_s": round(cells / r["seconds"]),
                            "prefixes_per_s": round(prefixes / r["seconds"], 1),
                            "peak_rss_mb": round(r["peak_rss_mb"], 1),
                            "bytes_per_cell": round(_disk_bytes(out) / cells, 2),
                            "model_seconds": man["timings"]["model_inference_seconds"],
                            "solvers_seconds": man["timings"]["solvers_seconds"],
                            "report_seconds_in_run": man["timings"]["report_seconds"]}
            print(f"{n:>4} tasks: {cells:>11,} cells in {r['seconds']:7.1f} s, {cells / r['seconds']:>9,.0f} cells/s, "
                  f"peak {r['peak_rss_mb']:7,.0f} MB, {rows[str(n)]['bytes_per_cell']:.2f} B/cell on disk", flush=True)
        largest = max(sizes)
        rep = _child(["report", str(tmp / f"run{largest}")], env)
        print(f"compare report on {largest} tasks: {rep['seconds']:.1f} s, peak {rep['peak_rss_mb']:,.0f} MB",
              flush=True)
        paper = None
        if not args.no_paper_shape:
            big = tiny_checkpoint(tmp / "big.pt", p=P, n_base_tasks=96, d_model=512, n_layer=4, n_head=4, n_examples=32)
            spec = ";".join(f"{a},{b}" for a, b in all_tasks[:8])
            r = _child(["run", "--ckpt", str(big), "--k", "1..31", "--tasks", spec, "--out", str(tmp / "paper"),
                        *common], env)
            man = json.loads((tmp / "paper" / "manifest.json").read_text())
            paper = {"tasks": 8, "ks": "1..31", "cells": man["n_cells"], "seconds": round(r["seconds"], 2),
                     "cells_per_s": round(man["n_cells"] / r["seconds"]),
                     "prefixes_per_s": round(8 * 31 / r["seconds"], 2),
                     "peak_rss_mb": round(r["peak_rss_mb"], 1),
                     "model_seconds": man["timings"]["model_inference_seconds"],
                     "batch_prefixes": man.get("batch_prefixes")}
            print(f"paper-d4 shape, 8 tasks, k 1..31: {r['seconds']:.1f} s, {paper['prefixes_per_s']} prefixes/s, "
                  f"peak {r['peak_rss_mb']:,.0f} MB", flush=True)

    first, last = rows[str(min(sizes))], rows[str(largest)]
    ratio = last["peak_rss_mb"] / first["peak_rss_mb"]
    print(f"peak RSS {largest} tasks / {min(sizes)} task(s): {ratio:.2f} (bar <= 1.5, and <= 1,500 MB)")
    emit({"benchmark": "compare_scale", "p": P, "ks": "1..32", "sequences": 1, "threads": args.threads,
          "sizes": rows, "paper_d4_shape": paper,
          "cells_per_s": last["cells_per_s"], "prefixes_per_s": last["prefixes_per_s"],
          f"peak_rss_mb_{largest}": last["peak_rss_mb"], f"peak_rss_mb_{min(sizes)}": first["peak_rss_mb"],
          "peak_rss_ratio": round(ratio, 3), f"report_seconds_{largest}": round(rep["seconds"], 2),
          f"report_peak_rss_mb_{largest}": round(rep["peak_rss_mb"], 1),
          "bytes_per_cell": last["bytes_per_cell"]}, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
