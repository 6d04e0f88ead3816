"""k-shot prompts as integer arrays.

An *example sequence* is an ordered list of example inputs (x, y) shared by every task of
a comparison (only the labels differ between tasks, as in the paper's grid figure). The
first k of them, labelled by a task, form the k-shot prefix placed before each query.

Shapes used across the project:
    sequences  (n_seq, k_max, 2)   example inputs
    examples   (n, k, 3)           x, y, z of each in-context example
    queries    (q, 2)              query inputs (x, y); the full grid has q = p^2
"""
from __future__ import annotations

import random
from typing import overload

import numpy as np

from algos.errors import InputError
from algos.field import check_prime
from algos.tasks import task_labels

__all__ = ["query_grid", "authors_sequence", "random_sequences", "make_examples", "check_examples"]


def query_grid(p: int) -> np.ndarray:
    """All p^2 inputs as a (p*p, 2) array in index order x*p + y."""
    p = check_prime(p)
    xs, ys = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.int64)


def authors_sequence(p: int, k_max: int, seed: int = 1) -> np.ndarray:
    """The paper's convention: ``random.seed(seed)`` then ``random.randint(0, p*p - 1)`` per shot.

    Inputs are indices x*p + y of the full grid. The released script asserts the draws
    are distinct; here a repeated draw is redrawn instead (which leaves every sequence the
    script accepts unchanged). Returns (k_max, 2).
    """
    p = check_prime(p)
    _check_k(k_max, p * p)
    rng = random.Random(seed)
    ids: list[int] = []
    while len(ids) < k_max:
        i = rng.randint(0, p * p - 1)
        if i not in ids:
            ids.append(i)
    return query_grid(p)[ids]


def random_sequences(p: int, n_sequences: int, k_max: int, seed: int = 0) -> np.ndarray:
    """``n_sequences`` sequences of ``k_max`` distinct inputs drawn uniformly from all p^2.

    Deterministic in ``seed``. Returns (n_sequences, k_max, 2).
    """
    p = check_prime(p)
    _check_k(k_max, p * p)
    if n_sequences < 1:
        raise InputError(f"n_sequences must be >= 1, got {n_sequences}")
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(p * p, size=k_max, replace=False) for _ in range(n_sequences)])
    return query_grid(p)[idx]


def make_examples(p: int, tasks: np.ndarray, sequence: np.ndarray, k: int) -> np.ndarray:
    """Label the first k inputs of one sequence with each task.

    tasks (n, 2), sequence (k_max, 2) -> examples (n, k, 3) holding x, y, z.
    """
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    sequence = np.asarray(sequence, dtype=np.int64)
    if sequence.ndim != 2 or sequence.shape[1] != 2:
        raise InputError(f"sequence: expected shape (k_max, 2), got {sequence.shape}")
    _check_k(k, sequence.shape[0])
    inputs = sequence[:k]  # (k, 2)
    z = task_labels(p, tasks, inputs)  # (n, k)
    xy = np.broadcast_to(inputs, (tasks.shape[0], k, 2))
    return np.concatenate([xy, z[..., None]], axis=-1)


@overload
def check_examples(p: int, examples: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def check_examples(p: int, examples: np.ndarray, queries: None = None) -> tuple[np.ndarray, None]: ...
def check_examples(
    p: int, examples: np.ndarray, queries: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate predictor inputs; returns them as int64 arrays.

    examples must be (n, k, 3) with k >= 1 and entries in [0, p); queries (n, 2) or (q, 2).
    """
    ex = np.asarray(examples)
    if ex.ndim != 3 or ex.shape[2] != 3:
        raise InputError(f"examples: expected shape (n, k, 3), got {ex.shape}")
    if ex.shape[1] < 1:
        raise InputError("examples: k must be >= 1")
    if not np.issubdtype(ex.dtype, np.integer):
        raise InputError(f"examples: expected integers, got dtype {ex.dtype}")
    ex = ex.astype(np.int64)
    if ex.size and (ex.min() < 0 or ex.max() >= p):
        raise InputError(f"examples: entries must lie in [0, {p}), got range [{ex.min()}, {ex.max()}]")
    q = None
    if queries is not None:
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape[1] != 2:
            raise InputError(f"queries: expected shape (n, 2), got {q.shape}")
        if not np.issubdtype(q.dtype, np.integer):
            raise InputError(f"queries: expected integers, got dtype {q.dtype}")
        q = q.astype(np.int64)
        if q.size and (q.min() < 0 or q.max() >= p):
            raise InputError(f"queries: entries must lie in [0, {p}), got range [{q.min()}, {q.max()}]")
    return ex, q


def _check_k(k: int, limit: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k!r}")
    if k > limit:
        raise InputError(f"k = {k} exceeds the {limit} available example inputs")
