"""The report of a comparison run (``compare run``, ``compare report``): tables, figures, pages."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from compare.errors import UsageError
from compare.storage.files import NOISE_LEVELS, NOISE_POSITIONS, write_pages

__all__ = [
    "write_report",
    "write_cells_report",
    "default_grid_tasks",
    "task_order",
    "figure_ks",
    "MAX_MAP_COLUMNS",
    "FIGURE_PREDICTORS",
    "GRID_ALGORITHMS",
    "NOISE_TOLERANT",
]

#: References drawn in the aggregate heatmaps and curves when present (the majority
#: variants equal their base solver on clean labels and are left to the tables).
FIGURE_PREDICTORS = ("ratio_matching", "modular_regression", "bayes_memorized", "bayes_uniform")


#: With label noise the figures show the noise-tolerant solvers beside the plain ones.
NOISE_TOLERANT = ("ratio_matching_majority", "modular_regression_majority")


#: Columns (k values) of a map figure at most: a run over k 1..32 draws 8 of them, evenly
#: spaced from the first k to the last (the tables keep every k). Dozens of columns of
#: p x p maps are unreadable and take most of a large run's report time.
MAX_MAP_COLUMNS = 8


def figure_ks(ks: Sequence[int], most: int = MAX_MAP_COLUMNS) -> list[int]:
    """The k values the map figures draw: all when they fit, else ``most`` evenly spaced
    ones, always the first and the last."""
    ks = sorted(int(k) for k in ks)
    if len(ks) <= most:
        return ks
    idx = np.unique(np.linspace(0, len(ks) - 1, most).round().astype(int))
    return [ks[i] for i in idx]


#: Algorithms of the grid figure (the paper's two), when present.
GRID_ALGORITHMS = ("ratio_matching", "modular_regression")



# ---------------------------------------------------------------------- report
def default_grid_tasks(task_order: Sequence[tuple[str, int, int]], per_split: int = 3) -> list[tuple[str, int, int]]:
    """A few tasks of each split, evenly spaced through the run's task order ((split, a, b) each)."""
    out = []
    for split in ("id", "ood"):
        sub = [t for t in task_order if t[0] == split]
        if not sub:
            continue
        idx = np.unique(np.linspace(0, len(sub) - 1, min(per_split, len(sub))).round().astype(int))
        out += [(split, int(sub[i][1]), int(sub[i][2])) for i in idx]
    return out


def task_order(cells: pd.DataFrame) -> list[tuple[str, int, int]]:
    """(split, a, b) of each task of a per-cell table, in the order the tasks appear."""
    first = cells.drop_duplicates(["task_a", "task_b"])
    return [(str(s), int(a), int(b)) for s, a, b in first[["split", "task_a", "task_b"]].itertuples(index=False)]


