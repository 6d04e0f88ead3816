"""The per-cell table on disk: a Parquet dataset of one file per task.

Layout of a run folder's ``cells/``::

    cells/task-<a>-<b>.parquet     every cell of task (a, b): sequence, k, x*p + y order

One flat folder of files, one per task, because the task is the unit of work (a shard is a
set of tasks; resuming skips whole tasks) and of reading (a grid figure reads one task).
Each file carries its own ``task_a``/``task_b`` columns, so the folder reads as one table
through ``pyarrow.dataset`` with no partition decoding. Row groups hold one example
sequence each (n_k * p^2 rows, at least a few thousand at any p worth sharding); integer
columns keep the engine's narrow types (int8 up to p = 127). The file metadata carries
the run's configuration hash (:func:`config_hash`), the schema version, the task, the row
count and a digest of the content. A file counts as done (:func:`task_done`) only when its
hash is the run's, its task is the one its name says and its row count is the run's
(sequences x k x p^2): a truncated file, or one copied over another task's, is computed
again. The digest is checked whenever a file is read whole (:func:`iter_tasks`): a file
whose content changed after it was written raises :class:`DamagedTaskFile` naming it.

Every file is written under a temporary name carrying the writer's host and process id
(:mod:`compare.storage.temps`) and renamed into place when complete;
:func:`remove_stale_parts` removes those a killed run left.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from compare.errors import UsageError
from compare.storage import temps

__all__ = [
    "CELLS_DIR",
    "SCHEMA_VERSION",
    "config_hash",
    "array_digest",
    "task_file",
    "write_task",
    "task_done",
    "file_config",
    "read_task",
    "iter_tasks",
    "remove_stale_parts",
    "present_tasks",
    "row_group_rows",
    "task_problem",
    "is_task_file",
    "frame_digest",
    "DamagedTaskFile",
]

CELLS_DIR = "cells"
#: Version of the cell table's columns and of this layout; part of every config hash.
SCHEMA_VERSION = 2
_HASH_KEY = b"icl_modgrok.config_hash"
_SCHEMA_KEY = b"icl_modgrok.schema"
_TASK_KEY = b"icl_modgrok.task"
_ROWS_KEY = b"icl_modgrok.rows"
_DIGEST_KEY = b"icl_modgrok.digest"
_NAME = re.compile(r"^task-(\d+)-(\d+)\.parquet$")


class DamagedTaskFile(UsageError):
    """A task file whose content is not what was written (its digest differs)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = Path(path)


