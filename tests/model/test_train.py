"""The trainer: schedule, learning, resumption bit for bit, run-folder contents."""
import json
from dataclasses import replace

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.config import TrainConfig, get_preset
from model.train import RunSpec, lr_at, train


def test_schedule_warms_up_from_one_percent_then_decays_to_a_tenth():
    cfg = TrainConfig(steps=1000, lr=1e-3, warmup_steps=100)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(100, cfg) == pytest.approx(1e-3)
    assert lr_at(1000, cfg) == pytest.approx(1e-4)
    lrs = [lr_at(s, cfg) for s in range(100, 1001, 50)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_smoke_preset_lifts_id_accuracy_well_above_chance(smoke_run):
    out, ck = smoke_run
    acc = ck.history[-1]["id_train"]["acc"]
    assert acc > 2 * (1 / ck.setting.p), f"id_train accuracy {acc:.3f} not well above chance"
    assert {"last.pt", "best.pt", "final.pt", "metrics.jsonl", "curves.png"} <= {p.name for p in out.iterdir()}
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(ck.history)
    rec = json.loads(lines[-1])
    assert len(rec["ood_test"]["per_shot"]) == ck.model_config.n_examples
    assert ck.meta["final_accuracy"]["id_train"] == pytest.approx(acc)


def _spec(out, steps, **train_overrides):
    preset = get_preset("smoke")
    tcfg = replace(preset.train, steps=steps, warmup_steps=3, eval_every=4, save_every=4, eval_sequences=16, **train_overrides)
    return RunSpec(model=preset.model, train=tcfg, setting=preset.setting, out_dir=out, progress=False)


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path):
    straight = train(_spec(tmp_path / "a", 12))
    first = _spec(tmp_path / "b", 12)
    train(replace(first, stop_at=7))  # an interrupted run: stops at step 7 and leaves last.pt
    assert not (tmp_path / "b" / "final.pt").exists()
    last = load_checkpoint(tmp_path / "b" / "last.pt")
    assert last.step == 7
    resumed = train(first)
    assert resumed.step == 12
    # exact by construction: one process, one thread count, the same ops on the same shapes
    for k, v in straight.state_dict.items():
        assert torch.equal(v, resumed.state_dict[k]), k
