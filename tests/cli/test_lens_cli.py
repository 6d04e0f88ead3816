"""``compare lens`` through compare.cli.main.main(argv): files, rows, last layer = compare run, errors, determinism."""
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
    """Random weights scaled up 15x, so each layer's readout depends on the prompt."""
    return scaled_ckpt_dir



_run = run_cli


@pytest.fixture(scope="module")
def lens_run(ckpt_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("lens")
    os.link(ckpt_dir / "tiny.pt", work / "tiny.pt")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        rc = main(["lens", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", "--layers", "all+embed", *FAST])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return work / "reports" / "tiny-lens"


def test_lens_writes_a_complete_folder(lens_run):
    names = {p.name for p in lens_run.iterdir()}
    assert {"lens.csv", "dla.csv", "lens.png", "dla.png", "manifest.json", "report.md", "report.html"} <= names
    assert [d.name for d in lens_run.parent.iterdir()] == ["tiny-lens"]
    man = json.loads((lens_run / "manifest.json").read_text())
    assert man["tool"] == "compare lens" and man["lens"]["layers"] == [-1, 0, 1]
    assert man["lens"]["layer_names"] == ["embed", "L0", "L1"] and man["lens"]["last_layer"] == 1
    assert "hook_resid_post" in man["lens"]["definition"] and "frozen" in man["dla"]["definition"]
    table = pd.read_csv(lens_run / "lens.csv")
    n_pred = 1 + len(man["references"])
    splits = table["split"].nunique()
    assert len(table) == 3 * splits * 3 * n_pred  # layers x splits x k x predictors
    assert list(table.columns[:4]) == ["layer", "split", "k", "predictor"]
    assert {"agreement", "coverage", "accuracy"} <= set(table.columns)
    assert not table.duplicated(["layer", "split", "k", "predictor"]).any()
    dla = pd.read_csv(lens_run / "dla.csv")
    assert list(dla.columns) == ["split", "k", "algorithm", "component", "layer", "head", "n_cells", "dla",
                                 "dla_vs_mean"]
    assert set(dla["component"]) == {"embed", "L0H0", "L0H1", "L0mlp", "L1H0", "L1H1", "L1mlp", "bias"}
    assert set(dla["algorithm"]) == {"model", *man["references"]}
    model_rows = dla[dla["algorithm"] == "model"]
    assert (model_rows["n_cells"] == model_rows.groupby(["split", "k"])["n_cells"].transform("max")).all()
    # readouts differ between layers of a random model
    acc = table[table.predictor == "model"].pivot_table(index=["split", "k"], columns="layer", values="accuracy")
    assert (acc.nunique(axis=1) > 1).any()


def test_last_layer_equals_compare_run(lens_run, work, capsys):
    rc, _, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", "--out", "plain", *FAST)
    assert rc == 0, err
    summary = pd.read_csv(work / "plain" / "summary.csv")
    table = pd.read_csv(lens_run / "lens.csv")
    last = table[table.layer == 1].drop(columns="layer").reset_index(drop=True)
    cols = ["split", "k", "predictor", "coverage", "agreement", "accuracy", "model_acc_in", "kl"]
    pd.testing.assert_frame_equal(last[cols], summary[cols], check_dtype=False, rtol=1e-6)


def test_same_seed_same_tables(work, capsys):
    args = ["lens", "--ckpt", "tiny.pt", "--k", "2,3", "--tasks", "1,2;0,4;3,3", "--sequences", "2", "--seed", "3",
            *FAST]
    assert _run(capsys, *args, "--out", "a")[0] == 0
    assert _run(capsys, *args, "--out", "b")[0] == 0
    for name in ("lens.csv", "dla.csv"):
        assert (work / "a" / name).read_bytes() == (work / "b" / name).read_bytes()


def test_no_dla_and_one_layer(work, capsys):
    rc, out, err = _run(capsys, "lens", "--ckpt", "tiny.pt", "--k", "2", "--layers", "0", "--no-dla", *FAST)
    assert rc == 0, err
    folder = work / "reports" / "tiny-lens"
    assert set(pd.read_csv(folder / "lens.csv")["layer"]) == {0}
    assert pd.read_csv(folder / "dla.csv").empty and not (folder / "dla.png").exists()
    assert "1 layers" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--layers", "2"], "--layers: no layer 2 (the checkpoint has layers 0..1"),
        (["--layers", "first"], "--layers: 'first' is not a layer"),
        (["--layers", "0,,1"], "--layers: empty item"),
        (["--k", "1..8"], "k = 8 exceeds the 7 examples the checkpoint's context allows"),
        (["--k", "0"], "--k: k must be >= 1, got 0"),
        (["--tasks", "5,0"], "task (5,0) is outside Z_5^2"),
        (["--solvers", "oracle"], "--solvers: unknown solver 'oracle'"),
        (["--out", "tiny.pt"], "exists and is not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    base = ["lens", "--ckpt", "tiny.pt", *FAST]
    if "--k" not in argv:
        base += ["--k", "2"]
    rc, _, err = _run(capsys, *base, *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("compare: error: "), err
    assert message in err
    assert not (work / "reports").exists()


def test_api_matches_the_command(work, capsys):
    import compare

    res = compare.lens("tiny.pt", k=2, layers=[0, 1], n_boot=40)
    assert list(res.table["layer"].unique()) == [0, 1]
    ood = res.agreement("ood", 2, "model")
    assert list(ood.index) == [0, 1] and np.isfinite(ood).all()
    out = res.write_report(work / "api")
    assert (out / "lens.csv").is_file() and (out / "report.html").is_file()
    assert compare.LensResult.__doc__ and compare.lens.__doc__
