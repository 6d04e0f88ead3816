"""``compare report DIR`` through compare.cli.main(argv): rebuild without the model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compare.cli import main
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
    dst.mkdir()
    for p in run_dir.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_rebuild_in_place_restores_everything(copy, capsys):
    originals = {p.name: p.read_bytes() for p in copy.iterdir()}
    for p in copy.iterdir():
        if p.name not in ("cells.parquet", "manifest.json"):
            p.unlink()
    rc = main(["report", str(copy)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"rebuilt {copy}" in out
    assert set(p.name for p in copy.iterdir()) == set(originals)
    for name in ("summary.csv", "attribution.csv", "report.md", "cells.parquet", "manifest.json"):
        assert (copy / name).read_bytes() == originals[name], name  # same seed, same numbers
    assert [p.name for p in copy.parent.iterdir()] == ["copy"]  # no temporary left


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
    assert (new / "cells.parquet").read_bytes() == (copy / "cells.parquet").read_bytes()


def test_report_needs_no_torch(copy, tmp_path):
    """The rebuild runs with torch (and the model package) made unimportable.

    (The full CLI parser imports every command module, training included, so the report
    command is driven through its own parser here.)
    """
    code = (
        "import argparse, sys; sys.modules['torch'] = None; sys.modules['model'] = None\n"
        "from compare import cmd_report\n"
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
        (lambda d: (d / "empty").mkdir(), ["empty"], "has no cells.parquet"),
        (lambda d: (d / "copy" / "cells.parquet").write_bytes(b"PAR1garbage"), ["copy"], "cannot read"),
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
