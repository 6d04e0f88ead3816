"""The majority-vote solvers: their vote rules, and what they buy under label noise."""
from __future__ import annotations

import itertools

import numpy as np
from algos_testing import all_tasks, line_of, mismatches, prompts, values
from hypothesis import given
from hypothesis import strategies as st

from algos.prompts import query_grid
from algos.solvers import (
    ModularRegression,
    ModularRegressionMajority,
    RatioMatching,
    RatioMatchingMajority,
)


def _winner(votes: dict[int, int]) -> int:
    if not votes:
        return -1
    top = max(votes.values())
    best = [v for v, c in votes.items() if c == top]
    return best[0] if len(best) == 1 else -1


def _rm_majority_oracle(p, prompt):
    out = []
    for q in query_grid(p):
        if (q == 0).all():
            out.append(0)
            continue
        votes: dict[int, int] = {}
        for x, y, z in prompt:
            if (x, y) != (0, 0) and (c := line_of(p, q, (x, y))) is not None:
                votes[c * z % p] = votes.get(c * z % p, 0) + 1
        out.append(_winner(votes))
    return np.array(out)


def _mr_majority_oracle(p, prompt):
    """Literal rule: subsets of 1 or 2 nonzero examples; consistent ones vote where
    every task fitting them agrees (= the query is in their span)."""
    grid = query_grid(p)
    tasks = all_tasks(p)
    live = [i for i, (x, y, _) in enumerate(prompt) if (x, y) != (0, 0)]
    votes = [dict() for _ in grid]
    for size in (1, 2):
        for subset in itertools.combinations(live, size):
            fit = tasks[mismatches(p, tasks, prompt[list(subset)]) == 0]
            if len(fit) == 0:
                continue  # inconsistent pair: abstains
            v = values(p, fit, grid)
            for j in np.flatnonzero((v == v[0]).all(axis=0)):
                votes[j][v[0, j]] = votes[j].get(v[0, j], 0) + 1
    out = np.array([_winner(v) for v in votes])
    out[0] = 0
    return out


@given(prompts(noisy=True))
def test_ratio_matching_majority_follows_its_rule(case):
    p, _, ex = case
    pred = RatioMatchingMajority(p).predict_grid(ex, query_grid(p)).pred
    for row in range(len(ex)):
        np.testing.assert_array_equal(pred[row], _rm_majority_oracle(p, ex[row]))


@given(prompts(noisy=True, max_k=5, max_n=2))
def test_modular_regression_majority_follows_its_rule(case):
    p, _, ex = case
    pred = ModularRegressionMajority(p).predict_grid(ex, query_grid(p)).pred
    for row in range(len(ex)):
        np.testing.assert_array_equal(pred[row], _mr_majority_oracle(p, ex[row]))


@given(prompts(max_k=8))
def test_without_noise_the_majority_variants_equal_the_plain_solvers(case):
    p, _, ex = case
    grid = query_grid(p)
    np.testing.assert_array_equal(
        RatioMatchingMajority(p).predict_grid(ex, grid).pred, RatioMatching(p).predict_grid(ex, grid).pred
    )
    np.testing.assert_array_equal(
        ModularRegressionMajority(p).predict_grid(ex, grid).pred,
        ModularRegression(p).predict_grid(ex, grid).pred,
    )


@st.composite
def one_corrupted_on_independent_lines(draw):
    """k >= 5 examples on pairwise distinct lines, one label corrupted."""
    p = draw(st.sampled_from([5, 7, 11]))
    k = draw(st.integers(5, min(8, p + 1)))
    task = np.array([draw(st.integers(0, p - 1)), draw(st.integers(0, p - 1))])
    reps = [(1, s) for s in range(p)] + [(0, 1)]
    chosen = draw(st.permutations(range(p + 1)))[:k]
    scales = draw(st.lists(st.integers(1, p - 1), min_size=k, max_size=k))
    inputs = np.array([[c * reps[j][0] % p, c * reps[j][1] % p] for j, c in zip(chosen, scales, strict=True)])
    z = inputs @ task % p
    bad = draw(st.integers(0, k - 1))
    z[bad] = (z[bad] + draw(st.integers(1, p - 1))) % p
    return p, task, bad, np.concatenate([inputs, z[:, None]], axis=1)[None]


@given(one_corrupted_on_independent_lines())
def test_modular_regression_majority_outvotes_one_corrupted_label(case):
    """(k-1)(k-2)/2 clean pairs beat the k - 1 pairs and one singleton with the bad label."""
    p, task, bad, ex = case
    grid = query_grid(p)
    true = grid @ task % p
    np.testing.assert_array_equal(ModularRegressionMajority(p).predict_grid(ex, grid).pred[0], true)
    plain = ModularRegression(p).predict_grid(ex, grid).pred[0]
    if bad in (0, 1):  # a pivot is corrupted: the plain solver is wrong somewhere
        assert (plain != true).any()


@st.composite
def one_corrupted_on_a_crowded_line(draw):
    """>= 3 examples on one line (one corrupted, listed first), plus clean examples elsewhere."""
    p = draw(st.sampled_from([5, 7, 11]))
    task = np.array([draw(st.integers(0, p - 1)), draw(st.integers(0, p - 1))])
    grid = query_grid(p)
    base = grid[draw(st.integers(1, p * p - 1))]
    m = draw(st.integers(3, p - 1))
    scales = draw(st.permutations(range(1, p)))[:m]
    on_line = np.array([[c * base[0] % p, c * base[1] % p] for c in scales])
    others = grid[draw(st.lists(st.integers(1, p * p - 1), max_size=4))].reshape(-1, 2)
    inputs = np.concatenate([on_line, others])
    z = inputs @ task % p
    z[0] = (z[0] + draw(st.integers(1, p - 1))) % p
    return p, task, base, np.concatenate([inputs, z[:, None]], axis=1)[None]


@given(one_corrupted_on_a_crowded_line())
def test_ratio_matching_majority_outvotes_one_corrupted_label(case):
    p, task, base, ex = case
    grid = query_grid(p)
    true = grid @ task % p
    on_line = np.array([line_of(p, q, base) is not None for q in grid])
    maj = RatioMatchingMajority(p).predict_grid(ex, grid).pred[0]
    plain = RatioMatching(p).predict_grid(ex, grid).pred[0]
    np.testing.assert_array_equal(maj[on_line], true[on_line])
    # the plain solver trusts the corrupted first example on that line
    assert (plain[on_line] != true[on_line]).any()
