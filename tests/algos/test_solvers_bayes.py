"""Bayes over memorized tasks and over all p^2 tasks, against brute-force posteriors."""
from __future__ import annotations

import numpy as np
import pytest
from algos_testing import SMALL_PRIMES, all_tasks, bayes_posterior, mismatches, prompts, values
from hypothesis import given
from hypothesis import strategies as st

import algos.solvers.bayes as bayes_module
import algos.solvers.lines as lines_module
from algos.prompts import query_grid
from algos.solvers import BayesMemorized, BayesUniform, ModularRegression


@st.composite
def memorized_case(draw, noisy=True):
    """(p, task set (m, 2), examples): labels from a set task, another task, or noise."""
    p, tasks, ex = draw(prompts(noisy=noisy))
    every = all_tasks(p)
    chosen = draw(st.lists(st.integers(0, p * p - 1), min_size=1, max_size=p * p, unique=True))
    task_set = every[chosen]
    if draw(st.booleans()):  # relabel row 0 with a memorized task so something fits
        t = task_set[draw(st.integers(0, len(task_set) - 1))]
        ex[0, :, 2] = ex[0, :, :2] @ t % p
    return p, task_set, ex


@given(memorized_case())
def test_bayes_memorized_matches_the_brute_force_posterior(case):
    p, task_set, ex = case
    out = BayesMemorized(p, task_set).predict_grid(ex, query_grid(p))
    for row in range(len(ex)):
        expected = bayes_posterior(p, task_set, ex[row])
        np.testing.assert_allclose(out.probs[row], expected, rtol=0, atol=1e-12)
        top = expected.max(axis=1)
        unique = (np.abs(expected - top[:, None]) < 1e-12).sum(axis=1) == 1
        np.testing.assert_array_equal(out.pred[row], np.where(unique, expected.argmax(axis=1), -1))


@given(memorized_case())
def test_bayes_distributions_sum_to_one(case):
    p, task_set, ex = case
    for solver in (BayesMemorized(p, task_set), BayesUniform(p)):
        probs = solver.predict_grid(ex, query_grid(p)).probs
        assert probs.shape == (len(ex), p * p, p)
        assert (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


@given(memorized_case())
def test_bayes_memorized_answers_come_from_fitting_memorized_tasks(case):
    p, task_set, ex = case
    grid = query_grid(p)
    pred = BayesMemorized(p, task_set).predict_grid(ex, grid).pred
    for row in range(len(ex)):
        mm = mismatches(p, task_set, ex[row])
        if mm.min() > 0:
            continue
        v = values(p, task_set[mm == 0], grid)  # (fitting, q)
        answered = pred[row] != -1
        assert ((v == pred[row])[:, answered]).any(axis=0).all()


@given(prompts(noisy=True))
def test_bayes_memorized_over_every_task_is_bayes_uniform(case):
    p, _, ex = case
    grid = query_grid(p)
    shuffled = np.random.default_rng(0).permutation(all_tasks(p))
    a = BayesMemorized(p, shuffled).predict_grid(ex, grid)
    b = BayesUniform(p).predict_grid(ex, grid)
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(a.probs, b.probs)


@given(prompts())
def test_bayes_uniform_is_modular_regression_with_a_distribution(case):
    """Consistent examples: one-hot on MR's answer where it answers, else uniform."""
    p, _, ex = case
    grid = query_grid(p)
    out = BayesUniform(p).predict_grid(ex, grid)
    mr = ModularRegression(p).predict_grid(ex, grid).pred
    np.testing.assert_array_equal(out.pred, mr)
    answered = mr != -1
    onehot = np.eye(p)[np.where(answered, mr, 0)]
    np.testing.assert_array_equal(out.probs[answered], onehot[answered])
    np.testing.assert_allclose(out.probs[~answered], 1.0 / p, rtol=0, atol=0)


@given(memorized_case(), st.sampled_from(["sparse", "dense", "dense-chunked", "tiny-chunks"]))
def test_every_computation_path_gives_the_same_result(case, path):
    p, task_set, ex = case
    grid = query_grid(p)
    reference = BayesMemorized(p, task_set).predict_grid(ex, grid)
    solver = BayesMemorized(p, task_set)
    with pytest.MonkeyPatch.context() as mp:
        if path == "sparse":
            solver.sparse_fraction = 2.0
        else:
            solver.sparse_fraction = -1.0
        if path == "dense-chunked":
            mp.setattr(bayes_module, "_ONEHOT_CACHE_BYTES", 4 * (p + 2) * p * 2)  # two tasks a chunk
        if path == "tiny-chunks":
            mp.setattr(bayes_module, "CHUNK_ELEMENTS", 1)
            mp.setattr(lines_module, "CHUNK_ELEMENTS", 1)
        out = solver.predict_grid(ex, grid)
    np.testing.assert_array_equal(out.pred, reference.pred)
    np.testing.assert_array_equal(out.probs, reference.probs)


def test_a_tie_is_no_answer_but_keeps_the_distribution():
    solver = BayesMemorized(5, [[1, 2], [1, 3]])
    out = solver.predict(np.array([[[1, 0, 1]]]), np.array([[1, 1]]))
    assert out.pred.tolist() == [-1]
    assert out.probs.tolist() == [[0.0, 0.0, 0.0, 0.5, 0.5]]


def test_no_fitting_task_falls_back_to_fewest_mismatches():
    p = 7
    # (1, 0) fits examples 1 and 2; (2, 0) fits only example 3; (0, 1) fits none
    solver = BayesMemorized(p, [[1, 0], [2, 0], [0, 1]])
    ex = np.array([[[1, 0, 1], [2, 1, 2], [3, 0, 6]]])
    out = solver.predict(ex, np.array([[4, 4]]))
    assert out.pred.tolist() == [4]
    assert out.probs[0, 4] == 1.0


@pytest.mark.parametrize(
    ("tasks", "match"),
    [
        (np.zeros((0, 2), dtype=int), r"shape \(m, 2\) with m >= 1"),
        (np.zeros((3,), dtype=int), r"shape \(m, 2\)"),
        ([[0, 1, 2]], r"shape \(m, 2\)"),
        ([[0.5, 1.0]], "integers"),
        ([[0, 7]], r"task \(0, 7\) is outside Z_7\^2"),
        ([[-1, 0]], "outside"),
        ([[1, 2], [1, 2]], r"task \(1, 2\) appears more than once"),
    ],
)
def test_bad_task_sets_are_rejected(tasks, match):
    with pytest.raises(ValueError, match=match):
        BayesMemorized(7, tasks)


@pytest.mark.parametrize("p", SMALL_PRIMES)
def test_empty_prompt_only_zero_input_examples(p):
    """All-zero inputs: nothing is learned; every task fits, so it is uniform off (0, 0)."""
    ex = np.zeros((1, 3, 3), dtype=np.int64)
    out = BayesUniform(p).predict_grid(ex, query_grid(p))
    assert out.pred[0, 0] == 0 and (out.pred[0, 1:] == -1).all()
