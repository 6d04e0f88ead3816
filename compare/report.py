"""The one module that writes files: run folders, tables, figures and report pages.

A run folder holds::

    cells.parquet      the per-cell table (compare.engine)
    cells.csv          the same, with --csv
    manifest.json      what the run was computed from (argv, versions, checkpoint, setting, k, sequences)
    summary.csv        per (split, k, predictor) rates with bootstrap intervals (compare.summary)
    attribution.csv    exclusive attribution of the model's answers
    sequences.csv      per (split, k, example sequence) model accuracy and each algorithm's coverage
    tasks.csv          the same per (split, k, task)
    report.md / .html  headline table and links to every figure
    curves.png         coverage, agreement and model accuracy against k
    attribution.png    stacked attribution shares against k
    agreement_id.png, agreement_ood.png   per-cell agreement heatmaps
    grid_<split>_<a>_<b>.png              the paper's k-shot grid figure for selected tasks

An ablation folder (``compare ablate``, :func:`write_ablation_report`) holds
``ablation.csv``, ``ablation.png``, two grid figures, ``manifest.json`` and the pages.

Folders are written atomically (:func:`atomic_output_dir`): everything goes to a hidden
temporary folder beside the target, which replaces the target only once complete; an
existing target is renamed aside first and deleted after the swap.
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from compare.errors import UsageError

__all__ = [
    "atomic_output_dir",
    "write_cells",
    "write_manifest",
    "write_report",
    "read_run",
    "default_grid_tasks",
    "write_pages",
    "CELLS",
    "MANIFEST",
    "FIGURE_PREDICTORS",
    "GRID_ALGORITHMS",
    "atomic_write_text",
    "write_phase_report",
    "write_training_report",
    "write_ablation_report",
]

CELLS = "cells.parquet"
MANIFEST = "manifest.json"
NOISE_LEVELS = "noise_levels.csv"  # label-noise sweeps of a noisy run (compare.noise)
NOISE_POSITIONS = "noise_positions.csv"
#: References drawn in the aggregate heatmaps and curves when present (the majority
#: variants equal their base solver on clean labels and are left to the tables).
FIGURE_PREDICTORS = ("ratio_matching", "modular_regression", "bayes_memorized", "bayes_uniform")
#: With label noise the figures show the noise-tolerant solvers beside the plain ones.
NOISE_TOLERANT = ("ratio_matching_majority", "modular_regression_majority")
#: Algorithms of the grid figure (the paper's two), when present.
GRID_ALGORITHMS = ("ratio_matching", "modular_regression")


# ---------------------------------------------------------------------- atomic folders
@contextlib.contextmanager
def atomic_output_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; on success it becomes ``target``.

    On any exception (KeyboardInterrupt included) the temporary folder, and any parent
    folders created for it, are removed and an existing ``target`` is left untouched. An
    existing ``target`` is replaced only when it is a folder that is empty or holds a
    ``manifest.json`` (a previous report), so a mistyped ``--out`` never deletes other data.
    """
    target = Path(target).expanduser().absolute()
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise UsageError(f"output path {target} exists and is not a folder")
        if any(target.iterdir()) and not (target / MANIFEST).is_file():
            raise UsageError(f"refusing to replace {target}: it is not empty and holds no {MANIFEST}")
    created: list[Path] = []
    parent = target.parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        _remove_created(created)
        raise UsageError(f"cannot create output folder {target}: {exc.strerror or exc}") from None
    try:
        yield tmp
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise


def _remove_created(created: list[Path]) -> None:
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()


