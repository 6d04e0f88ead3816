"""Bayes-optimal prediction over a task set: memorized pre-training tasks, or all p^2.

With a uniform prior over a task set and likelihood 1 for a task that fits every
in-context example (0 otherwise), the posterior is uniform over the fitting tasks and the
predictive distribution at a query is the share of them giving each residue.

When **no** task of the set fits every example (noisy labels, or an o.o.d. task for the
memorized set), the tasks with the **fewest mismatching examples** carry the posterior
uniformly: the limit of an eps-label-noise likelihood eps^mismatches as eps -> 0.

How it is computed: a task's values on the p + 2 canonical line representatives give its
value at every input (:mod:`algos.solvers.lines`). Per prompt, the posterior support
(n, m) times the tasks' one-hot canonical values (m, (p + 2) p) gives integer counts per
line and residue (a scatter when the support is sparse, as it usually is; else a float32
matrix product, exact for these small integers); every query's distribution is a
permuted copy of its line's.
"""
from __future__ import annotations

import itertools

import numpy as np

from algos.field import check_prime
from algos.solvers.lines import CHUNK_ELEMENTS, LineTablePredictor, table_from_counts
from algos.tasks import task_labels

__all__ = ["BayesMemorized", "BayesUniform"]

_ONEHOT_CACHE_BYTES = 64 << 20


