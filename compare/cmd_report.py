"""``compare report DIR``: rebuild tables, figures and pages from a saved run, without the model.

Reads ``manifest.json`` and the cells (the per-task dataset ``cells/``, one file at a
time, or an older run's single ``cells.parquet``) and writes the summaries, figures and
pages again: in place by default, each file replaced whole, or into a copy at ``--out``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

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
    from compare import cells_store, report, run_folder
    from compare.aggregates import aggregate
    from compare.grid import parse_task_list

    t_start = time.perf_counter()
    src = Path(args.dir).expanduser().absolute()
    grid_tasks = parse_task_list(args.grid_tasks) if args.grid_tasks else None
    grid_algorithms = None
    if args.grid_algorithms:
        grid_algorithms = [s.strip() for s in args.grid_algorithms.split(",") if s.strip()]
    if args.n_boot is not None and args.n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {args.n_boot}")
    manifest = report.read_manifest_of(src)
    try:
        p = int(manifest["p"])
        ks = [int(k) for k in manifest["ks"]]
    except (TypeError, ValueError):
        raise UsageError(f"{src / report.MANIFEST}: p or ks is not an integer") from None
    subject = manifest.get("subject", "model")
    n_seq = len(manifest.get("sequences") or [])
    per_task = (src / cells_store.CELLS_DIR).is_dir() and "tasks" in manifest

    if per_task:  # the streamed dataset: aggregates read one task file at a time
        tasks = np.asarray(manifest["tasks"], dtype=np.int64).reshape(-1, 2)
        missing = run_folder.missing_tasks(src, tasks, manifest.get("config_hash", ""))
        if missing:
            a, b = tasks[missing[0]].tolist()
            raise UsageError(f"{src}: {len(missing)} of {len(tasks)} tasks have no cells of this run's configuration yet "
                             f"(first: ({a},{b})); rerun the same `compare run` to finish them")
        refs = list(manifest.get("references") or [])
        order = run_folder.task_order_of(manifest, tasks)

        def load_task(a: int, b: int):
            return cells_store.read_task(src, (a, b))

        def aggregates():
            return run_folder.folder_aggregates(src, tasks, p, subject, refs, ks).result()
    else:  # a single cells.parquet (reports written before the per-task dataset)
        cells, manifest = report.read_run(src)
        n_seq = n_seq or int(cells["sequence"].max()) + 1
        from compare.engine import reference_names
        from compare.run_report import task_order

        refs = reference_names(cells, subject)
        order = task_order(cells)

        def load_task(a: int, b: int):
            return cells[(cells["task_a"].to_numpy() == a) & (cells["task_b"].to_numpy() == b)]

        def aggregates():
            return aggregate(cells, p, subject, refs)
    if not 0 <= args.grid_sequence < max(n_seq, 1):
        raise UsageError(f"--grid-sequence: the run has sequences 0..{n_seq - 1}, got {args.grid_sequence}")
    for algo in grid_algorithms or []:
        if algo not in refs:
            raise UsageError(f"--grid-algorithms: no predictor named {algo!r} in this run (have {', '.join(refs)})")
    present = {(a, b) for _, a, b in order}
    for a, b in grid_tasks or []:
        if (a, b) not in present:
            raise UsageError(f"--grid-tasks: task ({a},{b}) is not in this run")
    n_boot = args.n_boot if args.n_boot is not None else int(manifest.get("n_boot", 1000))
    seed = args.seed if args.seed is not None else int(manifest.get("seed", 0))
    rebuilt = dict(manifest, n_boot=n_boot, seed=seed)

    out = Path(args.out).expanduser().absolute() if args.out else src
    if out != src:
        run_folder.copy_run(src, out)
    agg = aggregates()
    with run_folder.report_lock(out) as writer:
        if not writer:
            raise UsageError(f"{out}: another process is writing its report; try again when it is done")
        figures = run_folder.write_run_report(out, rebuilt, agg, n_boot=n_boot, seed=seed, load_task=load_task,
                                              tasks_in_order=order, grid_tasks=grid_tasks,
                                              grid_algorithms=grid_algorithms, grid_sequence=args.grid_sequence)
        if rebuilt != manifest:
            report.replace_manifest(out, rebuilt)
    print(f"rebuilt {out}: {agg.n_cells:,} cells, {len(figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    return 0
