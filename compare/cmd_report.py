"""``compare report DIR``: rebuild tables, figures and pages from a saved run, without the model.

Reads ``cells.parquet`` and ``manifest.json`` and writes a complete run folder again
(atomically; in place by default, or to ``--out``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from compare.errors import UsageError

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
    p.add_argument("--grid-tasks", metavar="SPEC", help='more tasks drawn as grid figures, "a,b;a,b" (added to the default 3 i.d. + 3 o.o.d.)')
    p.add_argument("--grid-algorithms", metavar="NAMES", help="algorithms in the grid figures")
    p.add_argument("--grid-sequence", type=int, default=0, help="example sequence of the grid figures (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from compare import report, run_report
    from compare.grid import parse_task_list
    from compare.summary import compute_all

    t_start = time.perf_counter()
    src = Path(args.dir)
    grid_tasks = parse_task_list(args.grid_tasks) if args.grid_tasks else None
    grid_algorithms = None
    if args.grid_algorithms:
        grid_algorithms = [s.strip() for s in args.grid_algorithms.split(",") if s.strip()]
    if args.n_boot is not None and args.n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {args.n_boot}")
    cells, manifest = report.read_run(src)
    n_seq = len(manifest.get("sequences") or []) or int(cells["sequence"].max()) + 1
    if not 0 <= args.grid_sequence < n_seq:
        raise UsageError(f"--grid-sequence: the run has sequences 0..{n_seq - 1}, got {args.grid_sequence}")
    try:
        p = int(manifest["p"])
    except (TypeError, ValueError):
        raise UsageError(f"{src / report.MANIFEST}: p is not an integer") from None
    n_boot = args.n_boot if args.n_boot is not None else int(manifest.get("n_boot", 1000))
    seed = args.seed if args.seed is not None else int(manifest.get("seed", 0))
    subject = manifest.get("subject", "model")
    rebuilt = dict(manifest, n_boot=n_boot, seed=seed)

    from compare.engine import reference_names

    refs = reference_names(cells, subject)
    for algo in grid_algorithms or []:
        if algo not in refs:
            raise UsageError(f"--grid-algorithms: no predictor named {algo!r} in this run (have {', '.join(refs)})")
    if grid_tasks:
        present = set(map(tuple, cells[["task_a", "task_b"]].drop_duplicates().to_numpy().tolist()))
        for a, b in grid_tasks:
            if (a, b) not in present:
                raise UsageError(f"--grid-tasks: task ({a},{b}) is not in this run")

    out = Path(args.out) if args.out else src
    tables = compute_all(cells, p, subject, n_boot=n_boot, seed=seed)
    with report.atomic_output_dir(out) as tmp:
        report.copy_run_files(src, tmp)
        if rebuilt != manifest:
            (tmp / report.MANIFEST).unlink()
            report.write_manifest(tmp, rebuilt)
        figures = run_report.write_report(tmp, cells, rebuilt, tables, grid_tasks=grid_tasks,
                                      grid_algorithms=grid_algorithms, grid_sequence=args.grid_sequence)
    final = out.expanduser().absolute()
    print(f"rebuilt {final}: {len(cells):,} cells, {len(figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    return 0
