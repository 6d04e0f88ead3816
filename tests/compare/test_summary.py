"""Summaries, bootstrap intervals, attribution and maps (compare.engine.summary)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from compare_stand_ins import NoisyModel, Oracle

from algos.solvers import ModularRegression, RatioMatching, reference_solvers
from algos.tasks import TaskSetting
from compare.engine.aggregates import ABSTAINED, NONE, attribute_cells, explained_by
from compare.engine.breakdowns import agreement_maps, breakdown, task_panels
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences
from compare.engine.summary import attribution, compute_all, summarize

P = 5


@pytest.fixture(scope="module")
def setting() -> TaskSetting:
    return TaskSetting.build(P, n_base_tasks=2, alpha=0.6, task_seed=3)


@pytest.fixture(scope="module")
def cells(setting) -> pd.DataFrame:
    tasks = np.array(list(itertools.product(range(P), repeat=2)))
    seqs = build_sequences(P, 4, n_random=2, seed=1)
    model = NoisyModel(ModularRegression(P), strength=1.2, noise=1.5)
    return run_comparison(setting, tasks, seqs, (1, 2, 4), model, reference_solvers(setting)).cells


def _hand_table() -> pd.DataFrame:
    """Two units (tasks) of one split, one k, four cells each, with known counts."""
    rows = []
    # unit A: model right on cells 0, 1; ref answers cells 0, 2 (agreeing on 0)
    # unit B: model right on cell 0 only; ref answers cells 0, 1, 2 (agreeing on 0, 1)
    spec = {
        (1, 0): dict(z=[0, 1, 2, 3], model=[0, 1, 4, 4], ref=[0, -1, 2, -1]),
        (2, 0): dict(z=[0, 2, 4, 1], model=[0, 3, 3, 3], ref=[0, 3, 4, -1]),
    }
    for (a, b), d in spec.items():
        for i in range(4):
            rows.append(dict(task_a=a, task_b=b, split="id", sequence=0, k=1, x=i, y=0,
                             z_true=d["z"][i], pred_model=d["model"][i], pred_ref=d["ref"][i]))
    return pd.DataFrame(rows)


def test_summary_by_hand():
    s = summarize(_hand_table(), n_boot=200, seed=0).set_index("predictor")
    ref = s.loc["ref"]
    assert ref["coverage"] == pytest.approx(5 / 8)
    assert ref["agreement"] == pytest.approx(3 / 5)  # A: cell 0; B: cells 0, 1
    assert ref["model_acc_in"] == pytest.approx(2 / 5)  # A: 0; B: 0
    assert ref["model_acc_out"] == pytest.approx(1 / 3)  # A: 1 (of 1, 3); B: none (of 3)
    assert ref["accuracy"] == pytest.approx(4 / 8) and ref["precision"] == pytest.approx(4 / 5)
    assert ref["explains"] == pytest.approx(3 / 8)
    assert s.loc["model", "accuracy"] == pytest.approx(3 / 8)
    assert s.loc["model", "coverage"] == 1.0
    assert ref["n_units"] == 2 and ref["n_cells"] == 8
    # two units: resamples are AA, AB, BB -> coverage in {2/4, 5/8, 3/4}
    assert ref["coverage_lo"] == pytest.approx(0.5) and ref["coverage_hi"] == pytest.approx(0.75)


def test_intervals_contain_the_point_and_follow_the_seed(cells):
    a = summarize(cells, n_boot=300, seed=1)
    b = summarize(cells, n_boot=300, seed=1)
    c = summarize(cells, n_boot=300, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["agreement_lo"].equals(c["agreement_lo"])
    for m in ("coverage", "agreement", "model_acc_in", "accuracy", "kl", "tv"):
        ok = a[m].notna() & a[f"{m}_lo"].notna()
        assert (a.loc[ok, f"{m}_lo"] <= a.loc[ok, m] + 1e-12).all(), m
        assert (a.loc[ok, m] <= a.loc[ok, f"{m}_hi"] + 1e-12).all(), m
    assert set(a["split"]) == {"id", "ood"}
    assert (a.groupby(["split", "k"]).size() == 7).all()
    no_boot = summarize(cells, n_boot=0)
    assert no_boot["coverage_lo"].isna().all()
    np.testing.assert_allclose(no_boot["coverage"], a["coverage"])


def test_attribution_sums_to_one_and_matches_direct_counts(cells):
    att = attribution(cells, n_boot=100, seed=0)
    sums = att.groupby(["split", "k", "outcome"])["share"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    refs = [c[5:] for c in cells.columns if c.startswith("pred_") and c != "pred_model"]
    explained = np.zeros(len(cells), dtype=bool)
    for r in refs:
        explained |= (cells[f"pred_{r}"] == cells["pred_model"]).to_numpy() & (cells[f"pred_{r}"] != -1).to_numpy()
    right = (cells["pred_model"] == cells["z_true"]).to_numpy()
    for (split, k), g in cells.groupby(["split", "k"], observed=True):
        idx = g.index.to_numpy()
        for outcome, mask in (("all", np.ones(len(idx), bool)), ("right", right[idx]), ("wrong", ~right[idx])):
            row = att[(att.split == split) & (att.k == k) & (att.outcome == outcome) & (att.category == NONE)]
            assert row["share"].iloc[0] == pytest.approx(1 - explained[idx][mask].mean())
            assert row["n_cells"].iloc[0] == mask.sum()
    # the right-outcome and wrong-outcome counts add up to all
    n = att[att.category == NONE].pivot_table(index=["split", "k"], columns="outcome", values="n_cells")
    assert (n["right"] + n["wrong"] == n["all"]).all()
    # exclusive attribution in order: Ratio Matching first, then Modular Regression
    code = attribute_cells(cells, order=refs)
    rm = ((cells["pred_ratio_matching"] == cells["pred_model"]).to_numpy()
          & (cells["pred_ratio_matching"] != -1).to_numpy())
    assert (code[rm] == 0).all()
    assert (code[~explained] == len(refs)).all()
    # the bit mask of all explaining references: its lowest set bit is the exclusive code
    mask = explained_by(cells, order=refs).astype(np.int64)
    assert ((mask != 0) == explained).all()
    lowest = np.full(len(mask), len(refs))
    for i in reversed(range(len(refs))):
        lowest[(mask >> i) & 1 == 1] = i
    assert (lowest == code).all()
    for i, r in enumerate(refs):
        agrees = (cells[f"pred_{r}"] == cells["pred_model"]).to_numpy() & (cells[f"pred_{r}"] != -1).to_numpy()
        assert (((mask >> i) & 1).astype(bool) == agrees).all()


def test_abstaining_subject_is_its_own_category(setting):
    tasks = np.array([[1, 2], [3, 4]])
    seqs = build_sequences(P, 2)
    res = run_comparison(setting, tasks, seqs, (1, 2), Oracle(RatioMatching(P)), [ModularRegression(P)])
    att = attribution(res.cells, n_boot=10)
    k1 = att[(att.k == 1) & (att.outcome == "all")].set_index("category")["share"]
    cover = 5 / 25  # the line through one example input (with the zero query)
    assert k1[ABSTAINED] == pytest.approx(1 - cover)
    assert k1["modular_regression"] == pytest.approx(cover)
    assert att.groupby(["split", "k", "outcome"])["share"].sum().round(12).eq(1).all()


def test_agreement_maps(cells):
    maps = agreement_maps(cells, P)
    refs = [c[5:] for c in cells.columns if c.startswith("pred_") and c != "pred_model"]
    assert set(maps["predictor"]) == {"model", *refs}
    assert maps["share"].between(0, 1).all()
    acc = maps[(maps.predictor == "model") & (maps.split == "id") & (maps.k == 2)].set_index(["x", "y"])["share"]
    sub = cells[(cells.split == "id") & (cells.k == 2)]
    direct = (sub["pred_model"] == sub["z_true"]).groupby([sub["x"], sub["y"]]).mean()
    np.testing.assert_allclose(acc.sort_index().to_numpy(), direct.sort_index().to_numpy(), rtol=1e-6)
    assert (maps["n"] > 0).all()
    # the query (0, 0) is answered 0 by every reference: its share is how often the model says 0 there
    zero = maps[(maps.x == 0) & (maps.y == 0) & (maps.predictor == "ratio_matching")]
    at0 = cells[(cells.x == 0) & (cells.y == 0)]
    said0 = (at0["pred_model"] == 0).groupby([at0["split"], at0["k"]], observed=True).mean()
    expected = said0.reindex(list(zip(zero["split"], zero["k"], strict=True))).to_numpy()
    np.testing.assert_allclose(zero["share"].to_numpy(), expected, rtol=1e-6)


def test_task_panels_codes(cells):
    panels = task_panels(cells, P, (1, 2), 0, algorithms=["ratio_matching", "modular_regression"])
    assert list(panels["ks"]) == [1, 2, 4]
    assert panels["model_right"].shape == (3, P, P)
    for algo in ("ratio_matching", "modular_regression"):
        ans, diff = panels["answered"][algo], panels["difference"][algo]
        assert set(np.unique(ans)) <= {0, 1, 2} and set(np.unique(diff)) <= {-1, 0, 1}
        right = panels["model_right"]
        assert ((diff == 1) == (right & (ans != 1))).all()
        assert ((diff == -1) == (~right & (ans == 1))).all()
    with pytest.raises(ValueError, match="not in the table"):
        task_panels(cells, P, (1, 2), 9)


def test_parquet_round_trip_gives_the_same_summaries(cells, tmp_path):
    path = tmp_path / "cells.parquet"
    cells.to_parquet(path, index=False)
    back = pd.read_parquet(path)
    a = compute_all(cells, P, n_boot=50, seed=3)
    b = compute_all(back, P, n_boot=50, seed=3)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.attribution, b.attribution)
    pd.testing.assert_frame_equal(a.maps, b.maps)


def test_by_sequence_by_hand():
    two = _hand_table()
    two.loc[two.task_a == 2, "sequence"] = 1  # unit B becomes sequence 1 of task (1, 0)
    two.loc[two.task_a == 2, "task_a"] = 1
    t = breakdown(two, "sequence").set_index("sequence")
    assert list(t.index) == [0, 1] and (t["n_units"] == 1).all() and (t["n_cells"] == 4).all()
    assert t.loc[0, "accuracy"] == pytest.approx(2 / 4) and t.loc[1, "accuracy"] == pytest.approx(1 / 4)
    assert t.loc[0, "ref_coverage"] == pytest.approx(2 / 4) and t.loc[1, "ref_coverage"] == pytest.approx(3 / 4)
    assert t.loc[0, "ref_agreement"] == pytest.approx(1 / 2) and t.loc[1, "ref_agreement"] == pytest.approx(2 / 3)
    by_task = breakdown(two, "task")  # one task, two sequences pooled: the whole table
    assert len(by_task) == 1 and by_task["n_units"].iloc[0] == 2
    assert by_task["accuracy"].iloc[0] == pytest.approx(3 / 8)
    assert by_task["ref_agreement"].iloc[0] == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="choose one of sequence, task"):
        breakdown(two, "query")


@pytest.mark.parametrize("by, n_rows", [("sequence", 3 * 2 * 3), ("task", P * P * 3)])
def test_breakdowns_pool_back_to_the_summary(cells, by, n_rows):
    """Cell-weighted over their groups, the per-sequence and per-task rates are the summary's."""
    per = breakdown(cells, by)
    # 3 sequences in both splits, or each of the p^2 tasks in its own split; 3 k values
    assert len(per) == n_rows and set(per["split"]) == {"id", "ood"}
    summ = summarize(cells, n_boot=0).set_index(["split", "k", "predictor"])
    for (split, k), g in per.groupby(["split", "k"]):
        w = g["n_cells"] / g["n_cells"].sum()
        assert (w * g["accuracy"]).sum() == pytest.approx(summ.loc[(split, k, "model"), "accuracy"])
        for ref in ("ratio_matching", "modular_regression"):
            cov = summ.loc[(split, k, ref), "coverage"]
            assert (w * g[f"{ref}_coverage"]).sum() == pytest.approx(cov)
            answered = g["n_cells"] * g[f"{ref}_coverage"]
            agree = (answered * g[f"{ref}_agreement"].fillna(0)).sum() / answered.sum()
            assert agree == pytest.approx(summ.loc[(split, k, ref), "agreement"])
    tables = compute_all(cells, P, n_boot=0)
    assert (tables.sequences if by == "sequence" else tables.tasks).equals(per)


