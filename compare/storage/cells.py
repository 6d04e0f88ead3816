"""The per-cell table on disk: a Parquet dataset of one file per task.

Layout of a run folder's ``cells/``::

    cells/task-<a>-<b>.parquet     every cell of task (a, b): sequence, k, x*p + y order

One flat folder of files, one per task, because the task is the unit of work (a shard is a
set of tasks; resuming skips whole tasks) and of reading (a grid figure reads one task).
Each file carries its own ``task_a``/``task_b`` columns, so the folder reads as one table
through ``pyarrow.dataset`` with no partition decoding. Row groups hold one example
sequence each (n_k * p^2 rows, at least a few thousand at any p worth sharding); integer
columns keep the engine's narrow types (int8 up to p = 127). The file metadata carries
the run's configuration hash (:func:`config_hash`) and the schema version: a file whose
hash matches was computed by the same configuration and is never recomputed.

Every file is written under a temporary name carrying the writer's process id and renamed
into place when complete; :func:`remove_stale_parts` removes those a killed run left.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from compare.storage.files import process_alive

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
]

CELLS_DIR = "cells"
#: Version of the cell table's columns and of this layout; part of every config hash.
SCHEMA_VERSION = 2
_HASH_KEY = b"icl_modgrok.config_hash"
_SCHEMA_KEY = b"icl_modgrok.schema"
_NAME = re.compile(r"^task-(\d+)-(\d+)\.parquet$")
_PART = re.compile(r"^\.task-\d+-\d+\.parquet\.tmp-(\d+)-.+$")


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


def write_task(folder: Path, cells: pd.DataFrame, chash: str, row_group_rows: int) -> Path:
    """Write one task's cells (zstd, row groups of ``row_group_rows``) with the config hash
    in the file metadata; atomically (temporary name, then rename)."""
    a, b = int(cells["task_a"].to_numpy()[0]), int(cells["task_b"].to_numpy()[0])
    path = task_file(folder, (a, b))
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(cells, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.update({_HASH_KEY: chash.encode(), _SCHEMA_KEY: str(SCHEMA_VERSION).encode()})
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        with pq.ParquetWriter(tmp, table.schema, compression="zstd") as writer:
            writer.write_table(table, row_group_size=max(1, int(row_group_rows)))
        os.replace(tmp, path)
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


def task_done(folder: Path, task: Sequence[int], chash: str) -> bool:
    """Whether the file of ``task`` exists and was written by configuration ``chash``."""
    path = task_file(folder, task)
    return path.is_file() and file_config(path) == chash


def present_tasks(folder: Path) -> list[tuple[int, int]]:
    """The tasks with a file in ``folder/cells`` (any configuration), sorted."""
    d = Path(folder) / CELLS_DIR
    if not d.is_dir():
        return []
    out = [(int(m.group(1)), int(m.group(2))) for f in d.iterdir() if (m := _NAME.match(f.name))]
    return sorted(out)


def read_task(folder: Path, task: Sequence[int]) -> pd.DataFrame:
    """The cells of one task."""
    return pd.read_parquet(task_file(folder, task), engine="pyarrow")


def iter_tasks(folder: Path, tasks: Iterable[Sequence[int]],
               columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The cells of each task of ``tasks``, in that order, one task in memory at a time,
    read through one ``pyarrow.dataset`` over ``folder/cells`` (one fragment per file)."""
    tasks = [tuple(int(v) for v in t) for t in tasks]
    files = [str(task_file(folder, t)) for t in tasks]
    if not files:
        return
    dataset = pads.dataset(files, format="parquet")
    for fragment in dataset.get_fragments():  # in the order of ``files``
        yield fragment.to_table(columns=None if columns is None else list(columns)).to_pandas()


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove the temporary task files whose writing process is gone; returns them."""
    d = Path(folder) / CELLS_DIR
    if not d.is_dir():
        return []
    done = []
    for f in d.iterdir():
        m = _PART.match(f.name)
        if m and not process_alive(int(m.group(1))):
            f.unlink(missing_ok=True)
            done.append(f)
    return done


def row_group_rows(n_k: int, p: int) -> int:
    """Rows of one example sequence of one task (n_k * p^2): the row group of a task file."""
    return int(n_k) * int(p) * int(p)

