"""End-to-end time of ``compare run --ckpt d4.pt --k 1..8 --tasks all`` on this machine.

Runs the command as a fresh process (``python -m compare run ...``, so start-up and
imports count), writing to a temporary folder, and splits the time with the timings the
run records in its manifest:

- model inference (the transformer's ``predict_grid`` calls),
- solvers (every reference solver's ``predict_grid`` calls),
- engine (labels, distribution distances, assembling the per-cell table),
- aggregates read back (tasks that another process or an earlier run wrote; 0 here),
- report (bootstrap summaries from the aggregates, CSVs, figures, report.md/html),
- startup (process start, imports, loading the checkpoint): the rest.

When the checkpoint does not exist (no bundled ``d4.pt`` yet) ``--synthetic`` times a
randomly initialised checkpoint of the ``cpu-d4`` preset's shape instead, and says so.
With ``--baseline REV`` the same command also runs from a git worktree of revision REV
(e.g. the commit before a change), alternating with this checkout ``--repeat`` times, and
the JSON gets both medians and their ratio: a comparison made in one run, on one load.
Prints human lines, then one JSON object as the last line (``total_seconds`` included).

    python benchmarks/compare_run.py [--ckpt d4.pt] [--k 1..8] [--tasks all] [--threads N] [--baseline REV --repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import emit

TARGET_SECONDS = 120.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="d4.pt")
    ap.add_argument("--k", default="1..8")
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch threads for the run (default: torch's choice)")
    ap.add_argument("--synthetic", action="store_true",
                    help="if the checkpoint is missing, time a random cpu-d4-shaped checkpoint instead")
    ap.add_argument("--keep", metavar="DIR", help="keep the run folder here")
    ap.add_argument("--baseline", metavar="REV", help="also time git revision REV, alternating with this checkout")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side with --baseline (default 3)")
    ap.add_argument("--save", metavar="PATH",
                    help="also write the JSON line there (e.g. benchmarks/results/compare_run.json)")
    args = ap.parse_args()

    from model.checkpoint import CheckpointError, resolve_checkpoint

    with tempfile.TemporaryDirectory(prefix="compare-bench-") as tmp:
        synthetic = False
        try:
            ckpt = resolve_checkpoint(args.ckpt)
        except CheckpointError as exc:
            if not args.synthetic:
                print(f"{exc}; pass --synthetic to time a random checkpoint of the cpu-d4 shape", file=sys.stderr)
                return 2
            from model.config import get_preset
            from model.testing import tiny_checkpoint

            pre = get_preset("cpu-d4")
            m = pre.model
            ckpt = tiny_checkpoint(Path(tmp) / "d4.pt", p=m.p, n_base_tasks=pre.setting.n_base_tasks,
                                   d_model=m.d_model, n_layer=m.n_layer, n_head=m.n_head, n_examples=m.n_examples)
            synthetic = True
        out = Path(args.keep) if args.keep else Path(tmp) / "run"
        cmd = [sys.executable, "-m", "compare", "run", "--ckpt", str(ckpt), "--k", args.k, "--tasks", args.tasks,
               "--device", args.device, "--out", str(out), "--quiet"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        print("$ " + " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr.strip(), file=sys.stderr)
            return proc.returncode
        print(proc.stdout.strip())
        man = json.loads((out / "manifest.json").read_text())
    t = man["timings"]
    parts = {
        "model_inference_seconds": t["model_inference_seconds"],
        "solvers_seconds": t["solvers_seconds"],
        "engine_seconds": t["engine_other_seconds"],
        "aggregates_read_seconds": t.get("aggregates_read_seconds", 0.0),
        "report_seconds": t["report_seconds"],
    }
    parts["startup_seconds"] = round(wall - sum(parts.values()), 3)
    for name, sec in parts.items():
        print(f"  {name.replace('_seconds', ''):<16} {sec:8.2f} s")
    print(f"  {'total':<16} {wall:8.2f} s (target <= {TARGET_SECONDS:.0f} s)")
    result = {
        "benchmark": "compare_run",
        "checkpoint": man["checkpoint"]["name"],
        "synthetic_checkpoint": synthetic,
        "p": man["p"],
        "ks": man["ks"],
        "n_tasks": man["n_tasks"],
        "n_cells": man["n_cells"],
        "device": man["device"],
        "threads": args.threads,
        **parts,
        "solvers_each_seconds": t["solvers_each_seconds"],
        "total_seconds": round(wall, 3),
        "target_seconds": TARGET_SECONDS,
        "cpu_count": os.cpu_count(),
    }
    if args.baseline:
        result.update(_versus(args, ckpt))
    emit(result, args.save)
    return 0


def _versus(args, ckpt) -> dict:
    """Median wall time of the command from this checkout and from a worktree of ``args.baseline``."""
    import statistics

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="compare-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(base), args.baseline],
                       check=True, capture_output=True)
        try:
            times: dict[str, list[float]] = {"ours": [], "baseline": []}
            for i in range(args.repeat):
                for side, root in (("ours", repo), ("baseline", base)):
                    out = Path(tmp) / f"{side}{i}"
                    cmd = [sys.executable, "-m", "compare", "run", "--ckpt", str(ckpt), "--k", args.k, "--tasks",
                           args.tasks, "--device", args.device, "--out", str(out), "--quiet"]
                    if args.threads:
                        cmd += ["--threads", str(args.threads)]
                    env = dict(os.environ, PYTHONPATH=str(root))
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, capture_output=True, cwd=root, env=env)
                    times[side].append(time.perf_counter() - t0)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(base)], capture_output=True)
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["baseline"])
    print(f"  median of {args.repeat}: this checkout {ours:.2f} s, {args.baseline} {theirs:.2f} s, "
          f"ratio {ours / theirs:.3f}")
    return {"baseline_rev": args.baseline, "repeat": args.repeat, "median_seconds": round(ours, 3),
            "baseline_median_seconds": round(theirs, 3), "ratio_vs_baseline": round(ours / theirs, 3)}


if __name__ == "__main__":
    sys.exit(main())