# ---------------------------------------------------------------------- paired differences
def _with_model(cells: pd.DataFrame, pred: np.ndarray) -> pd.DataFrame:
    out = cells.copy()
    out["pred_model"] = pred.astype(cells["pred_model"].dtype)
    return out


def test_paired_differences_point_is_the_difference_of_the_summaries(cells):
    from compare.engine.aggregates import unit_sums
    from compare.engine.summary import paired_differences

    rng = np.random.default_rng(0)
    other = _with_model(cells, np.where(rng.random(len(cells)) < 0.3, -1, cells["pred_model"].to_numpy()))
    d = paired_differences(unit_sums(other), unit_sums(cells), n_boot=200, seed=4)
    sa, sb = summarize(other, n_boot=0), summarize(cells, n_boot=0)
    for metric, predictor in [("accuracy", "model"), ("agreement", "ratio_matching"),
                              ("model_acc_out", "modular_regression")]:
        for (split, k), g in d[(d.metric == metric) & (d.predictor == predictor)].groupby(["split", "k"]):
            pa = sa[(sa.split == split) & (sa.k == k) & (sa.predictor == predictor)][metric].iloc[0]
            pb = sb[(sb.split == split) & (sb.k == k) & (sb.predictor == predictor)][metric].iloc[0]
            if np.isnan(pa - pb):  # a rate with no cells on one side (e.g. nothing outside a full coverage)
                assert np.isnan(g["diff"].iloc[0])
                continue
            assert g["diff"].iloc[0] == pytest.approx(pa - pb, abs=1e-12)
            assert g["diff_lo"].iloc[0] <= g["diff"].iloc[0] + 1e-12 <= g["diff_hi"].iloc[0] + 2e-12


