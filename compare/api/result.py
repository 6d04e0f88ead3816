"""A comparison's result: its summaries as DataFrames, its cells, and the report folder it writes.

Needs neither torch nor the model: a finished run folder reads back with
:func:`compare.api.report.open_report` on a machine without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.engine.aggregates import Aggregates
from compare.engine.summary import Summaries, summaries
from compare.storage import cells as cells_store
from compare.storage import files
from compare.storage import folder as run_folder

__all__ = ["ComparisonResult", "report_step"]


@dataclass
class ComparisonResult:
    """A comparison of one subject (the model) with the reference solvers.

    ``summary``, ``attribution``, ``tasks``, ``sequences`` and ``headline`` are the tables of
    the report's CSV files, as DataFrames; :meth:`cells` and :meth:`iter_cells` read the
    per-cell dataset (from memory or from the run folder); :meth:`write_report` writes the
    folder ``compare run`` writes. ``complete`` is False for a shard whose run still waits
    for other shards' tasks (then the tables cover this shard's tasks only).
    """

    manifest: dict[str, Any]
    aggregates: Aggregates
    folder: Path | None = None
    complete: bool = True
    noise_levels: pd.DataFrame | None = None
    noise_positions: pd.DataFrame | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    _cells: dict[int, pd.DataFrame] | None = field(default=None, repr=False)

    @cached_property
    def tables(self) -> Summaries:
        """Every table of the report, computed once from the aggregates."""
        return summaries(
            self.aggregates, n_boot=int(self.manifest.get("n_boot", 1000)), seed=int(self.manifest.get("seed", 0))
        )

    @property
    def summary(self) -> pd.DataFrame:
        """Per (split, k, predictor): coverage, agreement, accuracy inside/outside coverage,
        distances, with bootstrap intervals (``summary.csv``)."""
        return self.tables.summary

    @property
    def attribution(self) -> pd.DataFrame:
        """Exclusive attribution of the model's answers (``attribution.csv``)."""
        return self.tables.attribution

    @property
    def tasks(self) -> pd.DataFrame:
        """Per (split, k, task) model accuracy, each algorithm's coverage and how many
        pre-training tasks lie on the task's line (``tasks.csv``)."""
        from compare.reports.run import with_lines

        return with_lines(self.tables.tasks, self.manifest)

    @property
    def sequences(self) -> pd.DataFrame:
        """Per (split, k, example sequence), as :attr:`tasks` (``sequences.csv``)."""
        return self.tables.sequences

    @property
    def headline(self) -> pd.DataFrame:
        """The report's headline table."""
        return self.tables.headline

    @property
    def task_array(self) -> np.ndarray:
        """The run's tasks in order, shape (n_tasks, 2)."""
        return np.asarray(self.manifest["tasks"], dtype=np.int64).reshape(-1, 2)

    def accuracy(self, split: str, k: int) -> float:
        """The model's accuracy on a split (``"id"``/``"ood"``) at one k, as in ``summary.csv``."""
        row = self.summary.query("split == @split and k == @k and predictor == @self.aggregates.subject")
        if row.empty:
            raise KeyError(f"no summary row for split {split!r}, k = {k}")
        return float(row["accuracy"].iloc[0])

    def iter_cells(self) -> Iterator[pd.DataFrame]:
        """Each task's cells in run order, one DataFrame at a time (bounded memory)."""
        if self._cells is not None:
            for i in sorted(self._cells):
                yield self._cells[i]
        elif self.folder is not None:
            yield from cells_store.iter_tasks(self.folder, self.task_array)
        else:
            raise ValueError("this result kept no cells (keep_cells=False and no folder)")

    def cells(self, task: Sequence[int] | None = None) -> pd.DataFrame:
        """The per-cell table: of one task ``(a, b)``, or of the whole run (in memory: for
        runs that fit)."""
        if task is not None:
            a, b = (int(v) for v in task)
            if self._cells is None and self.folder is not None:
                return cells_store.read_task(self.folder, (a, b))
            for c in self.iter_cells():
                if int(c["task_a"].iloc[0]) == a and int(c["task_b"].iloc[0]) == b:
                    return c
            raise KeyError(f"task ({a},{b}) is not in this run")
        return pd.concat(list(self.iter_cells()), ignore_index=True)

    def write_report(
        self,
        folder: str | Path,
        *,
        csv: bool = False,
        grid_tasks: Sequence[tuple[int, int]] | None = None,
        grid_algorithms: Sequence[str] | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the run folder ``compare run`` writes (cells, manifest, tables, figures, pages);
        returns its path. A folder of the same configuration is completed in place; one of
        another configuration is refused unless ``overwrite`` (which replaces only the suite's
        files there); a folder the suite did not write is always refused."""
        out = Path(folder).expanduser().absolute()
        if self.folder is not None and out == self.folder:
            report_step(out, self.manifest, self.aggregates, grid_tasks, grid_algorithms, csv, self._noise_writer())
            return out
        manifest = {k: v for k, v in self.manifest.items() if k not in ("n_cells", "status", "timings")}
        run_folder.prepare_folder(out, manifest, overwrite=overwrite)
        chash, p = manifest["config_hash"], int(manifest["p"])
        rows = cells_store.row_group_rows(len(manifest["ks"]), p)
        per_task = run_folder.rows_per_task(manifest)
        for i, cells in enumerate(self.iter_cells()):
            if not cells_store.task_done(out, self.task_array[i], chash, per_task):
                cells_store.write_task(out, cells, chash, rows)
        report_step(out, manifest, self.aggregates, grid_tasks, grid_algorithms, csv, self._noise_writer())
        return out

    def _noise_writer(self) -> Callable[[Path], None] | None:
        if self.noise_levels is None or self.noise_positions is None:
            return None
        levels, positions = self.noise_levels, self.noise_positions

        def write(tmp: Path) -> None:
            levels.to_csv(tmp / files.NOISE_LEVELS, index=False, float_format="%.6g")
            positions.to_csv(tmp / files.NOISE_POSITIONS, index=False, float_format="%.6g")

        return write


def report_step(
    out: Path,
    manifest: dict[str, Any],
    agg: Aggregates,
    grid_tasks: Sequence[tuple[int, int]] | None,
    grid_algorithms: Sequence[str] | None,
    csv: bool,
    extra: Callable[[Path], None] | None,
) -> list[str]:
    """The report of a run folder whose every task is present: summaries, figures, pages, the
    manifest marked complete (and ``cells.csv`` with ``csv``); returns the figure names."""
    tasks = np.asarray(manifest["tasks"], dtype=np.int64).reshape(-1, 2)
    final = dict(run_folder.read_manifest(out), n_cells=agg.n_cells, status="complete")
    figures = run_folder.write_run_report(
        out,
        final,
        agg,
        n_boot=int(manifest["n_boot"]),
        seed=int(manifest["seed"]),
        load_task=lambda a, b: cells_store.read_task(out, (a, b)),
        tasks_in_order=run_folder.task_order_of(final, tasks),
        grid_tasks=grid_tasks,
        grid_algorithms=grid_algorithms,
        extra=extra,
    )
    if csv:
        run_folder.write_cells_csv(out, tasks)
    files.replace_manifest(out, final)
    return figures
