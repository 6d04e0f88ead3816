"""`compare export`: a release copy whose recorded command rebuilds the same weights."""
import shlex

import torch

from compare.cli.main import main
from model.checkpoint import load_checkpoint

FAST = ["--preset", "smoke", "--steps", "10", "--eval-every", "3", "--save-every", "3", "--eval-sequences", "8",
        "--d-model", "16", "--n-head", "2", "--no-progress", "--threads", "1"]


def test_export_drops_trainer_state_and_its_command_reproduces_the_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--out", "run", "--stop-at", "6"]) == 0
    assert main(["export", "run/last.pt", "--out", "release.pt", "--note", "test"]) == 0
    release = load_checkpoint(tmp_path / "release.pt")
    assert release.trainer is None and release.step == 6 and release.meta["note"] == "test"
    command = release.meta["reproduce"]
    assert command.startswith("compare train") and "--stop-at 6" in command
    argv = shlex.split(command)[1:]
    argv[argv.index("--out") + 1] = "again"
    assert main(argv + ["--no-progress"]) == 0
    again = load_checkpoint(tmp_path / "again" / "last.pt")
    assert again.model_config == release.model_config and again.train_config == release.train_config
    for k, v in release.state_dict.items():
        assert torch.equal(v, again.state_dict[k]), k


def test_export_refuses_to_overwrite_its_source(tmp_path, capsys):
    from model.testing import tiny_checkpoint

    src = tiny_checkpoint(tmp_path / "t.pt")
    assert main(["export", str(src), "--out", str(src)]) == 2
    assert "overwrite" in capsys.readouterr().err
