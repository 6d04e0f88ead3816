"""compare.storage.cells and compare.storage.folder: task files, config hash, shards, the streamed aggregates."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from compare_stand_ins import NoisyModel

from algos.solvers import ModularRegression, reference_solvers
from algos.tasks import TaskSetting
from compare.engine.aggregates import Accumulator, aggregate, merge
from compare.engine.comparison import iter_comparison, run_comparison
from compare.engine.grid import build_sequences
from compare.engine.summary import compute_all, summaries
from compare.errors import UsageError
from compare.storage import cells as cells_store
from compare.storage.folder import Shard, folder_aggregates, resolve_shard

P = 5


@pytest.fixture(scope="module")
def setting() -> TaskSetting:
    return TaskSetting.build(P, n_base_tasks=3, alpha=0.6)


@pytest.fixture(scope="module")
def comparison(setting):
    tasks = np.array(list(itertools.product(range(P), repeat=2)))
    seqs = build_sequences(P, 4, n_random=2, seed=3)
    return setting, tasks, seqs, (1, 2, 4)


def _stream(comparison, **kw):
    setting, tasks, seqs, ks = comparison
    return iter_comparison(setting, tasks, seqs, ks, NoisyModel(ModularRegression(P)), reference_solvers(setting), **kw)


def test_the_stream_is_the_table_task_by_task_whatever_the_chunk(comparison):
    setting, tasks, seqs, ks = comparison
    whole = run_comparison(setting, tasks, seqs, ks, NoisyModel(ModularRegression(P)), reference_solvers(setting)).cells
    for chunk in (1, 7, 1000):
        blocks = list(_stream(comparison, chunk_size=chunk))
        assert [i for i, _ in blocks] == list(range(len(tasks)))
        for i, cells in blocks:  # each block is one whole task
            assert {tuple(t) for t in cells[["task_a", "task_b"]].drop_duplicates().to_numpy()} == {tuple(tasks[i])}
        pd.testing.assert_frame_equal(pd.concat([c for _, c in blocks], ignore_index=True), whole)


def test_aggregating_task_by_task_gives_exactly_the_whole_tables(comparison):
    """Every sum of a (task, sequence) unit is taken over the same cells in the same order,
    so merged per-task aggregates give bit-identical summaries (not merely close ones)."""
    setting, tasks, seqs, ks = comparison
    blocks = list(_stream(comparison))
    whole = pd.concat([c for _, c in blocks], ignore_index=True)
    direct = compute_all(whole, P, n_boot=50, seed=4)
    acc = Accumulator()
    for i, cells in reversed(blocks):  # any arrival order
        acc.add(i, aggregate(cells, P, ks=ks))
    streamed = summaries(acc.result(), n_boot=50, seed=4)
    for name in ("summary", "attribution", "maps", "headline", "sequences", "tasks"):
        pd.testing.assert_frame_equal(getattr(streamed, name), getattr(direct, name), check_exact=True, obj=name)
    with pytest.raises(ValueError, match="added twice"):
        acc.add(0, aggregate(blocks[0][1], P, ks=ks))
    with pytest.raises(ValueError, match="share"):
        merge([aggregate(blocks[0][1], P, ks=ks)] * 2)


def test_task_files_carry_the_hash_narrow_types_and_one_row_group_per_sequence(comparison, tmp_path):
    setting, tasks, seqs, ks = comparison
    _, cells = next(iter(_stream(comparison)))
    path = cells_store.write_task(tmp_path, cells, "abc", cells_store.row_group_rows(len(ks), P))
    assert path == cells_store.task_file(tmp_path, (0, 0)) and path.name == "task-0-0.parquet"
    assert cells_store.file_config(path) == "abc"
    assert cells_store.task_done(tmp_path, (0, 0), "abc") and not cells_store.task_done(tmp_path, (0, 0), "xyz")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == len(seqs) and meta.num_rows == len(cells)
    back = cells_store.read_task(tmp_path, (0, 0))
    pd.testing.assert_frame_equal(back, cells)
    assert back["pred_model"].dtype == np.int8 and back["x"].dtype == np.int8
    assert [p.name for p in (tmp_path / "cells").iterdir()] == ["task-0-0.parquet"]  # no temporary left
    path.write_bytes(b"PAR1 not parquet")
    assert cells_store.file_config(path) is None and not cells_store.task_done(tmp_path, (0, 0), "abc")


def test_stale_parts_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    d = tmp_path / "cells"
    d.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = d / f".task-1-2.parquet.tmp-{int(dead.stdout)}-ab12"
    live = d / f".task-1-3.parquet.tmp-{os.getpid()}-cd34"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    assert cells_store.remove_stale_parts(tmp_path) == [stale]
    assert live.exists() and not stale.exists()


def test_config_hash_names_every_input():
    base = {"tasks": [[1, 2]], "ks": [1, 2]}
    h = cells_store.config_hash(base)
    assert h == cells_store.config_hash(dict(reversed(list(base.items()))))  # key order is irrelevant
    assert h != cells_store.config_hash({**base, "ks": [1, 3]})
    assert cells_store.array_digest(np.zeros((2, 3))) != cells_store.array_digest(np.zeros((3, 2)))


@pytest.mark.parametrize("spec, env, want", [
    ("1/3", {}, (1, 3)),
    (None, {}, (0, 1)),
    (None, {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "2"}, (2, 4)),
    (None, {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "5"}, (2, 4)),
    (None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "1"}, (0, 1)),
    ("0/2", {"WORLD_SIZE": "4", "RANK": "2"}, (0, 2)),  # the flag wins
])
def test_shards_come_from_the_flag_torchrun_or_slurm(spec, env, want):
    s = resolve_shard(spec, env)
    assert (s.index, s.count) == want


@pytest.mark.parametrize("spec, env, message", [
    ("2/2", {}, "need 0 <= I < N"),
    ("a/b", {}, "expected I/N"),
    ("1", {}, "expected I/N"),
    (None, {"WORLD_SIZE": "2", "RANK": "x"}, "not integers"),
    (None, {"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "4"}, "outside 0..3"),
])
def test_bad_shards(spec, env, message):
    with pytest.raises(UsageError, match=message):
        resolve_shard(spec, env)


def test_shards_partition_the_tasks():
    n = 23
    for count in (1, 2, 5, 30):
        parts = [Shard(i, count).select(n) for i in range(count)]
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))


def test_folder_aggregates_read_back_what_was_not_streamed(comparison, tmp_path):
    setting, tasks, seqs, ks = comparison
    blocks = list(_stream(comparison))
    acc = Accumulator()
    for i, cells in blocks:
        cells_store.write_task(tmp_path, cells, "h", 100)
        if i % 3 == 0:
            acc.add(i, aggregate(cells, P, ks=ks))
    refs = [r.name for r in reference_solvers(setting)]
    mixed = folder_aggregates(tmp_path, tasks, P, "model", refs, ks, acc).result()
    fresh = folder_aggregates(tmp_path, tasks, P, "model", refs, ks).result()
    whole = aggregate(pd.concat([c for _, c in blocks], ignore_index=True), P, ks=ks)
    for agg in (mixed, fresh):
        np.testing.assert_array_equal(agg.sums.num, whole.sums.num)
        np.testing.assert_array_equal(agg.attribution.counts, whole.attribution.counts)
        np.testing.assert_array_equal(agg.maps.hits, whole.maps.hits)
