"""Issue 23 through the console script: nothing lost, nothing silently wrong.

Every reproduction of the issue, as a user would type it: one line and exit 2 where the
suite refuses, the user's files intact byte for byte, damaged files named and mended by
rerunning the same command.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compare.cli.main import main
from compare.storage import cells as cells_store
from compare.storage import temps
from model.testing import tiny_checkpoint

FAST = ["--threads", "1", "--n-boot", "20", "--quiet"]
RUN = ["run", "--ckpt", "tiny.pt", *FAST]


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ckpts")
    tiny_checkpoint(d / "tiny.pt", p=5, n_examples=8)
    tiny_checkpoint(d / "other.pt", p=5, n_examples=8, seed=1)
    blob = torch.load(d / "tiny.pt", weights_only=True)
    name = next(k for k, v in blob["state_dict"].items() if v.is_floating_point() and v.dim() == 2)
    blob["state_dict"][name][0, 0] = float("nan")  # one NaN in the embedding: every answer would be 0
    torch.save(blob, d / "nan.pt")
    return d


@pytest.fixture()
def work(tmp_path, monkeypatch, ckpt_dir) -> Path:
    for name in ("tiny.pt", "other.pt", "nan.pt"):
        os.link(ckpt_dir / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    for var in ("RANK", "WORLD_SIZE", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _refused(capsys, *argv: str, match: str) -> str:
    rc, _, err = _run(capsys, *argv)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compare: error: ") and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- data loss
def test_a_foreign_manifest_does_not_make_a_folder_ours(work, capsys):
    w = work / "W"
    (w / "src").mkdir(parents=True)
    (w / "manifest.json").write_text('{"name":"web"}')
    (w / "src" / "app.js").write_text("code")
    before = _snapshot(w)
    for extra in ([], ["--overwrite"]):
        _refused(capsys, *RUN, "--k", "1..2", "--tasks", "1,1", "--out", "W", *extra,
                 match="its manifest.json was not written by this suite")
    for cmd in (["inspect", "--ckpt", "tiny.pt", "--k", "2", "--quiet"],
                ["ablate", "--ckpt", "tiny.pt", "--k", "2", "--components", "L0H0", *FAST]):
        for extra in ([], ["--overwrite"]):
            _refused(capsys, *cmd, "--out", "W", *extra, match="refusing to replace")
    _refused(capsys, "report", "W", match="not a compare")
    assert _snapshot(w) == before


def test_run_overwrite_and_report_keep_the_users_files(work, capsys):
    assert _run(capsys, *RUN, "--k", "1..2", "--tasks", "1,1;2,3", "--out", "R")[0] == 0
    r = work / "R"
    (r / "notes.txt").write_text("my notes")
    (r / "myfigs").mkdir()
    (r / "myfigs" / "fig.png").write_bytes(b"\x89PNG mine")
    (r / "cells" / "README").write_text("mine too")
    mine = {k: v for k, v in _snapshot(r).items() if k in ("notes.txt", "myfigs/fig.png", "cells/README")}
    _refused(capsys, *RUN, "--k", "1..3", "--tasks", "1,1", "--out", "R", match="--overwrite")
    rc, out, err = _run(capsys, *RUN, "--k", "1..3", "--tasks", "1,1", "--out", "R", "--overwrite")
    assert rc == 0, err
    assert {k: v for k, v in _snapshot(r).items() if k in mine} == mine
    assert sorted(p.name for p in (r / "cells").iterdir()) == ["README", "task-1-1.parquet"]
    assert not list(r.glob("grid_*_2_3.png"))  # the old report's own figure went with it
    assert _run(capsys, "report", "R")[0] == 0
    source = _snapshot(r)
    assert _run(capsys, "report", "R", "--out", "R2")[0] == 0
    assert _run(capsys, "report", "R", "--out", "R2")[0] == 0  # over its own copy (files hard-linked to R's)
    assert _snapshot(r) == source  # a copy elsewhere leaves the source as it was, byte for byte


def test_other_commands_never_replace_a_run_report_or_a_users_folder(work, capsys):
    assert _run(capsys, *RUN, "--k", "1..2", "--tasks", "1,1", "--out", "R")[0] == 0
    before = _snapshot(work / "R")
    (work / "mine").mkdir()
    (work / "mine" / "thesis.tex").write_text("precious")
    for out in ("R", "mine"):
        for extra in ([], ["--overwrite"]):
            _refused(capsys, "inspect", "--ckpt", "tiny.pt", "--k", "2", "--quiet", "--out", out, *extra,
                     match="refusing to replace")
            _refused(capsys, "ablate", "--ckpt", "tiny.pt", "--k", "2", "--components", "L0H0", *FAST, "--out", out,
                     *extra, match="refusing to replace")
            _refused(capsys, "trajectory", "somewhere", "--k", "2", "--out", out, *extra, match="refusing to replace")
    assert _snapshot(work / "R") == before and (work / "mine" / "thesis.tex").read_text() == "precious"


def test_inspect_at_the_default_path_replaces_only_the_same_checkpoint(work, capsys):
    for d, name in (("A", "tiny.pt"), ("B", "other.pt")):
        (work / d).mkdir()
        os.link(work / name, work / d / "best.pt")
    args = ["inspect", "--k", "2", "--layers", "0", "--no-head-maps", "--quiet"]
    assert _run(capsys, *args, "--ckpt", "A/best.pt")[0] == 0
    folder = work / "reports" / "best-inspect"
    (folder / "notes.txt").write_text("keep")
    sha_a = json.loads((folder / "manifest.json").read_text())["checkpoint"]["sha256"]
    line = _refused(capsys, *args, "--ckpt", "B/best.pt", match="pass --overwrite")
    assert "best-inspect" in line
    assert json.loads((folder / "manifest.json").read_text())["checkpoint"]["sha256"] == sha_a
    assert _run(capsys, *args, "--ckpt", "A/best.pt", "--k", "3")[0] == 0  # the same checkpoint: replaced
    assert _run(capsys, *args, "--ckpt", "B/best.pt", "--overwrite")[0] == 0
    assert json.loads((folder / "manifest.json").read_text())["checkpoint"]["sha256"] != sha_a
    assert (folder / "notes.txt").read_text() == "keep"


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text("abcdefghij_.-0123456789", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..")), max_size=4, unique=True), data=st.binary(max_size=16))
def test_property_whatever_the_user_added_survives_every_writer(work, capsys, names, data):
    r = work / "P"
    shutil.rmtree(r, ignore_errors=True)
    assert _run(capsys, *RUN, "--k", "1", "--tasks", "1,1", "--out", "P")[0] == 0
    (r / "own").mkdir()
    planted = {}
    for i, n in enumerate(names):
        for path in (r / n, r / "own" / n, r / "cells" / n):
            if not path.exists():
                path.write_bytes(data + bytes([i]))
                planted[path] = path.read_bytes()
    for argv in ([*RUN, "--k", "1..2", "--tasks", "1,1", "--out", "P", "--overwrite"], ["report", "P"],
                 ["inspect", "--ckpt", "tiny.pt", "--k", "2", "--quiet", "--out", "P", "--overwrite"]):
        _run(capsys, *argv)
        assert {p: p.read_bytes() for p in planted} == planted


# ---------------------------------------------------------------------- non-finite models
def test_a_checkpoint_with_nan_weights_is_refused_everywhere(work, capsys):
    (work / "runx" / "snapshots").mkdir(parents=True)
    os.link(work / "nan.pt", work / "runx" / "snapshots" / "step-0000001.pt")
    for argv in (["run", "--ckpt", "nan.pt", "--k", "1", *FAST],
                 ["export", "nan.pt", "--out", "copy.pt"],
                 ["inspect", "--ckpt", "nan.pt", "--k", "2", "--quiet"],
                 ["ablate", "--ckpt", "nan.pt", "--k", "1", "--components", "L0H0", *FAST],
                 ["trajectory", "runx", "--k", "1", "--quiet"]):
        _refused(capsys, *argv, match="non-finite")
    assert not (work / "copy.pt").exists() and not (work / "reports").exists()


# ---------------------------------------------------------------------- damaged files
def _cells_of(folder: Path) -> int:
    return json.loads((folder / "manifest.json").read_text())["n_cells"]


def test_a_truncated_task_file_is_named_and_recomputed(work, capsys):
    assert _run(capsys, *RUN, "--k", "1..3", "--sequences", "1", "--out", "R")[0] == 0
    r = work / "R"
    due = _cells_of(r)
    path = cells_store.task_file(r, (1, 1))
    t = pq.read_table(path)
    pq.write_table(t.slice(0, 100).replace_schema_metadata(t.schema.metadata), path)  # the edit
    line = _refused(capsys, "report", "R", match="task-1-1.parquet")
    assert "rows" in line and f"--out {r}" in line
    rc, out, err = _run(capsys, *RUN, "--k", "1..3", "--sequences", "1", "--out", "R")
    assert rc == 0 and "1 task(s) computed" in out, err
    assert _cells_of(r) == due and pq.ParquetFile(path).metadata.num_rows == len(t)
    assert _run(capsys, "report", "R")[0] == 0


def test_a_task_file_copied_over_another_is_named_and_mended(work, capsys):
    assert _run(capsys, *RUN, "--k", "1..2", "--out", "R")[0] == 0
    r = work / "R"
    good = pd.read_csv(r / "summary.csv")
    shutil.copy(cells_store.task_file(r, (0, 1)), cells_store.task_file(r, (0, 2)))
    line = _refused(capsys, "report", "R", match="task-0-2.parquet")
    assert "task (0,1), not (0,2)" in line
    assert _run(capsys, *RUN, "--k", "1..2", "--out", "R")[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(r / "summary.csv"), good)


def test_a_task_file_whose_content_changed_is_named_and_mended(work, capsys):
    assert _run(capsys, *RUN, "--k", "1..2", "--out", "R")[0] == 0
    r = work / "R"
    good = pd.read_csv(r / "summary.csv")
    path = cells_store.task_file(r, (2, 2))
    t = pq.read_table(path)
    df = t.to_pandas()
    df["pred_model"] = np.zeros(len(df), np.int8)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(t.schema.metadata), path)
    line = _refused(capsys, "report", "R", match="task-2-2.parquet: its cells differ")
    command = line.split("run `", 1)[1].split("` to compute it again")[0]
    assert command.startswith("compare run ")
    rc, _, err = _run(capsys, *command.split()[1:])  # the command the message gives works
    assert rc == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(r / "summary.csv"), good)


@pytest.mark.parametrize("field, edit", [
    ("p", lambda m: m.update(p=7)),
    ("tasks", lambda m: m.update(tasks=m["tasks"][:5], n_tasks=5)),
    ("ks", lambda m: m.update(ks=[1, 2])),
    ("sequences", lambda m: m.update(sequences=m["sequences"][:1])),
])
def test_an_edited_manifest_is_refused_naming_the_field(work, capsys, field, edit):
    assert _run(capsys, *RUN, "--k", "1..3", "--sequences", "1", "--out", "R")[0] == 0
    path = work / "R" / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    line = _refused(capsys, "report", "R", match="was edited")
    assert field in line.split("was edited:")[1] and "rerun" not in line
    # the same `compare run` mends it (its manifest has the real configuration)
    assert _run(capsys, *RUN, "--k", "1..3", "--sequences", "1", "--out", "R")[0] == 0
    assert _run(capsys, "report", "R")[0] == 0


def test_a_missing_task_names_a_command_that_finishes_the_run(work, capsys):
    assert _run(capsys, *RUN, "--k", "1..2", "--out", "R", "--shard", "0/2")[0] == 0
    line = _refused(capsys, "report", "R", match="missing")
    command = line.split("run `", 1)[1].split("` to compute them")[0]
    os.chdir(work / "R")  # from anywhere: the checkpoint's path and --out are explicit
    rc, out, err = _run(capsys, *command.split()[1:])
    assert rc == 0 and "wrote" in out, err


# ---------------------------------------------------------------------- shards and sizes
@pytest.mark.parametrize("env, match", [
    ({"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 is outside 0..1"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0"),
    ({"RANK": "1"}, "RANK is set but WORLD_SIZE is not"),
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE is set but RANK is not"),
    ({"SLURM_ARRAY_TASK_ID": "1"}, "SLURM_ARRAY_TASK_COUNT is not"),
])
def test_shard_variables_are_checked(work, capsys, monkeypatch, env, match):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _refused(capsys, *RUN, "--k", "1", "--out", "S", match=match)
    assert not (work / "S").exists()


def test_sizes_are_checked_before_any_work(work, capsys):
    _refused(capsys, "tasks", "--authors-replay", "--p", "1000003", "--base-tasks", "2", match="p <= 1021")
    line = _refused(capsys, "run", "--ckpt", "d4.pt", "--k", "1..8", "--sequences", "100000", *FAST,
                    match="--max-cells")  # the command: 11.7 billion cells, 182-1004 hours
    assert "11,712,917,128 cells" in line and "GB" in line
    _refused(capsys, *RUN, "--k", "1..7", "--sequences", "100000", "--max-cells", "1000000", match="over the")
    _refused(capsys, *RUN, "--k", "1", "--max-cells", "10", "--out", "S", match="over the --max-cells bound of 10")
    _refused(capsys, *RUN, "--k", "1", "--sequences", "1000", "--max-cells", "999", match="alone exceeds")
    assert not (work / "S").exists() and not (work / "reports").exists()


# ---------------------------------------------------------------------- messages and temporaries
def test_os_errors_name_the_users_path(work, capsys):
    (work / "adir").mkdir()
    line = _refused(capsys, "export", "tiny.pt", "--out", "adir", match="adir is a folder")
    assert ".tmp" not in line
    (work / "afile").write_text("x")
    _refused(capsys, "train", "--preset", "smoke", "--out", "afile", "--no-progress", match="afile exists and is not")


def test_a_killed_reports_temporaries_are_removed_by_the_next_command(work, capsys):
    import subprocess
    import sys

    assert _run(capsys, *RUN, "--k", "1", "--tasks", "1,1", "--out", "R")[0] == 0
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    r = work / "R"
    left = [r / f".report.tmp-{proc.pid}-abcd", r / f".report.tmp-h{temps.host_id()}-p{proc.pid}-ef01"]
    for d in left:
        d.mkdir()
        (d / "curves.png").write_bytes(b"half")
    (r / "cells" / f".task-1-1.parquet.tmp-h{temps.host_id()}-p{proc.pid}-aa").write_bytes(b"half")
    assert _run(capsys, "report", "R")[0] == 0
    assert not any(d.exists() for d in left)
    assert [p.name for p in (r / "cells").iterdir()] == ["task-1-1.parquet"]
