"""The report of ``compare patch``: layer x head and layer x position heatmaps, tables and pages.

Plot functions take data and an optional ``ax`` and return the axes; :func:`write_patching_report`
is the one place that saves them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from compare.storage.files import write_pages

__all__ = ["write_patching_report", "plot_head_heatmap", "plot_layer_position_heatmap", "METRIC_LABELS"]

METRIC_LABELS = {
    "iia_ratio_matching": "IIA, Ratio Matching (%)",
    "iia_modular_regression": "IIA, Modular Regression (%)",
    "follows_source": "follows the source's model answer (%)",
    "ld_recovered": "logit difference recovered (%)",
    "changed": "prediction changed (%)",
}
_KINDS = (("resid", "residual stream entering block"), ("attn", "attention layer output"), ("mlp", "MLP output"))


def _grid_image(ax, grid: np.ndarray, xlabels, ylabels, title: str):
    im = ax.imshow(100 * grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(xlabels)), xlabels, fontsize=7)
    ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            ax.text(j, i, "–" if not np.isfinite(v) else f"{100 * v:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if np.isfinite(v) and v < 0.5 else "black")
    ax.set_title(title, fontsize=8)
    return im


def plot_head_heatmap(table: pd.DataFrame, metric: str, position: str, k: int, ax=None, *, split: str = "all"):
    """Layers (rows) x heads (columns) of ``metric`` for head patches at one position class."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = table[(table["kind"] == "head") & (table["position"] == position) & (table["k"] == k)
                & (table["split"] == split)]
    layers = sorted(int(v) for v in sel["layer"].unique())
    heads = sorted(int(v) for v in sel["head"].unique())
    grid = np.full((len(layers), len(heads)), np.nan)
    for layer, head, value in zip(sel["layer"].astype(int), sel["head"].astype(int), sel[metric].astype(float),
                                  strict=True):
        grid[layers.index(layer), heads.index(head)] = value
    _grid_image(ax, grid, [f"H{h}" for h in heads], [f"L{v}" for v in layers], f"heads at {position}")
    return ax


def plot_layer_position_heatmap(table: pd.DataFrame, metric: str, kind: str, k: int, ax=None, *, split: str = "all",
                                title: str = ""):
    """Layers (rows) x position classes (columns) of ``metric`` for one kind of site."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = table[(table["kind"] == kind) & (table["k"] == k) & (table["split"] == split)]
    layers = sorted(int(v) for v in sel["layer"].unique())
    positions = list(dict.fromkeys(sel["position"]))
    grid = np.full((len(layers), len(positions)), np.nan)
    for layer, pos, value in zip(sel["layer"].astype(int), sel["position"], sel[metric].astype(float), strict=True):
        grid[layers.index(layer), positions.index(pos)] = value
    _grid_image(ax, grid, positions, [f"L{v}" for v in layers], title or kind)
    return ax


def write_patching_report(folder: Path, table: pd.DataFrame, prompts: pd.DataFrame, patched: pd.DataFrame,
                          manifest: dict) -> list[str]:
    """patching.csv, prompts.csv, patched.parquet, heads_k<k>.png and layers_k<k>.png at each k,
    report.md/html. The manifest is written by the caller. Returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table.to_csv(folder / "patching.csv", index=False, float_format="%.6g")
    prompts.to_csv(folder / "prompts.csv", index=False, float_format="%.6g")
    patched.to_parquet(folder / "patched.parquet", index=False, compression="zstd", engine="pyarrow")
    pat = manifest.get("patching", {})
    design = pat.get("design", "?")
    headline = pat.get("headline", "follows_source")
    metrics = list(dict.fromkeys([headline, "follows_source", "ld_recovered"]))
    figures: list[tuple[str, str]] = []

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, caption))

    for k in sorted(table["k"].unique()):
        k = int(k)
        heads = table[table["kind"] == "head"]
        positions = [p for p in pat.get("positions", []) if (heads["position"] == p).any()]
        if positions:
            fig, axs = plt.subplots(len(metrics), len(positions), squeeze=False, layout="constrained",
                                    figsize=(2.1 * len(positions) + 0.8, 1.9 * len(metrics)))
            for i, m in enumerate(metrics):
                for j, pos in enumerate(positions):
                    plot_head_heatmap(table, m, pos, k, axs[i, j])
                axs[i, 0].set_ylabel(METRIC_LABELS.get(m, m), fontsize=7)
            save(fig, f"heads_k{k}.png", f"Design {design}, k = {k}: each head patched from the source prompt at each "
                 "position class, layer x head (all prompts)")
        kinds = [(kd, lab) for kd, lab in _KINDS if (table["kind"] == kd).any()]
        if kinds:
            fig, axs = plt.subplots(len(metrics), len(kinds), squeeze=False, layout="constrained",
                                    figsize=(2.8 * len(kinds) + 0.8, 1.9 * len(metrics)))
            for i, m in enumerate(metrics):
                for j, (kd, lab) in enumerate(kinds):
                    plot_layer_position_heatmap(table, m, kd, k, axs[i, j], title=lab)
                axs[i, 0].set_ylabel(METRIC_LABELS.get(m, m), fontsize=7)
            save(fig, f"layers_k{k}.png", f"Design {design}, k = {k}: residual stream, attention and MLP outputs "
                 "patched at each layer and position class (all prompts)")
    _write_pages(folder, table, prompts, manifest, figures, metrics)
    return [f for f, _ in figures]


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.0f}"


