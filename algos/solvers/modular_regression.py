"""Modular Regression: answer any query in the span of the example inputs.

The paper's skill III ("addition") on top of Ratio Matching: find c_1..c_k with
sum c_i (x_i, y_i) = (x, y) mod p and predict sum c_i z_i. In GF(p)^2 the span of the
example inputs is {0}, a line through the origin, or the whole plane, so row reduction
needs at most two *pivot* examples: the first example with a nonzero input, and the
first later example whose input is independent of it.
"""
from __future__ import annotations

import numpy as np

from algos.solvers.lines import LineTablePredictor, pair_tasks

__all__ = ["ModularRegression"]


class ModularRegression(LineTablePredictor):
    """Modular Regression over GF(p) (``name = "modular_regression"``).

    Rules:

    - Greedy row reduction in prompt order picks the pivot examples (the first nonzero
      input, then the first input independent of it).
      Rank 2: the task (a, b) solved from the two pivots answers every query.
      Rank 1: queries on the pivot's line are answered c * z_pivot; others get -1.
      Rank 0 (every input is (0, 0)): only the query (0, 0) is answered.
    - The query (0, 0) is the empty combination: always answered **0**.
    - Inconsistent examples (no task fits them all; only possible with noisy labels):
      the non-pivot examples are **not checked**; the answers are those of the system
      reduced from the pivots. Without noise this is the unique answer of every task
      that fits the examples. See ``modular_regression_majority`` for a vote.
    - No distribution (``probs`` is None).

    >>> import numpy as np
    >>> mr = ModularRegression(7)
    >>> ex = np.array([[[1, 0, 3], [0, 1, 4]]])    # task (3, 4)
    >>> mr.predict_grid(ex, np.array([[2, 5], [1, 1]])).pred.tolist()
    [[5, 0]]
    """

    name = "modular_regression"
    gives_distribution = False

    def line_tables(self, examples: np.ndarray) -> tuple[np.ndarray, None]:
        n = examples.shape[0]
        geom = self.geom
        line, _, value = self._prepare(examples)  # (n, k)
        rows = np.arange(n)
        nonzero = line != geom.zero_line
        has1 = nonzero.any(axis=1)
        i1 = nonzero.argmax(axis=1)
        line1 = line[rows, i1]
        indep = nonzero & (line != line1[:, None])
        has2 = indep.any(axis=1)
        i2 = indep.argmax(axis=1)

        table = self._empty_table(n)
        rank1 = has1 & ~has2
        table[rows[rank1], line1[rank1]] = value[rows[rank1], i1[rank1]]
        r2 = rows[has2]
        tasks = pair_tasks(self.p, examples[r2, i1[r2]], examples[r2, i2[r2]])  # (n2, 2)
        table[r2] = geom.task_values(tasks)  # zero line gets 0 too
        return table, None