class BayesMemorized(LineTablePredictor):
    """Posterior-predictive over a given task set (``name = "bayes_memorized"``).

    Args:
        p: the prime.
        tasks: (m, 2) distinct tasks (a, b) in Z_p^2, m >= 1 (the pre-training tasks).

    Rules:

    - Uniform prior over ``tasks``; the posterior is uniform over the tasks that fit
      every example, or, when none does, over those with the fewest mismatches.
    - ``probs`` is the predictive distribution over the p residues (sums to 1).
    - ``pred`` is its argmax when the maximum is unique; a tie at the top gives -1
      ("no answer") although the distribution is still returned.
    - The query (0, 0) is 0 under every task, so it is always answered 0.

    >>> import numpy as np
    >>> bm = BayesMemorized(5, [[1, 2], [1, 3], [4, 4]])
    >>> out = bm.predict_grid(np.array([[[1, 0, 1]]]), np.array([[1, 1], [2, 0]]))
    >>> out.pred.tolist(), out.probs[0, 0].tolist()
    ([[-1, 2]], [0.0, 0.0, 0.0, 0.5, 0.5])
    """

    name = "bayes_memorized"
    gives_distribution = True
    #: Scatter the posterior support when at most this fraction of (prompt, task) pairs
    #: is in it, else use the dense one-hot product (same integers either way).
    sparse_fraction = 0.25

    def __init__(self, p: int, tasks: np.ndarray) -> None:
        super().__init__(p)
        self.tasks = _check_tasks(self.p, tasks)
        dtype = np.int16 if self.p <= np.iinfo(np.int16).max else np.int64
        grid = np.stack(np.divmod(np.arange(self.p * self.p), self.p), axis=-1)
        # labels[input index, task]: a row per input keeps a prompt's gathers contiguous
        self._labels = np.ascontiguousarray(task_labels(self.p, self.tasks, grid).T.astype(dtype))
        self._values = self.geom.task_values(self.tasks)  # (m, p + 2)
        self._onehot: np.ndarray | None = None  # built on first dense use when small

    def line_tables(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, k, _ = examples.shape
        p, n_lines, m = self.p, self.geom.n_lines, self.tasks.shape[0]
        idx = examples[..., 0] * p + examples[..., 1]  # (n, k)
        z = examples[..., 2].astype(self._labels.dtype)
        table = np.empty((n, n_lines), dtype=np.int64)
        dist = np.empty((n, n_lines, p), dtype=np.float64)
        step = max(1, CHUNK_ELEMENTS // (k * m))
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            labels = self._labels[idx[lo:hi]]  # (c, k, m)
            mismatches = (labels != z[lo:hi, :, None]).sum(axis=1, dtype=np.int32)  # (c, m)
            support = mismatches == mismatches.min(axis=1, keepdims=True)
            counts = self._support_counts(support).reshape(hi - lo, n_lines, p)
            table[lo:hi] = table_from_counts(counts)
            dist[lo:hi] = counts / support.sum(axis=1)[:, None, None]
        return table, dist

    # ------------------------------------------------------------------ helpers
    def _onehot_rows(self, lo: int, hi: int) -> np.ndarray:
        """One-hot canonical values of tasks lo..hi -> (hi - lo, (p + 2) p) float32."""
        values = self._values[lo:hi]
        onehot = values[:, :, None] == np.arange(self.p)
        rows: np.ndarray = onehot.reshape(hi - lo, -1).astype(np.float32)
        return rows

    def _support_counts(self, support: np.ndarray) -> np.ndarray:
        """support (c, m) bool -> (c, (p + 2) p) counts of tasks per line and value.

        A sparse support (the usual case: few tasks fit) is scattered with ``bincount``;
        a dense one goes through the one-hot matrix product (exact: integer counts in
        float32 stay far below 2^24).
        """
        c, m = support.shape
        n_cols = self.geom.n_lines * self.p
        rows, task = np.nonzero(support)
        if rows.size <= self.sparse_fraction * c * m:
            cols = np.arange(self.geom.n_lines) * self.p + self._values[task]  # (nnz, p + 2)
            flat = rows[:, None] * n_cols + cols
            return np.bincount(flat.ravel(), minlength=c * n_cols).reshape(c, n_cols)
        weights = support.astype(np.float32)
        if self._onehot is None and m * n_cols * 4 <= _ONEHOT_CACHE_BYTES:
            self._onehot = self._onehot_rows(0, m)
        if self._onehot is not None:
            counts: np.ndarray = weights @ self._onehot
            return counts
        step = max(1, _ONEHOT_CACHE_BYTES // (4 * self.geom.n_lines * self.p))
        total = np.zeros((c, n_cols), dtype=np.float32)
        for lo in range(0, m, step):
            total += weights[:, lo : lo + step] @ self._onehot_rows(lo, min(m, lo + step))
        return total

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, tasks={self.tasks.shape[0]})"


class BayesUniform(BayesMemorized):
    """Bayes over all p^2 tasks, the o.o.d.-optimal predictor (``name = "bayes_uniform"``).

    Equal to ``BayesMemorized(p, every task)``: where Modular Regression answers (and the
    examples are consistent) a one-hot on its answer, elsewhere uniform over the p
    residues with ``pred`` -1. Inconsistent examples use the same fewest-mismatch
    posterior over all p^2 tasks.

    >>> import numpy as np
    >>> out = BayesUniform(3).predict(np.array([[[1, 0, 2]]]), np.array([[2, 0]]))
    >>> out.pred.tolist(), out.probs.tolist()
    ([1], [[0.0, 1.0, 0.0]])
    """

    name = "bayes_uniform"

    def __init__(self, p: int) -> None:
        p = check_prime(p)
        super().__init__(p, np.array(list(itertools.product(range(p), repeat=2)), dtype=np.int64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


def _check_tasks(p: int, tasks: np.ndarray) -> np.ndarray:
    """Validate a task set: (m, 2) distinct integers in [0, p), m >= 1."""
    arr = np.asarray(tasks)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ValueError(f"tasks: expected shape (m, 2) with m >= 1, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"tasks: expected integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    outside = (arr < 0).any(axis=1) | (arr >= p).any(axis=1)
    if outside.any():
        raise ValueError(f"tasks: task {tuple(arr[outside][0].tolist())} is outside Z_{p}^2")
    flat = arr[:, 0] * p + arr[:, 1]
    uniq, counts = np.unique(flat, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        raise ValueError(f"tasks: task {divmod(dup, p)} appears more than once")
    arr.setflags(write=False)
    return arr
