"""Checkpoints and training runs: non-finite weights refused, divergence stops cleanly, resumes
checked, one run per folder, temporaries that name their writer, no file written over a
file the suite did not write."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from compare.cli.main import main
from model.checkpoint import (
    CheckpointError,
    check_output_path,
    load_checkpoint,
    remove_stale_temporaries,
    temp_path,
)
from model.config import get_preset
from model.testing import tiny_checkpoint
from model.train import RunSpec, TrainingDiverged, train

train_module = sys.modules[RunSpec.__module__]  # model.train (the package's name `train` is the function)

FAST = ["--preset", "smoke", "--steps", "40", "--eval-every", "20", "--save-every", "2", "--eval-sequences", "16",
        "--threads", "1", "--no-progress"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _spec(out: Path, steps: int = 12, **overrides) -> RunSpec:
    preset = get_preset("smoke")
    tcfg = replace(preset.train, steps=steps, warmup_steps=3, eval_every=4, save_every=2, eval_sequences=16,
                   threads=1, **overrides)
    return RunSpec(model=preset.model, train=tcfg, setting=preset.setting, out_dir=out, progress=False)


# ---------------------------------------------------------------------- non-finite weights
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_loading_refuses_non_finite_weights_naming_the_tensor(tmp_path, value):
    path = tiny_checkpoint(tmp_path / "ok.pt")
    blob = torch.load(path, weights_only=True)
    name = sorted(blob["state_dict"])[-1]
    blob["state_dict"][name].view(-1)[0] = value
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=rf"bad.pt: weights hold non-finite values \(1 NaN or infinite in "
                                              rf"{name}\)"):
        load_checkpoint(tmp_path / "bad.pt")
    load_checkpoint(path)


def test_a_diverging_run_stops_with_one_line_and_writes_nothing_non_finite(tmp_path, capsys):
    out = tmp_path / "T"
    issue = ["train", "--preset", "smoke", "--lr", "1e6", "--steps", "40", "--eval-every", "20", "--threads", "1"]
    assert main([*issue, "--no-progress", "--out", str(out)]) == 2  # the issue's reproduction
    err = _one_line(capsys)
    assert "training diverged" in err and "non-finite at step" in err and "no checkpoint was written" in err
    assert not out.exists()  # it made the folder, wrote nothing, and took it back


def test_divergence_after_a_save_keeps_the_last_finite_last_pt(tmp_path, monkeypatch):
    real = train_module.accumulate_step_gradients

    def poisoned(model, batches, step, info, device, precision):
        loss = real(model, batches, step, info, device, precision)
        if step >= 5:  # the update of step 6 would make every weight NaN
            for w in model.parameters():
                w.grad.fill_(float("nan"))
            return loss * float("nan")
        return loss

    monkeypatch.setattr(train_module, "accumulate_step_gradients", poisoned)
    out = tmp_path / "T"
    with pytest.raises(TrainingDiverged, match=r"the loss became non-finite at step 6 .*last.pt keeps step 4"):
        train(_spec(out))
    last = load_checkpoint(out / "last.pt")  # finite, by the load check
    assert last.step == 4 and not (out / "final.pt").exists()
    assert load_checkpoint(out / "best.pt").step == 4
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


# ---------------------------------------------------------------------- resuming
def test_resuming_with_another_configuration_is_refused_naming_the_fields(tmp_path, capsys):
    out = str(tmp_path / "T")
    assert main(["train", *FAST, "--stop-at", "4", "--out", out]) == 0
    capsys.readouterr()
    assert main(["train", *FAST, "--lr", "0.5", "--weight-decay", "0.1", "--stop-at", "6", "--out", out]) == 2
    err = _one_line(capsys)
    assert "lr 0.005 -> 0.5" in err and "weight_decay" in err and "--no-resume" in err
    assert load_checkpoint(tmp_path / "T" / "last.pt").step == 4  # untouched
    assert main(["train", *FAST, "--d-model", "32", "--stop-at", "6", "--out", out]) == 2
    assert "d_model 64 -> 32" in _one_line(capsys)
    assert main(["train", *FAST, "--stop-at", "6", "--threads", "2", "--out", out]) == 0  # --stop-at, --threads: fine
    assert load_checkpoint(tmp_path / "T" / "last.pt").step == 6
    assert main(["train", *FAST, "--lr", "0.5", "--stop-at", "2", "--no-resume", "--out", out]) == 0
    assert load_checkpoint(tmp_path / "T" / "last.pt").train_config.lr == 0.5


def test_one_training_run_per_folder(tmp_path, capsys):
    out = tmp_path / "T"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `compare train` holds it
        assert main(["train", *FAST, "--stop-at", "2", "--out", str(out)]) == 2
        assert "another `compare train` is writing" in _one_line(capsys)
    finally:
        os.close(fd)
    assert main(["train", *FAST, "--stop-at", "2", "--out", str(out)]) == 0


def test_a_folder_that_holds_no_run_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "curves-old.png").write_text("the user's")
    assert main(["train", *FAST, "--stop-at", "2", "--out", str(mine)]) == 2
    assert "holds no training run" in _one_line(capsys)
    assert [p.name for p in mine.iterdir()] == ["curves-old.png"]


# ---------------------------------------------------------------------- temporaries
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_a_run_folder_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    dead = temp_path(tmp_path / "last.pt").name.replace(f"-p{os.getpid()}-", f"-p{_dead_pid()}-")
    (tmp_path / dead).write_bytes(b"half")
    live = temp_path(tmp_path / "best.pt")
    live.write_bytes(b"being written")
    monkeypatch.setattr("socket.gethostname", lambda: "another-node")
    theirs = temp_path(tmp_path / "final.pt")  # another node's live writer
    theirs.write_bytes(b"x")
    abandoned = temp_path(tmp_path / "metrics.jsonl")
    abandoned.write_bytes(b"x")
    monkeypatch.undo()
    old = time.time() - 7 * 3600
    os.utime(abandoned, (old, old))
    legacy = tmp_path / ".last.pt.ab12cd34.tmp"  # an earlier version's mkstemp name, two hours old
    legacy.write_bytes(b"x")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "notes.tmp").write_text("the user's")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead, abandoned.name, legacy.name])
    assert live.exists() and theirs.exists() and (tmp_path / "notes.tmp").exists()


# ---------------------------------------------------------------------- checkpoint outputs
def test_checkpoint_outputs_never_write_over_the_users_files(tmp_path, capsys):
    src = tiny_checkpoint(tmp_path / "src.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(Exception, match="is a folder"):
        check_output_path(tmp_path)
    assert main(["export", str(src), "--out", str(tmp_path / "notes.pt")]) == 2
    assert "exists and is not an icl-modgrok checkpoint" in _one_line(capsys)
    assert (tmp_path / "notes.pt").read_text() == "not a checkpoint"
    assert main(["export", str(src), "--out", str(tmp_path / "copy.pt")]) == 0
    assert main(["export", str(src), "--out", str(tmp_path / "copy.pt"), "--note", "again"]) == 0  # ours: replaced
    assert load_checkpoint(tmp_path / "copy.pt").meta["note"] == "again"
