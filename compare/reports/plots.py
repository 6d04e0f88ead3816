"""Plot functions for comparison reports.

Every function takes data (arrays or tables from :mod:`compare.engine.summary`) and optional
axes, draws, and returns the axes; none saves or shows a figure (that is
:mod:`compare.storage.files`'s job). Maps are indexed ``[x, y]`` and drawn with x horizontal,
y vertical and the origin at the lower left. Categorical colours come from the Okabe-Ito
palette (safe for the common colour-vision deficiencies); continuous maps use viridis.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

__all__ = [
    "OKABE_ITO",
    "predictor_color",
    "plot_map",
    "plot_task_grid",
    "plot_agreement_heatmaps",
    "plot_curve",
    "plot_curves",
    "plot_attribution",
    "plot_ablation_heatmap",
    "plot_noise_levels",
    "plot_noise_positions",
    "pretty",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#999999",
}
_FIXED = {
    "model": OKABE_ITO["black"],
    "ratio_matching": OKABE_ITO["orange"],
    "modular_regression": OKABE_ITO["blue"],
    "bayes_memorized": OKABE_ITO["green"],
    "bayes_uniform": OKABE_ITO["purple"],
    "ratio_matching_majority": OKABE_ITO["sky"],
    "modular_regression_majority": OKABE_ITO["vermillion"],
}
# line style and marker per predictor, so overlapping curves stay distinguishable
_STYLES = {
    "model": ("-", "o"),
    "ratio_matching": ("-", "s"),
    "modular_regression": ("--", "^"),
    "bayes_memorized": ("-.", "D"),
    "bayes_uniform": (":", "v"),
    "ratio_matching_majority": ("--", "P"),
    "modular_regression_majority": (":", "X"),
}
_CYCLE = [OKABE_ITO[c] for c in ("orange", "blue", "green", "purple", "sky", "vermillion", "yellow", "grey")]
_PRETTY = {
    "model": "model",
    "ratio_matching": "Ratio Matching",
    "modular_regression": "Modular Regression",
    "bayes_memorized": "Bayes (memorized tasks)",
    "bayes_uniform": "Bayes (uniform prior)",
    "ratio_matching_majority": "Ratio Matching (majority)",
    "modular_regression_majority": "Modular Regression (majority)",
    "none": "no algorithm",
    "abstained": "no answer",
}

# model right: white / dark; answered: none / right / wrong; difference: blue / white / red
_CORRECT_CMAP = ListedColormap(["#FFFFFF", "#3A3A3A"])
_ANSWER_CMAP = ListedColormap(["#FFFFFF", "#3A3A3A", OKABE_ITO["orange"]])
_DIFF_CMAP = ListedColormap([OKABE_ITO["blue"], "#FFFFFF", OKABE_ITO["vermillion"]])


def pretty(name: str) -> str:
    """Human-readable predictor name."""
    return _PRETTY.get(name, name.replace("_", " "))


def predictor_color(name: str, index: int = 0) -> str:
    """A fixed Okabe-Ito colour per known predictor, else from the cycle by ``index``."""
    return _FIXED.get(name, _CYCLE[index % len(_CYCLE)])


def _map_grid(n_rows: int, n_cols: int, axes=None, *, panel: float = 1.3, right: float = 0.2):
    """Axes for a grid of square maps, laid out by hand (in inches: row labels on the
    left, two-line titles above each panel, ``right`` inches spare for a colour bar);
    much faster to save than a constrained layout with dozens of panels."""
    if axes is not None:
        return np.asarray(axes).reshape(n_rows, n_cols)
    left, top, bottom, title, gap = 0.75, 0.3, 0.1, 0.36, 0.12
    width = left + n_cols * panel + (n_cols - 1) * gap + right
    height = top + n_rows * (panel + title) + bottom
    _, axes = plt.subplots(n_rows, n_cols, figsize=(width, height), squeeze=False)
    axes[0, 0].figure.subplots_adjust(
        left=left / width,
        right=(width - right) / width,
        top=1 - (top + title) / height,
        bottom=bottom / height,
        wspace=gap / panel,
        hspace=title / panel,
    )
    return axes


def _axes_grid(n_rows: int, n_cols: int, size: float = 1.35, axes=None):
    if axes is not None:
        return np.asarray(axes).reshape(n_rows, n_cols)
    _, axes = plt.subplots(
        n_rows, n_cols, figsize=(size * n_cols + 1.6, size * n_rows + 0.9), squeeze=False, layout="constrained"
    )
    return axes


def plot_map(
    values: np.ndarray,
    ax=None,
    *,
    cmap=None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    examples: np.ndarray | None = None,
):
    """One p x p map ``values[x, y]``; optional example inputs (k, 2) marked with crosses."""
    values = np.asarray(values)
    p = values.shape[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(
        values.T,
        origin="lower",
        interpolation="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        extent=(-0.5, p - 0.5, -0.5, p - 0.5),
    )
    if examples is not None and len(examples):
        ex = np.asarray(examples)
        ax.scatter(ex[:, 0], ex[:, 1], marker="x", s=14, linewidths=1.0, color=OKABE_ITO["purple"], zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-0.5, p - 0.5)
    ax.set_ylim(-0.5, p - 0.5)
    if title:
        ax.set_title(title, fontsize=7, pad=2)
    return ax


def plot_task_grid(
    panels: dict,
    sequence: np.ndarray | None = None,
    axes=None,
    *,
    title: str | None = None,
):
    """The paper's k-shot grid figure for one task (data from :func:`compare.engine.breakdowns.task_panels`).

    Columns k; rows: where the model is right, then for each algorithm where it answers
    (dark: right, orange: wrong) and the difference (red: model right, algorithm not;
    blue: algorithm right, model not; white: they agree). ``sequence`` (k_max, 2) marks the
    in-context example inputs. Returns the (rows, k) array of axes.
    """
    ks = np.asarray(panels["ks"])
    algos = list(panels["answered"])
    n_rows, n_cols = 1 + 2 * len(algos), len(ks)
    axes = _map_grid(n_rows, n_cols, axes=axes)
    right = panels["model_right"]
    q = right.shape[1] * right.shape[2]
    for j, k in enumerate(ks):
        ex = None if sequence is None else np.asarray(sequence)[: int(k)]
        plot_map(right[j], axes[0, j], cmap=_CORRECT_CMAP, vmin=0, vmax=1, examples=ex,
                 title=f"k = {int(k)}\nright {100 * right[j].sum() / q:.1f}%")
        for i, algo in enumerate(algos):
            ans = panels["answered"][algo][j]
            diff = panels["difference"][algo][j]
            plot_map(ans, axes[1 + 2 * i, j], cmap=_ANSWER_CMAP, vmin=0, vmax=2, examples=ex,
                     title=f"answers {100 * (ans > 0).sum() / q:.1f}%")
            plot_map(diff, axes[2 + 2 * i, j], cmap=_DIFF_CMAP, vmin=-1, vmax=1, examples=ex,
                     title=f"red {100 * (diff > 0).sum() / q:.1f}% blue {100 * (diff < 0).sum() / q:.1f}%")
    axes[0, 0].set_ylabel("model right", fontsize=7)
    for i, algo in enumerate(algos):
        axes[1 + 2 * i, 0].set_ylabel(f"{pretty(algo)}\nanswers", fontsize=7)
        axes[2 + 2 * i, 0].set_ylabel(f"{pretty(algo)}\ndifference", fontsize=7)
    if title:
        axes[0, 0].figure.suptitle(title, fontsize=9, y=1 - 0.12 / axes[0, 0].figure.get_figheight())
    return axes


def plot_agreement_heatmaps(
    maps: pd.DataFrame,
    split: str,
    p: int,
    predictors: Sequence[str],
    axes=None,
    *,
    subject: str = "model",
    title: str | None = None,
):
    """Per cell and k, the share of tasks where the model agrees with each predictor.

    ``maps`` is :func:`compare.engine.breakdowns.agreement_maps`; rows are ``predictors`` (the
    subject's row shows its accuracy), columns the k values, one shared 0-1 colour scale.
    Returns the (rows, k) array of axes.
    """
    sub = maps[maps["split"] == split]
    ks = np.sort(sub["k"].unique())
    predictors = [pr for pr in predictors if (sub["predictor"] == pr).any()]
    own = axes is None
    axes = _map_grid(max(len(predictors), 1), max(len(ks), 1), axes=axes, right=1.0 if own else 0.2)
    im = None
    for i, pr in enumerate(predictors):
        rows = sub[sub["predictor"] == pr]
        for j, k in enumerate(ks):
            r = rows[rows["k"] == k]
            grid = np.full((p, p), np.nan)
            grid[r["x"].to_numpy(int), r["y"].to_numpy(int)] = r["share"].to_numpy()
            share = f"{100 * np.nanmean(grid):.0f}%"
            ax = plot_map(grid, axes[i, j], cmap="viridis", vmin=0, vmax=1,
                          title=f"k = {int(k)}: {share}" if i == 0 else share)
            im = ax.images[-1]
        label = f"{subject} right" if pr == subject else f"agrees with\n{pretty(pr)}"
        axes[i, 0].set_ylabel(label, fontsize=7)
    if im is not None:
        fig = axes[0, 0].figure
        if own:  # a slot in the right margin that _map_grid left free
            x1 = axes[0, -1].get_position().x1
            y0, y1 = axes[-1, 0].get_position().y0, axes[0, 0].get_position().y1
            w = fig.get_figwidth()
            cax = fig.add_axes((x1 + 0.25 / w, y0 + 0.2 * (y1 - y0), 0.15 / w, 0.6 * (y1 - y0)))
            cb = fig.colorbar(im, cax=cax, label="share of tasks")
        else:
            cb = fig.colorbar(im, ax=axes, shrink=0.6, label="share of tasks")
        cb.ax.tick_params(labelsize=7)
    if title:
        axes[0, 0].figure.suptitle(title, fontsize=9, y=1 - 0.12 / axes[0, 0].figure.get_figheight())
    return axes


def plot_curve(summary: pd.DataFrame, metric: str, split: str, predictors: Sequence[str], ax=None, *,
               ylabel: str | None = None):
    """``metric`` against k for each predictor with its interval (shaded), for one split."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    sub = summary[summary["split"] == split]
    for i, pr in enumerate(predictors):
        r = sub[sub["predictor"] == pr].sort_values("k")
        if r.empty or r[metric].isna().all():
            continue
        color = predictor_color(pr, i)
        style = _STYLES.get(pr, ("-", "o"))
        ax.plot(r["k"], r[metric], linestyle=style[0], marker=style[1], ms=3.5, lw=1.4, color=color, label=pretty(pr))
        if f"{metric}_lo" in r:
            ax.fill_between(r["k"].to_numpy(float), r[f"{metric}_lo"].to_numpy(float), r[f"{metric}_hi"].to_numpy(float),
                            color=color, alpha=0.2, lw=0)
    ax.set_xlabel("k (in-context examples)")
    ax.set_ylabel(ylabel or metric)
    ks = np.sort(sub["k"].unique())
    if len(ks):
        ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    return ax


def plot_curves(summary: pd.DataFrame, predictors: Sequence[str], axes=None, *, subject: str = "model"):
    """Coverage, agreement and model accuracy (overall and inside each predictor's
    coverage) against k; one row per split present. Returns the (splits, 3) axes."""
    splits = [s for s in ("id", "ood") if (summary["split"] == s).any()]
    axes = _axes_grid(max(len(splits), 1), 3, size=3.0, axes=axes)
    refs = [pr for pr in predictors if pr != subject]
    for i, split in enumerate(splits):
        name = "i.d." if split == "id" else "o.o.d."
        plot_curve(summary, "coverage", split, refs, axes[i, 0], ylabel=f"{name}: coverage")
        plot_curve(summary, "agreement", split, refs, axes[i, 1], ylabel=f"{name}: agreement with {subject}")
        ax = plot_curve(summary, "model_acc_in", split, refs, axes[i, 2], ylabel=f"{name}: {subject} accuracy")
        plot_curve(summary, "accuracy", split, [subject], ax, ylabel=f"{name}: {subject} accuracy")
        for ax in axes[i]:
            ax.set_ylim(-0.03, 1.03)
    if splits:
        axes[0, 2].set_title("overall (black) and inside each coverage", fontsize=8)
        handles, labels = [], []
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        axes[0, 0].figure.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=7)
    return axes


