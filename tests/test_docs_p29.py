"""docs/findings-p29.md quotes the committed p = 29 run, its probes, its reports and the plateau table."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from compare.engine.phases import classify
from compare.reports.training_runs import PLATEAU_FRACTION, plateau_exit

ROOT = Path(__file__).resolve().parents[1]
DOC = " ".join((ROOT / "docs" / "findings-p29.md").read_text().split())
RUN = ROOT / "checkpoints" / "runs" / "p29-d4"
PROBES = ROOT / "checkpoints" / "runs" / "p29-probes"
PLATEAUS = ROOT / "reports" / "plateaus" / "runs.csv"
SETS = ("id_train", "id_test", "ood_train", "ood_test")


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _at(rows: list[dict], step: int) -> dict:
    return next(r for r in rows if r["step"] == step)


def _say(text: str) -> None:
    assert " ".join(text.split()) in DOC, f"docs/findings-p29.md does not say {text!r}"


MAIN = _metrics(RUN / "metrics.jsonl")
LAST = MAIN[-1]
B = _metrics(PROBES / "B_w128_lr1e-3" / "metrics.jsonl")
C = _metrics(PROBES / "C_w64_lr1e-3" / "metrics.jsonl")


def _summary(predictor: str) -> pd.Series:
    s = pd.read_csv(ROOT / "reports" / "p29-d4-seq16" / "summary.csv")
    return s.query("split == 'ood' and k == 15 and predictor == @predictor").iloc[0]


def _sci(x: float) -> str:
    """How the page writes large numbers: 9.4 × 10⁶."""
    m, e = f"{x:.1e}".split("e")
    return f"{m} × 10" + str(int(e)).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))


def _plateaus() -> pd.DataFrame:
    return pd.read_csv(PLATEAUS).set_index("run")


@pytest.mark.parametrize("step", [250, 500])
def test_probe_losses(step):
    a, c = _at(MAIN, step)["train_loss"], _at(C, step)["train_loss"]
    _say(f"step {step}: A {a:.4f}, C {c:.4f}")


def test_probe_b_is_too_slow():
    b = _at(B, 250)
    _say(f"B {b['train_loss']:.4f} at step 250 after {b['wall_clock_seconds'] / 250:.2f} s a step")
    _say(f"A {_at(MAIN, 250)['wall_clock_seconds'] / 250:.2f} s")


def test_where_the_run_stopped():
    _say(f"stopped at step {LAST['step']:,} of 40,000, still on the chance plateau")
    accs = ", ".join(f"{LAST[s]['acc_last']:.3f}" for s in SETS)
    _say(f"Last-shot accuracy on the four sets at step {LAST['step']:,}: {accs}")
    _say(f"{LAST['wall_clock_seconds'] / 3600:.2f} hours of one core")
    _say(f"to {LAST['train_loss']:.4f}; its lowest was {min(r['train_loss'] for r in MAIN):.4f}")


def test_the_run_never_left_the_plateau_and_learned_no_phase():
    assert plateau_exit(MAIN, 29) is None
    assert min(r["train_loss"] for r in MAIN) > (1 - PLATEAU_FRACTION) * math.log(29)
    assert classify({s: LAST[s]["acc_last"] for s in SETS}) == "not learned"
    _say("phase *not learned* by the suite's rule")
    _say(f"the i.d.-train loss is {LAST['id_train']['loss']:.4f} against {LAST['id_test']['loss']:.4f} on i.d.-test")
    first = MAIN[0]
    gap0 = first["id_test"]["loss"] - first["id_train"]["loss"]
    gap1 = LAST["id_test"]["loss"] - LAST["id_train"]["loss"]
    assert gap1 > gap0
    _say(f"did grow, from {gap0:.4f} at step 250 to {gap1:.4f}")


def test_the_committed_state_is_the_stated_step_and_the_one_analysed():
    import hashlib

    import torch

    blob = torch.load(RUN / "last.pt", weights_only=True, map_location="cpu")
    assert blob["step"] == LAST["step"] and blob["history"][-1]["step"] == LAST["step"]
    assert "optimizer" in blob["trainer"]  # what a resume needs
    sha = hashlib.sha256((RUN / "last.pt").read_bytes()).hexdigest()
    for report in ("p29-d4-seq16", "p29-d4-inspect"):
        ck = json.loads((ROOT / "reports" / report / "manifest.json").read_text())["checkpoint"]
        assert (ck["step"], ck["sha256"]) == (LAST["step"], sha), report


def test_budget():
    """The run (with probe A), probes B and C, and the four short plateau runs, within 12 CPU-hours."""
    run = LAST["wall_clock_seconds"] / 3600
    probes = (B[-1]["wall_clock_seconds"] + C[-1]["wall_clock_seconds"]) / 3600
    study_runs = ["p5-d4-b200", "p7-d4-b200", "p7-d4-b400", "p7-d4-b200-t20"]
    study = float(_plateaus().loc[study_runs, "wall_clock_min"].sum()) / 60
    total = run + probes + study
    assert total <= 12
    _say(f"Spent: {total:.2f} of the 12 CPU-hours: the run's own wall clock, {run:.2f} hours")
    _say(f"B and C up to their last evaluation ({probes:.2f} hours); and the four short runs at p = 5 and 7 "
         f"({study:.2f} hours)")


def test_the_suite_on_the_run():
    m, rm, bm = _summary("model"), _summary("ratio_matching"), _summary("bayes_memorized")
    _say(f"**{m['accuracy']:.4f} [{m['accuracy_lo']:.4f}, {m['accuracy_hi']:.4f}]**")
    _say(f"({100 * rm['coverage']:.1f} % of the cells) the model agrees with it on {100 * rm['agreement']:.1f} %")
    _say(f"({100 * bm['coverage']:.1f} % of the o.o.d. cells) the model agrees with it on "
         f"{100 * bm['agreement']:.1f} %")


def test_the_representation_scores():
    scores = pd.read_csv(ROOT / "reports" / "p29-d4-inspect" / "scores.csv")
    circ = scores.query("score == 'circularity'")["value"]
    null = scores.query("score == 'circularity_null'")["value"]
    emb = {r.score: r.value for r in scores.query("analysis == 'embedding'").itertuples()}
    assert len(circ) == 16
    _say(f"mean head circularity {circ.mean():.2f} against its shuffled-label null {null.mean():.2f}")
    _say(f"parity explains {emb['parity_r2']:.2f} of the embedding's top-3 variance against "
         f"{emb['parity_r2_null']:.2f} for a random split")
    _say(f"embedding planarity {emb['planarity']:.2f} against {emb['planarity_null']:.2f}")


def test_the_plateau_table_is_the_histories():
    """Each exit in reports/plateaus/runs.csv is plateau_exit of the run's committed history."""
    from compare.reports.training_runs import read_run

    table = _plateaus()
    sources = {"d4": "model/bundled/d4.pt", "d2": "model/bundled/d2.pt", "d4-p7": "model/bundled/d4-p7.pt",
               "p5-d4-b200": "checkpoints/runs/plateau/p5-d4-b200.pt",
               "p7-d4-b200": "checkpoints/runs/plateau/p7-d4-b200.pt",
               "p7-d4-b400": "checkpoints/runs/plateau/p7-d4-b400.pt",
               "p7-d4-b200-t20": "checkpoints/runs/plateau/p7-d4-b200-t20.pt",
               "X_p11_d2_w128": "checkpoints/runs/X_p11_d2_w128", "Y_p11_d2_n32": "checkpoints/runs/Y_p11_d2_n32",
               "p29-d4": "checkpoints/runs/p29-d4"}
    assert set(table.index) == set(sources)
    for name, src in sources.items():
        run = read_run(ROOT / src)
        got = plateau_exit(run["history"], run["ckpt"].setting.p)
        want = table.loc[name, "plateau_exit_step"]
        assert (got is None and pd.isna(want)) or got == want, name
        assert table.loc[name, "step"] == run["history"][-1]["step"], name


