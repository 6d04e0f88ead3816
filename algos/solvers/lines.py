"""Lines through the origin of GF(p)^2: the representation every reference solver shares.

Every nonzero input v in Z_p^2 is a nonzero multiple ``v = c * r_L`` of the canonical
representative r_L of exactly one of the p + 1 lines through the origin::

    L = s      r_L = (1, s), s in [0, p)    when x != 0:  v = x * (1, y / x)
    L = p      r_L = (0, 1)                 when x == 0:  v = y * (0, 1)
    L = p + 1  r_L = (0, 0), c = 1          the zero input (its own "line")

For any task w, ``w . v = c * (w . r_L)``. So everything a solver can say about one
prompt fits a *line table* of shape (n, p + 2): the value it predicts at r_L for each
line, or -1 (no answer). The answer at a query v = c r_L is ``c * table[L] mod p``. A
solver that gives distributions keeps one distribution per line, shape (n, p + 2, p);
the distribution at v is the one at r_L with residue r moved to c * r.

The per-prompt work (row reduction, votes, posteriors) is done once per prefix and does
not depend on the number of queries; each grid cell then costs one gather.
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

from algos.field import check_prime, inverse_table
from algos.prompts import check_examples
from algos.solvers.base import NO_ANSWER, Prediction, Predictor

__all__ = [
    "LineGeometry",
    "geometry",
    "pair_tasks",
    "table_from_counts",
    "LineTablePredictor",
]

#: Elements per chunk for the (rows x ...) intermediates (about 32 MB of int64).
CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True, eq=False)
class LineGeometry:
    """Lookup tables for GF(p)^2, built once per prime by :func:`geometry`.

    Attributes (all read-only int64 arrays):
        reps   (p + 2, 2)  canonical representative r_L of each line (last row (0, 0))
        line   (p * p,)    line index L of the input with index x * p + y
        scale  (p * p,)    the c with v = c * r_L (1 for the zero input)
        inv    (p,)        multiplicative inverses (inv[0] = 0)
        perm   (p, p)      perm[c, r] = r / c mod p: residue r at scale c sits at perm[c, r]
                           of the line's canonical distribution (row 0 unused: identity)
    """

    p: int
    reps: np.ndarray
    line: np.ndarray
    scale: np.ndarray
    inv: np.ndarray
    perm: np.ndarray

    @property
    def n_lines(self) -> int:
        """p + 2: the p + 1 lines through the origin and the zero input."""
        return self.p + 2

    @property
    def zero_line(self) -> int:
        """Index of the zero input's own line (p + 1)."""
        return self.p + 1

    def locate(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Line index and scale of inputs ``xy`` (..., 2) -> two arrays of shape (...)."""
        idx = xy[..., 0] * self.p + xy[..., 1]
        return self.line[idx], self.scale[idx]

    def task_values(self, tasks: np.ndarray) -> np.ndarray:
        """Value of tasks (..., 2) at every canonical representative -> (..., p + 2)."""
        values: np.ndarray = (tasks[..., 0, None] * self.reps[:, 0] + tasks[..., 1, None] * self.reps[:, 1]) % self.p
        return values


@cache
def geometry(p: int) -> LineGeometry:
    """The :class:`LineGeometry` of GF(p)^2 (cached).

    >>> g = geometry(5)
    >>> int(g.line[3 * 5 + 1]), int(g.scale[3 * 5 + 1])   # (3, 1) = 3 * (1, 2)
    (2, 3)
    """
    p = check_prime(p)
    inv = inverse_table(p)
    reps = np.zeros((p + 2, 2), dtype=np.int64)
    reps[:p, 0] = 1
    reps[:p, 1] = np.arange(p)
    reps[p] = (0, 1)
    x, y = np.divmod(np.arange(p * p, dtype=np.int64), p)
    line = np.where(x != 0, (y * inv[x]) % p, np.where(y != 0, p, p + 1))
    scale = np.where(x != 0, x, np.where(y != 0, y, 1))
    r = np.arange(p, dtype=np.int64)
    perm = (r[None, :] * inv[:, None]) % p
    perm[0] = r
    for arr in (reps, line, scale, perm):
        arr.setflags(write=False)
    return LineGeometry(p=p, reps=reps, line=line, scale=scale, inv=inv, perm=perm)


def pair_tasks(p: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The task (a, b) through two examples with independent inputs.

    first, second: (..., 3) examples (x, y, z) -> (..., 2) tasks with a*x + b*y = z mod p
    for both. Solves the 2x2 system by its adjugate and the inverse of the determinant
    mod p; where the inputs are dependent (determinant 0) the result is meaningless and
    callers mask it out.
    """
    x1, y1, z1 = first[..., 0], first[..., 1], first[..., 2]
    x2, y2, z2 = second[..., 0], second[..., 1], second[..., 2]
    det_inv = inverse_table(p)[(x1 * y2 - x2 * y1) % p]
    a = ((z1 * y2 - z2 * y1) % p) * det_inv % p
    b = ((x1 * z2 - x2 * z1) % p) * det_inv % p
    return np.stack([a, b], axis=-1)


def table_from_counts(counts: np.ndarray) -> np.ndarray:
    """Unique argmax over the last axis, else -1.

    counts (..., p) of votes or posterior mass -> (...,) int64: the residue with the most,
    or -1 when nothing was counted or the top count is shared.
    """
    best = counts.argmax(axis=-1)
    top = np.take_along_axis(counts, best[..., None], axis=-1)
    n_top = (counts == top).sum(axis=-1)
    return np.where((top[..., 0] > 0) & (n_top == 1), best, NO_ANSWER).astype(np.int64)


class LineTablePredictor(Predictor):
    """A predictor whose knowledge of each prompt is a line table (see the module doc).

    Subclasses implement :meth:`line_tables`; :meth:`predict` and :meth:`predict_grid`
    validate inputs and turn tables into answers (and distributions) per query.
    """

    def __init__(self, p: int) -> None:
        super().__init__(p)
        self.geom = geometry(self.p)

    @abstractmethod
    def line_tables(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """examples (n, k, 3), validated int64 -> (table (n, p + 2), dist (n, p + 2, p) or None).

        ``table[:, p + 1]`` must be 0 (the zero query is always answered 0).
        """

    # ------------------------------------------------------------------ call forms
    def predict(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """examples (n, k, 3), queries (n, 2) -> pred (n,), probs (n, p) or None."""
        ex, q = self._check(examples, queries)
        n, p = ex.shape[0], self.p
        if q.shape[0] != n:
            raise ValueError(f"queries: expected one per prompt, shape ({n}, 2), got {q.shape}")
        line, scale = self.geom.locate(q)  # (n,)
        pred = np.empty(n, dtype=np.int64)
        probs = np.empty((n, p), dtype=np.float64) if self.gives_distribution else None
        for lo, hi in self._row_chunks(n):
            table, dist = self.line_tables(ex[lo:hi])
            rows = np.arange(hi - lo)
            pred[lo:hi] = self._answers(table[rows, line[lo:hi]], scale[lo:hi])
            if probs is not None:
                assert dist is not None  # gives_distribution: line_tables returns a distribution
                cols = line[lo:hi, None] * p + self.geom.perm[scale[lo:hi]]  # (c, p)
                probs[lo:hi] = np.take_along_axis(dist.reshape(hi - lo, -1), cols, axis=1)
        return Prediction(pred, probs)

    def predict_grid(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """examples (n, k, 3), queries (q, 2) -> pred (n, q), probs (n, q, p) or None."""
        ex, q = self._check(examples, queries)
        n, nq, p = ex.shape[0], q.shape[0], self.p
        line, scale = self.geom.locate(q)  # (q,)
        pred = np.empty((n, nq), dtype=np.int64)
        probs = np.empty((n, nq, p), dtype=np.float64) if self.gives_distribution else None
        cols = (line[:, None] * p + self.geom.perm[scale]).ravel()  # (q * p,) into a dist row
        fill_rows = max(1, CHUNK_ELEMENTS // max(1, nq * p))
        for lo, hi in self._row_chunks(n):
            table, dist = self.line_tables(ex[lo:hi])
            pred[lo:hi] = self._answers(table[:, line], scale[None, :])
            if probs is not None:
                assert dist is not None  # gives_distribution: line_tables returns a distribution
                flat = dist.reshape(hi - lo, -1)
                out = probs[lo:hi].reshape(hi - lo, nq * p)
                for a in range(0, hi - lo, fill_rows):
                    np.take(flat[a : a + fill_rows], cols, axis=1, out=out[a : a + fill_rows])
        return Prediction(pred, probs)

    # ------------------------------------------------------------------ helpers
    def _check(self, examples: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if queries is None:
            raise ValueError("queries: expected an array of shape (n, 2), got None")
        return check_examples(self.p, examples, queries)

    def _row_chunks(self, n: int) -> Iterator[tuple[int, int]]:
        """(lo, hi) bounds of prompt chunks whose line tables stay within CHUNK_ELEMENTS."""
        step = max(1, CHUNK_ELEMENTS // (self.geom.n_lines * self.p))
        return ((lo, min(n, lo + step)) for lo in range(0, n, step))

    def _answers(self, values: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Canonical values (-1 = none) times the query scales, mod p."""
        return np.where(values >= 0, (values * scale) % self.p, NO_ANSWER).astype(np.int64)

    def _prepare(self, ex: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Line index, scale and canonical value z / c of every example -> three (n, k)."""
        line, scale = self.geom.locate(ex[..., :2])
        value = (ex[..., 2] * self.geom.inv[scale]) % self.p
        return line, scale, value

    def _empty_table(self, n: int) -> np.ndarray:
        table = np.full((n, self.geom.n_lines), NO_ANSWER, dtype=np.int64)
        table[:, self.geom.zero_line] = 0
        return table

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"
