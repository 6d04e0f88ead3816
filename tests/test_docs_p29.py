"""docs/findings-p29.md quotes the committed p = 29 run state and probes it names."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = " ".join((ROOT / "docs" / "findings-p29.md").read_text().split())
RUN = ROOT / "checkpoints" / "runs" / "p29-d4"
PROBES = ROOT / "checkpoints" / "runs" / "p29-probes"


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _at(rows: list[dict], step: int) -> dict:
    return next(r for r in rows if r["step"] == step)


def _say(text: str) -> None:
    assert text in DOC, f"docs/findings-p29.md does not say {text!r}"


MAIN = _metrics(RUN / "metrics.jsonl")
B = _metrics(PROBES / "B_w128_lr1e-3" / "metrics.jsonl")
C = _metrics(PROBES / "C_w64_lr1e-3" / "metrics.jsonl")


@pytest.mark.parametrize("step", [250, 500])
def test_probe_losses(step):
    a, c = _at(MAIN, step)["train_loss"], _at(C, step)["train_loss"]
    _say(f"step {step}: A {a:.4f}, C {c:.4f}")


def test_probe_b_is_too_slow():
    b = _at(B, 250)
    _say(f"B {b['train_loss']:.4f} at step 250 after {b['wall_clock_seconds'] / 250:.2f} s a step")
    _say(f"A {_at(MAIN, 250)['wall_clock_seconds'] / 250:.2f} s")


def test_run_state():
    last = MAIN[-1]
    _say(f"step {last['step']:,} of 40,000")
    _say(f"training loss {last['train_loss']:.3f}")
    accs = ", ".join(f"{last[s]['acc_last']:.3f}" for s in ("id_train", "id_test", "ood_train", "ood_test"))
    _say(f"last-shot accuracy on the four sets {accs}")
    _say(f"{last['wall_clock_seconds'] / 3600:.2f} hours")


def test_budget():
    hours = (MAIN[-1]["wall_clock_seconds"] + B[-1]["wall_clock_seconds"] + C[-1]["wall_clock_seconds"]) / 3600
    _say(f"{hours:.2f} of the 12 CPU-hours")


def test_gpu_estimate():
    B_, T, d, L, V = 1536, 96, 512, 4, 47
    flops = B_ * T * (6 * 12 * L * d * d + 6 * d * V + 12 * L * d * T)
    _say(f"{flops / 1e13:.2f} × 10¹³ FLOPs a step")
    for peak, mfu, label in ((312e12, 0.3, "A100"), (989e12, 0.3, "H100")):
        _say(f"{label}: {flops * 200_000 / (peak * mfu) / 3600:.1f} GPU-hours")


def test_the_suite_on_the_run():
    import pandas as pd

    s = pd.read_csv(ROOT / "reports" / "p29-d4-seq16" / "summary.csv")
    m = s.query("split == 'ood' and k == 15 and predictor == 'model'").iloc[0]
    _say(f"**{m['accuracy']:.4f} [{m['accuracy_lo']:.4f}, {m['accuracy_hi']:.4f}]**")
    rm = s.query("split == 'ood' and k == 15 and predictor == 'ratio_matching'").iloc[0]
    _say(f"({100 * rm['coverage']:.1f} % of the cells) the model agrees with it on {100 * rm['agreement']:.1f} %")
