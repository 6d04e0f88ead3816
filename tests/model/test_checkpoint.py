"""Checkpoints: round trip, and clear refusals of missing, broken, foreign or unsafe files."""
import os
import pickle

import pytest
import torch

from model.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, resolve_checkpoint


def test_round_trip_rebuilds_the_same_model(tiny_ckpt):
    ck = load_checkpoint(tiny_ckpt)
    net = ck.build_model()
    idx = torch.randint(0, 5, (2, 9))
    again = load_checkpoint(tiny_ckpt).build_model()
    assert torch.equal(net(idx)[0], again(idx)[0])
    assert ck.setting.p == ck.model_config.p == 5
    assert len(ck.sha256) == 64
    assert ck.max_k == ck.model_config.n_examples - 1


def test_checkpoint_loads_with_weights_only(tiny_ckpt):
    blob = torch.load(tiny_ckpt, weights_only=True)
    assert blob["format_version"] == FORMAT_VERSION
    assert {"model_config", "train_config", "task_setting", "step", "history", "meta", "state_dict"} <= set(blob)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "checkpoint not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("hello, I am text\n"), "not a readable checkpoint"),
        (lambda p: torch.save({"wte.weight": torch.zeros(2, 2)}, p), "bare state dict"),
        (lambda p: torch.save({"kind": "something-else"}, p), "not an icl-modgrok checkpoint"),
    ],
)
def test_bad_files_are_refused_with_the_file_named(tmp_path, make, message):
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_truncated_file_is_refused(tiny_ckpt, tmp_path):
    data = tiny_ckpt.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(cut)


def test_newer_format_is_refused(tiny_ckpt, tmp_path):
    blob = torch.load(tiny_ckpt, weights_only=True)
    blob["format_version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(blob, newer)
    with pytest.raises(CheckpointError, match="newer than this version"):
        load_checkpoint(newer)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "icl-modgrok-checkpoint", "payload": _Exploit()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    assert not (tmp_path / "PWNED").exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not (tmp_path / "PWNED").exists()


def test_resolve_finds_files_and_names_missing_ones(tiny_ckpt, tmp_path):
    assert resolve_checkpoint(str(tiny_ckpt)) == tiny_ckpt
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        resolve_checkpoint(tmp_path / "nope.pt")
