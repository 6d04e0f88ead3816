"""Compare a checkpoint with the reference solvers: the library call behind ``compare run``.

>>> import compare
>>> res = compare.compare_checkpoint("d4.pt", k=range(1, 9))          # doctest: +SKIP
>>> res.summary.query("split == 'ood' and k == 8 and predictor == 'model'")   # doctest: +SKIP
>>> res.write_report("reports/d4")                                     # doctest: +SKIP

Without ``out`` everything stays in memory: the summaries as DataFrames and (unless
``keep_cells=False``) each task's cells. With ``out`` the cells stream into a run folder
(one Parquet file per task, a manifest naming the configuration by its hash) exactly as
``compare run`` writes it: a folder of the same configuration is resumed, ``shard``
splits the tasks between processes, and the process that finds every task present writes
the report. :func:`compare.api.report.open_report` reads a finished folder back as the same result object.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.api.inputs import (
    CheckpointLike,
    ComparisonInputs,
    base_manifest,
    comparison_inputs,
    model_predictor,
    parse_batch_size,
)
from compare.api.limits import MAX_CELLS
from compare.api.result import ComparisonResult, report_step
from compare.api.stream import progress_bar, stream_aggregates
from compare.engine.comparison import PROB_FLOOR, run_comparison
from compare.engine.grid import parse_task_list
from compare.errors import UsageError
from compare.storage import cells as cells_store
from compare.storage import files
from compare.storage import folder as run_folder

__all__ = ["compare_checkpoint", "SWEEP_SOLVERS", "MAX_CELLS"]

#: Bytes of task file per cell on the bundled reports (zstd Parquet, small files), for the estimate.
BYTES_PER_CELL = 50.0

#: Solvers scored by the label-noise sweeps (the plain and the noise-tolerant ones).
SWEEP_SOLVERS = ("ratio_matching", "modular_regression", "ratio_matching_majority", "modular_regression_majority")


def _label_noise(inputs: ComparisonInputs, n_wrong: int, at: Sequence[int]) -> tuple[np.ndarray | None, dict | None]:
    """The label offsets of ``label_noise``/``label_noise_at`` and their manifest entry."""
    if n_wrong < 0:
        raise UsageError(f"--label-noise must be >= 0, got {n_wrong}")
    if n_wrong and at:
        raise UsageError("give --label-noise N or --label-noise-at SHOT, not both")
    if not n_wrong and not at:
        return None, None
    from compare.engine.noise import label_offsets

    p, k_max = inputs.ckpt.setting.p, inputs.sequences.shape[1]
    offsets, shots = label_offsets(
        len(inputs.tasks), inputs.sequences.shape[0], k_max, p, n_wrong=n_wrong, positions=list(at), seed=inputs.seed
    )
    return offsets, {
        "rule": "z + u mod p, u uniform in 1..p-1 (always wrong)",
        "n_wrong": len(shots[0]),
        "chosen": "given (--label-noise-at)" if at else f"drawn per sequence, seed {inputs.seed}",
        "shots": shots,  # per sequence, 1-based
        # per sequence and corrupted shot, the offset u of each task (in the order of the run's tasks)
        "offsets": [{str(j): offsets[:, s, j - 1].tolist() for j in js} for s, js in enumerate(shots)],
        "sweep_k": int(max(inputs.ks)),
    }


def _noise_sweeps(inputs: ComparisonInputs, subject, noise: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables of noise_levels.csv and noise_positions.csv (see compare.engine.noise)."""
    from compare.engine.noise import noise_level_sweep, noise_position_sweep

    # the plain and the noise-tolerant solvers only (no Bayes distributions: those cost most
    # per cell and say nothing about noise tolerance)
    refs = [r for r in inputs.references if r.name in SWEEP_SOLVERS]
    setting = inputs.ckpt.setting

    def run(ks, offsets):
        return run_comparison(setting, inputs.tasks, inputs.sequences, ks, subject, refs, label_offsets=offsets)

    p, n = setting.p, len(inputs.tasks)
    levels = noise_level_sweep(run, n, inputs.sequences, noise["sweep_k"], p, inputs.seed)
    positions = noise_position_sweep(run, n, inputs.sequences, inputs.ks, p, inputs.seed, subject.name)
    return levels, positions


