"""``compare run`` over shards and resumed runs: every cell exactly once, the same cells and
tables as one process, and one report written by whoever finishes last."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from compare.cli.main import main
from compare.storage.folder import read_cells

ARGS = ["run", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", "--threads", "1", "--n-boot", "30", "--quiet"]
KEY = ["task_a", "task_b", "sequence", "k", "x", "y"]


@pytest.fixture(scope="module")
def single(ckpt_dir, tmp_path_factory) -> Path:
    """The same run in one process: what every sharded or resumed run must equal."""
    d = tmp_path_factory.mktemp("single")
    os.link(ckpt_dir / "tiny.pt", d / "tiny.pt")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert main([*ARGS, "--out", "one"]) == 0
    finally:
        os.chdir(cwd)
    return d / "one"


@pytest.fixture()
def work(work, monkeypatch) -> Path:
    """conftest's working folder, with no rank or array variables of the machine running the tests."""
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK",
                "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"):
        monkeypatch.delenv(var, raising=False)
    return work


def _same_as_single(folder: Path, single: Path) -> None:
    cells = read_cells(folder)
    assert not cells.duplicated(KEY).any()  # every (task, sequence, k, x, y) exactly once
    pd.testing.assert_frame_equal(cells, read_cells(single))
    for name in ("summary.csv", "attribution.csv", "tasks.csv", "sequences.csv", "report.md"):
        assert (folder / name).read_bytes() == (single / name).read_bytes(), name


def test_two_shards_give_the_cells_and_report_of_one_process(work, single, capsys):
    assert main([*ARGS, "--out", "s", "--shard", "0/2"]) == 0
    out = capsys.readouterr().out
    assert "shard 0/2 done (13 task(s) computed); 12 of 25 tasks still to come" in out
    assert not (work / "s" / "report.html").exists()
    assert main([*ARGS, "--out", "s", "--shard", "1/2"]) == 0
    assert "wrote" in capsys.readouterr().out
    _same_as_single(work / "s", single)


def test_a_resume_may_use_another_number_of_shards(work, single, capsys, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")  # array task 4 of 2..4: shard 2/3
    assert main([*ARGS, "--out", "r"]) == 0
    assert "shard 2/3 done (8 task(s) computed)" in capsys.readouterr().out
    for var in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(var)
    assert main([*ARGS, "--out", "r", "--shard", "0/2"]) == 0  # overlaps the first: skips what is there
    assert "9 task(s) computed, 4 already there" in capsys.readouterr().out
    assert main([*ARGS, "--out", "r"]) == 0
    assert "8 task(s) computed, 17 already there" in capsys.readouterr().out
    _same_as_single(work / "r", single)
    assert main([*ARGS, "--out", "r"]) == 0  # a finished run: nothing to compute, the report again
    assert "0 task(s) computed, 25 already there" in capsys.readouterr().out
    _same_as_single(work / "r", single)


def test_torchrun_processes_split_the_tasks_and_one_writes_the_report(work, single):
    """Two processes started by torchrun at once (RANK/WORLD_SIZE, no collectives)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
           "-m", "compare", *ARGS, "--out", "t"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote ") + done.stdout.count("another process is writing") <= 2
    assert "wrote " in done.stdout
    _same_as_single(work / "t", single)