def _write_pages(folder: Path, table: pd.DataFrame, prompts: pd.DataFrame, manifest: dict, figures, metrics) -> None:
    pat = manifest.get("patching", {})
    k = int(table["k"].max())
    top = table[(table["k"] == k) & (table["split"] == "all")]
    positions = list(dict.fromkeys(top["position"]))
    sections = []
    for m in metrics:
        body = []
        for comp in dict.fromkeys(top["component"]):
            sel = top[top["component"] == comp].set_index("position")
            body.append([comp] + [_pct(sel.loc[pos, m]) if pos in sel.index else "–" for pos in positions])
        first = top.iloc[0] if len(top) else None
        count = {"iia_ratio_matching": "n_cf_ratio_matching", "iia_modular_regression": "n_cf_modular_regression",
                 "follows_source": "n_follows", "ld_recovered": "n_ld"}.get(m)
        control = ""
        if first is not None and m.startswith("iia_") and f"{m}_clean" in first:
            control = f"; the unpatched base prediction already gives it on {_pct(first[f'{m}_clean'])} % (the control)"
        note = (f"At k = {k}, all {int(first['n_prompts']) if first is not None else 0} prompts"
                + (f" ({int(first[count])} counted{control})" if first is not None and count else "")
                + ". Per split and every rate: [patching.csv](patching.csv); each prompt's tokens and answers: "
                "[prompts.csv](prompts.csv); each patched prediction: patched.parquet.")
        sections.append((METRIC_LABELS.get(m, m) + f", k = {k}", ["component", *positions], body, note))
    ck = manifest.get("checkpoint") or {}
    defs = pat.get("definitions", {})
    clean = prompts[prompts["k"] == k]
    about = [
        ("checkpoint", f"{ck.get('name', '?')} (step {ck.get('step', '?')}, sha256 {str(ck.get('sha256', ''))[:12]}…)"),
        ("design", f"{pat.get('design')}: {pat.get('changes', '')}"),
        ("prompts", f"{pat.get('prompts_per_k')} pairs per k, base tasks {manifest.get('tasks_spec')} "
                    f"({manifest.get('n_tasks')} tasks, round-robin in a seeded order), seed {manifest.get('seed')}"),
        ("k", ", ".join(str(v) for v in manifest.get("ks", []))),
        ("clean model", f"at k = {k}: right on {100 * (clean['model_base'] == clean['z_base']).mean():.1f} % of base "
                        f"and {100 * (clean['model_source'] == clean['z_source']).mean():.1f} % of source prompts; "
                        f"answers differ on {100 * (clean['model_base'] != clean['model_source']).mean():.1f} %"),
        ("patch", defs.get("patch", "")),
        ("IIA", defs.get("iia", "")),
        ("follows the source", defs.get("follows_source", "")),
        ("logit difference", defs.get("ld", "")),
    ]
    title = f"Activation patching: {ck.get('name', 'run')}, design {pat.get('design')}"
    write_pages(folder, title, about, sections, figures)