def compare_checkpoint(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int],
    *,
    tasks: str | Iterable[Sequence[int]] = "all",
    sequences: int = 0,
    examples: Sequence[str | np.ndarray] = (),
    authors_sequence: bool = True,
    seed: int = 0,
    solvers: str | Sequence[str] | None = None,
    n_boot: int = 1000,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | str | None = None,
    label_noise: int = 0,
    label_noise_at: Sequence[int] = (),
    out: str | Path | None = None,
    overwrite: bool = False,
    shard: str | None = None,
    csv: bool = False,
    grid_tasks: str | Sequence[tuple[int, int]] | None = None,
    grid_algorithms: str | Sequence[str] | None = None,
    keep_cells: bool = True,
    progress: bool = False,
    argv: Sequence[str] | None = None,
    max_cells: int | None = MAX_CELLS,
) -> ComparisonResult:
    """Score a checkpoint's model against every reference solver on the k-shot grids.

    ``ckpt`` is a path, a bundled name (``"d4.pt"``) or a loaded checkpoint; ``k``, ``tasks``,
    ``sequences``, ``examples``, ``authors_sequence``, ``seed`` and ``solvers`` as in
    :func:`compare.api.inputs.comparison_inputs`. ``label_noise=N`` makes N in-context labels
    of each sequence wrong (``label_noise_at`` names the shots instead) and adds the noise
    sweeps. ``out`` streams into a resumable run folder (``shard="I/N"``, or torchrun's /
    SLURM's variables, splits its tasks); ``progress`` shows a bar on stderr; ``argv`` is
    recorded in the manifest. A run of more than ``max_cells`` cells (tasks x sequences x k x
    p^2; :data:`MAX_CELLS` by default, None or 0 for no bound) is refused before it starts.
    Bad input raises :class:`~compare.errors.UsageError` (one line).
    """
    t_start = time.perf_counter()
    if isinstance(grid_tasks, str):
        grid_tasks = parse_task_list(grid_tasks)
    grid_algos = (
        [s.strip() for s in grid_algorithms.split(",") if s.strip()]
        if isinstance(grid_algorithms, str)
        else None
        if grid_algorithms is None
        else list(grid_algorithms)
    )
    if grid_algos is not None and not grid_algos:
        raise UsageError(f"--grid-algorithms: no names in {grid_algorithms!r}")
    the_shard = run_folder.resolve_shard(shard) if out is not None else run_folder.Shard()
    batch = parse_batch_size(batch_size)
    if max_cells is not None and max_cells < 0:
        raise UsageError(f"--max-cells must be >= 0, got {max_cells}")
    if max_cells and sequences > max_cells:  # before the sequences are drawn: each gives at least one cell
        raise UsageError(f"--sequences {sequences:,} alone exceeds the --max-cells bound of {max_cells:,}")
    inputs = comparison_inputs(
        ckpt,
        k,
        tasks=tasks,
        sequences=sequences,
        examples=examples,
        authors_sequence=authors_sequence,
        seed=seed,
        solver_names=solvers,
        n_boot=n_boot,
    )
    ck, setting, references = inputs.ckpt, inputs.ckpt.setting, inputs.references
    refs = [r.name for r in references]
    if grid_algos is not None:
        unknown = [a for a in grid_algos if a not in refs]
        if unknown:
            raise UsageError(f"--grid-algorithms: {unknown[0]!r} is not among the solvers run ({', '.join(refs)})")
    if grid_tasks is not None:
        run_tasks = {tuple(t) for t in inputs.tasks.tolist()}
        missing = [t for t in grid_tasks if tuple(t) not in run_tasks]
        if missing:
            raise UsageError(f"--grid-tasks: task ({missing[0][0]},{missing[0][1]}) is not among the tasks run")
    _check_size(len(inputs.tasks), len(inputs.sequences), len(inputs.ks), setting.p, max_cells)
    offsets, noise = _label_noise(inputs, label_noise, label_noise_at)
    if noise is not None and the_shard.count > 1:
        raise UsageError("--label-noise runs in one process (its sweeps need every task); drop --shard")
    subject = model_predictor(ck, device, batch, precision)
    precision = subject.precision

    manifest = {
        **base_manifest(inputs, "compare run", argv),
        "subject": subject.name,
        "references": refs,
        "distribution_references": [r.name for r in references if r.gives_distribution],
        "prob_floor": PROB_FLOOR,
        "device": str(subject.device),
        "precision": precision,
        "batch_prefixes": subject.batch_prefixes,
        "tasks": inputs.tasks.tolist(),
        "cells_layout": _cells_layout(),
    }
    if noise is not None:
        manifest["label_noise"] = noise
    # the run's identity, from the manifest's own fields (so `compare report` can check them);
    # precision enters only when it is not fp32: an fp32 folder never takes bf16 cells
    config = run_folder.run_config(manifest)
    manifest["config_hash"] = chash = cells_store.config_hash(config)
    manifest["config_fields"] = run_folder.field_digests(config)
    n_units = len(inputs.sequences) * len(inputs.ks)
    rows = cells_store.row_group_rows(len(inputs.ks), setting.p) * len(inputs.sequences)  # cells per task

    if out is None:  # in memory
        kept: dict[int, pd.DataFrame] | None = {} if keep_cells else None

        def keep(i: int, cells: pd.DataFrame) -> None:
            if kept is not None:
                kept[i] = cells

        with progress_bar(len(inputs.tasks) * n_units, "compare", progress) as bar:
            acc, timings = stream_aggregates(inputs, subject, label_offsets=offsets, on_task=keep, progress=bar)
        agg = acc.result()
        result = ComparisonResult(
            dict(manifest, n_cells=agg.n_cells, status="complete"),
            agg,
            None,
            True,
            timings={"engine": timings, "total_seconds": time.perf_counter() - t_start},
            _cells=kept,
        )
        if noise is not None:
            result.noise_levels, result.noise_positions = _noise_sweeps(inputs, subject, noise)
        return result

    folder = Path(out).expanduser().absolute()
    resumed = run_folder.prepare_folder(folder, manifest, overwrite=overwrite)
    mine = the_shard.select(len(inputs.tasks))
    todo = [int(i) for i in mine if not cells_store.task_done(folder, inputs.tasks[i], chash, rows)]
    group_rows = cells_store.row_group_rows(len(inputs.ks), setting.p)

    def write(i: int, cells: pd.DataFrame) -> None:
        cells_store.write_task(folder, cells, chash, group_rows)

    t0 = time.perf_counter()
    with progress_bar(len(todo) * n_units, f"compare run {the_shard}", progress) as bar:
        acc, timings = stream_aggregates(
            inputs, subject, indices=todo, label_offsets=offsets, progress=bar, on_task=write
        )
    t_engine = time.perf_counter() - t0
    where = f"{len(todo)} task(s) computed" + (
        f", {len(mine) - len(todo)} already there" if len(mine) > len(todo) else ""
    )
    info: dict[str, Any] = {"where": where, "shard": str(the_shard), "resumed": resumed}
    absent = run_folder.missing_tasks(folder, inputs.tasks, chash, rows)
    if absent:
        info["missing"] = len(absent)
        return ComparisonResult(manifest, acc.result(), folder, False, timings=info)

    with run_folder.report_lock(folder) as writer:
        if not writer:
            info["report_writer"] = False
            return ComparisonResult(manifest, acc.result(), folder, False, timings=info)
        t0 = time.perf_counter()
        mended: set[int] = set()
        while True:
            try:
                agg = run_folder.folder_aggregates(
                    folder, inputs.tasks, setting.p, subject.name, refs, inputs.ks, acc
                ).result()
                break
            except cells_store.DamagedTaskFile as exc:  # a file changed after it was written: ours, computed again
                i = _task_index(inputs.tasks, exc.path)
                if i is None or i in mended:
                    raise
                mended.add(i)
                exc.path.unlink(missing_ok=True)
                stream_aggregates(inputs, subject, indices=[i], label_offsets=offsets, on_task=write)
                info["mended"] = sorted(mended)
        t_read = time.perf_counter() - t0
        levels = positions = None
        if noise is not None:
            levels, positions = _noise_sweeps(inputs, subject, noise)
        result = ComparisonResult(manifest, agg, folder, True, levels, positions)
        t0 = time.perf_counter()
        result.figures = report_step(folder, manifest, agg, grid_tasks, grid_algos, csv, result._noise_writer())
        t_report = time.perf_counter() - t0
        solver_time = sum(v for name, v in timings.items() if name in refs)
        model_time = timings.get(subject.name, 0.0)
        final = files.read_manifest_of(folder)
        final["timings"] = {
            "note": "this process: " + where + (" (resumed)" if resumed else ""),
            "model_inference_seconds": round(model_time, 3),
            "solvers_seconds": round(solver_time, 3),
            "solvers_each_seconds": {name: round(timings.get(name, 0.0), 3) for name in refs},
            "engine_other_seconds": round(t_engine - model_time - solver_time, 3),
            "aggregates_read_seconds": round(t_read, 3),
            "report_seconds": round(t_report, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
        }
        files.replace_manifest(folder, final)
    result.manifest = final
    result.timings = dict(info, **final["timings"])
    return result


def _check_size(n_tasks: int, n_seq: int, n_k: int, p: int, max_cells: int | None) -> None:
    """Refuse a run whose cells exceed ``max_cells`` (None or 0: no bound) before it starts."""
    if not max_cells:
        return
    n = n_tasks * n_seq * n_k * p * p
    if n > max_cells:
        gb = n * BYTES_PER_CELL / 1e9
        raise UsageError(
            f"this run has {n:,} cells ({n_tasks} tasks x {n_seq} sequences x {n_k} k x {p * p} queries; "
            f"of the order of {gb:,.0f} GB of task files), over the --max-cells bound of {max_cells:,}: "
            f"narrow --tasks, --k or --sequences, or pass --max-cells {n} (or 0) to run it anyway"
        )


def _task_index(tasks: np.ndarray, path: Path) -> int | None:
    for i, (a, b) in enumerate(tasks.tolist()):
        if cells_store.task_file(path.parent.parent, (a, b)) == path:
            return i
    return None


def _cells_layout() -> str:
    from compare.reports.run import cells_layout

    return cells_layout()