def write_report(
    folder: Path,
    manifest: dict,
    tables,
    load_task: Callable[[int, int], pd.DataFrame],
    tasks_in_order: Sequence[tuple[str, int, int]],
    *,
    grid_tasks: Sequence[tuple[int, int]] | None = None,
    grid_algorithms: Sequence[str] | None = None,
    grid_sequence: int = 0,
) -> list[str]:
    """Write summary.csv, attribution.csv, every figure, report.md and report.html.

    ``tables`` is :class:`compare.engine.summary.Summaries`; ``load_task(a, b)`` returns one
    task's cells (only the grid figures' tasks are read); ``tasks_in_order`` lists (split,
    a, b) in the run's task order. Returns the figure file names.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.engine.breakdowns import task_panels
    from compare.reports import plots

    p = int(manifest["p"])
    subject = manifest.get("subject", "model")
    refs = [r for r in dict.fromkeys(tables.summary["predictor"]) if r != subject]
    shown = FIGURE_PREDICTORS + (NOISE_TOLERANT if manifest.get("label_noise") else ())
    fig_refs = [r for r in shown if r in refs] or refs
    algos = [a for a in (grid_algorithms or GRID_ALGORITHMS) if a in refs] or refs[:2]
    if grid_algorithms:
        unknown = [a for a in grid_algorithms if a not in refs]
        if unknown:
            raise UsageError(f"--grid-algorithms: no predictor named {unknown[0]!r} in this run "
                             f"(have {', '.join(refs)})")
    sequences = manifest.get("sequences") or []

    tables.summary.to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    tables.attribution.to_csv(folder / "attribution.csv", index=False, float_format="%.6g")
    tables.sequences.to_csv(folder / "sequences.csv", index=False, float_format="%.6g")
    tasks = with_lines(tables.tasks, manifest)
    tasks.to_csv(folder / "tasks.csv", index=False, float_format="%.6g")

    figures: list[tuple[str, str]] = []  # (file, caption)

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, caption))

    axes = plots.plot_curves(tables.summary, [subject, *fig_refs], subject=subject)
    save(axes[0, 0].figure, "curves.png",
         "Coverage, agreement with the model and model accuracy against k (95 % bootstrap intervals)")
    splits = [s for s in ("id", "ood") if (tables.attribution["split"] == s).any()]
    if splits:
        fig, axs = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.2), squeeze=False, layout="constrained")
        for ax, split in zip(axs[0], splits, strict=True):
            plots.plot_attribution(tables.attribution, split, ax=ax, title=_split_name(split))
        save(fig, "attribution.png", "Which algorithm explains each model answer (first agreeing, in order), per k")
    axes = plots.plot_task_accuracy(tables.tasks, p, subject=subject)
    save(axes[0, 0].figure, "tasks.png", "Model accuracy per task at the largest k: which tasks are hard")
    if tables.sequences["sequence"].nunique() > 1:
        axes = plots.plot_sequences(tables.sequences, tables.summary, subject=subject)
        save(axes[0, 0].figure, "sequences.png", "Model accuracy against k for each example sequence: "
             "how much it depends on which examples the prompt holds")
    drawn = figure_ks(tables.summary["k"].unique())
    maps = tables.maps[tables.maps["k"].isin(drawn)]
    n_ks = tables.summary["k"].nunique()
    of_ks = ("" if len(drawn) == n_ks
             else f" (k = {', '.join(map(str, drawn))}: {len(drawn)} of the run's {n_ks} k values)")
    for split in splits:
        axes = plots.plot_agreement_heatmaps(
            maps, split, p, [subject, *fig_refs], subject=subject,
            title=f"{_split_name(split)} tasks: share of tasks where the model agrees, per cell")
        save(axes[0, 0].figure, f"agreement_{split}.png",
             f"{_split_name(split)}: per cell (x right, y up) and k, the share of tasks where the model agrees "
             "with each algorithm (top row: model accuracy)" + of_ks)

    chosen = default_grid_tasks(tasks_in_order)  # --grid-tasks adds to these, so a rebuild never loses a figure
    if grid_tasks:
        split_of = {(a, b): s for s, a, b in tasks_in_order}
        for a, b in grid_tasks:
            if (a, b) not in split_of:
                raise UsageError(f"--grid-tasks: task ({a},{b}) is not in this run")
            if (split_of[(a, b)], int(a), int(b)) not in chosen:
                chosen.append((split_of[(a, b)], int(a), int(b)))
    seq = np.asarray(sequences[grid_sequence]) if len(sequences) > grid_sequence else None
    for split, a, b in chosen:
        one = load_task(a, b)
        panels = task_panels(one[one["k"].isin(drawn)], p, (a, b), grid_sequence, subject, algos)
        axes = plots.plot_task_grid(panels, seq,
                                    title=f"task ({a}, {b}), {_split_name(split)}, sequence {grid_sequence}")
        save(axes[0, 0].figure, f"grid_{split}_{a}_{b}.png",
             f"Task ({a}, {b}) ({_split_name(split)}): k-shot grid" + of_ks)

    if (folder / NOISE_LEVELS).is_file():
        levels = pd.read_csv(folder / NOISE_LEVELS)
        axes = plots.plot_noise_levels(levels, [subject, *fig_refs])
        k_sweep = (manifest.get("label_noise") or {}).get("sweep_k", "the largest k")
        save(axes[0, 0].figure, "noise_levels.png", f"Accuracy at k = {k_sweep} against the number of wrong "
             "in-context labels (each z + U{1..p-1} mod p)")
    if (folder / NOISE_POSITIONS).is_file():
        axes = plots.plot_noise_positions(pd.read_csv(folder / NOISE_POSITIONS), subject)
        save(axes[0, 0].figure, "noise_positions.png", "Model accuracy at each query shot k (across) when only the "
             "label of shot j (down) is wrong; i.d./o.o.d. tasks × train/test inputs")
    _write_pages(folder, manifest, tables, tasks, figures, subject, fig_refs)
    return [f for f, _ in figures]


def with_lines(tasks: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The per-task table plus ``pretrain_on_line``: how many pre-training tasks lie on each
    task's line c·(a, b) (:func:`algos.tasks.same_line_counts`), when the manifest lists them."""
    pre = manifest.get("pretrain_tasks")
    if pre is None:
        return tasks
    from algos.tasks import same_line_counts

    counts = same_line_counts(int(manifest["p"]), tasks[["task_a", "task_b"]].to_numpy(),
                              np.asarray(pre, dtype=np.int64))
    return tasks.assign(pretrain_on_line=counts)


