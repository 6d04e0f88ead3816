"""Output folders own only what they wrote; temporaries name their host; files and manifests prove themselves.

Storage-level rules (compare.storage.ownership, temps, cells, folder), fast and without a model;
the same rules through the commands are in tests/cli/test_safety_cli.py.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compare.errors import UsageError
from compare.storage import cells as cells_store
from compare.storage import files, ownership, temps
from compare.storage import folder as run_folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _suite(tool: str = "compare inspect", sha: str = "a", **more) -> dict:
    return {"tool": tool, "format": 1, "checkpoint": {"name": "x", "sha256": sha}, **more}


def _write_report(target: Path, manifest: dict, names=("scores.csv", "report.md"), overwrite=None) -> None:
    with files.atomic_output_dir(target, overwrite=overwrite) as tmp:
        for n in names:
            (tmp / n).write_text(f"{manifest['checkpoint']['sha256']}:{n}")
        files.write_manifest(tmp, manifest)


# ---------------------------------------------------------------------- what is the suite's
@pytest.mark.parametrize("content, ours", [
    ({"tool": "compare run", "format": 1}, True),
    ({"tool": "compare inspect", "format": 1, "files": ["manifest.json"]}, True),
    ({"name": "web"}, False),
    ({"tool": "webpack", "format": 1}, False),
    ({"tool": "compare run"}, False),
    ({"tool": "compare run", "format": True}, False),
    ([1, 2], False),
])
def test_a_folder_is_the_suites_only_when_its_manifest_says_so(tmp_path, content, ours):
    (tmp_path / "manifest.json").write_text(json.dumps(content))
    assert (ownership.suite_manifest(tmp_path) is not None) is ours


def test_legacy_manifests_own_the_names_their_command_writes(tmp_path):
    for n in ("summary.csv", "grid_ood_6_9.png", "curves.png", "notes.txt", "myfig.png"):
        (tmp_path / n).write_text("x")
    (tmp_path / "cells").mkdir()
    own = ownership.owned_entries(tmp_path, {"tool": "compare run", "format": 1})
    assert own == {"manifest.json", "summary.csv", "grid_ood_6_9.png", "curves.png", "cells"}


# ---------------------------------------------------------------------- replacing a report
def test_a_report_of_the_same_checkpoint_is_replaced_and_the_users_files_stay(tmp_path):
    target = tmp_path / "r"
    _write_report(target, _suite(), names=("scores.csv", "old_only.png"))
    (target / "notes.txt").write_text("mine")
    (target / "myfigs").mkdir()
    (target / "myfigs" / "a.png").write_bytes(b"\x89PNG")
    _write_report(target, _suite(), names=("scores.csv", "new_only.png"))
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "myfigs", "new_only.png", "notes.txt",
                                                        "scores.csv"]
    assert (target / "notes.txt").read_text() == "mine" and (target / "myfigs" / "a.png").read_bytes() == b"\x89PNG"
    assert json.loads((target / "manifest.json").read_text())["files"] == ["manifest.json", "new_only.png",
                                                                          "scores.csv"]


def test_another_checkpoint_needs_overwrite_and_another_command_is_always_refused(tmp_path):
    target = tmp_path / "r"
    _write_report(target, _suite(sha="a"))
    with pytest.raises(UsageError, match="pass --overwrite"):
        _write_report(target, _suite(sha="b"), overwrite=False)
    with pytest.raises(UsageError, match="choose another --out$"):  # a command without the flag
        _write_report(target, _suite(sha="b"))
    assert (target / "scores.csv").read_text() == "a:scores.csv"
    _write_report(target, _suite(sha="b"), overwrite=True)
    assert (target / "scores.csv").read_text() == "b:scores.csv"
    for flag in (False, True):
        with pytest.raises(UsageError, match="`compare inspect` report .* not a `compare ablate` report"):
            _write_report(target, _suite("compare ablate", sha="b"), overwrite=flag)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary left


def test_a_new_file_never_lands_on_a_users_file_of_the_same_name(tmp_path):
    target = tmp_path / "r"
    _write_report(target, _suite(), names=("scores.csv",))
    (target / "extra.png").write_text("the user's figure")
    with pytest.raises(UsageError, match="would write over extra.png"):
        _write_report(target, _suite(), names=("scores.csv", "extra.png"))
    assert (target / "extra.png").read_text() == "the user's figure"
    assert (target / "scores.csv").read_text() == "a:scores.csv"


@pytest.mark.parametrize("content", [None, '{"name": "web"}', "not json"])
def test_a_users_folder_is_refused_whatever_the_flags(tmp_path, content):
    target = tmp_path / "w"
    (target / "src").mkdir(parents=True)
    (target / "src" / "app.js").write_text("code")
    if content is not None:
        (target / "manifest.json").write_text(content)
    for flag in (None, False, True):
        with pytest.raises(UsageError, match="refusing to replace .*(src/|manifest.json)"):
            _write_report(target, _suite(), overwrite=flag)
        with pytest.raises(UsageError, match="refusing to replace"):
            run_folder.prepare_folder(target, _run_manifest("h"), overwrite=bool(flag))
    assert (target / "src" / "app.js").read_text() == "code"


def _run_manifest(chash: str) -> dict:
    return {"tool": "compare run", "format": 1, "config_hash": chash, "p": 5, "ks": [1], "tasks": [[1, 1]],
            "sequences": [[[1, 0]]]}


def test_run_overwrite_removes_only_the_runs_own_files(tmp_path):
    folder = tmp_path / "run"
    assert run_folder.prepare_folder(folder, _run_manifest("h1"), overwrite=False) is False
    (folder / "cells").mkdir(exist_ok=True)
    (folder / "cells" / "task-1-1.parquet").write_bytes(b"x")
    (folder / "cells" / "README").write_text("the user's note in cells/")
    run_folder.publish_report(folder, lambda tmp: (tmp / "summary.csv").write_text("s"))
    (folder / "notes.txt").write_text("keep")
    assert run_folder.prepare_folder(folder, _run_manifest("h1"), overwrite=False) is True  # resumed
    with pytest.raises(UsageError, match="different configuration.*--overwrite"):
        run_folder.prepare_folder(folder, _run_manifest("h2"), overwrite=False)
    assert run_folder.prepare_folder(folder, _run_manifest("h2"), overwrite=True) is False
    assert sorted(p.name for p in folder.iterdir()) == ["cells", "manifest.json", "notes.txt"]
    assert [p.name for p in (folder / "cells").iterdir()] == ["README"]
    assert json.loads((folder / "manifest.json").read_text())["config_hash"] == "h2"


def test_publishing_a_report_replaces_only_listed_files(tmp_path):
    folder = tmp_path / "run"
    run_folder.prepare_folder(folder, _run_manifest("h"), overwrite=False)
    run_folder.publish_report(folder, lambda tmp: [(tmp / n).write_text("1") for n in ("a.png", "b.png")])
    (folder / "mine.png").write_text("user")
    run_folder.publish_report(folder, lambda tmp: (tmp / "a.png").write_text("2"))
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "manifest.json", "mine.png"]
    assert set(json.loads((folder / "manifest.json").read_text())["files"]) == {"a.png", "cells", "manifest.json"}
    with pytest.raises(UsageError, match="would write over mine.png"):
        run_folder.publish_report(folder, lambda tmp: (tmp / "mine.png").write_text("report"))
    assert (folder / "mine.png").read_text() == "user"


def test_copying_a_run_leaves_its_source_untouched(tmp_path):
    folder = tmp_path / "run"
    run_folder.prepare_folder(folder, _run_manifest("h"), overwrite=False)
    (folder / "cells").mkdir(exist_ok=True)
    (folder / "cells" / "task-1-1.parquet").write_bytes(b"x")
    run_folder.publish_report(folder, lambda tmp: (tmp / "summary.csv").write_text("s"))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for _ in range(2):  # a copy, then the copy replaced by the same run's (files hard-linked to the source's)
        run_folder.copy_run(folder, tmp_path / "copy")
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert json.loads((tmp_path / "copy" / "manifest.json").read_text())["files"] == ["cells", "manifest.json"]


# property: whatever the user put in a report folder survives every writer, byte for byte
_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=10).filter(
    lambda n: n not in (".", "..") and not temps.is_temporary(n))
_TREE = st.dictionaries(_NAME, st.one_of(st.binary(max_size=20), st.dictionaries(_NAME, st.binary(max_size=8),
                                                                                  max_size=3)), max_size=6)


def _plant(folder: Path, tree: dict) -> dict[str, bytes]:
    planted = {}
    for name, value in tree.items():
        if (folder / name).exists():
            continue
        if isinstance(value, dict):
            (folder / name).mkdir()
            for sub, data in value.items():
                (folder / name / sub).write_bytes(data)
                planted[f"{name}/{sub}"] = data
            if not value:
                planted[f"{name}/"] = b""
        else:
            (folder / name).write_bytes(value)
            planted[name] = value
    return planted


def _intact(folder: Path, planted: dict[str, bytes]) -> None:
    for rel, data in planted.items():
        path = folder / rel
        assert path.is_dir() if rel.endswith("/") else path.read_bytes() == data, rel


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_TREE, same=st.booleans(), flag=st.sampled_from([None, False, True]),
       tool=st.sampled_from(["compare inspect", "compare ablate"]))
def test_property_users_files_survive_report_writers(tmp_path_factory, tree, same, flag, tool):
    target = tmp_path_factory.mktemp("p") / "r"
    _write_report(target, _suite(), names=("scores.csv", "report.md", "fig.png"))
    planted = _plant(target, tree)
    try:
        _write_report(target, _suite(tool, sha="a" if same else "b"), names=("scores.csv", "other.png"),
                      overwrite=flag)
    except UsageError:
        pass
    _intact(target, planted)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_TREE, cells_tree=_TREE)
def test_property_users_files_survive_run_overwrite_and_report(tmp_path_factory, tree, cells_tree):
    folder = tmp_path_factory.mktemp("p") / "run"
    run_folder.prepare_folder(folder, _run_manifest("h1"), overwrite=False)
    (folder / "cells").mkdir(exist_ok=True)
    (folder / "cells" / "task-1-1.parquet").write_bytes(b"x")
    run_folder.publish_report(folder, lambda tmp: (tmp / "summary.csv").write_text("s"))
    planted = _plant(folder, tree)
    planted.update({f"cells/{k}": v for k, v in _plant(folder / "cells", cells_tree).items()})
    for step in (
        lambda: run_folder.publish_report(folder, lambda tmp: (tmp / "summary.csv").write_text("t")),
        lambda: run_folder.prepare_folder(folder, _run_manifest("h2"), overwrite=True),
        lambda: run_folder.copy_run(folder, folder.with_name("copy")),
    ):
        try:
            step()
        except UsageError:
            pass
        _intact(folder, planted)


# ---------------------------------------------------------------------- temporaries and hosts
def test_temporaries_name_their_host_and_process():
    name = temps.temp_name("task-1-2.parquet")
    info = temps.parse(name)
    assert info == {"name": "task-1-2.parquet", "kind": "tmp", "host": temps.host_id(), "pid": os.getpid()}
    from model.checkpoint import temp_path  # the model's writers use the same form

    assert temps.parse(temp_path(Path("last.pt")).name)["host"] == temps.host_id()


def test_another_hosts_live_writer_is_never_removed_only_an_abandoned_one(tmp_path, monkeypatch):
    d = tmp_path / "cells"
    d.mkdir()
    monkeypatch.setattr(socket, "gethostname", lambda: "node-b")
    theirs = d / temps.temp_name("task-1-2.parquet")  # node b's writer, pid meaningless here
    theirs_old = d / temps.temp_name("task-1-3.parquet")
    dead_b = d / f".task-1-4.parquet.tmp-h{temps.host_id()}-p{_dead_pid()}-ab"
    monkeypatch.setattr(socket, "gethostname", lambda: "node-a")
    mine_dead = d / f".task-1-5.parquet.tmp-h{temps.host_id()}-p{_dead_pid()}-cd"
    mine_live = d / temps.temp_name("task-1-6.parquet")
    for f in (theirs, theirs_old, dead_b, mine_dead, mine_live):
        f.write_bytes(b"x")
    old = time.time() - temps.LEASE_S - 60
    os.utime(theirs_old, (old, old))
    removed = cells_store.remove_stale_parts(tmp_path)
    assert sorted(removed) == sorted([theirs_old, mine_dead])  # node b's dead pid: not ours to judge
    assert theirs.exists() and dead_b.exists() and mine_live.exists()


def test_stale_temporaries_of_every_writer_in_a_folder_are_removed(tmp_path):
    dead = _dead_pid()
    host = temps.host_id()
    for name in (f".report.tmp-h{host}-p{dead}-x", f".report.tmp-{dead}-abc", f".manifest.json.tmp-{dead}",
                 f".cells.csv.tmp-h{host}-p{dead}-y"):
        (tmp_path / name).mkdir() if "report" in name else (tmp_path / name).write_text("x")
    (tmp_path / ".notes.tmp-keep").write_text("a user's hidden file that merely looks like one")
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / f".task-0-0.parquet.tmp-{dead}-ab").write_text("x")
    files.remove_stale_inside(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp-keep", "cells"]
    assert list((tmp_path / "cells").iterdir()) == []


# ---------------------------------------------------------------------- task files prove themselves
def _cells(task=(1, 2), n_seq=2, n_k=2, p=5) -> pd.DataFrame:
    n = n_seq * n_k * p * p
    return pd.DataFrame({
        "task_a": np.full(n, task[0], np.int8), "task_b": np.full(n, task[1], np.int8),
        "split": pd.Categorical(["ood"] * n, categories=["id", "ood"]),
        "sequence": np.repeat(np.arange(n_seq), n_k * p * p).astype(np.int16),
        "x": np.arange(n).astype(np.int8) % p, "pred_model": np.arange(n).astype(np.int8) % p,
        "p_true_model": np.linspace(0, 1, n).astype(np.float32),
    })


def test_a_task_file_counts_only_with_its_rows_and_its_task(tmp_path):
    cells = _cells()
    path = cells_store.write_task(tmp_path, cells, "h", 50)
    assert cells_store.task_done(tmp_path, (1, 2), "h", rows=100)
    assert "where the run has 120" in cells_store.task_problem(tmp_path, (1, 2), "h", rows=120)
    t = pq.read_table(path)  # the reproduction: fewer rows, the metadata kept
    pq.write_table(t.slice(0, 30).replace_schema_metadata(t.schema.metadata), path)
    assert "holds 30 rows where 100 were written" in cells_store.task_problem(tmp_path, (1, 2), "h", rows=100)
    other = cells_store.write_task(tmp_path, _cells((3, 4)), "h", 50)
    os.replace(other, path)  # task (3,4)'s file copied over (1,2)'s
    assert cells_store.task_problem(tmp_path, (1, 2), "h", rows=100) == "holds the cells of task (3,4), not (1,2)"


def test_an_older_files_task_comes_from_its_column_statistics(tmp_path):
    cells_store.write_task(tmp_path, _cells((3, 4)), "h", 50)
    t = pq.read_table(cells_store.task_file(tmp_path, (3, 4)))
    meta = {k: v for k, v in t.schema.metadata.items() if not k.startswith(b"icl_modgrok.task")}
    pq.write_table(t.replace_schema_metadata(meta), cells_store.task_file(tmp_path, (1, 2)))
    assert cells_store.task_problem(tmp_path, (1, 2), "h") == "holds the cells of task (3,4), not (1,2)"


def test_a_changed_file_is_named_when_read(tmp_path):
    cells = _cells()
    path = cells_store.write_task(tmp_path, cells, "h", 50)
    pd.testing.assert_frame_equal(cells_store.read_task(tmp_path, (1, 2)), cells)  # the digest holds on a round trip
    t = pq.read_table(path)
    df = t.to_pandas()
    df["pred_model"] = np.zeros(len(df), np.int8)  # same rows, other answers
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(t.schema.metadata), path)
    assert cells_store.task_done(tmp_path, (1, 2), "h", rows=100)  # the footer cannot tell...
    with pytest.raises(cells_store.DamagedTaskFile, match="task-1-2.parquet: its cells differ"):
        cells_store.read_task(tmp_path, (1, 2))  # ...the content can


# ---------------------------------------------------------------------- the manifest proves itself
@pytest.fixture(scope="module")
def d4_manifest() -> tuple[Path, dict]:
    folder = Path(__file__).resolve().parents[2] / "reports" / "d4"
    return folder, json.loads((folder / "manifest.json").read_text())


def test_every_checked_in_run_manifest_gives_its_config_hash():
    root = Path(__file__).resolve().parents[2] / "reports"
    checked = 0
    for path in sorted(root.glob("*/manifest.json")):
        m = json.loads(path.read_text())
        if m.get("tool") == "compare run" and m.get("config_hash"):
            run_folder.check_manifest(path.parent, m)
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("edit, named", [
    (lambda m: m.update(p=7), "p"),  # d4 is p = 11
    (lambda m: m.update(tasks=m["tasks"][:5]), "tasks"),
    (lambda m: m.update(ks=m["ks"][:-1]), "ks"),
    (lambda m: m.update(sequences=[[[0, 1]] * len(m["sequences"][0])]), "sequences"),
    (lambda m: m.update(references=m["references"][:2]), "references"),
    (lambda m: m["checkpoint"].update(sha256="0" * 64), "checkpoint.sha256"),
    (lambda m: m.update(pretrain_tasks=m["pretrain_tasks"][:3]), "pretrain_tasks"),
    (lambda m: m.update(precision="bf16"), "precision"),
    (lambda m: m.update(config_hash="0" * 64), "config_hash"),
])
def test_an_edited_manifest_is_refused_naming_the_field(d4_manifest, edit, named):
    folder, manifest = d4_manifest
    m = json.loads(json.dumps(manifest))
    m["config_fields"] = run_folder.field_digests(run_folder.run_config(manifest))
    edit(m)
    with pytest.raises(UsageError, match=rf"was edited: [a-z_., ]*\b{named}\b") as err:
        run_folder.check_manifest(folder, m)
    assert "\n" not in str(err.value) and "rerun" not in str(err.value)


# ---------------------------------------------------------------------- shards from the environment
@pytest.mark.parametrize("env, message", [
    ({"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 is outside 0..1"),
    ({"RANK": "-1", "WORLD_SIZE": "2"}, "outside 0..1"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0"),
    ({"RANK": "1"}, "RANK is set but WORLD_SIZE is not"),
    ({"WORLD_SIZE": "4"}, "WORLD_SIZE is set but RANK is not"),
    ({"SLURM_ARRAY_TASK_ID": "2"}, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not"),
    ({"SLURM_ARRAY_TASK_COUNT": "4"}, "SLURM_ARRAY_TASK_COUNT is set but SLURM_ARRAY_TASK_ID is not"),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "0"}, "need at least 1"),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "x"}, "not integers"),
])
def test_shard_variables_are_checked_like_the_flag(env, message):
    with pytest.raises(UsageError, match=message):
        run_folder.resolve_shard(None, env)


def test_a_single_process_world_is_one_shard():
    assert run_folder.resolve_shard(None, {"RANK": "0", "WORLD_SIZE": "1"}) == run_folder.Shard()
