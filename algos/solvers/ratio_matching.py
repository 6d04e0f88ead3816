"""Ratio Matching: answer a query that is a multiple of one in-context example.

The paper's skills I + II ("modular map" and "multiplication"): if the query is
(x, y) = c * (x_i, y_i) mod p for an example i, predict c * z_i. Its answerable cells are
the union of the lines through the example inputs (plus the zero query).
"""
from __future__ import annotations

import numpy as np

from algos.solvers.lines import LineTablePredictor

__all__ = ["RatioMatching"]


class RatioMatching(LineTablePredictor):
    """Ratio Matching over GF(p) (``name = "ratio_matching"``).

    Rules:

    - A query (x, y) = c * (x_i, y_i) with (x_i, y_i) != (0, 0) is answered c * z_i.
    - Several examples on the query's line can only disagree when labels are noisy; the
      **first** of them in prompt order answers (see ``ratio_matching_majority`` for a vote).
    - The query (0, 0) is 0 * e_i for every example, so it is always answered **0**.
      An example with input (0, 0) answers nothing else.
    - No distribution (``probs`` is None).

    >>> import numpy as np
    >>> rm = RatioMatching(7)
    >>> ex = np.array([[[1, 2, 5]]])              # task (1, 2): 1*1 + 2*2 = 5
    >>> rm.predict_grid(ex, np.array([[2, 4], [1, 0], [0, 0]])).pred.tolist()
    [[3, -1, 0]]
    """

    name = "ratio_matching"
    gives_distribution = False

    def line_tables(self, examples: np.ndarray) -> tuple[np.ndarray, None]:
        n, k, _ = examples.shape
        line, _, value = self._prepare(examples)  # (n, k) each
        table = np.full((n, self.geom.n_lines), -1, dtype=np.int64)
        rows = np.arange(n)
        for i in range(k - 1, -1, -1):  # written last = first in prompt order
            table[rows, line[:, i]] = value[:, i]
        table[:, self.geom.zero_line] = 0
        return table, None