def test_the_plateau_against_p():
    t = _plateaus()
    ctrl = ["p5-d4-b200", "p7-d4-b200", "d4"]
    # the controlled rows share d4.pt's recipe: only p and the tasks differ
    for col in ("n_layer", "d_model", "n_head", "n_examples", "batch", "lr", "wd"):
        assert t.loc[ctrl, col].nunique() == 1, col
    ps = [int(t.loc[r, "p"]) for r in ctrl]
    ex = [int(t.loc[r, "plateau_exit_step"]) for r in ctrl]
    assert ps == [5, 7, 11] and ex[0] < ex[1] < ex[2]
    _say(f"step {ex[0]:,} at p = 5, {ex[1]:,} at p = 7 and {ex[2]:,} at p = 11")
    beta = statistics.linear_regression([math.log(p) for p in ps], [math.log(e) for e in ex]).slope
    mx = statistics.mean(math.log(p) for p in ps)
    my = statistics.mean(math.log(e) for e in ex)
    pred = math.exp(my + beta * (math.log(29) - mx))
    _say(f"a power law through the three (exponent {beta:.1f}) puts p = 29 near {_sci(pred)} steps")
    _say(f"grew {ex[2] / ex[1]:.0f}-fold (exponent {math.log(ex[2] / ex[1]) / math.log(11 / 7):.1f})")
    assert pred > 40_000
    _say(f"not by the factor of {pred / 40_000:.0f} the schedule is short of")
    # batch: the same recipe at p = 7 with batch 400
    assert all(t.loc["p7-d4-b400", c] == t.loc["p7-d4-b200", c] for c in ("p", "n_tasks", "d_model", "lr", "wd"))
    assert (t.loc["p7-d4-b400", "batch"], t.loc["p7-d4-b200", "batch"]) == (400, 200)
    b200, b400 = int(t.loc["p7-d4-b200", "plateau_exit_step"]), int(t.loc["p7-d4-b400", "plateau_exit_step"])
    _say(f"left the plateau at step {b400:,} instead of {b200:,}, {b200 / b400:.1f} times fewer steps")
    _say(f"the power law's {_sci(pred / (b200 / b400))} steps is {pred / (b200 / b400) / 40_000:.0f} times the whole "
         "40,000-step schedule")
    assert pred / (b200 / b400) > 40_000
    # tasks: the same recipe at p = 7 with 20 tasks instead of 40 leaves earlier, into memorization
    t20 = t.loc["p7-d4-b200-t20"]
    assert (t20["n_tasks"], t.loc["p7-d4-b200", "n_tasks"], t20["batch"]) == (20, 40, 200)
    assert t20["plateau_exit_step"] < b200
    assert classify({s: t20[f"{s}_last"] for s in SETS}) == "i.d. memorization"
    _say(f"left it at step {int(t20['plateau_exit_step']):,} instead of {b200:,}, into memorization (last-shot "
         f"i.d.-train {t20['id_train_last']:.2f}, i.d.-test {t20['id_test_last']:.2f} at step {int(t20['step']):,}")
    _say(f"the run had spent {LAST['step'] / ex[2]:.1f} times the p = 11 plateau (in steps)")


