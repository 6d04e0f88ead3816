"""The report of ``compare trajectory``: one figure per k against training step, and the pages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pandas as pd

from compare.engine.crossings import TRAJECTORY_PREDICTORS, crossings
from compare.storage.files import write_pages

__all__ = ["plot_trajectory", "write_trajectory_report"]


def write_trajectory_report(
    folder: Path, table: pd.DataFrame, cross: pd.DataFrame, history: list[dict[str, Any]], manifest: dict[str, Any]
) -> list[str]:
    """``trajectory.csv``, ``crossings.csv``, ``trajectory_k<k>.png`` per k and the pages into
    ``folder``; returns the figure names."""
    ks = [int(k) for k in manifest["ks"]]
    table.to_csv(folder / "trajectory.csv", index=False, float_format="%.6g")
    cross.to_csv(folder / "crossings.csv", index=False)
    figures = _write_figures(folder, table, history, ks)
    _write_pages(folder, manifest, cross, figures, ks)
    return [name for name, _ in figures]


def plot_trajectory(
    table: pd.DataFrame,
    history: list[dict],
    k: int,
    axes,
    subject: str = "model",
    predictors: Sequence[str] = TRAJECTORY_PREDICTORS,
):
    """Against training step (log scale): for i.d. and o.o.d. (``axes[0]``, ``axes[1]``) the
    model's accuracy, its agreement with each solver, and its accuracy inside and outside
    Ratio Matching's coverage, at shot ``k``, with 95 % intervals; dotted lines where the
    agreement with Ratio Matching and Modular Regression first reaches 0.5 and 0.9.
    ``axes[2]``: the four-set accuracies of the run's own evaluations (``metrics.jsonl``)."""
    colours = {
        "model": "black",
        "ratio_matching": "#0072B2",
        "modular_regression": "#D55E00",
        "bayes_memorized": "#009E73",
        "rm_in": "#56B4E9",
        "rm_out": "#E69F00",
    }
    cross = crossings(table)
    for ax, split in zip(axes[:2], ("id", "ood"), strict=True):
        sub = table[(table["split"] == split) & (table["k"] == k)]
        if sub.empty:
            ax.set_visible(False)
            continue
        _line(ax, sub, subject, "accuracy", "model accuracy", colours["model"])
        for pred in predictors:
            _line(ax, sub, pred, "agreement", f"agrees with {pred.replace('_', ' ')}", colours.get(pred, "grey"))
        _line(ax, sub, "ratio_matching", "model_acc_in", "accuracy inside RM coverage", colours["rm_in"], "--")
        _line(ax, sub, "ratio_matching", "model_acc_out", "accuracy outside RM coverage", colours["rm_out"], "--")
        for pred in ("ratio_matching", "modular_regression"):
            c = cross[(cross["split"] == split) & (cross["k"] == k) & (cross["predictor"] == pred)]
            c = c.dropna(subset=["step"])
            for step, threshold in zip(c["step"], c["threshold"], strict=True):
                ax.axvline(step, color=colours[pred], ls=":" if threshold < 0.9 else "-.", lw=0.8)
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
    for name, colour in (
        ("id_train", "#0072B2"),
        ("id_test", "#56B4E9"),
        ("ood_train", "#D55E00"),
        ("ood_test", "#E69F00"),
    ):
        pts = [(h["step"], h[name]["acc"]) for h in history if name in h]
        if pts:
            ax.plot(*zip(*pts, strict=True), color=colour, label=name.replace("_", "-"), lw=1)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy, all shots")
    ax.set_title("the run's four evaluation sets (metrics.jsonl)", fontsize=9)
    ax.legend(fontsize=6, loc="upper left")
    ax.grid(alpha=0.3)
    return axes


def _line(ax: Any, sub: pd.DataFrame, predictor: str, metric: str, label: str, colour: str, style: str = "-") -> None:
    """One predictor's ``metric`` against step on ``ax``, with its interval band if ``sub`` has one."""
    g = sub[sub["predictor"] == predictor].sort_values("step")
    if g.empty or g[metric].isna().all():
        return
    ax.plot(g["step"], g[metric], style, color=colour, label=label, marker=".", ms=3, lw=1.2)
    if f"{metric}_lo" in g:
        ax.fill_between(
            g["step"].to_numpy(float),
            g[f"{metric}_lo"].to_numpy(float),
            g[f"{metric}_hi"].to_numpy(float),
            color=colour,
            alpha=0.15,
            lw=0,
        )


def _write_figures(folder: Path, table: pd.DataFrame, history: list[dict], ks) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for k in ks:
        fig, axes = plt.subplots(3, 1, figsize=(7.5, 9), sharex=True, layout="constrained")
        plot_trajectory(table, history, k, axes)
        name = f"trajectory_k{k}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append(
            (
                name,
                f"k = {k}: model accuracy and agreement with each algorithm against training step "
                "(dotted: agreement with Ratio Matching / Modular Regression first reaches 0.5; "
                "dash-dot: 0.9)",
            )
        )
    return figures


def _write_pages(folder: Path, manifest: dict, cross: pd.DataFrame, figures, ks) -> None:
    def step(v) -> str:
        return "never" if pd.isna(v) else f"{int(v):,}"

    rows = []
    for key, g in cross.groupby(["split", "k", "predictor"], observed=True, sort=True):
        split, k, predictor = cast("tuple[str, int, str]", key)
        by = dict(zip(g["threshold"], g["step"], strict=True))
        rows.append([split, str(k), predictor, step(by.get(0.5)), step(by.get(0.9))])
    about = [
        ("run", manifest["run_dir"]),
        (
            "snapshots",
            f"{len(manifest['snapshots'])}, steps "
            f"{manifest['snapshots'][0]['step']:,}..{manifest['snapshots'][-1]['step']:,}",
        ),
        ("k", ", ".join(map(str, ks))),
        ("tasks", f"{manifest['n_tasks']} ({manifest['tasks_spec']})"),
        ("example sequences", f"{len(manifest['sequences'])} ({manifest['sequences_note']})"),
    ]
    sections = [
        (
            "When each algorithm's agreement first reaches 0.5 and 0.9",
            ["split", "k", "predictor", "step ≥ 0.5", "step ≥ 0.9"],
            rows,
            "For the model itself: its accuracy. Every number per snapshot: [trajectory.csv](trajectory.csv).",
        )
    ]
    write_pages(folder, f"Agreement over training: {Path(manifest['run_dir']).name}", about, sections, figures)
