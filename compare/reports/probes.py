"""The report of ``compare probe``: site x target heatmaps of selectivity, tables and pages.

Plot functions take data and an optional ``ax`` and return the axes; :func:`write_probe_report`
is the one place that saves them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from compare.storage.files import write_pages

__all__ = ["write_probe_report", "plot_probe_heatmap", "site_order"]


def site_order(sites) -> list[str]:
    """Sites in depth order: embed, L0.mid, L0.post, L1.mid, ..."""
    def key(s: str) -> tuple[int, int]:
        if s == "embed":
            return (-1, 0)
        layer, stage = s[1:].split(".")
        return (int(layer), 0 if stage == "mid" else 1)

    return sorted(set(sites), key=key)


def plot_probe_heatmap(table: pd.DataFrame, position: str, k: int, ax=None, *, title: str = ""):
    """Sites (rows, depth order) x targets (columns): selectivity, annotated with accuracy / control accuracy (%)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = table[(table["position"] == position) & (table["k"] == k)]
    sites = site_order(sel["site"])
    targets = list(dict.fromkeys(sel["target"]))
    grid = np.full((len(sites), len(targets)), np.nan)
    text = [["" for _ in targets] for _ in sites]
    for site, target, selectivity, accuracy, control in zip(
            sel["site"].astype(str), sel["target"].astype(str), sel["selectivity"].astype(float),
            sel["accuracy"].astype(float), sel["control_accuracy"].astype(float), strict=True):
        i, j = sites.index(site), targets.index(target)
        grid[i, j] = selectivity
        if np.isfinite(accuracy):
            text[i][j] = f"{100 * accuracy:.0f}/{100 * control:.0f}"
    ax.imshow(100 * grid, cmap="RdBu_r", vmin=-100, vmax=100, aspect="auto")
    ax.set_xticks(range(len(targets)), targets, fontsize=7, rotation=40, ha="right")
    ax.set_yticks(range(len(sites)), sites, fontsize=7)
    for i in range(len(sites)):
        for j in range(len(targets)):
            dark = np.isfinite(grid[i, j]) and abs(grid[i, j]) > 0.55
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=6, color="white" if dark else "black")
    ax.set_title(title or f"{position}, k = {k}", fontsize=8)
    return ax


def write_probe_report(folder: Path, table: pd.DataFrame, prompts: pd.DataFrame, manifest: dict) -> list[str]:
    """probes.csv, prompts.csv, one heatmap figure per k (probes_k{k}.png), report.md/html.
    The manifest is written by the caller. Returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table.to_csv(folder / "probes.csv", index=False, float_format="%.6g")
    prompts.to_csv(folder / "prompts.csv", index=False)
    figures: list[tuple[str, str]] = []
    positions = list(dict.fromkeys(table["position"]))
    for k in sorted(table["k"].unique()):
        if not positions:
            break
        fig, axs = plt.subplots(1, len(positions), squeeze=False, layout="constrained",
                                figsize=(3.4 * len(positions), 0.35 * table["site"].nunique() + 1.6))
        for j, pos in enumerate(positions):
            plot_probe_heatmap(table, pos, int(k), axs[0, j], title=f"position {pos}, k = {int(k)}")
        mappable = axs[0, -1].images[0] if axs[0, -1].images else None
        if mappable is not None:
            fig.colorbar(mappable, ax=axs[0, :].tolist(), shrink=0.6, label="selectivity (points)")
        name = f"probes_k{int(k)}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, f"Linear probes at k = {int(k)}: selectivity (colour: accuracy - control "
                              "accuracy) per residual-stream site and target; cells read held-out accuracy / "
                              "control accuracy (%)"))
    _write_pages(folder, table, manifest, figures)
    return [f for f, _ in figures]


def _write_pages(folder: Path, table: pd.DataFrame, manifest: dict, figures) -> None:
    from compare.reports.run import _pct

    sections = []
    if len(table):
        k = int(table["k"].max())
        top = table[table["k"] == k]
        targets = list(dict.fromkeys(top["target"]))
        header = ["position", "site"] + [f"{t}: acc % (control %)" for t in targets]
        body = []
        for pos in dict.fromkeys(top["position"]):
            sel = top[top["position"] == pos]
            for site in site_order(sel["site"]):
                row = [pos, site]
                for t in targets:
                    r = sel[(sel["site"] == site) & (sel["target"] == t)]
                    row.append("–" if r.empty else
                               f"{_pct(r['accuracy'].iloc[0])} ({_pct(r['control_accuracy'].iloc[0])})")
                body.append(row)
        majority = top.groupby("target", sort=False)["majority"].max()
        note = ("Majority baselines: " + ", ".join(f"{t} {_pct(v)} %" for t, v in majority.items())
                + ". Every k, site, position and target, with selectivity, sizes and standard errors: "
                "[probes.csv](probes.csv); every prompt, its targets and the model's answer: "
                "[prompts.csv](prompts.csv).")
        sections.append((f"Held-out probe accuracy at k = {k}", header, body, note))
    pr = manifest.get("probe", {})
    defs = pr.get("definitions", {})
    ck = manifest.get("checkpoint") or {}
    about = [
        ("checkpoint", f"{ck.get('name', '?')} (step {ck.get('step', '?')}, sha256 {str(ck.get('sha256', ''))[:12]}…)"),
        ("tasks", f"{manifest.get('tasks_spec', '?')}: {manifest.get('n_tasks', '?')} tasks"),
        ("k", ", ".join(str(k) for k in manifest.get("ks", []))),
        ("prompts", f"{pr.get('prompts_per_k')} per k ({defs.get('prompts', '')}); test share {pr.get('test_share')}, "
                    f"seed {manifest.get('seed')}"),
        ("model accuracy on these prompts", ", ".join(f"k = {k}: {_pct(v)} %" for k, v in
                                                      (pr.get("model_accuracy") or {}).items())),
        ("probe", defs.get("probe", "") + f"; C = {pr.get('C')}"),
        ("control", defs.get("control", "")),
        ("sites", defs.get("sites", "")),
        ("positions", defs.get("positions", "")),
    ] + [(t, defs.get(t, "")) for t in pr.get("targets", [])]
    write_pages(folder, f"Linear probes: {ck.get('name', 'run')}", about, sections, figures)
