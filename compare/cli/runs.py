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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from compare.reports.training import write_training_report
    from compare.reports.training_runs import read_run

    runs = [read_run(f) for f in args.folders]
    out = write_training_report(args.out, runs)
    print(f"wrote {out}/runs.md, runs.csv and {len(runs) + 2} figures")
    return 0
