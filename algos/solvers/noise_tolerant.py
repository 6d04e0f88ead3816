"""Majority-vote variants of Ratio Matching and Modular Regression for noisy labels.

Both let small subsets of the examples vote and answer with the residue that gets the
most votes. Without label noise every vote agrees and they equal
:class:`~algos.solvers.ratio_matching.RatioMatching` and
:class:`~algos.solvers.modular_regression.ModularRegression`; with a corrupted label the
clean examples can outvote it.

Shared rules:

- Only examples with a nonzero input vote: an example at (0, 0) says nothing about any
  other query. The query (0, 0) is always answered **0**.
- A tie between the most-voted residues gives -1 (no answer); so does no vote at all.
- Votes at a query v = c * r_L scale with c, so votes are counted once per line on the
  canonical value at r_L (see :mod:`algos.solvers.lines`); the winner is the same.
"""
from __future__ import annotations

import numpy as np

from algos.solvers.lines import CHUNK_ELEMENTS, LineTablePredictor, pair_tasks, table_from_counts

__all__ = ["RatioMatchingMajority", "ModularRegressionMajority"]


class RatioMatchingMajority(LineTablePredictor):
    """Ratio Matching by vote (``name = "ratio_matching_majority"``).

    Every example whose line contains the query, (x, y) = c * (x_i, y_i), votes for
    c * z_i; the most-voted residue wins; a tie between residues gives -1. The query
    (0, 0) is always answered 0. No distribution.

    >>> import numpy as np
    >>> ex = np.array([[[1, 1, 4], [2, 2, 4], [3, 3, 6]]])   # task (1, 1); z_1 corrupted
    >>> RatioMatchingMajority(7).predict_grid(ex, np.array([[1, 1]])).pred.tolist()
    [[2]]
    """

    name = "ratio_matching_majority"
    gives_distribution = False

    def line_tables(self, examples: np.ndarray) -> tuple[np.ndarray, None]:
        n = examples.shape[0]
        geom, p = self.geom, self.p
        line, _, value = self._prepare(examples)  # (n, k)
        rows = np.broadcast_to(np.arange(n)[:, None], line.shape)
        vote = line != geom.zero_line
        idx = (rows[vote] * geom.n_lines + line[vote]) * p + value[vote]
        counts = np.bincount(idx, minlength=n * geom.n_lines * p).reshape(n, geom.n_lines, p)
        table = table_from_counts(counts)
        table[:, geom.zero_line] = 0
        return table, None


class ModularRegressionMajority(LineTablePredictor):
    """Modular Regression by vote (``name = "modular_regression_majority"``).

    Every subset of one or two examples (nonzero inputs) that is self-consistent (some
    task fits it) and whose span contains the query votes for its answer there:

    - a single example votes on its own line (as Ratio Matching);
    - two examples with independent inputs determine one task and vote everywhere;
    - two examples on the same line vote on that line when their labels agree, and
      abstain when they disagree.

    The most-voted residue wins; a tie between residues gives -1. The query (0, 0) is
    always answered 0. No distribution.

    With pairwise independent inputs and one corrupted label among k >= 5 examples, the
    (k-1)(k-2)/2 clean pairs outvote the k - 1 pairs and one singleton that involve the
    corrupted example, so every query gets the true answer.

    >>> import numpy as np
    >>> ex = np.array([[[1, 0, 6], [0, 1, 4], [1, 1, 0], [1, 2, 4], [1, 3, 1]]])
    >>> ModularRegressionMajority(7).predict_grid(ex, np.array([[1, 0]])).pred.tolist()
    [[3]]
    """

    name = "modular_regression_majority"
    gives_distribution = False

    def line_tables(self, examples: np.ndarray) -> tuple[np.ndarray, None]:
        n, k, _ = examples.shape
        geom, p, n_lines = self.geom, self.p, self.geom.n_lines
        line, _, value = self._prepare(examples)  # (n, k)
        nonzero = line != geom.zero_line

        # Singletons and same-line consistent pairs: a group of m examples on one line
        # with one canonical value casts m + m(m-1)/2 votes; its first member carries them.
        same = (
            nonzero[:, :, None]
            & nonzero[:, None, :]
            & (line[:, :, None] == line[:, None, :])
            & (value[:, :, None] == value[:, None, :])
        )  # (n, k, k)
        size = same.sum(axis=2)
        first = nonzero & ~(same & np.tri(k, k, -1, dtype=bool)).any(axis=2)
        rows = np.broadcast_to(np.arange(n)[:, None], line.shape)
        idx = (rows[first] * n_lines + line[first]) * p + value[first]
        weight = (size[first] * (size[first] + 1)) // 2
        counts = np.bincount(idx, weights=weight, minlength=n * n_lines * p).astype(np.int64)

        # Independent pairs: one task each, a vote on every line through the origin.
        iu, ju = np.triu_indices(k, 1)
        if iu.size:
            lines = np.arange(p + 1)
            step = max(1, CHUNK_ELEMENTS // (iu.size * (p + 1)))
            for lo in range(0, n, step):
                ex = examples[lo : lo + step]
                ln, nz = line[lo : lo + step], nonzero[lo : lo + step]
                valid = nz[:, iu] & nz[:, ju] & (ln[:, iu] != ln[:, ju])  # (c, P)
                r, pair = np.nonzero(valid)
                tasks = pair_tasks(p, ex[r, iu[pair]], ex[r, ju[pair]])  # (v, 2)
                vals = geom.task_values(tasks)[:, : p + 1]  # (v, p + 1)
                idx = ((r[:, None] + lo) * n_lines + lines) * p + vals
                counts += np.bincount(idx.ravel(), minlength=counts.size)
        table = table_from_counts(counts.reshape(n, n_lines, p))
        table[:, geom.zero_line] = 0
        return table, None
