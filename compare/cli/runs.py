"""``compare runs``: a table and figures over training run folders (configs, wall clock, curves)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="table and learning curves of training run folders")
    p.add_argument("folders", nargs="+",
                   help="run folders written by `compare train`, or checkpoints that carry their history "
                   "(the bundled ones by name: d4.pt)")
    p.add_argument("--out", default="reports/training", help="output folder (default reports/training)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a `compare runs` report of other runs in --out (only the suite's files; "
                   "other folders are always refused)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from compare.reports.training import write_training_report
    from compare.reports.training_runs import read_run
    from compare.storage import files

    runs = [read_run(f) for f in args.folders]
    manifest = {"tool": "compare runs", "format": 1, "argv": list(getattr(args, "argv", [])),
                "runs": [str(f) for f in args.folders]}
    out, _, figures = files.publish_report(args.out, manifest, lambda tmp, m: write_training_report(tmp, runs),
                                           overwrite=args.overwrite)
    print(f"wrote {out}/runs.md, runs.csv and {len(figures)} figures")
    return 0
