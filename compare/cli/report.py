"""``compare report DIR``: rebuild tables, figures and pages from a saved run, without the model.

Reads ``manifest.json`` and the cells (the per-task dataset ``cells/``, one file at a
time, or an older run's single ``cells.parquet``) and writes the summaries, figures and
pages again: in place by default, each file replaced whole, or into a copy at ``--out``.
"""

from __future__ import annotations

import argparse
import time

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a run folder's summaries, figures and pages from cells.parquet",
        description="Rebuild summary.csv, attribution.csv, the figures, report.md and report.html "
        "from a run folder's cells.parquet and manifest.json (no checkpoint needed).",
    )
    p.add_argument("dir", metavar="DIR", help="a folder written by `compare run`")
    p.add_argument("--out", metavar="DIR", help="write the rebuilt folder here instead of replacing DIR")
    p.add_argument("--n-boot", type=int, help="bootstrap resamples (default: the run's)")
    p.add_argument("--seed", type=int, help="bootstrap seed (default: the run's)")
    p.add_argument(
        "--grid-tasks",
        metavar="SPEC",
        help='more tasks drawn as grid figures, "a,b;a,b" (added to the default 3 i.d. + 3 o.o.d.)',
    )
    p.add_argument("--grid-algorithms", metavar="NAMES", help="algorithms in the grid figures")
    p.add_argument("--grid-sequence", type=int, default=0, help="example sequence of the grid figures (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``compare report``: :func:`compare.api.report.rebuild_report`, then a summary line."""
    from compare.api.report import rebuild_report

    t_start = time.perf_counter()
    out, figures, n_cells = rebuild_report(
        args.dir,
        out=args.out,
        n_boot=args.n_boot,
        seed=args.seed,
        grid_tasks=args.grid_tasks,
        grid_algorithms=args.grid_algorithms,
        grid_sequence=args.grid_sequence,
    )
    print(f"rebuilt {out}: {n_cells:,} cells, {len(figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    return 0
