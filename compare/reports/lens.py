"""The report of ``compare lens``: agreement with each algorithm against layer, the DLA heatmaps, pages.

Plot functions take data and an optional ``ax`` and return the axes; :func:`write_lens_report`
is the one place that saves them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from compare.reports.run import _about, _pct, _split_name
from compare.storage.files import write_pages

__all__ = ["write_lens_report", "plot_lens_curves", "plot_dla_heatmap", "LENS_PANELS", "DLA_ALGORITHMS"]

#: Panels of the lens figure: (predictor, what is plotted, label).
LENS_PANELS = (
    ("model", "accuracy", "lens accuracy"),
    ("ratio_matching", "agreement", "agrees with Ratio Matching"),
    ("modular_regression", "agreement", "agrees with Modular Regression"),
    ("bayes_memorized", "agreement", "agrees with Bayes (memorized)"),
)
#: Algorithms whose answers the DLA figure attributes.
DLA_ALGORITHMS = ("model", "ratio_matching", "modular_regression")


def _layer_label(layer: int) -> str:
    return "embed" if layer == -1 else str(layer)


def plot_lens_curves(table: pd.DataFrame, split: str, predictor: str, column: str, ax=None, *, title: str = ""):
    """One line per k: ``column`` of ``predictor``'s rows against layer, for one split."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = table[(table["split"] == split) & (table["predictor"] == predictor)]
    ks = sorted(sel["k"].unique())
    cmap = plt.get_cmap("viridis")
    layers = sorted(sel["layer"].unique())
    for i, k in enumerate(ks):
        row = sel[sel["k"] == k].set_index("layer").reindex(layers)
        ax.plot(range(len(layers)), 100 * row[column].to_numpy(float), marker="o", ms=3, lw=1.2,
                color=cmap(i / max(1, len(ks) - 1)), label=f"k = {k}")
    ax.set_xticks(range(len(layers)), [_layer_label(v) for v in layers])
    ax.set_ylim(-2, 102)
    ax.set_xlabel("layer (residual stream after block)")
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=8)
    return ax


def plot_dla_heatmap(dla: pd.DataFrame, split: str, k: int, algorithm: str, ax=None, *, vmax: float | None = None,
                     title: str = ""):
    """Layers (rows) x heads and the MLP (columns): mean ``dla_vs_mean`` to ``algorithm``'s answer."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = dla[(dla["split"] == split) & (dla["k"] == k) & (dla["algorithm"] == algorithm) & dla["layer"].notna()]
    layers = sorted(int(v) for v in sel["layer"].unique())
    heads = sorted(int(v) for v in sel["head"].dropna().unique())
    grid = np.full((len(layers), len(heads) + 1), np.nan)
    head_of = sel["head"].astype("float64").to_numpy()  # NaN for the MLP
    for layer, head, value in zip(sel["layer"].astype(int), head_of, sel["dla_vs_mean"].astype(float), strict=True):
        col = len(heads) if np.isnan(head) else heads.index(int(head))
        grid[layers.index(layer), col] = value
    vmax = vmax or (float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0) or 1.0
    ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(heads) + 1), [f"H{h}" for h in heads] + ["MLP"])
    ax.set_yticks(range(len(layers)), [f"L{v}" for v in layers])
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    return ax


def write_lens_report(folder: Path, table: pd.DataFrame, dla: pd.DataFrame, manifest: dict) -> list[str]:
    """lens.csv, dla.csv, lens.png (agreement against layer, one line per k), dla.png, report.md/html.
    The manifest is written by the caller. Returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table.to_csv(folder / "lens.csv", index=False, float_format="%.6g")
    dla.to_csv(folder / "dla.csv", index=False, float_format="%.6g")
    figures: list[tuple[str, str]] = []

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, caption))

    splits = [s for s in ("id", "ood") if (table["split"] == s).any()]
    panels = [pn for pn in LENS_PANELS if (table["predictor"] == pn[0]).any()]
    if splits and panels:
        fig, axs = plt.subplots(len(splits), len(panels), squeeze=False, layout="constrained",
                                figsize=(3.6 * len(panels), 2.8 * len(splits)))
        for i, split in enumerate(splits):
            for j, (pred, col, label) in enumerate(panels):
                plot_lens_curves(table, split, pred, col, axs[i, j], title=f"{label}, {_split_name(split)}")
        axs[0, -1].legend(fontsize=6, loc="best")
        save(fig, "lens.png", "Logit lens: each layer's readout at the query's y position — its accuracy and its "
             "agreement with each algorithm, one line per k")
    if len(dla):
        k = int(dla["k"].max())
        algos = [a for a in DLA_ALGORITHMS if (dla["algorithm"] == a).any()]
        dsplits = [s for s in ("id", "ood") if (dla["split"] == s).any()]
        sel = dla[(dla["k"] == k) & dla["layer"].notna() & dla["algorithm"].isin(algos)]
        vmax = float(np.nanmax(np.abs(sel["dla_vs_mean"].to_numpy(float)))) if len(sel) else 1.0
        fig, axs = plt.subplots(len(dsplits), len(algos), squeeze=False, layout="constrained",
                                figsize=(3.0 * len(algos), 2.6 * len(dsplits)))
        for i, split in enumerate(dsplits):
            for j, alg in enumerate(algos):
                what = "the model's own answer" if alg == "model" else f"{alg.replace('_', ' ').title()}'s answer"
                plot_dla_heatmap(dla, split, k, alg, axs[i, j], vmax=vmax,
                                 title=f"{what}, {_split_name(split)}, k = {k}")
        save(fig, "dla.png", f"Direct logit attribution at k = {k}: each head's and MLP's contribution to the logit of "
             "each algorithm's answer minus its mean over the p residues (final-LN scale frozen)")
    _write_pages(folder, table, dla, manifest, figures)
    return [f for f, _ in figures]