def _swap(tmp: Path, target: Path) -> None:
    os.chmod(tmp, 0o755 & ~_umask())
    if not target.exists():
        os.rename(tmp, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(aside)  # keep only the unique name
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- run files
def write_cells(folder: Path, cells: pd.DataFrame, *, csv: bool = False) -> None:
    """cells.parquet (zstd, deterministic), and cells.csv when asked."""
    cells.to_parquet(folder / CELLS, index=False, compression="zstd", engine="pyarrow")
    if csv:
        cells.to_csv(folder / "cells.csv", index=False, float_format="%.6g")


def write_manifest(folder: Path, manifest: dict) -> None:
    with open(folder / MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(manifest), fh, indent=1)
        fh.write("\n")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_run(folder: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """Load ``cells.parquet`` and ``manifest.json`` from a run folder (ValueError if unusable)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    for name in (CELLS, MANIFEST):
        if not (folder / name).is_file():
            raise UsageError(f"{folder} has no {name} (not a compare run folder)")
    try:
        with open(folder / MANIFEST, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{folder / MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or "p" not in manifest or "ks" not in manifest:
        raise UsageError(f"{folder / MANIFEST} is not a compare manifest (no p or ks)")
    try:
        cells = pd.read_parquet(folder / CELLS, engine="pyarrow")
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise UsageError(f"cannot read {folder / CELLS}: {' '.join(str(exc).split())}") from None
    subject = manifest.get("subject", "model")
    need = {"task_a", "task_b", "split", "sequence", "k", "x", "y", "z_true", f"pred_{subject}"}
    missing = need - set(cells.columns)
    if missing:
        raise UsageError(f"{folder / CELLS} lacks columns {sorted(missing)}")
    return cells, manifest


# ---------------------------------------------------------------------- report
def default_grid_tasks(cells: pd.DataFrame, per_split: int = 3) -> list[tuple[str, int, int]]:
    """A few tasks of each split, evenly spaced through the run's task order."""
    first = cells.drop_duplicates(["task_a", "task_b"])[["split", "task_a", "task_b"]]
    out = []
    for split in ("id", "ood"):
        sub = first[first["split"].astype(str) == split]
        if sub.empty:
            continue
        idx = np.unique(np.linspace(0, len(sub) - 1, min(per_split, len(sub))).round().astype(int))
        out += [(split, int(a), int(b)) for a, b in sub[["task_a", "task_b"]].to_numpy()[idx]]
    return out


def write_report(
    folder: Path,
    cells: pd.DataFrame,
    manifest: dict,
    tables,
    *,
    grid_tasks: Sequence[tuple[int, int]] | None = None,
    grid_algorithms: Sequence[str] | None = None,
    grid_sequence: int = 0,
) -> list[str]:
    """Write summary.csv, attribution.csv, every figure, report.md and report.html.

    ``tables`` is :class:`compare.summary.Summaries`. Returns the figure file names.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare import plots
    from compare.engine import reference_names
    from compare.summary import task_panels

    p = int(manifest["p"])
    subject = manifest.get("subject", "model")
    refs = reference_names(cells, subject)
    shown = FIGURE_PREDICTORS + (NOISE_TOLERANT if manifest.get("label_noise") else ())
    fig_refs = [r for r in shown if r in refs] or refs
    algos = [a for a in (grid_algorithms or GRID_ALGORITHMS) if a in refs] or refs[:2]
    if grid_algorithms:
        unknown = [a for a in grid_algorithms if a not in refs]
        if unknown:
            raise UsageError(f"--grid-algorithms: no predictor named {unknown[0]!r} in this run (have {', '.join(refs)})")
    sequences = manifest.get("sequences") or []

    tables.summary.to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    tables.attribution.to_csv(folder / "attribution.csv", index=False, float_format="%.6g")
    tables.sequences.to_csv(folder / "sequences.csv", index=False, float_format="%.6g")
    tasks = _with_lines(tables.tasks, manifest)
    tasks.to_csv(folder / "tasks.csv", index=False, float_format="%.6g")

    figures: list[tuple[str, str]] = []  # (file, caption)

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, caption))

    axes = plots.plot_curves(tables.summary, [subject, *fig_refs], subject=subject)
    save(axes[0, 0].figure, "curves.png", "Coverage, agreement with the model and model accuracy against k (95 % bootstrap intervals)")
    splits = [s for s in ("id", "ood") if (tables.attribution["split"] == s).any()]
    if splits:
        fig, axs = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.2), squeeze=False, layout="constrained")
        for ax, split in zip(axs[0], splits):
            plots.plot_attribution(tables.attribution, split, ax=ax, title=_split_name(split))
        save(fig, "attribution.png", "Which algorithm explains each model answer (first agreeing, in order), per k")
    axes = plots.plot_task_accuracy(tables.tasks, p, subject=subject)
    save(axes[0, 0].figure, "tasks.png", "Model accuracy per task at the largest k: which tasks are hard")
    if tables.sequences["sequence"].nunique() > 1:
        axes = plots.plot_sequences(tables.sequences, tables.summary, subject=subject)
        save(axes[0, 0].figure, "sequences.png", "Model accuracy against k for each example sequence: how much it depends on which examples the prompt holds")
    for split in splits:
        axes = plots.plot_agreement_heatmaps(tables.maps, split, p, [subject, *fig_refs], subject=subject,
                                             title=f"{_split_name(split)} tasks: share of tasks where the model agrees, per cell")
        save(axes[0, 0].figure, f"agreement_{split}.png",
             f"{_split_name(split)}: per cell (x right, y up) and k, the share of tasks where the model agrees with each algorithm (top row: model accuracy)")

    chosen = default_grid_tasks(cells)  # --grid-tasks adds to these, so a rebuild never loses a figure
    if grid_tasks:
        split_of = cells.drop_duplicates(["task_a", "task_b"]).set_index(["task_a", "task_b"])["split"].astype(str)
        for a, b in grid_tasks:
            if (a, b) not in split_of.index:
                raise UsageError(f"--grid-tasks: task ({a},{b}) is not in this run")
            if (split_of.loc[(a, b)], int(a), int(b)) not in chosen:
                chosen.append((split_of.loc[(a, b)], int(a), int(b)))
    seq = np.asarray(sequences[grid_sequence]) if len(sequences) > grid_sequence else None
    for split, a, b in chosen:
        panels = task_panels(cells, p, (a, b), grid_sequence, subject, algos)
        axes = plots.plot_task_grid(panels, seq, title=f"task ({a}, {b}), {_split_name(split)}, sequence {grid_sequence}")
        save(axes[0, 0].figure, f"grid_{split}_{a}_{b}.png", f"Task ({a}, {b}) ({_split_name(split)}): k-shot grid")

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


def _with_lines(tasks: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The per-task table plus ``pretrain_on_line``: how many pre-training tasks lie on each
    task's line c·(a, b) (:func:`algos.tasks.same_line_counts`), when the manifest lists them."""
    pre = manifest.get("pretrain_tasks")
    if pre is None:
        return tasks
    from algos.tasks import same_line_counts

    counts = same_line_counts(int(manifest["p"]), tasks[["task_a", "task_b"]].to_numpy(), np.asarray(pre, dtype=np.int64))
    return tasks.assign(pretrain_on_line=counts)


def _split_name(split: str) -> str:
    return {"id": "i.d.", "ood": "o.o.d."}.get(split, split)


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"


def _headline_rows(tables, subject: str, refs: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    s = tables.summary
    a = tables.attribution
    header = ["split", "k", f"{subject} accuracy % [95 % CI]"]
    from compare.plots import pretty

    header += [f"{pretty(r)}: agreement % (coverage %)" for r in refs]
    header += ["unexplained %"]
    rows = []
    for (split, k), g in s.groupby(["split", "k"], sort=True):
        m = g[g["predictor"] == subject].iloc[0]
        row = [_split_name(split), str(int(k)), f"{_pct(m['accuracy'])} [{_pct(m['accuracy_lo'])}, {_pct(m['accuracy_hi'])}]"]
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
                         f"{len(manifest.get('pretrain_tasks', []))} pre-training and {len(manifest.get('ood_tasks', []))} o.o.d. tasks"),
        ("tasks compared", f"{manifest.get('tasks_spec', '?')}: {manifest.get('n_tasks', '?')} tasks"),
        ("k", ", ".join(str(k) for k in manifest.get("ks", []))),
        ("example sequences", f"{len(manifest.get('sequences', []))} ({manifest.get('sequences_note', '')})"),
        ("bootstrap", f"{manifest.get('n_boot')} resamples of (task, sequence) within each split, seed {manifest.get('seed')}"),
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


def _write_pages(folder: Path, manifest: dict, tables, tasks: pd.DataFrame, figures, subject: str,
                 refs: Sequence[str]) -> None:
    header, rows = _headline_rows(tables, subject, refs)
    about = _about(manifest)
    title = f"k-shot comparison: {(manifest.get('checkpoint') or {}).get('name', 'run')}"
    note = (
        "Agreement: share of an algorithm's answers equal to the model's answer; coverage: share of "
        "cells (x, y) it answers; unexplained: share of model answers (right or wrong) that no reference "
        "algorithm gives. Full table with intervals: [summary.csv](summary.csv); attribution: "
        "[attribution.csv](attribution.csv); every cell: [cells.parquet](cells.parquet)."
    )
    sections = [("Headline", header, rows, note)]
    per_seq = _sequence_rows(tables, subject)
    if per_seq is not None:
        sections.append(("By example sequence", *per_seq))
    sections.append(("Hardest tasks", *_task_rows(tasks, subject)))
    write_pages(folder, title, about, sections, figures)


def write_pages(folder: Path, title: str, about: Sequence[tuple[str, str]],
                sections: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]], str]],
                figures: Sequence[tuple[str, str]]) -> None:
    """report.md and report.html: a title, an "about" list, table sections and figures.

    ``sections`` are (heading, column names, rows of cell strings, a note in Markdown that
    may hold links); ``figures`` are (file name, caption).
    """
    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in about]
    for name, head, body, text in sections:
        md += ["", f"## {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in body]
        md += ["", text]
    md += ["", "## Figures", ""]
    for name, caption in figures:
        md += [f"### {caption}", "", f"![{caption}]({name})", ""]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")

    e = html.escape
    h = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
        "img{max-width:100%}figure{margin:1.5em 0}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in about) + "</ul>",
    ]
    for name, head, body, text in sections:
        h += [f"<h2>{e(name)}</h2>", "<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>"]
        h += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in body]
        h += ["</table>", "<p>" + _md_links_to_html(e(text)) + "</p>"]
    h.append("<h2>Figures</h2>")
    for name, caption in figures:
        h.append(f'<figure><a href="{e(name)}"><img src="{e(name)}" alt="{e(caption)}"></a><figcaption>{e(caption)}</figcaption></figure>')
    h.append("</body></html>")
    (folder / "report.html").write_text("\n".join(h), encoding="utf-8")


