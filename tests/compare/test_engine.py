"""The comparison engine: the per-cell table, cell for cell, against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from compare_stand_ins import NoisyModel, Oracle

from algos.prompts import query_grid
from algos.solvers import BayesUniform, ModularRegression, RatioMatching, reference_solvers
from algos.tasks import TaskSetting, task_labels
from compare.engine.breakdowns import task_panels
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences
from compare.engine.summary import summarize

P = 5
KS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def setting() -> TaskSetting:
    return TaskSetting.build(P, n_base_tasks=2, alpha=0.6, task_seed=3)


@pytest.fixture(scope="module")
def every_task() -> np.ndarray:
    return np.array(list(itertools.product(range(P), repeat=2)), dtype=np.int64)


@pytest.fixture(scope="module")
def sequences() -> np.ndarray:
    return build_sequences(P, max(KS), n_random=2, seed=4)


@pytest.fixture(scope="module")
def noisy(setting, every_task, sequences):
    return run_comparison(setting, every_task, sequences, KS, NoisyModel(ModularRegression(P)),
                          reference_solvers(setting))


def _brute(setting, task, sequence, k):
    """Brute-force answers of every solver on the full grid for one clean prefix."""
    grid = query_grid(P)
    every = np.array(list(itertools.product(range(P), repeat=2)))
    inputs = sequence[:k]
    z_ex = task_labels(P, np.array([task]), inputs)[0]
    z = task_labels(P, np.array([task]), grid)[0]
    # Ratio Matching: the query is c * (an example input), or the query is (0, 0)
    on_line = np.zeros(len(grid), dtype=bool)
    for (xi, yi) in inputs:
        for c in range(P):
            on_line[((c * xi) % P) * P + (c * yi) % P] = True
    on_line[0] = True
    rm = np.where(on_line, z, -1)

    def bayes(tasks):
        mism = (task_labels(P, tasks, inputs) != z_ex).sum(1)
        post = tasks[mism == mism.min()]
        values = task_labels(P, post, grid)  # (m, q)
        probs = np.stack([(values == r).mean(0) for r in range(P)], axis=-1)  # (q, p)
        top = probs.max(-1)
        unique = (probs == top[:, None]).sum(-1) == 1
        return np.where(unique, probs.argmax(-1), -1), probs

    mr, uniform_probs = bayes(every)
    memo, memo_probs = bayes(setting.pretrain_array)
    return {"ratio_matching": rm, "modular_regression": mr, "bayes_uniform": mr, "bayes_memorized": memo,
            "ratio_matching_majority": rm, "modular_regression_majority": mr}, z, uniform_probs, memo_probs


def test_table_layout(noisy, setting, every_task, sequences):
    cells = noisy.cells
    q = P * P
    assert len(cells) == len(every_task) * len(sequences) * len(KS) * q
    expected = ["task_a", "task_b", "split", "input_split", "sequence", "k", "x", "y", "z_true",
                "pred_model", "p_true_model"] + [f"pred_{r.name}" for r in reference_solvers(setting)]
    assert list(cells.columns[: len(expected)]) == expected
    assert {c for c in cells.columns[len(expected):]} == {
        f"{m}_{r}" for m in ("kl", "ce", "tv") for r in ("bayes_memorized", "bayes_uniform")}
    assert cells["pred_model"].dtype == np.int8 and cells["k"].dtype == np.int16
    assert cells["p_true_model"].dtype == np.float32
    assert isinstance(cells["split"].dtype, pd.CategoricalDtype)
    # row order: task, sequence, k, then x * p + y
    first = cells.iloc[:q]
    assert (first["x"].to_numpy() * P + first["y"].to_numpy() == np.arange(q)).all()
    key = cells[["sequence", "k"]].to_numpy()[::q]
    assert key[: len(KS)].tolist() == [[0, k] for k in KS]
    z = (cells["task_a"].astype(int) * cells["x"] + cells["task_b"].astype(int) * cells["y"]) % P
    assert (z == cells["z_true"]).all()
    train = setting.train_input_mask[cells["x"].to_numpy(), cells["y"].to_numpy()]
    assert ((cells["input_split"] == "train").to_numpy() == train).all()
    pre = {tuple(t) for t in setting.pretrain_tasks}
    is_id = np.array([(a, b) in pre for a, b in cells[["task_a", "task_b"]].to_numpy()])
    assert ((cells["split"] == "id").to_numpy() == is_id).all()
    assert (cells["pred_model"] >= 0).all()
    assert cells["p_true_model"].between(0, 1).all()


def test_solver_columns_match_brute_force_cell_for_cell(noisy, setting, every_task, sequences):
    cells = noisy.cells
    q = P * P
    block = cells.to_dict("series")
    row = 0
    for task in every_task:
        for s, seq in enumerate(sequences):
            for k in KS:
                answers, z, uniform_probs, memo_probs = _brute(setting, tuple(task), seq, k)
                sl = slice(row, row + q)
                assert (block["z_true"].to_numpy()[sl] == z).all()
                for name, expected in answers.items():
                    got = block[f"pred_{name}"].to_numpy()[sl]
                    assert np.array_equal(got, expected), (name, tuple(task), s, k)
                # distances: TV between the memorized and the uniform posterior, via the model's side
                model_probs = NoisyModel(ModularRegression(P)).predict_grid(
                    np.concatenate([np.broadcast_to(seq[:k], (1, k, 2)),
                                    task_labels(P, task[None], seq[:k])[..., None]], -1), query_grid(P)).probs[0]
                tv_u = 0.5 * np.abs(model_probs - uniform_probs).sum(-1)
                tv_m = 0.5 * np.abs(model_probs - memo_probs).sum(-1)
                np.testing.assert_allclose(block["tv_bayes_uniform"].to_numpy()[sl], tv_u, atol=1e-5)
                np.testing.assert_allclose(block["tv_bayes_memorized"].to_numpy()[sl], tv_m, atol=1e-5)
                p_true = model_probs[np.arange(q), z]
                np.testing.assert_allclose(block["p_true_model"].to_numpy()[sl], p_true, rtol=1e-6)
                row += q


def test_distance_columns_are_sane(noisy):
    c = noisy.cells
    for r in ("bayes_memorized", "bayes_uniform"):
        kl, ce, tv = c[f"kl_{r}"], c[f"ce_{r}"], c[f"tv_{r}"]
        assert kl.notna().all() and (kl >= 0).all()
        assert (ce >= kl - 1e-4).all()  # CE = KL + H(model) >= KL
        assert tv.between(0, 1 + 1e-6).all()


@pytest.mark.parametrize("solver", [RatioMatching, ModularRegression])
def test_oracle_agrees_fully_and_has_no_red_cells(solver, setting, every_task, sequences):
    ref = solver(P)
    result = run_comparison(setting, every_task, sequences, KS, Oracle(solver(P)), reference_solvers(setting))
    summ = summarize(result.cells, n_boot=50)
    rows = summ[summ["predictor"] == ref.name]
    assert (rows["agreement"] == 1.0).all()
    assert (rows["agreement_lo"] == 1.0).all() and (rows["agreement_hi"] == 1.0).all()
    assert (rows["model_acc_out"].fillna(0) == 0).all()  # the oracle is never right outside its coverage
    for a, b in every_task[::4]:
        for s in range(len(sequences)):
            panels = task_panels(result.cells, P, (int(a), int(b)), s, algorithms=[ref.name])
            assert not (panels["difference"][ref.name] > 0).any()  # no red cell
            assert not (panels["difference"][ref.name] < 0).any()  # and no blue one


def test_subject_equal_to_a_distribution_reference_has_zero_distance(setting, every_task, sequences):
    result = run_comparison(setting, every_task[:6], sequences, KS, Oracle(BayesUniform(P)), [BayesUniform(P)])
    c = result.cells
    assert np.allclose(c["kl_bayes_uniform"], 0, atol=1e-5)
    assert np.allclose(c["tv_bayes_uniform"], 0, atol=1e-6)


def test_chunking_and_repeat_do_not_change_the_table(noisy, setting, every_task, sequences):
    again = run_comparison(setting, every_task, sequences, KS, NoisyModel(ModularRegression(P)),
                           reference_solvers(setting), chunk_size=3)
    pd.testing.assert_frame_equal(noisy.cells, again.cells)


def test_progress_counts_every_prefix(setting, every_task, sequences):
    seen = []
    run_comparison(setting, every_task[:7], sequences, (1, 3), RatioMatching(P), [ModularRegression(P)],
                   chunk_size=3, progress=seen.append)
    assert sum(seen) == 7 * len(sequences) * 2


def test_subject_without_distribution_has_nan_p_true(setting, every_task, sequences):
    result = run_comparison(setting, every_task[:2], sequences[:1], (2,), Oracle(RatioMatching(P)), [BayesUniform(P)])
    assert result.cells["p_true_model"].isna().all()
    assert not any(c.startswith("kl_") for c in result.cells.columns)
    assert result.distributions == ()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(ks=(5,)), r"k values \(5,\) must lie in \[1, 4\]"),
        (dict(ks=(0, 1)), "must lie in"),
        (dict(tasks=np.array([[5, 0]])), r"task \(5, 0\) is outside Z_5\^2"),
        (dict(tasks=np.zeros((0, 2))), "no tasks"),
        (dict(references=[Oracle(RatioMatching(P))]), "distinct"),
        (dict(references=[RatioMatching(7)]), "p=7"),
        (dict(sequences=np.zeros((1, 4, 3))), "sequences"),
    ],
)
def test_bad_arguments(setting, every_task, sequences, kwargs, message):
    args = dict(setting=setting, tasks=every_task[:2], sequences=sequences, ks=KS,
                subject=Oracle(RatioMatching(P)), references=[ModularRegression(P)])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        run_comparison(**args)


def test_broken_predictor_is_named(setting, every_task, sequences):
    class Broken(RatioMatching):
        name = "broken"

        def predict_grid(self, examples, queries):
            out = super().predict_grid(examples, queries)
            return type(out)(out.pred[:, :-1])

    with pytest.raises(ValueError, match="predictor 'broken'"):
        run_comparison(setting, every_task[:2], sequences, KS, Oracle(RatioMatching(P)), [Broken(P)])
