"""The paper's four phases, from a run's accuracies on the four evaluation sets (pure).

A set counts as *solved* when its accuracy at the last shot (the query after
n_examples - 1 in-context examples) reaches ``threshold`` (default 0.75; chance is 1/p).
Last-shot accuracy is used because early shots are ambiguous for every predictor.

    o.o.d. generalization   all four sets solved
    o.o.d. memorization     i.d.-train and o.o.d.-train solved, o.o.d.-test not
    i.d. generalization     i.d.-train and i.d.-test solved, o.o.d.-train not
    i.d. memorization       only i.d.-train solved (of the rules above)
    not learned             i.d.-train not solved

Each run is classified twice: at its last evaluation, and at the evaluation with the best
o.o.d.-test accuracy (the one ``best.pt`` holds). The two differ in the paper's transient
phase, where o.o.d. generalization appears and is then lost to memorization.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PHASES", "DEFAULT_THRESHOLD", "TABLE_COLUMNS", "classify", "read_point", "phase_table",
           "plot_phase_diagram"]

DEFAULT_THRESHOLD = 0.75
PHASES = ("not learned", "i.d. memorization", "i.d. generalization", "o.o.d. memorization", "o.o.d. generalization")
SETS = ("id_train", "id_test", "ood_train", "ood_test")
TABLE_COLUMNS = ("n_tasks", "alpha", "step", *(f"{s}_last" for s in SETS), "phase",
                 "best_step", *(f"{s}_last_at_best" for s in SETS), "phase_at_best")
"""The columns a phase table is shown with (printed by ``compare sweep``, written to phases.md)."""


def classify(acc: dict[str, float], threshold: float = DEFAULT_THRESHOLD) -> str:
    """Phase name from last-shot accuracies {id_train, id_test, ood_train, ood_test}."""
    solved = {name: acc.get(name, 0.0) >= threshold for name in SETS}
    if not solved["id_train"]:
        return "not learned"
    if solved["ood_train"] and solved["ood_test"] and solved["id_test"]:
        return "o.o.d. generalization"
    if solved["ood_train"]:
        return "o.o.d. memorization"
    if solved["id_test"]:
        return "i.d. generalization"
    return "i.d. memorization"


def read_point(run_dir: str | Path) -> dict[str, Any] | None:
    """Final and best accuracies of one run folder (None when it has no evaluation yet).

    ``n_tasks`` is read from the run's checkpoint (it counts random extra tasks too).
    """
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return None
    history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not history:
        return None
    last = history[-1]
    evaluated = [h for h in history if "ood_test" in h]
    best = max(evaluated, key=lambda h: h["ood_test"]["acc"]) if evaluated else last  # best.pt's rule
    n_tasks = None
    for name in ("final.pt", "last.pt", "best.pt"):
        if (run_dir / name).is_file():
            from model.checkpoint import load_checkpoint

            n_tasks = len(load_checkpoint(run_dir / name).setting.pretrain_tasks)
            break
    return {
        "n_tasks": n_tasks,
        "run": run_dir.name,
        "step": last["step"],
        "finished": (run_dir / "final.pt").is_file(),
        "wall_clock_seconds": last.get("wall_clock_seconds"),
        **{f"{s}_last": last[s]["acc_last"] for s in SETS if s in last},
        **{f"{s}_acc": last[s]["acc"] for s in SETS if s in last},
        "ood_test_last_best": max((h["ood_test"]["acc_last"] for h in evaluated), default=None),
        "best_step": best["step"],
        **{f"{s}_last_at_best": best[s]["acc_last"] for s in SETS if s in best},
    }


def phase_table(points: Iterable[dict[str, Any]], threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per run with its parameters, accuracies and phase, sorted by (alpha, n_tasks).

    ``phase`` is the phase at the run's last evaluation; ``phase_at_best`` (when the point
    carries ``*_last_at_best`` accuracies) the phase at its best o.o.d.-test evaluation.
    """
    def phase(point: dict[str, Any], suffix: str) -> str:
        return classify({s: point.get(f"{s}{suffix}", 0.0) for s in SETS}, threshold)

    rows = []
    for point in points:
        row = {**point, "phase": phase(point, "_last")}
        if any(f"{s}_last_at_best" in point for s in SETS):
            row["phase_at_best"] = phase(point, "_last_at_best")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    sort = [c for c in ("alpha", "n_tasks") if c in table]
    return table.sort_values(sort).reset_index(drop=True) if sort else table


_PHASE_COLORS = {  # Okabe-Ito
    "not learned": "#BBBBBB",
    "i.d. memorization": "#56B4E9",
    "i.d. generalization": "#009E73",
    "o.o.d. memorization": "#E69F00",
    "o.o.d. generalization": "#D55E00",
}


def plot_phase_diagram(table: pd.DataFrame, ax: Axes | None = None, title: str | None = None,
                       at_best: bool = False) -> Axes:
    """Phase of each (n_tasks, alpha) point, with its last-shot o.o.d.-test accuracy written in.

    ``at_best`` draws the phases at each run's best o.o.d.-test evaluation instead of its last.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    tasks = sorted(table["n_tasks"].unique())
    alphas = sorted(table["alpha"].unique())
    phase_col, ood_col = ("phase_at_best", "ood_test_last_at_best") if at_best else ("phase", "ood_test_last")
    for _, row in table.iterrows():
        x, y = tasks.index(row["n_tasks"]), alphas.index(row["alpha"])
        ax.add_patch(plt.Rectangle((x - 0.45, y - 0.45), 0.9, 0.9, color=_PHASE_COLORS[row[phase_col]],
                                   alpha=1.0 if row.get("finished", True) else 0.45))
        ax.text(x, y, f"{row.get(ood_col, float('nan')):.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(tasks)), [str(t) for t in tasks])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlim(-0.6, len(tasks) - 0.4)
    ax.set_ylim(-0.6, len(alphas) - 0.4)
    ax.set_xlabel("pre-training tasks n_i.d.")
    ax.set_ylabel("train-input fraction α")
    present = [ph for ph in PHASES if ph in set(table[phase_col])]
    ax.legend(handles=[Patch(color=_PHASE_COLORS[ph], label=ph) for ph in present],
              loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
