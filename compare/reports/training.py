"""Reports of phase-diagram sweeps and of training runs (``compare sweep``, ``compare runs``)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from algos.tempfiles import atomic_write

from compare.storage.files import atomic_write_text

__all__ = ["write_phase_report", "write_training_report"]

def write_phase_report(folder: str | os.PathLike, table: pd.DataFrame, threshold: float) -> None:
    """phases.csv, phases.png and phases.md for a sweep folder (each replaced atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.engine.phases import TABLE_COLUMNS, plot_phase_diagram

    folder = Path(folder)
    atomic_write_text(folder / "phases.csv", table.to_csv(index=False, float_format="%.4f"))
    both = "phase_at_best" in table
    fig, axes = plt.subplots(2 if both else 1, 1, figsize=(7, 6.6 if both else 3.6), squeeze=False)
    plot_phase_diagram(table, axes[0, 0], title=f"last evaluation: phase by last-shot accuracy >= {threshold:g} "
                       "(number: o.o.d.-test)")
    if both:
        plot_phase_diagram(table, axes[1, 0], at_best=True,
                           title="best o.o.d.-test evaluation (best.pt, early stopping)")
    fig.tight_layout()
    atomic_write(folder / "phases.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    shown = table[[c for c in TABLE_COLUMNS if c in table]]
    lines = ["# Phase diagram", "", f"A set is solved when its last-shot accuracy is at least {threshold:g}. "
             "`phase` is read at the run's last evaluation, `phase_at_best` at its best o.o.d.-test "
             "evaluation (`best_step`, the checkpoint `best.pt` keeps).", "",
             "| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for _, row in shown.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    lines += ["", "![phase diagram](phases.png)", ""]
    atomic_write_text(folder / "phases.md", "\n".join(lines))


# ---------------------------------------------------------------------- training runs
def write_training_report(folder: str | os.PathLike, runs: list[dict]) -> list[str]:
    """runs.csv, runs.md, ood_test_over_steps_*.png, plateaus.png and per-run curves for a set of
    runs, written into ``folder`` (``compare runs`` gives it a fresh temporary folder through
    :func:`compare.storage.files.publish_report`); returns the figures' names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.reports.training_runs import (PLATEAU_FRACTION, plot_ood_over_steps, plot_per_shot,
                                                plot_plateaus, runs_table)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = runs_table(runs)
    atomic_write_text(folder / "runs.csv", table.to_csv(index=False))

    def save(fig, name: str) -> str:
        fig.tight_layout()
        atomic_write(folder / name, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
        plt.close(fig)
        return name

    figures = []
    for metric in ("acc", "acc_last"):
        fig, ax = plt.subplots(figsize=(7, 3.8))
        plot_ood_over_steps(runs, ax, metric=metric)
        figures.append(save(fig, f"ood_test_over_steps_{metric}.png"))
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    plot_plateaus(runs, ax)
    figures.append(save(fig, "plateaus.png"))
    for run in runs:
        from model.curves import plot_learning_curves

        fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
        plot_learning_curves(run["history"], axes[:2])
        plot_per_shot(run, axes[2])
        axes[0].set_title(run["name"], fontsize=9)
        figures.append(save(fig, f"curves_{run['name']}.png"))
    cols = list(table.columns)
    lines = ["# Training runs", "", "Accuracies: `_acc` over all shots, `_last` at the last shot, at the run's last "
             "evaluation; `best_ood_test_*` over the whole run. `plateau_exit_step`: the first evaluation "
             f"whose training loss is {PLATEAU_FRACTION:.0%} below chance (`chance_loss` = ln p); empty while on "
             "the plateau.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    lines += [""] + [f"![{f}]({f})" for f in figures] + [""]
    atomic_write_text(folder / "runs.md", "\n".join(lines))
    return figures