def config_hash(config: dict) -> str:
    """SHA-256 (hex) of a JSON-able configuration, keys sorted, with :data:`SCHEMA_VERSION`."""
    blob = json.dumps({"schema": SCHEMA_VERSION, **config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def array_digest(a) -> str:
    """SHA-256 of an integer array's shape and int64 values (for a config hash)."""
    import numpy as np

    a = np.ascontiguousarray(a, dtype=np.int64)
    return hashlib.sha256(str(a.shape).encode() + a.tobytes()).hexdigest()


def task_file(folder: Path, task: Sequence[int]) -> Path:
    """The file of task (a, b) in a run folder."""
    return Path(folder) / CELLS_DIR / f"task-{int(task[0])}-{int(task[1])}.parquet"


def frame_digest(cells: pd.DataFrame) -> str:
    """SHA-256 of a task's cells: every column's name, type and values, in order (categorical
    columns by their values, whatever the order of their categories)."""
    h = hashlib.sha256()
    for name in cells.columns:
        col = cells[name]
        h.update(f"{name}:".encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = np.asarray(col.cat.categories.astype(str))
            order = np.argsort(cats, kind="stable")
            rank = np.empty(len(order) + 1, dtype=np.int64)
            rank[order] = np.arange(len(order))
            rank[-1] = -1  # code -1: missing
            h.update(("|".join(cats[order].tolist()) + ":").encode())
            h.update(rank[col.cat.codes.to_numpy().astype(np.int64)].tobytes())
        else:
            values = col.to_numpy()
            if values.dtype == object:
                h.update("\x1f".join(map(str, values.tolist())).encode())
            else:
                h.update(str(values.dtype).encode() + np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def write_task(folder: Path, cells: pd.DataFrame, chash: str, row_group_rows: int) -> Path:
    """Write one task's cells (zstd, row groups of ``row_group_rows``) with the config hash,
    task, row count and content digest in the file metadata; atomically (temporary name,
    then rename)."""
    a, b = int(cells["task_a"].to_numpy()[0]), int(cells["task_b"].to_numpy()[0])
    path = task_file(folder, (a, b))
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(cells, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.update(
        {
            _HASH_KEY: chash.encode(),
            _SCHEMA_KEY: str(SCHEMA_VERSION).encode(),
            _TASK_KEY: f"{a},{b}".encode(),
            _ROWS_KEY: str(len(cells)).encode(),
            _DIGEST_KEY: frame_digest(cells).encode(),
        }
    )
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(temps.temp_name(path.name))
    try:
        with pq.ParquetWriter(tmp, table.schema, compression="zstd") as writer:
            writer.write_table(table, row_group_size=max(1, int(row_group_rows)))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def file_config(path: Path) -> str | None:
    """The config hash in a task file's metadata; None when it is missing or unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    value = meta.get(_HASH_KEY)
    return value.decode() if value else None


def task_problem(folder: Path, task: Sequence[int], chash: str, rows: int | None = None) -> str | None:
    """Why the file of ``task`` does not hold that task's cells of configuration ``chash``
    (``rows`` of them when given), from its footer alone; None when it does."""
    path = task_file(folder, task)
    if not path.is_file():
        return "missing"
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return "not a readable Parquet file"
    kv = meta.metadata or {}
    found = kv.get(_HASH_KEY)
    if found is None or found.decode() != chash:
        return "made by another configuration" if found else "carries no configuration hash"
    a, b = int(task[0]), int(task[1])
    stored = kv.get(_TASK_KEY)
    if stored is not None and stored.decode() != f"{a},{b}":
        return f"holds the cells of task ({stored.decode()}), not ({a},{b})"
    if stored is None:  # older files: the task columns' statistics say which task it holds
        seen = _task_in_statistics(meta)
        if seen is not None and seen != (a, b):
            return f"holds the cells of task ({seen[0]},{seen[1]}), not ({a},{b})"
    n = meta.num_rows
    written = kv.get(_ROWS_KEY)
    if written is not None and int(written.decode()) != n:
        return f"holds {n:,} rows where {int(written.decode()):,} were written"
    if rows is not None and n != rows:
        return f"holds {n:,} rows where the run has {rows:,} per task"
    return None


def _task_in_statistics(meta) -> tuple[int, int] | None:
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "task_a" not in names or "task_b" not in names or meta.num_row_groups == 0:
        return None
    seen = []
    for col in (names.index("task_a"), names.index("task_b")):
        lo, hi = set(), set()
        for g in range(meta.num_row_groups):
            st = meta.row_group(g).column(col).statistics
            if st is None or not st.has_min_max:
                return None
            lo.add(int(st.min))
            hi.add(int(st.max))
        if len(lo | hi) != 1:
            return (-1, -1)  # several tasks in one file
        seen.append(lo.pop())
    return seen[0], seen[1]


def task_done(folder: Path, task: Sequence[int], chash: str, rows: int | None = None) -> bool:
    """Whether the file of ``task`` exists, was written by configuration ``chash``, holds that
    task and (when ``rows`` is given) that many rows (:func:`task_problem`)."""
    return task_problem(folder, task, chash, rows) is None


def is_task_file(name: str) -> bool:
    """Whether ``name`` is a task file's name (``task-<a>-<b>.parquet``)."""
    return bool(_NAME.match(name))


def present_tasks(folder: Path) -> list[tuple[int, int]]:
    """The tasks with a file in ``folder/cells`` (any configuration), sorted."""
    d = Path(folder) / CELLS_DIR
    if not d.is_dir():
        return []
    out = [(int(m.group(1)), int(m.group(2))) for f in d.iterdir() if (m := _NAME.match(f.name))]
    return sorted(out)


def read_task(folder: Path, task: Sequence[int]) -> pd.DataFrame:
    """The cells of one task (the content digest checked)."""
    return next(iter_tasks(folder, [task]))


def iter_tasks(folder: Path, tasks: Iterable[Sequence[int]],
               columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The cells of each task of ``tasks``, in that order, one task in memory at a time,
    read through one ``pyarrow.dataset`` over ``folder/cells`` (one fragment per file)."""
    tasks = [tuple(int(v) for v in t) for t in tasks]
    files = [str(task_file(folder, t)) for t in tasks]
    if not files:
        return
    dataset = pads.dataset(files, format="parquet")
    for path, fragment in zip(files, dataset.get_fragments(), strict=True):  # in the order of ``files``
        table = fragment.to_table(columns=None if columns is None else list(columns))
        frame = table.to_pandas()
        if columns is None:
            _check_digest(Path(path), table.schema.metadata or {}, frame)
        yield frame


def _check_digest(path: Path, meta: dict, frame: pd.DataFrame) -> None:
    want = meta.get(_DIGEST_KEY)
    rows = meta.get(_ROWS_KEY)
    if rows is not None and int(rows.decode()) != len(frame):
        raise DamagedTaskFile(path, f"{path}: holds {len(frame):,} rows where {int(rows.decode()):,} were written")
    if want is not None and frame_digest(frame) != want.decode():
        raise DamagedTaskFile(path, f"{path}: its cells differ from what was written (content digest mismatch)")


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove the temporary task files a killed or long-gone writer left (this host's whose
    process is gone, any host's older than the lease: :mod:`compare.storage.temps`)."""
    def task(n: str) -> bool:
        return bool(_NAME.match(n))

    return temps.remove_stale_in(Path(folder) / CELLS_DIR, names=task, legacy=task)


def row_group_rows(n_k: int, p: int) -> int:
    """Rows of one example sequence of one task (n_k * p^2): the row group of a task file."""
    return int(n_k) * int(p) * int(p)

