"""Reading a finished run folder back, and rebuilding its report without the model.

Neither function needs torch: ``compare report`` runs on a machine that has only the
folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from compare.api.result import ComparisonResult
from compare.engine.aggregates import aggregate
from compare.engine.grid import parse_task_list
from compare.errors import UsageError
from compare.storage import cells as cells_store
from compare.storage import files
from compare.storage import folder as run_folder

__all__ = ["open_report", "rebuild_report"]


def open_report(folder: str | Path) -> ComparisonResult:
    """A finished ``compare run`` folder as a :class:`ComparisonResult` (aggregates read back
    one task file at a time; no checkpoint needed)."""
    src = Path(folder).expanduser().absolute()
    manifest = files.read_manifest_of(src)
    if not (src / cells_store.CELLS_DIR).is_dir() or "tasks" not in manifest:
        cells, manifest = files.read_run(src)
        from compare.engine.comparison import reference_names

        subject = manifest.get("subject", "model")
        agg = aggregate(cells, int(manifest["p"]), subject, reference_names(cells, subject))
        by_task = {i: g for i, (_, g) in enumerate(cells.groupby(["task_a", "task_b"], sort=False))}
        if "tasks" not in manifest:
            manifest = dict(
                manifest, tasks=[[int(g["task_a"].iloc[0]), int(g["task_b"].iloc[0])] for g in by_task.values()]
            )
        return ComparisonResult(manifest, agg, src, True, _cells=by_task)
    run_folder.check_manifest(src, manifest)
    tasks = np.asarray(manifest["tasks"], dtype=np.int64).reshape(-1, 2)
    _check_complete(src, tasks, manifest)
    ks = [int(v) for v in manifest["ks"]]
    with _naming_damage(src, manifest):
        agg = run_folder.folder_aggregates(
            src, tasks, int(manifest["p"]), manifest.get("subject", "model"), list(manifest.get("references") or []), ks
        ).result()
    return ComparisonResult(manifest, agg, src, True)


def rebuild_report(
    folder: str | Path,
    *,
    out: str | Path | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    grid_tasks: str | Sequence[tuple[int, int]] | None = None,
    grid_algorithms: str | Sequence[str] | None = None,
    grid_sequence: int = 0,
) -> tuple[Path, list[str], int]:
    """Rebuild a run folder's tables, figures and pages from its cells and manifest: in place,
    each file replaced whole, or into a copy at ``out``. ``n_boot`` and ``seed`` default to
    the run's. Returns the folder written, its figure names and its number of cells."""
    src = Path(folder).expanduser().absolute()
    if isinstance(grid_tasks, str):
        grid_tasks = parse_task_list(grid_tasks)
    if isinstance(grid_algorithms, str):
        grid_algorithms = [s.strip() for s in grid_algorithms.split(",") if s.strip()] or None
    if n_boot is not None and n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {n_boot}")
    manifest = files.read_manifest_of(src)
    files.remove_stale_inside(src)  # what a killed `compare run` or `compare report` left
    try:
        p = int(manifest["p"])
        ks = [int(k) for k in manifest["ks"]]
    except (TypeError, ValueError):
        raise UsageError(f"{src / files.MANIFEST}: p or ks is not an integer") from None
    subject = manifest.get("subject", "model")
    n_seq = len(manifest.get("sequences") or [])
    per_task = (src / cells_store.CELLS_DIR).is_dir() and "tasks" in manifest

    if per_task:  # the streamed dataset: aggregates read one task file at a time
        run_folder.check_manifest(src, manifest)
        tasks = np.asarray(manifest["tasks"], dtype=np.int64).reshape(-1, 2)
        _check_complete(src, tasks, manifest)
        refs = list(manifest.get("references") or [])
        order = run_folder.task_order_of(manifest, tasks)

        def load_task(a: int, b: int):
            return cells_store.read_task(src, (a, b))

        def aggregates():
            with _naming_damage(src, manifest):
                return run_folder.folder_aggregates(src, tasks, p, subject, refs, ks).result()
    else:  # a single cells.parquet (reports written before the per-task dataset)
        cells, manifest = files.read_run(src)
        n_seq = n_seq or int(cells["sequence"].max()) + 1
        from compare.engine.comparison import reference_names
        from compare.reports.run import task_order

        refs = reference_names(cells, subject)
        order = task_order(cells)

        def load_task(a: int, b: int):
            return cells[(cells["task_a"].to_numpy() == a) & (cells["task_b"].to_numpy() == b)]

        def aggregates():
            return aggregate(cells, p, subject, refs)

    if not 0 <= grid_sequence < max(n_seq, 1):
        raise UsageError(f"--grid-sequence: the run has sequences 0..{n_seq - 1}, got {grid_sequence}")
    for algo in grid_algorithms or []:
        if algo not in refs:
            raise UsageError(f"--grid-algorithms: no predictor named {algo!r} in this run (have {', '.join(refs)})")
    present = {(a, b) for _, a, b in order}
    for a, b in grid_tasks or []:
        if (a, b) not in present:
            raise UsageError(f"--grid-tasks: task ({a},{b}) is not in this run")
    n_boot = n_boot if n_boot is not None else int(manifest.get("n_boot", 1000))
    seed = seed if seed is not None else int(manifest.get("seed", 0))
    rebuilt = dict(manifest, n_boot=n_boot, seed=seed)

    dst = Path(out).expanduser().absolute() if out is not None else src
    agg = aggregates()  # every file read (and checked) before anything is written
    if dst != src:
        run_folder.copy_run(src, dst)
    with run_folder.report_lock(dst) as writer:
        if not writer:
            raise UsageError(f"{dst}: another process is writing its report; try again when it is done")
        figures = run_folder.write_run_report(
            dst,
            rebuilt,
            agg,
            n_boot=n_boot,
            seed=seed,
            load_task=load_task,
            tasks_in_order=order,
            grid_tasks=grid_tasks,
            grid_algorithms=grid_algorithms,
            grid_sequence=grid_sequence,
        )
        if rebuilt != manifest:
            files.replace_manifest(dst, rebuilt)
    return dst, figures, agg.n_cells


def _check_complete(src: Path, tasks: np.ndarray, manifest: dict) -> None:
    """Every task file present, of this run's configuration, holding its task and its rows;
    else one line naming the first that is not, and the command that computes it again."""
    chash, rows = manifest.get("config_hash", ""), run_folder.rows_per_task(manifest)
    problems = []
    for t in tasks.tolist():
        why = cells_store.task_problem(src, t, chash, rows)
        if why is not None:
            problems.append((t, why))
    if problems:
        (a, b), why = problems[0]
        path = cells_store.task_file(src, (a, b)).relative_to(src)
        foreign = sum(w.startswith("made by another configuration") for _, w in problems)
        hint = (
            f"; if {files.MANIFEST} was edited, restore it, else" if foreign == len(tasks) else ";"
        )  # every file of another configuration: the manifest is the likelier culprit
        raise UsageError(
            f"{src}: {len(problems)} of {len(tasks)} task files are missing or not this run's "
            f"(first: {path}: {why}){hint} run `{run_folder.rerun_command(src, manifest)}` to compute them"
        )


@contextlib.contextmanager
def _naming_damage(src: Path, manifest: dict) -> Iterator[None]:
    """A task file changed after it was written: one line naming it and the command that mends it."""
    try:
        yield
    except cells_store.DamagedTaskFile as exc:
        raise UsageError(f"{exc}; run `{run_folder.rerun_command(src, manifest)}` to compute it again") from None