def _split_name(split: str) -> str:
    return {"id": "i.d.", "ood": "o.o.d."}.get(split, split)


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"


def _headline_rows(tables, subject: str, refs: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    s = tables.summary
    a = tables.attribution
    header = ["split", "k", f"{subject} accuracy % [95 % CI]"]
    from compare.reports.plots import pretty

    header += [f"{pretty(r)}: agreement % (coverage %)" for r in refs]
    header += ["unexplained %"]
    rows = []
    for (split, k), g in s.groupby(["split", "k"], sort=True):
        m = g[g["predictor"] == subject].iloc[0]
        row = [_split_name(split), str(int(k)),
               f"{_pct(m['accuracy'])} [{_pct(m['accuracy_lo'])}, {_pct(m['accuracy_hi'])}]"]
        for r in refs:
            rr = g[g["predictor"] == r]
            row.append("–" if rr.empty else f"{_pct(rr['agreement'].iloc[0])} ({_pct(rr['coverage'].iloc[0])})")
        u = a[(a["split"] == split) & (a["k"] == k) & (a["outcome"] == "all") & (a["category"] == "none")]
        row.append("–" if u.empty else _pct(u["share"].iloc[0]))
        rows.append(row)
    return header, rows


def _about(manifest: dict) -> list[tuple[str, str]]:
    ck = manifest.get("checkpoint") or {}
    items = [
        ("checkpoint", f"{ck.get('name', '?')} (step {ck.get('step', '?')}, sha256 {str(ck.get('sha256', ''))[:12]}…)"),
        ("task setting", f"p = {manifest.get('p')}, fingerprint {manifest.get('setting_fingerprint', '?')}, "
                         f"{len(manifest.get('pretrain_tasks', []))} pre-training and "
                         f"{len(manifest.get('ood_tasks', []))} o.o.d. tasks"),
        ("tasks compared", f"{manifest.get('tasks_spec', '?')}: {manifest.get('n_tasks', '?')} tasks"),
        ("k", ", ".join(str(k) for k in manifest.get("ks", []))),
        ("example sequences", f"{len(manifest.get('sequences', []))} ({manifest.get('sequences_note', '')})"),
        ("bootstrap", f"{manifest.get('n_boot')} resamples of (task, sequence) within each split, "
                      f"seed {manifest.get('seed')}"),
    ]
    return items


_RM_HEAD = "Ratio Matching agreement % (coverage %)"


def _rm_cell(row: pd.Series | None) -> str:
    """Ratio Matching's agreement % (coverage %) in one row of a breakdown table."""
    if row is None or "ratio_matching_coverage" not in row:
        return "–"
    return f"{_pct(row['ratio_matching_agreement'])} ({_pct(row['ratio_matching_coverage'])})"


def _sequence_rows(tables, subject: str) -> tuple[list[str], list[list[str]], str] | None:
    """Per example sequence at the largest k: the subject's accuracy per split and Ratio
    Matching's agreement and coverage there; None for a run with one sequence."""
    seqs = tables.sequences
    if seqs["sequence"].nunique() < 2:
        return None
    k = int(seqs["k"].max())
    top = seqs[seqs["k"] == k]
    splits = [s for s in ("id", "ood") if (top["split"] == s).any()]
    header = ["sequence"]
    for s in splits:
        header += [f"{_split_name(s)}: {subject} accuracy %", f"{_split_name(s)}: {_RM_HEAD}"]
    rows = []
    for seq, g in top.groupby("sequence", sort=True):
        row = [str(int(seq))]
        for s in splits:
            r = g[g["split"] == s]
            one = None if r.empty else r.iloc[0]
            row += ["–" if one is None else _pct(one["accuracy"]), _rm_cell(one)]
        rows.append(row)
    spread = []
    for s in splits:
        acc = top.loc[top["split"] == s, "accuracy"]
        spread.append(f"{_split_name(s)} {_pct(acc.min())} / {_pct(acc.median())} / {_pct(acc.max())}")
    note = (f"At k = {k}, {subject} accuracy over the {len(rows)} example sequences, min / median / max: "
            + "; ".join(spread) + ". Every k: [sequences.csv](sequences.csv).")
    return header, rows, note


def _task_rows(tasks: pd.DataFrame, subject: str, n: int = 10) -> tuple[list[str], list[list[str]], str]:
    """The ``n`` tasks of each split with the lowest subject accuracy at the largest k."""
    k = int(tasks["k"].max())
    top = tasks[tasks["k"] == k]
    lines = "pretrain_on_line" in top
    header = ["split", "task (a, b)", f"{subject} accuracy %", _RM_HEAD]
    header += ["pre-training tasks on its line c·(a, b)"] if lines else []
    rows, counts = [], []
    for s in ("id", "ood"):
        sub = top[top["split"] == s].sort_values(["accuracy", "task_a", "task_b"], kind="stable")
        if sub.empty:
            continue
        counts.append(f"{min(n, len(sub))} of {len(sub)} {_split_name(s)}")
        for _, r in sub.head(n).iterrows():
            rows.append([_split_name(s), f"({int(r['task_a'])}, {int(r['task_b'])})", _pct(r["accuracy"]),
                         _rm_cell(r)] + ([str(int(r["pretrain_on_line"]))] if lines else []))
    note = (f"The hardest tasks at k = {k} ({', '.join(counts)} tasks), pooled over example sequences; "
            "every task and k: [tasks.csv](tasks.csv).")
    return header, rows, note


def _cells_link(manifest: dict) -> str:
    if manifest.get("cells_layout") == cells_layout():
        return "[cells/](cells/) (one Parquet file per task)"
    return "[cells.parquet](cells.parquet)"


def cells_layout() -> str:
    """The manifest's name of the per-task cell dataset (compare.storage.cells)."""
    return "cells/task-<a>-<b>.parquet"


def _write_pages(folder: Path, manifest: dict, tables, tasks: pd.DataFrame, figures, subject: str,
                 refs: Sequence[str]) -> None:
    header, rows = _headline_rows(tables, subject, refs)
    about = _about(manifest)
    title = f"k-shot comparison: {(manifest.get('checkpoint') or {}).get('name', 'run')}"
    note = (
        "Agreement: share of an algorithm's answers equal to the model's answer; coverage: share of "
        "cells (x, y) it answers; unexplained: share of model answers (right or wrong) that no reference "
        "algorithm gives. Full table with intervals: [summary.csv](summary.csv); attribution: "
        "[attribution.csv](attribution.csv); every cell: " + _cells_link(manifest) + "."
    )
    sections = [("Headline", header, rows, note)]
    per_seq = _sequence_rows(tables, subject)
    if per_seq is not None:
        sections.append(("By example sequence", *per_seq))
    sections.append(("Hardest tasks", *_task_rows(tasks, subject)))
    write_pages(folder, title, about, sections, figures)



def write_cells_report(folder: Path, cells: pd.DataFrame, manifest: dict, tables, **kwargs) -> list[str]:
    """:func:`write_report` for a per-cell table held in memory (keyword arguments as there)."""
    def load_task(a: int, b: int) -> pd.DataFrame:
        return cells[(cells["task_a"].to_numpy() == a) & (cells["task_b"].to_numpy() == b)]

    return write_report(folder, manifest, tables, load_task, task_order(cells), **kwargs)