def _flops(batch: int, tokens: int, d: int, layers: int, vocab: int) -> float:
    """benchmarks/train_step.py's accounting."""
    return batch * tokens * (6 * 12 * layers * d * d + 6 * d * vocab + 12 * layers * d * tokens)


def test_gpu_and_cpu_estimates():
    paper = _flops(1536, 96, 512, 4, 47)
    _say(f"{paper / 1e13:.2f} × 10¹³ FLOPs a step")
    for peak, label in ((312e12, "A100"), (989e12, "H100")):
        _say(f"{label}: {paper * 200_000 / (peak * 0.3) / 3600:.1f} GPU-hours")
    per_step = statistics.median((b["wall_clock_seconds"] - a["wall_clock_seconds"]) / (b["step"] - a["step"])
                                 for a, b in zip(MAIN, MAIN[1:], strict=False))
    ours = _flops(384, 48, 64, 4, 29)
    _say(f"{per_step:.2f} s (median over its 250-step intervals) for {ours / 1e9:.1f} × 10⁹ FLOPs, "
         f"is {ours / per_step / 1e9:.0f} GFLOP/s on one core")
    _say(f"would take {paper * 200_000 / (ours / per_step) / 86400:,.0f} days on this CPU")
    _say(f"{_sci(200_000 * 1536)} sequences against the {_sci(LAST['step'] * 384)} this run saw")
