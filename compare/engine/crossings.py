"""Agreement over training: the engine's summaries of every snapshot of a run, and when each
algorithm's agreement crosses a threshold. Pure tables; the figures and files are
:mod:`compare.reports.trajectory`'s.

The table has one row per (step, split, k, predictor), with the summary columns of
``compare.engine.summary`` (``accuracy``, ``coverage``, ``agreement``, ``model_acc_in``,
``model_acc_out``, each with ``_lo``/``_hi``): the same numbers ``compare run`` would give
for that snapshot.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

__all__ = ["crossings", "THRESHOLDS", "TRAJECTORY_PREDICTORS"]

THRESHOLDS = (0.5, 0.9)
#: solvers drawn against training step (the Bayes predictors and majority variants stay in the table)
TRAJECTORY_PREDICTORS = ("ratio_matching", "modular_regression", "bayes_memorized")


def crossings(table: pd.DataFrame, thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """First snapshot step at which each (split, k, predictor)'s agreement — the model's
    accuracy for the model itself — reaches each threshold; NaN if it never does.

    Columns: split, k, predictor, metric, threshold, step.
    """
    rows = []
    for key, g in table.sort_values("step").groupby(["split", "k", "predictor"], observed=True):
        split, k, predictor = cast("tuple[str, int, str]", key)
        metric = "accuracy" if predictor == "model" else "agreement"
        values = g[metric].to_numpy(float)
        steps = g["step"].to_numpy()
        for t in thresholds:
            hit = np.flatnonzero(values >= t)
            rows.append({"split": split, "k": int(k), "predictor": predictor, "metric": metric, "threshold": t,
                         "step": float(steps[hit[0]]) if len(hit) else np.nan})
    return pd.DataFrame(rows)
