"""``compare report DIR`` through compare.cli.main.main(argv): rebuild without the model."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from compare.cli.main import main
from compare.storage.folder import read_cells
from model.testing import tiny_checkpoint


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("run")
    tiny_checkpoint(d / "tiny.pt", p=5, n_examples=8)
    out = d / "out"
    rc = main(["run", "--ckpt", str(d / "tiny.pt"), "--k", "1..3", "--sequences", "1", "--out", str(out),
               "--threads", "1", "--n-boot", "40", "--quiet"])
    assert rc == 0
    return out


@pytest.fixture()
def copy(run_dir, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run_dir, dst)
    return dst


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rebuild_in_place_restores_everything(copy, capsys):
    originals = _files(copy)
    for p in copy.iterdir():
        if p.name not in ("cells", "manifest.json"):
            p.unlink()
    rc = main(["report", str(copy)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"rebuilt {copy}" in out
    again = _files(copy)
    assert set(again) == set(originals)
    for name in [n for n in originals if not n.endswith(".png")]:
        assert again[name] == originals[name], name  # same seed, same numbers, same cells
    assert [p.name for p in copy.parent.iterdir()] == ["copy"]  # nothing left beside it
    assert not [p for p in copy.iterdir() if p.name.startswith(".")]  # nor inside


def test_an_old_single_file_run_still_rebuilds_to_the_same_tables(copy, tmp_path, capsys):
    """A folder of the layout before the per-task dataset (one cells.parquet, a manifest
    without task list or hash) gives the same summaries as the dataset it came from."""
    old = tmp_path / "old"
    old.mkdir()
    read_cells(copy).to_parquet(old / "cells.parquet", index=False)
    man = json.loads((copy / "manifest.json").read_text())
    for key in ("tasks", "config_hash", "cells_layout"):
        man.pop(key)
    (old / "manifest.json").write_text(json.dumps(man))
    assert main(["report", str(old)]) == 0, capsys.readouterr().err
    for name in ("summary.csv", "attribution.csv", "tasks.csv", "sequences.csv"):
        assert (old / name).read_bytes() == (copy / name).read_bytes(), name
    assert sorted(p.name for p in old.glob("grid_*.png")) == sorted(p.name for p in copy.glob("grid_*.png"))


def test_rebuild_refuses_an_unfinished_run(copy, capsys):
    victim = sorted((copy / "cells").iterdir())[3]
    victim.unlink()
    assert main(["report", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 25 task files are missing" in err and f"{victim.name}: missing" in err
    assert "run `compare run --ckpt " in err and f"--out {copy}` to compute them" in err  # a command that works


def test_rebuild_elsewhere_with_other_options(copy, tmp_path, capsys):
    rc = main(["report", str(copy), "--out", str(tmp_path / "new"), "--n-boot", "10", "--seed", "3",
               "--grid-tasks", "1,1", "--grid-algorithms", "modular_regression"])
    assert rc == 0, capsys.readouterr().err
    new = tmp_path / "new"
    man = json.loads((new / "manifest.json").read_text())
    assert man["n_boot"] == 10 and man["seed"] == 3
    grids = sorted(p.name for p in new.glob("grid_*.png"))
    assert len(grids) >= 6 and any(g.endswith("_1_1.png") for g in grids)  # the defaults and the one asked for
    assert {p.name for p in copy.glob("grid_*.png")} <= set(grids)
    assert _files(new / "cells") == _files(copy / "cells")
    pd.testing.assert_frame_equal(read_cells(new), read_cells(copy))


def test_report_needs_no_torch(copy, tmp_path):
    """The rebuild runs with torch (and the model package) made unimportable.

    (The full CLI parser imports every command module, training included, so the report
    command is driven through its own parser here.)
    """
    code = (
        "import argparse, sys; sys.modules['torch'] = None; sys.modules['model'] = None\n"
        "from compare.cli import report as cmd_report\n"
        "ap = argparse.ArgumentParser(); cmd_report.add_parser(ap.add_subparsers())\n"
        f"a = ap.parse_args(['report', {str(copy)!r}, '--out', {str(tmp_path / 'nt')!r}])\n"
        "sys.exit(a.func(a))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "nt" / "report.html").is_file()


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (lambda d: None, ["missing"], "is not a folder"),
        (lambda d: (d / "empty").mkdir(), ["empty"], "has no manifest.json"),
        (lambda d: next((d / "copy" / "cells").iterdir()).write_bytes(b"PAR1garbage"), ["copy"],
         "not a readable Parquet file"),
        (lambda d: (d / "copy" / "manifest.json").write_text("{"), ["copy"], "not valid JSON"),
        (lambda d: None, ["copy", "--grid-tasks", "9,9"], "not in this run"),
        (lambda d: None, ["copy", "--grid-sequence", "5"], "--grid-sequence"),
        (lambda d: None, ["copy", "--grid-algorithms", "nope"], "no predictor named 'nope'"),
        (lambda d: None, ["copy", "--n-boot", "-1"], "--n-boot must be >= 0"),
    ],
)
def test_bad_input(copy, tmp_path, monkeypatch, capsys, setup, args, message):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    before = sorted(os.listdir(copy))
    rc = main(["report", *args])
    _, err = capsys.readouterr()
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert sorted(os.listdir(copy)) == before
