"""Ratio Matching and Modular Regression against brute force over all p^2 tasks."""
from __future__ import annotations

import numpy as np
from algos_testing import determined, line_of, pivots, prompts, span_mask
from hypothesis import given

from algos.prompts import query_grid
from algos.solvers import ModularRegression, RatioMatching


@given(prompts())
def test_modular_regression_answers_exactly_the_determined_cells(case):
    """Consistent examples: MR answers where all fitting tasks agree, with the true z."""
    p, tasks, ex = case
    pred = ModularRegression(p).predict_grid(ex, query_grid(p)).pred
    true = (tasks @ query_grid(p).T) % p
    for row in range(len(ex)):
        mask, value = determined(p, ex[row])
        assert mask.any(), "the generating task always fits"
        np.testing.assert_array_equal(pred[row] != -1, mask)
        np.testing.assert_array_equal(pred[row][mask], value[mask])
        np.testing.assert_array_equal(pred[row][mask], true[row][mask])


@given(prompts(noisy=True))
def test_modular_regression_coverage_is_the_galois_span(case):
    """Any labels: the answered cells are the GF(p) span of the example inputs."""
    p, _, ex = case
    pred = ModularRegression(p).predict_grid(ex, query_grid(p)).pred
    for row in range(len(ex)):
        np.testing.assert_array_equal(pred[row] != -1, span_mask(p, ex[row, :, :2]))


@given(prompts(noisy=True))
def test_modular_regression_with_noise_follows_the_pivot_examples(case):
    """Inconsistent examples: the answers are those the pivot examples determine."""
    p, _, ex = case
    pred = ModularRegression(p).predict_grid(ex, query_grid(p)).pred
    for row in range(len(ex)):
        piv = pivots(p, ex[row])
        if not piv:
            expected = np.full(p * p, -1)
            expected[0] = 0  # only the zero query
        else:
            mask, value = determined(p, ex[row, piv])
            expected = np.where(mask, value, -1)
        np.testing.assert_array_equal(pred[row], expected)


@given(prompts(noisy=True))
def test_ratio_matching_follows_its_rule(case):
    """Each cell: the first example with query = c * input answers c * z; (0, 0) -> 0."""
    p, _, ex = case
    grid = query_grid(p)
    pred = RatioMatching(p).predict_grid(ex, grid).pred
    for row in range(len(ex)):
        for j, q in enumerate(grid):
            expected = -1
            if (q == 0).all():
                expected = 0
            else:
                for x, y, z in ex[row]:
                    if (x, y) != (0, 0) and (c := line_of(p, q, (x, y))) is not None:
                        expected = c * z % p
                        break
            assert pred[row, j] == expected, (row, q.tolist())


@given(prompts())
def test_ratio_matching_answers_are_determined_and_true(case):
    p, tasks, ex = case
    pred = RatioMatching(p).predict_grid(ex, query_grid(p)).pred
    true = (tasks @ query_grid(p).T) % p
    for row in range(len(ex)):
        mask, _ = determined(p, ex[row])
        answered = pred[row] != -1
        assert not (answered & ~mask).any(), "answered a cell the examples do not determine"
        np.testing.assert_array_equal(pred[row][answered], true[row][answered])


@given(prompts(noisy=True))
def test_ratio_matching_coverage_is_inside_modular_regression(case):
    p, _, ex = case
    grid = query_grid(p)
    rm = RatioMatching(p).predict_grid(ex, grid).pred != -1
    mr = ModularRegression(p).predict_grid(ex, grid).pred != -1
    assert not (rm & ~mr).any()


def test_two_independent_examples_answer_every_cell():
    p = 29
    ex = np.array([[[3, 5, (7 * 3 + 11 * 5) % p], [1, 9, (7 + 11 * 9) % p]]])
    pred = ModularRegression(p).predict_grid(ex, query_grid(p)).pred
    np.testing.assert_array_equal(pred[0], (query_grid(p) @ np.array([7, 11])) % p)


def test_zero_inputs_answer_only_the_zero_query():
    p = 7
    ex = np.array([[[0, 0, 0], [0, 0, 0]]])
    grid = query_grid(p)
    for solver in (RatioMatching(p), ModularRegression(p)):
        pred = solver.predict_grid(ex, grid).pred[0]
        assert pred[0] == 0 and (pred[1:] == -1).all()