def _md_links_to_html(text: str) -> str:
    import re

    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def copy_run_files(src: Path, dst: Path) -> None:
    """Bring a run's data files (cells, manifest, optional csv) into a new folder."""
    for name in (CELLS, MANIFEST, "cells.csv", NOISE_LEVELS, NOISE_POSITIONS):
        if (src / name).is_file():
            try:
                os.link(src / name, dst / name)
            except OSError:
                shutil.copy2(src / name, dst / name)


# ---------------------------------------------------------------------- phase diagrams
def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_phase_report(folder: str | os.PathLike, table: pd.DataFrame, threshold: float) -> None:
    """phases.csv, phases.png and phases.md for a sweep folder (each replaced atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.phases import TABLE_COLUMNS, plot_phase_diagram

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
    tmp = folder / ".phases.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, folder / "phases.png")
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
def write_training_report(folder: str | os.PathLike, runs: list[dict]) -> Path:
    """runs.csv, runs.md, ood_test_over_steps.png and per-run curves for a set of training runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.training import plot_ood_over_steps, plot_per_shot, runs_table

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = runs_table(runs)
    atomic_write_text(folder / "runs.csv", table.to_csv(index=False))

    def save(fig, name: str) -> str:
        fig.tight_layout()
        tmp = folder / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        os.replace(tmp, folder / name)
        return name

    figures = []
    for metric in ("acc", "acc_last"):
        fig, ax = plt.subplots(figsize=(7, 3.8))
        plot_ood_over_steps(runs, ax, metric=metric)
        figures.append(save(fig, f"ood_test_over_steps_{metric}.png"))
    for run in runs:
        from model.curves import plot_learning_curves

        fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
        plot_learning_curves(run["history"], axes[:2])
        plot_per_shot(run, axes[2])
        axes[0].set_title(run["name"], fontsize=9)
        figures.append(save(fig, f"curves_{run['name']}.png"))
    cols = list(table.columns)
    lines = ["# Training runs", "", "Accuracies: `_acc` over all shots, `_last` at the last shot, at the run's last "
             "evaluation; `best_ood_test_*` over the whole run.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    lines += [""] + [f"![{f}]({f})" for f in figures] + [""]
    atomic_write_text(folder / "runs.md", "\n".join(lines))
    return folder


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
    of each ablation in ``panels`` (``{component: compare.summary.task_panels(...)}``, e.g.
    the plain model and the most damaging ablation) for ``grid_task`` (split, a, b),
    report.md and report.html. The manifest is written by the caller. Returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from compare import plots

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
        what = "the plain model" if comp == "none" else f"{comp} removed ({manifest.get('ablation', {}).get('mode', '')} ablation)"
        axes = plots.plot_task_grid(pan, seq, title=f"task ({a}, {b}), {_split_name(split)}, sequence 0: {what}")
        save(axes[0, 0].figure, f"grid_{comp}_{split}_{a}_{b}.png", f"Task ({a}, {b}) ({_split_name(split)}), {what}: k-shot grid")
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
        header += [f"{_split_name(s)}: model accuracy % (Δ pp [95 % CI])", f"{_split_name(s)}: Δ Ratio Matching agreement pp [CI]",
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
