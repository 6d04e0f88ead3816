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
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


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
    tcfg = replace(preset.train, steps=steps, warmup_steps=3, eval_every=4, save_every=4, eval_sequences=16,
                   **train_overrides)
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


def test_snapshots_are_weight_only_copies_that_leave_training_unchanged(tmp_path):
    plain = train(_spec(tmp_path / "plain", 12))
    snapped = train(_spec(tmp_path / "snap", 12, snapshots=(1, 5, 12)))
    for k, v in plain.state_dict.items():  # exact by construction: saving touches no RNG and no weight
        assert torch.equal(v, snapped.state_dict[k]), k
    files = sorted((tmp_path / "snap" / "snapshots").iterdir())
    assert [f.name for f in files] == ["step-0000001.pt", "step-0000005.pt", "step-0000012.pt"]
    shots = [load_checkpoint(f) for f in files]
    assert [s.step for s in shots] == [1, 5, 12]
    assert all(s.trainer is None and s.history == [] for s in shots)
    assert all(torch.equal(shots[-1].state_dict[k], v) for k, v in snapped.state_dict.items())
    assert not torch.equal(shots[0].state_dict["wte.weight"], shots[1].state_dict["wte.weight"])
    assert not (tmp_path / "plain" / "snapshots").exists()


def test_snapshots_survive_an_interruption(tmp_path):
    first = _spec(tmp_path / "r", 12, snapshots=(3, 9))
    train(replace(first, stop_at=6))
    train(first)
    steps = sorted(load_checkpoint(f).step for f in (tmp_path / "r" / "snapshots").iterdir())
    assert steps == [3, 9]


@pytest.mark.parametrize("spec, steps, expected", [
    ("200,500, 1000", 1000, (200, 500, 1000)),
    ("log:5", 10_000, (1, 10, 100, 1000, 10_000)),
    ("log:40", 40_000, None),
])
def test_snapshot_schedules(spec, steps, expected):
    from model.config import snapshot_steps

    got = snapshot_steps(spec, steps)
    if expected is not None:
        assert got == expected
    else:  # log-spaced: strictly increasing, from 1 to the end, ratios roughly constant at the top
        assert got[0] == 1 and got[-1] == steps and list(got) == sorted(set(got)) and 30 <= len(got) <= 40


@pytest.mark.parametrize("spec, message", [("log:x", "integer N"), ("log:1", "N >= 2"), ("5,a", "expected steps"),
                                           ("0,10", "outside 1..100"), ("200", "outside 1..100")])
def test_bad_snapshot_schedules(spec, message):
    from model.config import snapshot_steps

    with pytest.raises(ValueError, match=message):
        snapshot_steps(spec, 100)