def plot_attribution(attrib: pd.DataFrame, split: str, outcome: str = "all", ax=None, *, title: str | None = None):
    """Stacked bars over k: the share of model answers attributed to each reference (first
    agreeing in order), to no algorithm, or not given."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    sub = attrib[(attrib["split"] == split) & (attrib["outcome"] == outcome)]
    ks = np.sort(sub["k"].unique())
    cats = list(dict.fromkeys(sub["category"]))
    bottom = np.zeros(len(ks))
    for i, cat in enumerate(cats):
        share = sub[sub["category"] == cat].set_index("k").reindex(ks)["share"].fillna(0).to_numpy()
        if not share.any():
            continue
        color = {"none": "#DDDDDD", "abstained": "#FFFFFF"}.get(cat, predictor_color(cat, i))
        ax.bar(ks, share, bottom=bottom, color=color, edgecolor="#555555", linewidth=0.4, label=pretty(cat))
        bottom += share
    ax.set_xticks(ks)
    ax.set_ylim(0, 1)
    ax.set_xlabel("k (in-context examples)")
    ax.set_ylabel("share of model answers")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def plot_sequences(sequences: pd.DataFrame, summary: pd.DataFrame, axes=None, *, subject: str = "model"):
    """The subject's accuracy against k for each example sequence (thin lines; sequence 0
    dashed), over the pooled accuracy with its interval; one panel per split present.
    Returns the (1, splits) axes."""
    splits = [s for s in ("id", "ood") if (sequences["split"] == s).any()]
    axes = _axes_grid(1, max(len(splits), 1), size=3.2, axes=axes)
    for ax, split in zip(axes[0], splits, strict=False):  # one empty panel when no split
        sub = sequences[sequences["split"] == split]
        for seq, r in sub.groupby("sequence", sort=True):
            r = r.sort_values("k")
            ax.plot(r["k"], r["accuracy"], lw=0.8, alpha=0.55, color="#4477AA", marker=".", ms=3,
                    linestyle="--" if seq == 0 else "-", label="sequence 0" if seq == 0 else None)
        plot_curve(summary, "accuracy", split, [subject], ax,
                   ylabel=f"{'i.d.' if split == 'id' else 'o.o.d.'}: {subject} accuracy")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{sub['sequence'].nunique()} example sequences (thin) and pooled (black)", fontsize=8)
        ax.legend(fontsize=7, loc="lower right")
    return axes


def plot_task_accuracy(tasks: pd.DataFrame, p: int, axes=None, *, k: int | None = None, subject: str = "model"):
    """The subject's accuracy per task (a right, b up) at one k (default: the largest), one
    panel per split; tasks of the other split are blank. Returns the (1, splits) axes."""
    k = int(tasks["k"].max()) if k is None else int(k)
    top = tasks[tasks["k"] == k]
    splits = [s for s in ("id", "ood") if (top["split"] == s).any()]
    axes = _map_grid(1, max(len(splits), 1), axes, panel=2.4, right=0.8)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#EEEEEE")
    for ax, split in zip(axes[0], splits, strict=False):  # one empty panel when no split
        sub = top[top["split"] == split]
        acc = np.full((p, p), np.nan)
        acc[sub["task_a"].to_numpy(), sub["task_b"].to_numpy()] = sub["accuracy"].to_numpy()
        name = "i.d." if split == "id" else "o.o.d."
        plot_map(acc, ax, cmap=cmap, vmin=0.0, vmax=1.0,
                 title=f"{name} tasks: {subject} accuracy at k = {k}\n(task a right, b up; {len(sub)} tasks)")
    if splits:
        fig = axes[0, 0].figure
        box = axes[0, -1].get_position()
        cax = fig.add_axes((box.x1 + 0.02, box.y0, 0.02, box.height))
        cb = fig.colorbar(axes[0, -1].images[-1], cax=cax, label=f"{subject} accuracy")
        cb.ax.tick_params(labelsize=7)
    return axes


def plot_ablation_heatmap(
    table: pd.DataFrame,
    column: str,
    split: str,
    ax=None,
    *,
    vmax: float | None = None,
    title: str | None = None,
    annotate: bool = True,
):
    """Components (rows, in the table's order) x k (columns) of one column of the ablation
    table (:func:`compare.engine.ablation_table.ablation_rows`), e.g. ``delta_ratio_matching_agreement``,
    for one split. Diverging scale centred at 0 (red: the rate drops when the component is
    removed, blue: it rises), symmetric to ``vmax`` (default: the largest magnitude shown);
    cells annotated with the value in percentage points. Returns the axes; its image
    (``ax.images[-1]``) serves a colour bar."""
    sub = table[table["split"] == split]
    comps = list(dict.fromkeys(sub["component"]))
    ks = np.sort(sub["k"].unique())
    pivot = sub.pivot_table(index="component", columns="k", values=column, aggfunc="first", dropna=False)
    grid = pivot.reindex(index=comps, columns=ks).to_numpy(dtype=float)  # (components, k)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(ks) + 1.6, 0.22 * len(comps) + 1.0))
    finite = np.abs(grid[np.isfinite(grid)])
    vmax = float(vmax if vmax is not None else (finite.max() if finite.size and finite.max() > 0 else 1.0))
    ax.imshow(grid, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(ks)), [str(int(k)) for k in ks], fontsize=7)
    ax.set_yticks(range(len(comps)), comps, fontsize=6)
    ax.set_xlabel("k (in-context examples)", fontsize=7)
    if annotate and len(comps) <= 60:
        for i in range(len(comps)):
            for j in range(len(ks)):
                v = grid[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=5,
                            color="white" if abs(v) > 0.6 * vmax else "black")
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def plot_noise_levels(levels: pd.DataFrame, predictors: Sequence[str], axes=None):
    """Accuracy at the last shot against the number of wrong in-context labels, one panel per
    split; ``levels`` as :func:`compare.engine.noise.noise_level_sweep` returns it. Returns the axes."""
    splits = [s for s in ("id", "ood") if (levels["split"] == s).any()]
    axes = _axes_grid(1, max(len(splits), 1), size=3.4, axes=axes)
    for ax, split in zip(axes[0], splits, strict=False):  # one empty panel when no split
        sub = levels[levels["split"] == split]
        for name in predictors:
            r = sub[sub["predictor"] == name].sort_values("n_wrong")
            if r.empty:
                continue
            ax.plot(r["n_wrong"], r["accuracy"], color=predictor_color(name), marker="o", ms=3, lw=1.2,
                    label=pretty(name))
        ax.set_xlabel("wrong labels in the prompt")
        ax.set_ylabel(f"{'i.d.' if split == 'id' else 'o.o.d.'}: accuracy")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xticks(sorted(sub["n_wrong"].unique()))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return axes


def plot_noise_positions(positions: pd.DataFrame, subject: str = "model", axes=None):
    """The subject's accuracy per (corrupted shot j, query shot k), for i.d./o.o.d. tasks ×
    train/test inputs; ``positions`` as :func:`compare.engine.noise.noise_position_sweep` returns it."""
    sub = positions[positions["predictor"] == subject]
    cells = [(s, i) for s in ("id", "ood") for i in ("train", "test")
             if ((sub["split"] == s) & (sub["input_split"] == i)).any()]
    axes = _axes_grid(1, max(len(cells), 1), size=3.0, axes=axes)
    js, ks = sorted(sub["position"].unique()), sorted(sub["k"].unique())
    for ax, (split, inputs) in zip(axes[0], cells, strict=False):  # one empty panel when nothing to draw
        r = sub[(sub["split"] == split) & (sub["input_split"] == inputs)]
        grid = r.pivot_table(index="position", columns="k", values="accuracy").reindex(index=js, columns=ks)
        im = ax.imshow(grid.to_numpy(float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(ks)), ks, fontsize=7)
        ax.set_yticks(range(len(js)), js, fontsize=7)
        ax.set_xlabel("query shot k")
        ax.set_ylabel("wrong label at shot j")
        ax.set_title(f"{'i.d.' if split == 'id' else 'o.o.d.'} tasks, {inputs} inputs", fontsize=8)
    if cells:
        axes[0, -1].figure.colorbar(im, ax=axes[0, -1], shrink=0.8, label=f"{subject} accuracy")
    return axes
