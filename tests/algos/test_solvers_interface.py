"""Every solver behind the one predictor interface: call forms, shapes, names, errors."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
from algos_testing import all_tasks, determined, prompts, residues
from hypothesis import given
from hypothesis import strategies as st

import algos.solvers
import algos.solvers.bayes
import algos.solvers.lines
import algos.solvers.modular_regression
import algos.solvers.noise_tolerant
import algos.solvers.ratio_matching
from algos.prompts import query_grid
from algos.solvers import (
    NO_ANSWER,
    BayesMemorized,
    BayesUniform,
    ModularRegression,
    ModularRegressionMajority,
    Prediction,
    Predictor,
    RatioMatching,
    RatioMatchingMajority,
    reference_solvers,
)
from algos.tasks import TaskSetting

NAMES = [
    "ratio_matching",
    "modular_regression",
    "bayes_memorized",
    "bayes_uniform",
    "ratio_matching_majority",
    "modular_regression_majority",
]


def _solvers(p: int) -> list[Predictor]:
    memorized = all_tasks(p)[:: 3]
    return [
        RatioMatching(p),
        ModularRegression(p),
        BayesMemorized(p, memorized),
        BayesUniform(p),
        RatioMatchingMajority(p),
        ModularRegressionMajority(p),
    ]


@given(prompts(noisy=True), st.data())
def test_grid_equals_pointwise_on_broadcast_inputs(case, data):
    p, _, ex = case
    queries = data.draw(residues(p, (data.draw(st.integers(1, 12)), 2)))
    for solver in _solvers(p):
        grid = solver.predict_grid(ex, queries)
        # the base class's grid form is exactly "predict on the broadcast inputs"
        flat = Predictor.predict_grid(solver, ex, queries)
        np.testing.assert_array_equal(grid.pred, flat.pred, err_msg=solver.name)
        assert grid.pred.shape == (len(ex), len(queries)) and grid.pred.dtype == np.int64
        if solver.gives_distribution:
            assert grid.probs.shape == (len(ex), len(queries), p) and grid.probs.dtype == np.float64
            np.testing.assert_array_equal(grid.probs, flat.probs, err_msg=solver.name)
        else:
            assert grid.probs is None and flat.probs is None


@given(prompts())
def test_every_answer_comes_from_a_task_that_fits_the_examples(case):
    p, _, ex = case
    grid = query_grid(p)
    for solver in _solvers(p):
        if solver.name == "bayes_memorized":
            continue  # its answers come from memorized tasks (tested with Bayes)
        pred = solver.predict_grid(ex, grid).pred
        for row in range(len(ex)):
            mask, value = determined(p, ex[row])
            answered = pred[row] != -1
            assert not (answered & ~mask).any(), solver.name
            np.testing.assert_array_equal(pred[row][answered], value[answered], err_msg=solver.name)


@given(prompts(noisy=True))
def test_the_zero_query_is_always_answered_zero(case):
    p, _, ex = case
    zero = np.zeros((len(ex), 2), dtype=np.int64)
    for solver in _solvers(p):
        assert (solver.predict(ex, zero).pred == 0).all(), solver.name


def test_reference_solvers_in_their_stable_order():
    setting = TaskSetting.build(7, 2, 0.5)
    solvers = reference_solvers(setting)
    assert [s.name for s in solvers] == NAMES
    assert all(isinstance(s, Predictor) and s.p == 7 for s in solvers)
    np.testing.assert_array_equal(solvers[2].tasks, setting.pretrain_array)
    assert [s.gives_distribution for s in solvers] == [False, False, True, True, False, False]


def test_public_names():
    assert set(algos.solvers.__all__) == {
        "NO_ANSWER",
        "Prediction",
        "Predictor",
        "RatioMatching",
        "ModularRegression",
        "BayesMemorized",
        "BayesUniform",
        "RatioMatchingMajority",
        "ModularRegressionMajority",
        "reference_solvers",
        "solver",
        "SOLVER_NAMES",
    }
    assert [algos.solvers.solver(n, TaskSetting.build(5, n_base_tasks=1, alpha=0.6)).name
            for n in algos.solvers.SOLVER_NAMES] == list(algos.solvers.SOLVER_NAMES)
    with pytest.raises(ValueError, match="unknown solver 'oracle'"):
        algos.solvers.solver("oracle", TaskSetting.build(5, n_base_tasks=1, alpha=0.6))
    assert NO_ANSWER == -1 and Prediction is algos.solvers.base.Prediction
    assert repr(BayesMemorized(5, [[1, 2]])) == "BayesMemorized(p=5, tasks=1)"
    assert repr(RatioMatching(5)) == "RatioMatching(p=5)"


@pytest.mark.parametrize(
    "module",
    [
        algos.solvers.lines,
        algos.solvers.ratio_matching,
        algos.solvers.modular_regression,
        algos.solvers.noise_tolerant,
        algos.solvers.bayes,
    ],
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_empty_batches():
    for solver in _solvers(5):
        out = solver.predict_grid(np.zeros((0, 2, 3), dtype=np.int64), query_grid(5))
        assert out.pred.shape == (0, 25)
        out = solver.predict_grid(np.ones((2, 2, 3), dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
        assert out.pred.shape == (2, 0)
        out = solver.predict(np.zeros((0, 2, 3), dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
        assert out.pred.shape == (0,)


GOOD_EX = np.array([[[1, 2, 3]]])
GOOD_Q = np.array([[1, 1]])


@pytest.mark.parametrize(
    ("examples", "queries", "match"),
    [
        (np.zeros((1, 2)), GOOD_Q, r"examples: expected shape \(n, k, 3\)"),
        (np.zeros((1, 2, 2), dtype=int), GOOD_Q, r"examples: expected shape \(n, k, 3\)"),
        (np.zeros((1, 0, 3), dtype=int), GOOD_Q, "k must be >= 1"),
        (GOOD_EX.astype(float), GOOD_Q, "examples: expected integers"),
        (GOOD_EX + 5, GOOD_Q, r"examples: entries must lie in \[0, 7\)"),
        (-GOOD_EX, GOOD_Q, "entries must lie"),
        (GOOD_EX, np.array([1, 1]), r"queries: expected shape \(n, 2\)"),
        (GOOD_EX, GOOD_Q.astype(float), "queries: expected integers"),
        (GOOD_EX, GOOD_Q * 7, r"queries: entries must lie in \[0, 7\)"),
        (GOOD_EX, np.array([[1, 1], [2, 2]]), "queries: expected one per prompt"),
        (GOOD_EX, None, "queries"),
    ],
)
@pytest.mark.parametrize("index", range(len(NAMES)))
def test_bad_inputs_are_rejected_with_a_clear_message(examples, queries, match, index):
    solver = _solvers(7)[index]
    with pytest.raises(ValueError, match=match):
        solver.predict(examples, queries)
    if "one per prompt" not in match:
        with pytest.raises(ValueError, match=match):
            solver.predict_grid(examples, queries)


@pytest.mark.parametrize("p", [4, 1, 0, -3, 2.0, True, "29"])
@pytest.mark.parametrize(
    "make",
    [RatioMatching, ModularRegression, BayesUniform, RatioMatchingMajority, ModularRegressionMajority,
     lambda p: BayesMemorized(p, [[0, 1]])],
)
def test_a_non_prime_p_is_rejected(p, make):
    with pytest.raises(ValueError, match="p must be a prime"):
        make(p)


@given(prompts(noisy=True, max_k=5))
def test_chunk_sizes_do_not_change_results(case):
    import algos.solvers.bayes as bayes_module
    import algos.solvers.lines as lines_module
    import algos.solvers.noise_tolerant as noise_module

    p, _, ex = case
    grid = query_grid(p)
    expected = [(s.predict_grid(ex, grid), s.predict(ex, grid[: len(ex)])) for s in _solvers(p)]
    with pytest.MonkeyPatch.context() as mp:
        for module in (bayes_module, lines_module, noise_module):
            mp.setattr(module, "CHUNK_ELEMENTS", 1)
        got = [(s.predict_grid(ex, grid), s.predict(ex, grid[: len(ex)])) for s in _solvers(p)]
    for (eg, ep), (gg, gp) in zip(expected, got, strict=True):
        for e, g in ((eg, gg), (ep, gp)):
            np.testing.assert_array_equal(e.pred, g.pred)
            if e.probs is not None:
                np.testing.assert_array_equal(e.probs, g.probs)
