"""The report of ``compare mixture``: weights and log-likelihoods against k (or training step), pages.

Plot functions take data and an optional ``ax`` and return the axes; :func:`write_mixture_report`
is the one place that saves them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from compare.storage.files import write_pages

__all__ = ["write_mixture_report", "plot_weights", "plot_log_likelihoods", "SHORT"]

#: Short names of the components in tables and legends.
SHORT = {"ratio_matching": "RM", "modular_regression": "MR", "bayes_memorized": "Bayes (memorized)",
         "bayes_uniform": "Bayes (all tasks)", "uniform": "uniform"}
_COLOURS = {"ratio_matching": "#0072B2", "modular_regression": "#D55E00", "bayes_memorized": "#009E73",
            "bayes_uniform": "#CC79A7", "uniform": "#999999"}


def _split_name(split: str) -> str:
    return {"id": "i.d.", "ood": "o.o.d."}.get(split, split)


def plot_weights(table: pd.DataFrame, split: str, x: str = "k", ax=None, *, k: int | None = None, title: str = ""):
    """Each component's fitted weight against ``x`` (``k``, or ``step`` at one ``k``) for one split;
    a component equal to an earlier one on every cell has no weight of its own (a gap)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = table[table["split"] == split]
    if k is not None:
        sel = sel[sel["k"] == k]
    for comp in dict.fromkeys(sel["component"]):
        rows = sel[sel["component"] == comp].sort_values(x)
        ax.plot(rows[x], rows["weight"], marker="o", ms=3, lw=1.3, color=_COLOURS.get(comp),
                label=SHORT.get(comp, comp))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(x)
    ax.set_ylabel("weight")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=8)
    return ax


def plot_log_likelihoods(table: pd.DataFrame, split: str, x: str = "k", ax=None, *, k: int | None = None,
                         title: str = ""):
    """The fit's log-likelihood, each single component's and the ceiling -H(model) against ``x``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    sel = table[table["split"] == split]
    if k is not None:
        sel = sel[sel["k"] == k]
    for comp in dict.fromkeys(sel["component"]):
        rows = sel[sel["component"] == comp].sort_values(x)
        ax.plot(rows[x], rows["ll_single"], lw=1, ls="--", color=_COLOURS.get(comp), label=SHORT.get(comp, comp))
    fit = sel.drop_duplicates(x).sort_values(x)
    ax.plot(fit[x], fit["ll_fit"], color="black", lw=1.8, marker="o", ms=3, label="mixture")
    ax.plot(fit[x], fit["ll_ceiling"], color="black", lw=1, ls=":", label="ceiling -H(model)")
    ax.set_xlabel(x)
    ax.set_ylabel("log-likelihood (nats per cell)")
    lo = float(np.nanmin(fit["ll_fit"])) if len(fit) else -3.0
    ax.set_ylim(min(lo, float(np.log(1 / 11))) - 1.0, 0.05)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=8)
    return ax


def write_mixture_report(folder: Path, table: pd.DataFrame, manifest: dict) -> list[str]:
    """mixture.csv, mixture.png (against k) or mixture_k{k}.png (against step, a run's), report.md/html.
    The manifest is written by the caller. Returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table.to_csv(folder / "mixture.csv", index=False, float_format="%.6g")
    figures: list[tuple[str, str]] = []
    splits = [s for s in ("id", "ood") if (table["split"] == s).any()]
    by_step = "step" in table.columns
    groups = [int(k) for k in sorted(table["k"].unique())] if by_step else [None]
    for k in groups:
        if not splits:
            break
        fig, axs = plt.subplots(2, len(splits), squeeze=False, layout="constrained", figsize=(4.2 * len(splits), 6.0))
        x = "step" if by_step else "k"
        for j, split in enumerate(splits):
            where = f", k = {k}" if k is not None else ""
            plot_weights(table, split, x, axs[0, j], k=k, title=f"mixture weights, {_split_name(split)}{where}")
            plot_log_likelihoods(table, split, x, axs[1, j], k=k,
                                 title=f"log-likelihood of the model's distributions, {_split_name(split)}{where}")
        axs[0, -1].legend(fontsize=6, loc="best")
        axs[1, -1].legend(fontsize=6, loc="lower right")
        name = f"mixture_k{k}.png" if k is not None else "mixture.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        what = f"against training step at k = {k}" if k is not None else "against k"
        figures.append((name, f"The model's distributions as a mixture of the algorithms' ({what}): fitted weights "
                              "(top; a gap where a component equals an earlier one on every cell) and the "
                              "log-likelihood of the fit, of each component alone and the ceiling (bottom)"))
    _write_pages(folder, table, manifest, figures)
    return [f for f, _ in figures]


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _write_pages(folder: Path, table: pd.DataFrame, manifest: dict, figures) -> None:
    comps = list(dict.fromkeys(table["component"]))
    keys = (["step"] if "step" in table.columns else []) + ["split", "k"]
    header = keys + [f"w {SHORT.get(c, c)}" for c in comps] + ["LL mixture", "best single", "LL best single",
                                                                 "ceiling"]
    body = []
    for key, grp in table.groupby(keys, sort=True):
        vals = key if isinstance(key, tuple) else (key,)
        g = grp.set_index("component")
        row = [str(v) if not isinstance(v, str) else _split_name(v) for v in vals]
        for c in comps:
            same = g.loc[c, "same_as"] if isinstance(g.loc[c, "same_as"], str) else ""
            row.append(f"= {SHORT.get(same, same)}" if same else _fmt(float(g.loc[c, "weight"])))
        first = grp.iloc[0]
        row += [_fmt(first["ll_fit"]), SHORT.get(first["best_single"], first["best_single"]),
                _fmt(first["ll_best_single"]), _fmt(first["ll_ceiling"])]
        body.append(row)
    sections = [("Weights and log-likelihoods", header, body,
                 "Log-likelihoods are per-cell means in nats of the model's own distributions; every column, the "
                 "single components' log-likelihoods and EM's iterations: [mixture.csv](mixture.csv).")]
    mx = manifest.get("mixture", {})
    ck = manifest.get("checkpoint") or {}
    about = [
        ("checkpoint", f"{ck.get('name', '?')} (step {ck.get('step', '?')}, sha256 {str(ck.get('sha256', ''))[:12]}…)"),
    ]
    if manifest.get("run_dir"):
        about.append(("run", f"{manifest['run_dir']}: {len(manifest.get('snapshots', []))} snapshots"))
    about += [
        ("tasks", f"{manifest.get('tasks_spec', '?')}: {manifest.get('n_tasks', '?')} tasks"),
        ("k", ", ".join(str(k) for k in manifest.get("ks", []))),
        ("example sequences", f"{len(manifest.get('sequences', []))} ({manifest.get('sequences_note', '')}); every "
                              "query of the grid"),
        ("components", ", ".join(mx.get("components", []))),
        ("epsilon", str(mx.get("epsilon"))),
        ("fit", mx.get("definition", "")),
    ]
    name = manifest.get("run_name") or ck.get("name", "run")
    write_pages(folder, f"Mixture of algorithms: {name}", about, sections, figures)
