"""k-shot prompts: query grids, example sequences, labelling and validation."""
from __future__ import annotations

import numpy as np
import pytest
from algos_testing import SMALL_PRIMES, residues
from hypothesis import given
from hypothesis import strategies as st

from algos.prompts import authors_sequence, check_examples, make_examples, query_grid, random_sequences
from algos.tasks import task_labels


@pytest.mark.parametrize("p", SMALL_PRIMES + (29,))
def test_query_grid_is_every_input_in_index_order(p):
    grid = query_grid(p)
    assert grid.shape == (p * p, 2) and grid.dtype == np.int64
    np.testing.assert_array_equal(grid[:, 0] * p + grid[:, 1], np.arange(p * p))


def test_authors_sequence_known_answer():
    seq = authors_sequence(29, 8)
    assert seq.tolist() == [[4, 21], [20, 2], [28, 9], [26, 28], [2, 6], [9, 0], [4, 4], [17, 14]]
    np.testing.assert_array_equal(authors_sequence(29, 3), seq[:3])  # a prefix of the longer draw


@given(st.sampled_from(SMALL_PRIMES), st.integers(1, 4), st.integers(0, 100))
def test_sequences_are_distinct_and_deterministic(p, k, seed):
    k = min(k, p * p)
    seq = authors_sequence(p, k, seed)
    assert len({tuple(v) for v in seq.tolist()}) == k
    many = random_sequences(p, 3, k, seed)
    assert many.shape == (3, k, 2)
    for s in many:
        assert len({tuple(v) for v in s.tolist()}) == k
    np.testing.assert_array_equal(many, random_sequences(p, 3, k, seed))


@given(st.sampled_from(SMALL_PRIMES), st.data())
def test_make_examples_labels_each_task(p, data):
    tasks = data.draw(residues(p, (3, 2)))
    seq = query_grid(p)[data.draw(st.permutations(range(p * p)))[: min(4, p * p)]]
    k = data.draw(st.integers(1, len(seq)))
    ex = make_examples(p, tasks, seq, k)
    assert ex.shape == (3, k, 3)
    np.testing.assert_array_equal(ex[..., :2], np.broadcast_to(seq[:k], (3, k, 2)))
    np.testing.assert_array_equal(ex[..., 2], task_labels(p, tasks, seq[:k]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: authors_sequence(29, 0), "k must be an integer >= 1"),
        (lambda: authors_sequence(29, 842), "exceeds the 841"),
        (lambda: authors_sequence(8, 2), "p must be a prime"),
        (lambda: random_sequences(5, 0, 2), "n_sequences"),
        (lambda: random_sequences(5, 1, -1), "k must be"),
        (lambda: make_examples(5, [[1, 2]], np.zeros((3, 2), dtype=int), 0), "k must be"),
        (lambda: make_examples(5, [[1, 2]], np.zeros((3, 2), dtype=int), 4), "exceeds"),
        (lambda: make_examples(5, [[1, 2]], np.zeros((3, 3), dtype=int), 1), r"sequence: expected shape"),
        (lambda: check_examples(5, np.zeros((2, 3), dtype=int)), r"expected shape \(n, k, 3\)"),
        (lambda: check_examples(5, np.zeros((1, 0, 3), dtype=int)), "k must be >= 1"),
        (lambda: check_examples(5, np.full((1, 1, 3), 5)), r"entries must lie in \[0, 5\)"),
        (lambda: check_examples(5, np.zeros((1, 1, 3)), None), "integers"),
        (lambda: check_examples(5, np.zeros((1, 1, 3), dtype=int), np.zeros((1, 3), dtype=int)), "queries"),
    ],
)
def test_bad_prompt_inputs_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_check_examples_returns_int64():
    ex, q = check_examples(5, np.ones((1, 1, 3), dtype=np.int8), np.ones((2, 2), dtype=np.uint8))
    assert ex.dtype == np.int64 and q.dtype == np.int64
