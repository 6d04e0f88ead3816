"""``compare mixture`` through compare.cli.main.main(argv): files, the bar (fit >= best single component),
the model's distributions equal compare run's p_true, a run's snapshots, same seed same tables, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from compare.cli.main import main
from model.testing import tiny_checkpoint

FAST = ["--threads", "1", "--quiet", "--device", "cpu"]


def _scaled(path: Path, seed: int, step: int) -> Path:
    tiny_checkpoint(path, p=5, n_examples=8, n_layer=2, n_head=2, seed=seed)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] = {k: v * 15 if v.dim() >= 2 else v for k, v in blob["state_dict"].items()}
    blob["step"] = step
    torch.save(blob, path)
    return path


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    """tiny.pt (what conftest's ``work`` links) beside a run folder of three snapshots."""
    d = tmp_path_factory.mktemp("ckpts")
    _scaled(d / "tiny.pt", 0, 0)
    snaps = d / "runs" / "R" / "snapshots"
    snaps.mkdir(parents=True)
    for i, step in enumerate((10, 20, 40)):
        _scaled(snaps / f"step-{step:07d}.pt", i, step)
    return d


def _bar(table: pd.DataFrame) -> None:
    keys = [c for c in ("step", "split", "k") if c in table.columns]
    for _, g in table.groupby(keys):
        assert g["ll_fit"].iloc[0] >= g["ll_single"].max() - 1e-6  # CSV rounding only
        assert g["ll_fit"].iloc[0] <= g["ll_ceiling"].iloc[0] + 1e-6
        assert np.isclose(g["weight"].sum(skipna=True), 1.0, atol=1e-5)
        assert (g["same_as"].isna() == g["weight"].notna()).all()


def test_mixture_writes_a_complete_folder(work, capsys):
    rc = main(["mixture", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", *FAST])
    assert rc == 0, capsys.readouterr().err
    out = work / "reports" / "tiny-mixture"
    names = {p.name for p in out.iterdir()}
    assert {"mixture.csv", "mixture.png", "manifest.json", "report.md", "report.html"} <= names
    man = json.loads((out / "manifest.json").read_text())
    assert man["tool"] == "compare mixture" and man["mixture"]["epsilon"] == 0.01
    assert man["mixture"]["components"] == ["ratio_matching", "modular_regression", "bayes_memorized",
                                            "bayes_uniform", "uniform"]
    t = pd.read_csv(out / "mixture.csv")
    n_split = t["split"].nunique()
    assert len(t) == n_split * 3 * 5
    n_tasks = {"id": len(man["pretrain_tasks"]), "ood": len(man["ood_tasks"])}
    for (split, _k), g in t.groupby(["split", "k"]):
        assert (g["n_cells"] == n_tasks[split] * 2 * 25).all()  # tasks x sequences x queries
    _bar(t)
    # at k = 1 Modular Regression is Ratio Matching (one example): merged
    k1 = t[(t["k"] == 1)].set_index(["split", "component"])
    assert (k1.xs("modular_regression", level="component")["same_as"] == "ratio_matching").all()


def test_the_model_s_distributions_are_compare_run_s(work, capsys):
    """The single uniform component's log-likelihood is -log p whatever the model; Modular Regression's follows
    from the model's p_true that compare run records: the same cells, the same distributions."""
    assert main(["mixture", "--ckpt", "tiny.pt", "--k", "2", "--tasks", "1,2;0,4", "--out", "m", *FAST]) == 0
    assert main(["run", "--ckpt", "tiny.pt", "--k", "2", "--tasks", "1,2;0,4", "--out", "r", "--n-boot", "0",
                 "--threads", "1", "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    t = pd.read_csv(work / "m" / "mixture.csv").set_index("component")
    assert t.loc["uniform", "ll_single"] == pytest.approx(-np.log(5), abs=1e-5)  # CSV rounding
    from compare.api.report import open_report

    cells = open_report(work / "r").cells()
    assert len(cells) == t["n_cells"].iloc[0] == 2 * 25
    # Modular Regression answers every cell at k = 2 here and is always right (no label noise): under its
    # component the model's distribution P scores P(z_true) log(1 - eps + eps/p) + (1 - P(z_true)) log(eps/p)
    assert (cells["pred_modular_regression"] == cells["z_true"]).all()
    eps, p = 0.01, 5
    p_true = cells["p_true_model"].astype(float).to_numpy()
    want = (p_true * np.log(1 - eps + eps / p) + (1 - p_true) * np.log(eps / p)).mean()
    assert t.loc["modular_regression", "ll_single"] == pytest.approx(want, abs=1e-4)


def test_snapshots_of_a_run(work, ckpt_dir, capsys):
    rc = main(["mixture", "--run", str(ckpt_dir / "runs" / "R"), "--k", "2,3", *FAST])
    assert rc == 0, capsys.readouterr().err
    out = work / "reports" / "R-mixture"
    assert {"mixture.csv", "mixture_k2.png", "mixture_k3.png", "manifest.json"} <= {p.name for p in out.iterdir()}
    t = pd.read_csv(out / "mixture.csv")
    assert sorted(t["step"].unique()) == [10, 20, 40] and set(t["split"]) == {"ood"}
    _bar(t)
    man = json.loads((out / "manifest.json").read_text())
    assert [s["step"] for s in man["snapshots"]] == [10, 20, 40] and man["run_name"] == "R"
    # the last snapshot's rows equal a plain fit of that checkpoint
    assert main(["mixture", "--ckpt", str(ckpt_dir / "runs" / "R" / "snapshots" / "step-0000040.pt"), "--k", "2,3",
                 "--tasks", "ood", "--out", "last", *FAST]) == 0
    last = pd.read_csv(work / "last" / "mixture.csv")
    pd.testing.assert_frame_equal(t[t["step"] == 40].drop(columns="step").reset_index(drop=True), last)


def test_same_seed_same_tables(work, capsys):
    args = ["mixture", "--ckpt", "tiny.pt", "--k", "2", "--sequences", "2", *FAST]
    assert main([*args, "--out", "a"]) == 0 and main([*args, "--out", "b"]) == 0
    assert main([*args, "--out", "c", "--seed", "3"]) == 0
    capsys.readouterr()
    a, b, c = (pd.read_csv(work / d / "mixture.csv") for d in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize("argv, message", [
    (["--ckpt", "tiny.pt", "--k", "9"], "exceeds"),
    (["--ckpt", "tiny.pt", "--k", "2", "--epsilon", "0"], "--epsilon must be in (0, 1)"),
    (["--ckpt", "tiny.pt", "--k", "2", "--every", "2"], "--every needs --run"),
    (["--ckpt", "tiny.pt", "--k", "2", "--tasks", "7,7"], "outside Z_5^2"),
    (["--ckpt", "tiny.pt", "--run", "x", "--k", "2"], "not allowed with argument"),
    (["--k", "2"], "one of the arguments --ckpt --run is required"),
    (["--run", "nope", "--k", "2"], "no such run folder"),
    (["--run", ".", "--k", "2"], "no snapshots"),
    (["--ckpt", "missing.pt", "--k", "2"], "missing.pt"),
])
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    rc = main(["mixture", *argv, *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (work / "reports").exists()
