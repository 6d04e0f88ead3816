"""Strategies and brute-force oracles shared by the tests in tests/algos.

Oracles enumerate all p^2 tasks (small p only) or use galois linear algebra; they share
no code with the solvers beyond validated inputs.
"""
from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from algos.field import gf
from algos.prompts import query_grid

SMALL_PRIMES = (2, 3, 5, 7)


# ---------------------------------------------------------------------- strategies
def residues(p: int, shape) -> st.SearchStrategy[np.ndarray]:
    """int64 arrays of the given shape with entries in [0, p)."""
    return arrays(np.int64, shape, elements=st.integers(0, p - 1))


@st.composite
def prompts(draw, primes=SMALL_PRIMES, min_k=1, max_k=6, max_n=4, noisy=False):
    """(p, tasks (n, 2), examples (n, k, 3)); labels from each row's task.

    With ``noisy`` some labels are replaced by arbitrary residues (possibly the same).
    Inputs are arbitrary: repeats, multiples and (0, 0) all occur at small p.
    """
    p = draw(st.sampled_from(primes))
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(min_k, max_k))
    tasks = draw(residues(p, (n, 2)))
    inputs = draw(residues(p, (n, k, 2)))
    z = np.einsum("nkc,nc->nk", inputs, tasks) % p
    if noisy:
        flip = draw(arrays(bool, (n, k)))
        z = np.where(flip, draw(residues(p, (n, k))), z)
    return p, tasks, np.concatenate([inputs, z[..., None]], axis=-1)


# ---------------------------------------------------------------------- oracles
def all_tasks(p: int) -> np.ndarray:
    """Every task (a, b), (p^2, 2)."""
    return np.array(list(itertools.product(range(p), repeat=2)), dtype=np.int64)


def values(p: int, tasks: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """(m, 2) tasks at (q, 2) inputs -> (m, q), by plain loops."""
    return np.array([[(a * x + b * y) % p for x, y in inputs] for a, b in tasks], dtype=np.int64).reshape(
        len(tasks), len(inputs)
    )


def mismatches(p: int, tasks: np.ndarray, prompt: np.ndarray) -> np.ndarray:
    """Number of examples (k, 3) each task (m, 2) gets wrong -> (m,)."""
    return (values(p, tasks, prompt[:, :2]) != prompt[:, 2]).sum(axis=1)


def determined(p: int, prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over all p^2 tasks fitting the prompt (k, 3): (mask (q,), value (q,)) on the full grid.

    mask: every fitting task gives the same value there (and some task fits).
    """
    tasks = all_tasks(p)
    fit = tasks[mismatches(p, tasks, prompt) == 0]
    if len(fit) == 0:
        q = p * p
        return np.zeros(q, dtype=bool), np.full(q, -1)
    v = values(p, fit, query_grid(p))  # (m_fit, q)
    mask = (v == v[0]).all(axis=0)
    return mask, np.where(mask, v[0], -1)


def span_mask(p: int, inputs: np.ndarray) -> np.ndarray:
    """Queries of the full grid in the GF(p) span of ``inputs`` (k, 2), via galois."""
    field = gf(p)
    null = field(inputs).null_space()  # rows n with A n = 0
    q = field(query_grid(p))
    if null.shape[0] == 0:
        return np.ones(p * p, dtype=bool)
    return (np.asarray(q @ null.T) == 0).all(axis=1)


def pivots(p: int, prompt: np.ndarray) -> list[int]:
    """Indices of the row-reduction pivots: first nonzero input, first independent of it."""
    out: list[int] = []
    for i, (x, y, _) in enumerate(prompt):
        if (x, y) == (0, 0):
            continue
        if not out:
            out.append(i)
            continue
        x1, y1 = prompt[out[0], :2]
        if (x1 * y - x * y1) % p:
            out.append(i)
            break
    return out


def bayes_posterior(p: int, tasks: np.ndarray, prompt: np.ndarray) -> np.ndarray:
    """Predictive distribution (q, p) on the full grid over a task set (fewest mismatches)."""
    mm = mismatches(p, tasks, prompt)
    support = tasks[mm == mm.min()]
    v = values(p, support, query_grid(p))  # (s, q)
    probs = np.zeros((p * p, p))
    for row in v:
        probs[np.arange(p * p), row] += 1.0
    return probs / len(support)


def line_of(p: int, query, example) -> int | None:
    """c with query = c * example (mod p), or None; example must be nonzero."""
    for c in range(p):
        if (c * example[0] % p, c * example[1] % p) == (query[0], query[1]):
            return c
    return None
