"""The file writer: atomic folders, run files, figures and pages (compare.storage.files, compare.reports.plots)."""
from __future__ import annotations

import itertools
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from compare_stand_ins import NoisyModel

from algos.solvers import ModularRegression, reference_solvers
from algos.tasks import TaskSetting
from compare.engine.breakdowns import agreement_maps, task_panels
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences
from compare.engine.summary import compute_all
from compare.errors import UsageError
from compare.reports import plots
from compare.reports import run as run_report
from compare.storage import files as report

P = 5


@pytest.fixture(scope="module")
def run():
    setting = TaskSetting.build(P, n_base_tasks=2, alpha=0.6)
    tasks = np.array(list(itertools.product(range(P), repeat=2)))
    seqs = build_sequences(P, 3)
    res = run_comparison(setting, tasks, seqs, (1, 2, 3), NoisyModel(ModularRegression(P)), reference_solvers(setting))
    manifest = {"p": P, "ks": [1, 2, 3], "sequences": seqs.tolist(), "subject": "model", "n_boot": 50, "seed": 0,
                "checkpoint": {"name": "toy"}}
    return res.cells, manifest, compute_all(res.cells, P, n_boot=50)


# ---------------------------------------------------------------------- atomic folders
def test_atomic_dir_appears_only_when_complete(tmp_path):
    target = tmp_path / "a" / "b" / "out"
    with report.atomic_output_dir(target) as tmp:
        (tmp / "x.txt").write_text("1")
        assert not target.exists()
        assert tmp.parent == target.parent
    assert (target / "x.txt").read_text() == "1"
    assert [p.name for p in target.parent.iterdir()] == ["out"]  # no temporary left beside it


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # finished and reaped: no such process now


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(tmp_path):
    import os
    import time

    dead, alive = _dead_pid(), os.getpid()
    (tmp_path / f".out.tmp-{dead}-abc").mkdir()  # a run killed mid-write
    (tmp_path / f".out.tmp-{alive}-def").mkdir()  # a run still writing: left alone
    legacy = tmp_path / ".out.tmp-x1y2z3"  # from a version that wrote no pid, two hours old
    legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    (tmp_path / ".other.tmp-1-zzz").mkdir()  # another target's: not ours to touch
    with report.atomic_output_dir(tmp_path / "out") as tmp:
        (tmp / "x.txt").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".out.tmp-{alive}-def", ".other.tmp-1-zzz", "out"])


def test_a_run_killed_while_swapping_gets_its_old_report_back(tmp_path):
    aside = tmp_path / f".out.old-{_dead_pid()}-q"
    aside.mkdir()
    (aside / report.MANIFEST).write_text("{}")  # the old report, renamed aside; the new one never landed
    assert report.remove_stale(tmp_path / "out") == [aside]
    assert (tmp_path / "out" / report.MANIFEST).is_file() and not aside.exists()


