"""A run folder built in place, task by task: configuration, shards, resume, the report step.

``compare run`` streams each task's cells into ``cells/`` (:mod:`compare.storage.cells`)
and keeps only small aggregates (:mod:`compare.engine.aggregates`) in memory. The folder's
``manifest.json`` is written first and names the configuration (checkpoint SHA-256,
tasks, example sequences, k, solvers, label noise, schema version) by its hash:

- a folder made by the same configuration is resumed: tasks whose file carries that hash
  are skipped, whichever process or shard wrote them;
- a folder made by another configuration (or by a version that wrote no hash) is
  refused unless ``--overwrite``;
- a shard is a set of tasks (``I, I+N, I+2N, ...``); shards share nothing but the folder.
  The process that finds every task present writes the summaries and the report, under a
  lock so that two finishing at once do not both write; ``compare report DIR`` does the
  same from the files alone.

Each task file and each report file appears whole (temporary name, then rename); what a
killed run leaves is a resumable folder, never a half-written file.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from compare.engine.aggregates import Accumulator
from compare.errors import UsageError
from compare.storage import cells as cells_store
from compare.storage import files as report

__all__ = [
    "Shard",
    "resolve_shard",
    "prepare_folder",
    "missing_tasks",
    "report_lock",
    "folder_aggregates",
    "publish_report",
    "write_cells_csv",
    "read_cells",
    "read_manifest",
    "copy_run",
    "write_run_report",
    "task_order_of",
]

#: Files of a run folder that are data, not report output (kept when a report is rebuilt).
DATA_FILES = frozenset({report.MANIFEST, report.CELLS, "cells.csv", report.NOISE_LEVELS, report.NOISE_POSITIONS})
_REPORT_SUFFIXES = (".png", ".csv", ".md", ".html")


# ---------------------------------------------------------------------- shards
@dataclass(frozen=True)
class Shard:
    """Tasks ``index, index + count, ...`` of a run; ``source`` says where the numbers came from."""

    index: int = 0
    count: int = 1
    source: str = "single process"

    def select(self, n_tasks: int) -> np.ndarray:
        """Indices of this shard's tasks among ``n_tasks``."""
        return np.arange(self.index, n_tasks, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def resolve_shard(spec: str | None, env: Mapping[str, str] | None = None) -> Shard:
    """``--shard I/N`` when given; else ``torchrun``'s RANK/WORLD_SIZE; else a SLURM job
    array's SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (ids counted from SLURM_ARRAY_TASK_MIN);
    else one process doing every task."""
    env = os.environ if env is None else env
    if spec is not None:
        try:
            i, n = (int(v) for v in spec.split("/"))
        except ValueError:
            raise UsageError(f"--shard: expected I/N (e.g. 0/4), got {spec!r}") from None
        if n < 1 or not 0 <= i < n:
            raise UsageError(f"--shard {spec}: need 0 <= I < N")
        return Shard(i, n, "--shard")
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world > 1:
            return Shard(int(env["RANK"]), world, "torchrun (RANK/WORLD_SIZE)")
        slurm = "SLURM_ARRAY_TASK_COUNT" in env and "SLURM_ARRAY_TASK_ID" in env
        if slurm:
            count = int(env["SLURM_ARRAY_TASK_COUNT"])
            index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
    except (KeyError, ValueError):
        raise UsageError("RANK/WORLD_SIZE or SLURM_ARRAY_TASK_ID/COUNT are set but not integers") from None
    if slurm and count > 1:
        if not 0 <= index < count:
            raise UsageError(f"SLURM array task {index} outside 0..{count - 1} (use --array=0-{count - 1})")
        return Shard(index, count, "SLURM job array")
    return Shard()


# ---------------------------------------------------------------------- the folder
def prepare_folder(folder: Path, manifest: dict, *, overwrite: bool) -> bool:
    """Make ``folder`` ready for the run whose ``manifest`` (with ``config_hash``) is given;
    returns True when it resumes an earlier run of the same configuration.

    A missing or empty folder is created with the manifest; a folder of the same
    configuration is kept (stale temporary files of killed writers removed); any other
    folder is refused with one line unless ``overwrite`` (only report folders are ever
    replaced: a folder holding no manifest is never deleted).
    """
    folder = Path(folder).expanduser().absolute()
    report.remove_stale(folder)
    chash = manifest["config_hash"]
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"output path {folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / report.MANIFEST).is_file():
            raise UsageError(f"refusing to write into {folder}: it is not empty and holds no {report.MANIFEST}")
        theirs = read_manifest(folder).get("config_hash")
        if theirs == chash:
            cells_store.remove_stale_parts(folder)
            report.remove_stale(folder / "report")
            return True
        if not overwrite:
            why = ("was written by an earlier version (no configuration hash)" if theirs is None
                   else "was made by a different configuration "
                        "(checkpoint, tasks, sequences, k, solvers or label noise)")
            raise UsageError(f"{folder} {why}; pass --overwrite to replace it, or choose another --out")
        _remove_run(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _create_manifest(folder, manifest)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    return False


def read_manifest(folder: Path) -> dict:
    try:
        with open(folder / report.MANIFEST, encoding="utf-8") as fh:
            out = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{folder / report.MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(out, dict):
        raise UsageError(f"{folder / report.MANIFEST} is not a compare manifest")
    return out


def _create_manifest(folder: Path, manifest: dict) -> None:
    """Write the manifest unless another shard's is already there (same configuration)."""
    path = folder / report.MANIFEST
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    report.write_manifest_to(tmp, manifest)
    try:
        os.link(tmp, path)  # atomic "create if absent"
    except FileExistsError:
        if read_manifest(folder).get("config_hash") != manifest["config_hash"]:
            raise UsageError(f"{folder}: another run of a different configuration started here") from None
    finally:
        tmp.unlink(missing_ok=True)


def _remove_run(folder: Path) -> None:
    aside = folder.with_name(f".{folder.name}.old-{os.getpid()}-overwrite")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def missing_tasks(folder: Path, tasks: np.ndarray, chash: str) -> list[int]:
    """Indices of ``tasks`` without a file of configuration ``chash``."""
    return [i for i, t in enumerate(tasks.tolist()) if not cells_store.task_done(folder, t, chash)]


@contextlib.contextmanager
def report_lock(folder: Path) -> Iterator[bool]:
    """Yield True to the one process that may write the report now, False to any other
    (an advisory lock on the folder itself, so no lock file is left behind)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def folder_aggregates(folder: Path, tasks: np.ndarray, p: int, subject: str, references: Sequence[str],
                      ks: Sequence[int], have: Accumulator | None = None) -> Accumulator:
    """The aggregates of every task of a run: those in ``have`` (computed while streaming)
    and, read back one file at a time, the rest."""
    acc = have if have is not None else Accumulator()
    todo = [i for i in range(len(tasks)) if i not in acc]
    for i, cells in zip(todo, cells_store.iter_tasks(folder, tasks[todo]), strict=True):
        acc.add_cells(i, cells, p, subject, references, ks)
    return acc


def publish_report(folder: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` into a temporary folder inside ``folder``, then move every file
    it wrote into ``folder`` (each by one rename) and remove the previous report's files
    that the new one does not have."""
    folder = Path(folder)
    tmp = Path(report.make_temp_dir(folder / "report"))
    try:
        write(tmp)
        new = {f.name for f in tmp.iterdir()}
        for name in sorted(new):
            os.replace(tmp / name, folder / name)
        for f in folder.iterdir():
            if (f.is_file() and f.name not in new and f.name not in DATA_FILES and not f.name.startswith(".")
                    and f.suffix in _REPORT_SUFFIXES):
                f.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_cells_csv(folder: Path, tasks: np.ndarray) -> None:
    """cells.csv of every task, streamed (``--csv``)."""
    path = Path(folder) / "cells.csv"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        for i, cells in enumerate(cells_store.iter_tasks(folder, tasks)):
            cells.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False, float_format="%.6g")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_cells(folder: Path) -> pd.DataFrame:
    """Every cell of a run folder in one table (new per-task dataset or old ``cells.parquet``),
    in the run's task order; for runs that fit in memory."""
    folder = Path(folder)
    if (folder / report.CELLS).is_file():
        return pd.read_parquet(folder / report.CELLS, engine="pyarrow")
    tasks = np.asarray(read_manifest(folder)["tasks"], dtype=np.int64).reshape(-1, 2)
    return pd.concat(list(cells_store.iter_tasks(folder, tasks)), ignore_index=True)


def write_run_report(folder: Path, manifest: dict, agg, *, n_boot: int, seed: int,
                     load_task: Callable[[int, int], pd.DataFrame], tasks_in_order: Sequence[tuple[str, int, int]],
                     grid_tasks=None, grid_algorithms=None, grid_sequence: int = 0,
                     extra: Callable[[Path], None] | None = None) -> list[str]:
    """Summaries of ``agg`` (:class:`compare.engine.aggregates.Aggregates`), figures and pages,
    published into ``folder`` (:func:`publish_report`); ``extra(tmp)`` may add data files
    first (the label-noise sweeps). Returns the figure names."""
    from compare.engine.summary import summaries
    from compare.reports import run as run_report

    tables = summaries(agg, n_boot=n_boot, seed=seed)
    figures: list[str] = []

    def write(tmp: Path) -> None:
        if extra is not None:
            extra(tmp)
        for name in (report.NOISE_LEVELS, report.NOISE_POSITIONS):  # sweeps a rebuild draws again
            if (folder / name).is_file() and not (tmp / name).exists():
                _link_or_copy(folder / name, tmp / name)
        figures.extend(run_report.write_report(tmp, manifest, tables, load_task, tasks_in_order, grid_tasks=grid_tasks,
                                               grid_algorithms=grid_algorithms, grid_sequence=grid_sequence))

    publish_report(folder, write)
    return figures


def task_order_of(manifest: dict, tasks: np.ndarray) -> list[tuple[str, int, int]]:
    """(split, a, b) of each task in run order, the split from the manifest's pre-training tasks."""
    pre = {tuple(t) for t in manifest.get("pretrain_tasks", [])}
    return [("id" if (a, b) in pre else "ood", a, b) for a, b in tasks.tolist()]


def copy_run(src: Path, dst: Path) -> None:
    """A new run folder ``dst`` holding ``src``'s data (manifest, cells, noise sweeps), files
    hard-linked where the file system allows; ``dst`` must be absent, empty or an earlier
    report folder (which it replaces)."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        if not dst.is_dir() or (any(dst.iterdir()) and not (dst / report.MANIFEST).is_file()):
            raise UsageError(f"refusing to replace {dst}: it is not empty and holds no {report.MANIFEST}")
    with report.atomic_output_dir(dst) as tmp:
        report.copy_run_files(src, tmp)
        cells = src / cells_store.CELLS_DIR
        if cells.is_dir():
            (tmp / cells_store.CELLS_DIR).mkdir()
            for f in cells.iterdir():
                if f.is_file() and not f.name.startswith("."):
                    _link_or_copy(f, tmp / cells_store.CELLS_DIR / f.name)


def _link_or_copy(a: Path, b: Path) -> None:
    try:
        os.link(a, b)
    except OSError:
        shutil.copy2(a, b)