def test_paired_differences_of_a_table_with_itself_are_exactly_zero(cells):
    from compare.engine.aggregates import unit_sums
    from compare.engine.summary import paired_differences

    d = paired_differences(unit_sums(cells), unit_sums(cells), n_boot=100)
    finite = d.dropna(subset=["diff"])
    assert len(finite) and (finite[["diff", "diff_lo", "diff_hi"]].to_numpy() == 0).all()


def test_paired_interval_is_narrower_than_the_unpaired_one_for_a_small_change(cells):
    """Flipping 2 % of the model's answers moves each unit's rate a little: pairing removes
    the between-unit spread that an interval of either side alone carries."""
    from compare.engine.aggregates import unit_sums
    from compare.engine.summary import paired_differences

    rng = np.random.default_rng(1)
    other = _with_model(cells, np.where(rng.random(len(cells)) < 0.02, -1, cells["pred_model"].to_numpy()))
    d = paired_differences(unit_sums(other), unit_sums(cells), n_boot=300, seed=2)
    s = summarize(cells, n_boot=300, seed=2)
    row = d[(d.metric == "accuracy") & (d.predictor == "model") & (d.split == "ood") & (d.k == 4)].iloc[0]
    ref = s[(s.predictor == "model") & (s.split == "ood") & (s.k == 4)].iloc[0]
    assert row["diff_hi"] - row["diff_lo"] < 0.5 * (ref["accuracy_hi"] - ref["accuracy_lo"])


def test_paired_differences_refuse_other_units(cells):
    from compare.engine.aggregates import unit_sums
    from compare.engine.summary import paired_differences

    with pytest.raises(ValueError, match="same .task, sequence. units"):
        paired_differences(unit_sums(cells), unit_sums(cells[cells["sequence"] != 2]))
