"""``compare ablate`` through compare.cli.main.main(argv): files, rows, deltas, manifest, errors, determinism."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_testing import run_cli

from compare.cli.main import main

FAST = ["--threads", "1", "--n-boot", "40", "--quiet"]


@pytest.fixture(scope="module")
def ckpt_dir(scaled_ckpt_dir: Path) -> Path:
    """Random weights scaled up 15x: at the N(0, 0.02) initialization the answers hardly
    depend on the prompt, so removing a component would rarely change an arg-max."""
    return scaled_ckpt_dir



_run = run_cli


@pytest.fixture(scope="module")
def all_run(ckpt_dir, tmp_path_factory):
    """One run of --components all on the tiny checkpoint (shared by the file checks)."""
    work = tmp_path_factory.mktemp("all")
    os.link(ckpt_dir / "tiny.pt", work / "tiny.pt")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        rc = main(["ablate", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", *FAST])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return work / "reports" / "tiny-ablate"


def test_all_components_write_a_complete_folder(all_run):
    names = {p.name for p in all_run.iterdir()}
    assert {"ablation.csv", "ablation.png", "manifest.json", "report.md", "report.html"} <= names
    grids = sorted(n for n in names if n.startswith("grid_"))
    assert len(grids) == 2 and any(n.startswith("grid_none_") for n in grids)
    assert [d.name for d in all_run.parent.iterdir()] == ["tiny-ablate"]  # no temporary folder left

    man = json.loads((all_run / "manifest.json").read_text())
    comps = ["L0H0", "L0H1", "L0attn", "L0mlp", "L1H0", "L1H1", "L1attn", "L1mlp"]
    assert man["tool"] == "compare ablate" and man["ablation"]["mode"] == "zero"
    assert man["ablation"]["components"] == comps
    assert "hook_z" in man["ablation"]["definition"] and "paired bootstrap" in man["ablation"]["intervals"]
    assert man["ks"] == [1, 2, 3] and len(man["sequences"]) == 2 and man["n_tasks"] > 0
    assert man["most_damaging"] in comps
    assert f"grid_{man['most_damaging']}_{man['grid_task']['split']}" in " ".join(grids)
    assert man["timings"]["total_seconds"] > 0

    table = pd.read_csv(all_run / "ablation.csv")
    assert list(dict.fromkeys(table["component"])) == ["none", *comps]
    assert len(table) == 9 * 2 * 3  # components x splits x k
    assert not table.duplicated(["component", "split", "k"]).any()
    for solver in man["references"]:
        for rate in ("agreement", "model_acc_in", "model_acc_out"):
            for col in (f"{solver}_{rate}", f"delta_{solver}_{rate}_lo", f"delta_{solver}_{rate}_hi"):
                assert col in table.columns
    none = table[table.component == "none"]
    deltas = [c for c in table.columns if c.startswith("delta_")]
    assert (none[deltas].fillna(0).to_numpy() == 0).all()
    # a delta is the difference of the two rates, row by row
    merged = table.merge(none, on=["split", "k"], suffixes=("", "_base"))
    for col in ("model_accuracy", "ratio_matching_agreement", "modular_regression_model_acc_out"):
        d = merged[col] - merged[f"{col}_base"]
        ok = d.notna()
        np.testing.assert_allclose(merged.loc[ok, f"delta_{col}"], d[ok], atol=1e-5)  # csv keeps 6 digits
        assert (merged.loc[ok, f"delta_{col}_lo"] <= merged.loc[ok, f"delta_{col}"] + 1e-5).all()
    # removing a component of a random model changes its answers somewhere
    assert (table[table.component != "none"]["delta_model_accuracy"].abs() > 0).any()
    # the plain model's rows are compare run's summary of the same model
    assert "Ratio Matching" in (all_run / "report.md").read_text()


def test_none_rows_equal_compare_run(all_run, work, capsys):
    rc, _, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", "--out", "plain", *FAST)
    assert rc == 0, err
    summary = pd.read_csv(work / "plain" / "summary.csv")
    table = pd.read_csv(all_run / "ablation.csv")
    none = table[table.component == "none"].set_index(["split", "k"])
    model = summary[summary.predictor == "model"].set_index(["split", "k"])
    np.testing.assert_allclose(none["model_accuracy"], model.loc[none.index, "accuracy"], rtol=1e-6)
    rm = summary[summary.predictor == "ratio_matching"].set_index(["split", "k"])
    np.testing.assert_allclose(none["ratio_matching_agreement"], rm.loc[none.index, "agreement"], rtol=1e-6)


def test_a_set_counts_as_one_component_and_mean_mode_is_recorded(work, capsys):
    rc, _, err = _run(capsys, "ablate", "--ckpt", "tiny.pt", "--k", "2,3", "--tasks", "ood",
                        "--components", "L0H1+L1mlp,L1H0", "--mode", "mean", *FAST)
    assert rc == 0, err
    assert [d.name for d in (work / "reports").iterdir()] == ["tiny-ablate-mean"]  # never replaces the zero run
    m = work / "reports" / "tiny-ablate-mean"
    table = pd.read_csv(m / "ablation.csv")
    assert list(dict.fromkeys(table["component"])) == ["none", "L0H1+L1mlp", "L1H0"]
    assert len(table) == 3 * 1 * 2 and set(table["split"]) == {"ood"}
    man = json.loads((m / "manifest.json").read_text())
    assert man["ablation"]["mode"] == "mean"
    assert man["ablation"]["members"]["L0H1+L1mlp"] == ["L0H1", "L1mlp"]
    assert "mean over every (task, example sequence, query) prompt" in man["ablation"]["definition"]
    assert man["ablation"]["mean_prompts"] == {"2": man["n_tasks"] * 25, "3": man["n_tasks"] * 25}


def test_same_seed_same_table(work, capsys):
    args = ["ablate", "--ckpt", "tiny.pt", "--k", "1,3", "--tasks", "1,2;0,4;3,3", "--components", "L0H0,L1attn",
            "--sequences", "2", "--seed", "3", *FAST]
    assert _run(capsys, *args, "--out", "a")[0] == 0
    assert _run(capsys, *args, "--out", "b")[0] == 0
    assert (work / "a" / "ablation.csv").read_bytes() == (work / "b" / "ablation.csv").read_bytes()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--components", "L9H0"], "--components: L9H0: layer 9 is out of range (the checkpoint has layers 0..1)"),
        (["--components", "L0H99"], "--components: L0H99: head 99 is out of range"),
        (["--components", "mlp"], "--components: unknown component 'mlp'"),
        (["--components", "L0H1,,L1mlp"], "--components: empty component name"),
        (["--components", "L0H1+none"], "'none' cannot be part of a set"),
        (["--mode", "resample"], "argument --mode: invalid choice: 'resample'"),
        (["--k", "1..8"], "k = 8 exceeds the 7 examples the checkpoint's context allows"),
        (["--k", "0"], "--k: k must be >= 1, got 0"),
        (["--tasks", "5,0"], "task (5,0) is outside Z_5^2"),
        (["--grid-task", "1,1;2,2"], "--grid-task: give one task"),
        (["--tasks", "1,2", "--grid-task", "3,3"], "--grid-task: task (3,3) is not among the tasks run"),
        (["--out", "tiny.pt"], "exists and is not a folder"),
        (["--n-boot", "-1"], "--n-boot must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    base = ["ablate", "--ckpt", "tiny.pt", *FAST]
    if "--k" not in argv:
        base += ["--k", "2"]
    rc, _, err = _run(capsys, *base, *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("compare: error: "), err
    assert message in err
    assert not (work / "reports").exists()


def test_missing_checkpoint_is_one_line(work, capsys):
    rc, _, err = _run(capsys, "ablate", "--ckpt", "nope.pt", "--k", "2", *FAST)
    assert rc == 2 and err.count("\n") == 1 and "checkpoint not found" in err


def test_failure_midway_leaves_nothing(work, capsys, monkeypatch):
    import compare.reports.ablation

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compare.reports.ablation, "write_ablation_report", broken)
    rc, _, err = _run(capsys, "ablate", "--ckpt", "tiny.pt", "--k", "1", "--components", "L0H0", *FAST)
    assert rc == 2 and "No space left on device" in err
    assert not (work / "reports").exists()
