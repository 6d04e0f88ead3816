"""Agreement over training: the engine's summaries of every snapshot of a run, and when each
algorithm's agreement crosses a threshold. Pure tables and one plot function; files are
written by ``compare.cmd_trajectory``.

The table has one row per (step, split, k, predictor), with the summary columns of
``compare.summary`` (``accuracy``, ``coverage``, ``agreement``, ``model_acc_in``,
``model_acc_out``, each with ``_lo``/``_hi``): the same numbers ``compare run`` would give
for that snapshot.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["crossings", "plot_trajectory", "THRESHOLDS", "TRAJECTORY_PREDICTORS"]

THRESHOLDS = (0.5, 0.9)
#: solvers drawn against training step (the Bayes predictors and majority variants stay in the table)
TRAJECTORY_PREDICTORS = ("ratio_matching", "modular_regression", "bayes_memorized")


def crossings(table: pd.DataFrame, thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """First snapshot step at which each (split, k, predictor)'s agreement — the model's
    accuracy for the model itself — reaches each threshold; NaN if it never does.

    Columns: split, k, predictor, metric, threshold, step.
    """
    rows = []
    for (split, k, predictor), g in table.sort_values("step").groupby(["split", "k", "predictor"], observed=True):
        metric = "accuracy" if predictor == "model" else "agreement"
        values = g[metric].to_numpy(float)
        steps = g["step"].to_numpy()
        for t in thresholds:
            hit = np.flatnonzero(values >= t)
            rows.append({"split": split, "k": int(k), "predictor": predictor, "metric": metric, "threshold": t,
                         "step": float(steps[hit[0]]) if len(hit) else np.nan})
    return pd.DataFrame(rows)


def plot_trajectory(table: pd.DataFrame, history: list[dict], k: int, axes, subject: str = "model",
                    predictors: Sequence[str] = TRAJECTORY_PREDICTORS):
    """Against training step (log scale): for i.d. and o.o.d. (``axes[0]``, ``axes[1]``) the
    model's accuracy, its agreement with each solver, and its accuracy inside and outside
    Ratio Matching's coverage, at shot ``k``, with 95 % intervals; dotted lines where the
    agreement with Ratio Matching and Modular Regression first reaches 0.5 and 0.9.
    ``axes[2]``: the four-set accuracies of the run's own evaluations (``metrics.jsonl``)."""
    colours = {"model": "black", "ratio_matching": "#0072B2", "modular_regression": "#D55E00",
               "bayes_memorized": "#009E73", "rm_in": "#56B4E9", "rm_out": "#E69F00"}
    cross = crossings(table)
    for ax, split in zip(axes[:2], ("id", "ood")):
        sub = table[(table["split"] == split) & (table["k"] == k)]
        if sub.empty:
            ax.set_visible(False)
            continue

        def line(predictor: str, metric: str, label: str, colour: str, style: str = "-") -> None:
            g = sub[sub["predictor"] == predictor].sort_values("step")
            if g.empty or g[metric].isna().all():
                return
            ax.plot(g["step"], g[metric], style, color=colour, label=label, marker=".", ms=3, lw=1.2)
            if f"{metric}_lo" in g:
                ax.fill_between(g["step"], g[f"{metric}_lo"], g[f"{metric}_hi"], color=colour, alpha=0.15, lw=0)

        line(subject, "accuracy", "model accuracy", colours["model"])
        for pred in predictors:
            line(pred, "agreement", f"agrees with {pred.replace('_', ' ')}", colours.get(pred, "grey"))
        line("ratio_matching", "model_acc_in", "accuracy inside RM coverage", colours["rm_in"], "--")
        line("ratio_matching", "model_acc_out", "accuracy outside RM coverage", colours["rm_out"], "--")
        for pred in ("ratio_matching", "modular_regression"):
            c = cross[(cross["split"] == split) & (cross["k"] == k) & (cross["predictor"] == pred)]
            for r in c.dropna(subset=["step"]).itertuples():
                ax.axvline(r.step, color=colours[pred], ls=":" if r.threshold < 0.9 else "-.", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"k = {k}")
        ax.set_title({"id": "i.d. tasks", "ood": "o.o.d. tasks"}[split], fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[:2]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
            break
    ax = axes[2]
    for name, colour in (("id_train", "#0072B2"), ("id_test", "#56B4E9"), ("ood_train", "#D55E00"),
                         ("ood_test", "#E69F00")):
        pts = [(h["step"], h[name]["acc"]) for h in history if name in h]
        if pts:
            ax.plot(*zip(*pts), color=colour, label=name.replace("_", "-"), lw=1)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy, all shots")
    ax.set_title("the run's four evaluation sets (metrics.jsonl)", fontsize=9)
    ax.legend(fontsize=6, loc="upper left")
    ax.grid(alpha=0.3)
    return axes