def test_failure_leaves_nothing_not_even_new_parents(tmp_path):
    target = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError):
        with report.atomic_output_dir(target) as tmp:
            (tmp / "x.txt").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_report(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    old = {"tool": "compare inspect", "format": 1, "checkpoint": {"sha256": "a"}, "files": ["manifest.json", "old.txt"]}
    (target / report.MANIFEST).write_text(json.dumps(old))
    (target / "old.txt").write_text("old")
    (target / "notes.txt").write_text("the user's")
    with pytest.raises(KeyboardInterrupt):
        with report.atomic_output_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            report.write_manifest(tmp, dict(old, files=None))
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "notes.txt", "old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with report.atomic_output_dir(target) as tmp:  # success replaces the suite's files, not the user's
        (tmp / "new.txt").write_text("new")
        report.write_manifest(tmp, {k: v for k, v in old.items() if k != "files"})
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "new.txt", "notes.txt"]
    assert json.loads((target / report.MANIFEST).read_text())["files"] == ["manifest.json", "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_replace_foreign_folders_and_files(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="refusing to replace"):
        with report.atomic_output_dir(foreign):
            pass
    assert (foreign / "thesis.tex").read_text() == "precious"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        with report.atomic_output_dir(afile):
            pass
    with pytest.raises(UsageError, match="cannot create output folder"):
        with report.atomic_output_dir(afile / "sub" / "out"):
            pass
    empty = tmp_path / "empty"
    empty.mkdir()
    with report.atomic_output_dir(empty) as tmp:
        (tmp / "ok").write_text("")
    assert (empty / "ok").exists()


# ---------------------------------------------------------------------- run files and report
def test_write_and_read_run(run, tmp_path):
    cells, manifest, tables = run
    with report.atomic_output_dir(tmp_path / "r") as tmp:
        report.write_cells(tmp, cells, csv=True)
        figures = run_report.write_cells_report(tmp, cells, manifest, tables)
        report.write_manifest(tmp, dict(manifest, arr=np.arange(3), n=np.int64(4)))
    out = tmp_path / "r"
    names = {p.name for p in out.iterdir()}
    assert {"cells.parquet", "cells.csv", "manifest.json", "summary.csv", "attribution.csv", "report.md",
            "report.html", "curves.png", "attribution.png", "agreement_id.png", "agreement_ood.png"} <= names
    grids = sorted(n for n in names if n.startswith("grid_"))
    assert len(grids) == 6 and any(n.startswith("grid_id_") for n in grids) and any("ood" in n for n in grids)
    assert set(figures) == {n for n in names if n.endswith(".png")}
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for fig in figures:  # every figure linked from both pages
        assert f"]({fig})" in md and f'src="{fig}"' in html
    assert "| split | k | model accuracy" in md and "<table>" in html
    back, man = report.read_run(out)
    pd.testing.assert_frame_equal(back, cells)
    assert man["arr"] == [0, 1, 2] and man["n"] == 4
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == len(tables.summary)
    assert pd.read_csv(out / "cells.csv").shape == cells.shape
    assert len(pd.read_csv(out / "sequences.csv")) == len(tables.sequences)
    assert len(pd.read_csv(out / "tasks.csv")) == len(tables.tasks) and "tasks.png" in figures
    assert "sequences.png" not in names and "By example sequence" not in md  # one sequence: nothing to spread


def test_several_sequences_get_their_table_and_figure(tmp_path):
    setting = TaskSetting.build(P, n_base_tasks=2, alpha=0.6)
    tasks = np.array(list(itertools.product(range(P), repeat=2)))
    seqs = build_sequences(P, 3, n_random=3, seed=2)
    cells = run_comparison(setting, tasks, seqs, (1, 3), NoisyModel(ModularRegression(P)),
                           reference_solvers(setting)).cells
    manifest = {"p": P, "ks": [1, 3], "sequences": seqs.tolist(), "n_boot": 20, "seed": 0,
                "checkpoint": {"name": "toy"}, "pretrain_tasks": setting.pretrain_array.tolist()}
    tables = compute_all(cells, P, n_boot=20)
    with report.atomic_output_dir(tmp_path / "r") as tmp:
        figures = run_report.write_cells_report(tmp, cells, manifest, tables)
    assert "sequences.png" in figures
    md = (tmp_path / "r" / "report.md").read_text()
    section = md.split("## By example sequence")[1].split("## Figures")[0]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [r.split("|")[1].strip() for r in rows] == ["0", "1", "2", "3"]
    top = tables.sequences[(tables.sequences.k == 3) & (tables.sequences.split == "ood")]
    assert f"o.o.d. {100 * top.accuracy.min():.1f} / " in section
    assert "By example sequence" in (tmp_path / "r" / "report.html").read_text()
    hardest = md.split("## Hardest tasks")[1].split("## Figures")[0]
    first_ood = next(line for line in hardest.splitlines() if line.startswith("| o.o.d. |"))
    worst = tables.tasks[(tables.tasks.k == 3) & (tables.tasks.split == "ood")].sort_values(
        ["accuracy", "task_a", "task_b"]).iloc[0]
    assert f"({worst.task_a}, {worst.task_b}) | {100 * worst.accuracy:.1f} |" in first_ood
    per_task = pd.read_csv(tmp_path / "r" / "tasks.csv")
    on_line = per_task[per_task.k == 3].set_index(["task_a", "task_b"])["pretrain_on_line"]
    for a, b in setting.pretrain_tasks:  # every pre-training task is on its own line
        assert on_line[(a, b)] >= 1
    assert on_line[(0, 0)] == int((0, 0) in setting.pretrain_tasks)
    assert first_ood.endswith(f"| {on_line[(worst.task_a, worst.task_b)]} |")


def test_grid_task_and_algorithm_choice(run, tmp_path):
    cells, manifest, tables = run
    with report.atomic_output_dir(tmp_path / "r") as tmp:
        figures = run_report.write_cells_report(tmp, cells, manifest, tables, grid_tasks=[(1, 1)],
                                      grid_algorithms=["bayes_uniform"])
    defaults = [f"grid_{s}_{a}_{b}.png" for s, a, b in run_report.default_grid_tasks(run_report.task_order(cells))]
    extra = f"grid_{_split(cells, 1, 1)}_1_1.png"
    assert [f for f in figures if f.startswith("grid_")] == defaults + ([] if extra in defaults else [extra])
    with pytest.raises(UsageError, match="not in this run"):
        with report.atomic_output_dir(tmp_path / "s") as tmp:
            run_report.write_cells_report(tmp, cells, manifest, tables, grid_tasks=[(9, 9)])
    assert not (tmp_path / "s").exists()


def _split(cells, a, b):
    return str(cells[(cells.task_a == a) & (cells.task_b == b)]["split"].iloc[0])


@pytest.mark.parametrize("bad, message", [
    ({"cells.parquet": b"not parquet"}, "cannot read"),
    ({"manifest.json": b"{"}, "not valid JSON"),
    ({"manifest.json": b"[]"}, "not a compare manifest"),
])
def test_read_run_rejects_broken_folders(run, tmp_path, bad, message):
    cells, manifest, _ = run
    folder = tmp_path / "r"
    folder.mkdir()
    cells.to_parquet(folder / "cells.parquet")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    with pytest.raises(UsageError, match=message):
        report.read_run(folder)
    with pytest.raises(UsageError, match="no cells.parquet"):
        report.read_run(tmp_path)


# ---------------------------------------------------------------------- plots
def test_plot_functions_draw_on_given_axes_and_never_save(run, tmp_path, monkeypatch):
    cells, manifest, tables = run
    monkeypatch.chdir(tmp_path)
    saved = []
    monkeypatch.setattr(plt.Figure, "savefig", lambda *a, **k: saved.append(a))
    monkeypatch.setattr(plt, "show", lambda *a, **k: saved.append(a))
    fig, ax = plt.subplots()
    assert plots.plot_curve(tables.summary, "coverage", "id", ["ratio_matching"], ax=ax) is ax
    assert plots.plot_attribution(tables.attribution, "ood", ax=ax) is ax
    grid = np.arange(P * P, dtype=float).reshape(P, P)
    assert plots.plot_map(grid, ax=ax) is ax
    img = ax.images[-1].get_array()
    assert img[0, 1] == grid[1, 0]  # x runs horizontally: row y=0, column x=1
    assert ax.images[-1].origin == "lower"
    panels = task_panels(cells, P, (1, 2), 0)
    fig2, axes = plt.subplots(5, 3)
    assert plots.plot_task_grid(panels, np.array(manifest["sequences"][0]), axes=axes) is not None
    maps = agreement_maps(cells, P)
    out = plots.plot_agreement_heatmaps(maps, "id", P, ["model", "ratio_matching"])
    assert out.shape == (2, 3)
    out = plots.plot_curves(tables.summary, ["model", "ratio_matching", "modular_regression"])
    assert out.shape == (2, 3)
    out = plots.plot_sequences(tables.sequences, tables.summary)
    assert out.shape == (1, 2)
    out = plots.plot_task_accuracy(tables.tasks, P)
    shown = out[0, 1].images[-1].get_array()  # o.o.d. panel: tasks as (b, a), others masked
    ood = tables.tasks[(tables.tasks.k == 3) & (tables.tasks.split == "ood")]
    assert shown.count() == len(ood)
    r = ood.iloc[0]
    assert shown[r.task_b, r.task_a] == pytest.approx(r.accuracy)
    plt.close("all")
    assert saved == [] and list(tmp_path.iterdir()) == []


def test_palette_is_okabe_ito():
    for name in ("model", "ratio_matching", "modular_regression", "bayes_memorized", "bayes_uniform"):
        assert plots.predictor_color(name) in plots.OKABE_ITO.values()
    assert re.fullmatch(r"#[0-9A-F]{6}", plots.predictor_color("something_new", 3))


def test_map_figures_draw_at_most_eight_k_first_and_last_included():
    assert run_report.figure_ks([3, 1, 2]) == [1, 2, 3]
    drawn = run_report.figure_ks(range(1, 33))
    assert len(drawn) == 8 and drawn[0] == 1 and drawn[-1] == 32 and drawn == sorted(set(drawn))
