"""The report of ``compare ablate``: the heatmaps, grid figures and pages of an ablation run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from compare.reports.run import _about, _pct, _split_name
from compare.storage.files import write_pages

__all__ = ["write_ablation_report", "ABLATION_HEATMAP_ROWS"]

# ---------------------------------------------------------------------- ablations
#: Rows of the ablation heatmap: (column of the ablation table, label).
ABLATION_HEATMAP_ROWS = (
    ("delta_model_accuracy", "Δ model accuracy"),
    ("delta_ratio_matching_agreement", "Δ agreement with Ratio Matching"),
    ("delta_modular_regression_agreement", "Δ agreement with Modular Regression"),
    ("delta_ratio_matching_model_acc_out", "Δ model accuracy outside Ratio Matching's coverage"),
)


def write_ablation_report(
    folder: Path,
    table: pd.DataFrame,
    manifest: dict,
    panels: dict[str, dict],
    grid_task: tuple[str, int, int],
) -> list[str]:
    """ablation.csv, ablation.png (components x k heatmaps of the changes), the grid figure
    of each ablation in ``panels`` (``{component: compare.engine.breakdowns.task_panels(...)}``, e.g.
    the plain model and the most damaging ablation) for ``grid_task`` (split, a, b),
    report.md and report.html. The manifest is written by the caller. Returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from compare.reports import plots

    table.to_csv(folder / "ablation.csv", index=False, float_format="%.6g")
    figures: list[tuple[str, str]] = []

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, caption))

    rows = [(c, label) for c, label in ABLATION_HEATMAP_ROWS if c in table]
    splits = [s for s in ("id", "ood") if (table["split"] == s).any()]
    n_comp = table["component"].nunique()
    n_k = table["k"].nunique()
    if rows and splits:
        fig, axs = plt.subplots(len(rows), len(splits), squeeze=False, layout="constrained",
                                figsize=(len(splits) * (0.42 * n_k + 1.5) + 0.9, len(rows) * (0.15 * n_comp + 0.9)))
        for i, (col, label) in enumerate(rows):
            vals = np.abs(table[col].to_numpy(float))
            vmax = float(np.nanmax(vals)) if np.isfinite(vals).any() and np.nanmax(vals) > 0 else 1.0
            for j, split in enumerate(splits):
                ax = plots.plot_ablation_heatmap(table, col, split, axs[i, j], vmax=vmax,
                                                 title=f"{label}, {_split_name(split)} tasks (pp)")
            cb = fig.colorbar(ax.images[-1], ax=axs[i, :], shrink=0.8, label="pp")
            cb.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{100 * v:.0f}"))
            cb.ax.tick_params(labelsize=6)
        save(fig, "ablation.png", "Change from the plain model when each component is removed, per k "
             "(percentage points; red: drops, blue: rises)")
    split, a, b = grid_task
    seqs = manifest.get("sequences") or []
    seq = np.asarray(seqs[0]) if seqs else None
    for comp, pan in panels.items():
        mode = manifest.get("ablation", {}).get("mode", "")
        what = "the plain model" if comp == "none" else f"{comp} removed ({mode} ablation)"
        axes = plots.plot_task_grid(pan, seq, title=f"task ({a}, {b}), {_split_name(split)}, sequence 0: {what}")
        save(axes[0, 0].figure, f"grid_{comp}_{split}_{a}_{b}.png",
             f"Task ({a}, {b}) ({_split_name(split)}), {what}: k-shot grid")
    _write_ablation_pages(folder, table, manifest, figures)
    return [f for f, _ in figures]


def _pp(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:+.1f}"


def _write_ablation_pages(folder: Path, table: pd.DataFrame, manifest: dict, figures) -> None:
    ab = manifest.get("ablation", {})
    k = int(table["k"].max())
    top = table[table["k"] == k]
    splits = [s for s in ("id", "ood") if (top["split"] == s).any()]
    header = ["component"]
    for s in splits:
        header += [f"{_split_name(s)}: model accuracy % (Δ pp [95 % CI])",
                   f"{_split_name(s)}: Δ Ratio Matching agreement pp [CI]",
                   f"{_split_name(s)}: Δ Modular Regression agreement pp [CI]",
                   f"{_split_name(s)}: Δ model accuracy outside Ratio Matching's coverage pp [CI]"]
    body = []
    for comp in dict.fromkeys(top["component"]):
        row = [comp]
        for s in splits:
            r = top[(top["component"] == comp) & (top["split"] == s)].iloc[0]
            row.append(f"{_pct(r['model_accuracy'])} ({_pp(r['delta_model_accuracy'])} "
                       f"[{_pp(r['delta_model_accuracy_lo'])}, {_pp(r['delta_model_accuracy_hi'])}])")
            for c in ("delta_ratio_matching_agreement", "delta_modular_regression_agreement",
                      "delta_ratio_matching_model_acc_out"):
                row.append("–" if c not in r else f"{_pp(r[c])} [{_pp(r[c + '_lo'])}, {_pp(r[c + '_hi'])}]")
        body.append(row)
    title = f"Ablations: {(manifest.get('checkpoint') or {}).get('name', 'run')} ({ab.get('mode', '?')} ablation)"
    about = _about(manifest) + [
        ("ablation", f"{ab.get('mode', '?')}: {ab.get('definition', '')}"),
        ("components", f"{len(ab.get('components', []))} besides none: {', '.join(ab.get('components', []))}"),
        ("intervals", ab.get("intervals", "")),
        ("most damaging", f"{manifest.get('most_damaging')} (largest mean drop of o.o.d. model accuracy over k)"),
    ]
    note = (f"At k = {k}. Δ: the ablated model minus the plain model, in percentage points. Every k, every "
            "solver, model accuracy inside and outside each solver's coverage: [ablation.csv](ablation.csv).")
    write_pages(folder, title, about, [("Each component removed", header, body, note)], figures)