def _write_pages(folder: Path, table: pd.DataFrame, dla: pd.DataFrame, manifest: dict, figures) -> None:
    k = int(table["k"].max())
    top = table[table["k"] == k]
    refs = [r for r in ("ratio_matching", "modular_regression", "bayes_memorized") if (top["predictor"] == r).any()]
    header = ["layer", "split", "lens accuracy %"] + [f"agreement with {r.replace('_', ' ')} %" for r in refs]
    body = []
    for layer in sorted(top["layer"].unique()):
        for split in ("id", "ood"):
            sel = top[(top["layer"] == layer) & (top["split"] == split)].set_index("predictor")
            if sel.empty:
                continue
            row = [_layer_label(int(layer)), _split_name(split), _pct(sel.loc["model", "accuracy"])]
            row += [_pct(sel.loc[r, "agreement"]) for r in refs]
            body.append(row)
    sections = [(f"Each layer's lens at k = {k}", header, body,
                 "Every k, every solver, coverage and intervals: [lens.csv](lens.csv).")]
    if len(dla):
        sel = dla[(dla["k"] == k) & dla["layer"].notna()]
        dbody = []
        for keys, grp in sel.groupby(["split", "algorithm"], sort=False):
            split, alg = (str(v) for v in keys)
            if alg not in DLA_ALGORITHMS:
                continue
            best = grp.sort_values("dla_vs_mean", ascending=False).head(3)
            dbody.append([_split_name(split), alg, str(int(grp["n_cells"].iloc[0])),
                          ", ".join(f"{r.component} ({r.dla_vs_mean:.2f})" for r in best.itertuples())])
        sections.append((f"Largest direct logit attribution at k = {k}", ["split", "answer of", "cells",
                         "top components (dla_vs_mean)"], dbody,
                         "Every split, k, algorithm and component: [dla.csv](dla.csv)."))
    lens = manifest.get("lens", {})
    about = _about(manifest) + [
        ("lens", lens.get("definition", "")),
        ("layers", ", ".join(lens.get("layer_names", []))),
        ("DLA", (manifest.get("dla") or {}).get("definition", "")),
    ]
    title = f"Logit lens: {(manifest.get('checkpoint') or {}).get('name', 'run')}"
    write_pages(folder, title, about, sections, figures)
