"""The ablation table: per (component, split, k), the model's rates and their change from the plain model.

Pure: no I/O, no plotting. ``compare ablate`` scores the plain model and each ablated
copy with the same engine (:func:`compare.engine.comparison.run_comparison`) and summaries
(:func:`compare.engine.summary.compute_all`); this module turns each copy's summary, and the
paired differences against the plain model (:func:`compare.engine.summary.paired_differences`),
into rows of one table.

Columns of :func:`ablation_rows` (one row per split and k):

=================================  ==========================================================
component                          ``none`` (the plain model), ``L{l}H{h}``, ``L{l}attn``,
                                   ``L{l}mlp`` or a ``+``-joined set
split, k, n_units, n_cells          as in ``summary.csv`` (n_units: (task, sequence) pairs)
model_accuracy [_lo, _hi]           the ablated model's accuracy, 95 % bootstrap interval
                                    over (task, sequence) units (from the summary)
delta_model_accuracy [_lo, _hi]     its change from the plain model, with a *paired*
                                    bootstrap interval: each resample draws the same units
                                    for both models and takes the difference
<solver>_agreement, ...             for every solver: agreement with the model where the
<solver>_model_acc_in, ...          solver answers, model accuracy inside and outside its
<solver>_model_acc_out, ...         coverage, each with _lo/_hi and delta_... [_lo, _hi]
=================================  ==========================================================
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

__all__ = ["ABLATION_RATES", "ablation_rows", "ablation_columns", "most_damaging", "NONE"]

NONE = "none"
#: Per-solver rates of the table (names as in compare.engine.summary.SUMMARY_METRICS).
ABLATION_RATES = ("agreement", "model_acc_in", "model_acc_out")


def ablation_columns(references: Sequence[str]) -> list[str]:
    """The table's columns, in order."""
    cols = ["component", "split", "k", "n_units", "n_cells"]
    names = ["model_accuracy"] + [f"{r}_{m}" for r in references for m in ABLATION_RATES]
    for n in names:
        cols += [n, f"{n}_lo", f"{n}_hi", f"delta_{n}", f"delta_{n}_lo", f"delta_{n}_hi"]
    return cols


def ablation_rows(
    component: str, summary: pd.DataFrame, diffs: pd.DataFrame, subject: str, references: Sequence[str]
) -> pd.DataFrame:
    """Rows of one component: ``summary`` is its :func:`compare.engine.summary.summarize` table,
    ``diffs`` its :func:`compare.engine.summary.paired_differences` against the plain model."""
    # {(split, k, predictor, metric): {"diff": .., "diff_lo": .., "diff_hi": ..}}
    d = diffs.set_index(["split", "k", "predictor", "metric"]).to_dict("index")
    rows = []
    for group, g in summary.groupby(["split", "k"], sort=True, observed=True):
        split, k = cast("tuple[str, int]", group)
        by = g.set_index("predictor").to_dict("index")  # {predictor: {column: value}}
        row: dict[str, object] = {"component": component, "split": split, "k": int(k),
                                  "n_units": int(by[subject]["n_units"]), "n_cells": int(by[subject]["n_cells"])}
        wanted = [("model_accuracy", subject, "accuracy")]
        wanted += [(f"{r}_{m}", r, m) for r in references for m in ABLATION_RATES]
        for col, predictor, metric in wanted:
            for suffix in ("", "_lo", "_hi"):
                row[f"{col}{suffix}"] = float(by[predictor][f"{metric}{suffix}"])
            key = (split, int(k), predictor, metric)
            for suffix, src in (("", "diff"), ("_lo", "diff_lo"), ("_hi", "diff_hi")):
                row[f"delta_{col}{suffix}"] = float(d[key][src]) if key in d else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=ablation_columns(references))


def most_damaging(table: pd.DataFrame, split: str = "ood") -> str | None:
    """The ablation (not ``none``) whose model accuracy drops most, averaged over the k
    values of ``split`` (the other split when the table has none of it); None when the
    table holds only ``none``."""
    rows = table[table["component"] != NONE]
    if rows.empty:
        return None
    if not (rows["split"] == split).any():
        split = "id" if split == "ood" else "ood"
    mean = rows[rows["split"] == split].groupby("component", sort=False)["delta_model_accuracy"].mean()
    return str(mean.idxmin())
