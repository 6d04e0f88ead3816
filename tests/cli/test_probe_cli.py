"""``compare probe`` through compare.cli.main.main(argv): files, rows, controls beside every probe,
the probed activations equal a hooked forward's, same seed same tables, bad input one line and exit 2."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from compare.cli.main import main

FAST = ["--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def ckpt_dir(scaled_ckpt_dir: Path) -> Path:
    return scaled_ckpt_dir



@pytest.fixture(scope="module")
def probe_run(ckpt_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("probe")
    os.link(ckpt_dir / "tiny.pt", work / "tiny.pt")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        rc = main(["probe", "--ckpt", "tiny.pt", "--k", "2,3", "--prompts", "120", *FAST])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return work / "reports" / "tiny-probe"


def test_probe_writes_a_complete_folder(probe_run):
    names = {p.name for p in probe_run.iterdir()}
    assert {"probes.csv", "prompts.csv", "probes_k2.png", "probes_k3.png", "manifest.json", "report.md",
            "report.html"} <= names
    man = json.loads((probe_run / "manifest.json").read_text())
    assert man["tool"] == "compare probe" and man["ks"] == [2, 3]
    pr = man["probe"]
    assert pr["sites"] == ["embed", "L0.mid", "L0.post", "L1.mid", "L1.post"]
    assert pr["hooks"]["L1.mid"] == "blocks.1.hook_resid_mid" and pr["positions"] == ["q_x", "q_y", "ex_z"]
    assert pr["position_index"]["q_y"] == {"2": 7, "3": 10} and "Hewitt" in pr["definitions"]["control"]
    table = pd.read_csv(probe_run / "probes.csv")
    assert len(table) == 2 * 5 * 3 * 8  # k x sites x positions x targets
    assert not table.duplicated(["k", "position", "site", "target"]).any()
    # every probe beside its control, selectivity their difference
    assert table["control_accuracy"].notna().all() and table["majority"].notna().all()
    assert np.allclose(table["selectivity"], table["accuracy"] - table["control_accuracy"], atol=1e-5)
    assert (table["n_train"] + table["n_test"] <= 120).all()
    full = table[table["target"] == "answer"]
    assert ((full["n_train"] == 90) & (full["n_test"] == 30)).all()
    prompts = pd.read_csv(probe_run / "prompts.csv")
    assert len(prompts) == 240 and set(prompts["k"]) == {2, 3}
    assert {"tokens", "train", "line", "multiplier", "model", "split"} <= set(prompts.columns)
    # the answer readable at the last site is as good as the model gets on those prompts
    assert "## Held-out probe accuracy at k = 3" in (probe_run / "report.md").read_text()


def test_probed_activations_equal_a_hooked_forward(work, capsys):
    """The probe reads blocks.{l}.hook_resid_mid at q_y: refit by hand on activations taken with our own hook."""
    from interp.probes import control_labels, control_types, fit_probe, probe_prompts, probe_targets, split_prompts
    from model.checkpoint import load_checkpoint

    rc = main(["probe", "--ckpt", "tiny.pt", "--k", "3", "--prompts", "100", "--sites", "L1.mid",
               "--positions", "q_y", "--targets", "ratio", "--seed", "4", *FAST])
    assert rc == 0, capsys.readouterr().err
    row = pd.read_csv(work / "reports" / "tiny-probe" / "probes.csv").iloc[0]
    ck = load_checkpoint(work / "tiny.pt")
    net = ck.build_model("cpu")
    pp = probe_prompts(5, np.concatenate([ck.setting.pretrain_array, ck.setting.ood_array]), 3, 100, seed=4)
    kept = []
    with net.hooks([("blocks.1.hook_resid_mid", lambda _m, _i, out: kept.append(out[:, 10].detach().clone()))]):
        net(torch.as_tensor(pp.tokens))
    X = kept[0].numpy()
    labels = probe_targets(pp)["ratio"]
    # the control's seed as compare.probe draws it for (seed 4, k 3, first position, first target)
    s = fit_probe(X, labels, control_labels(control_types(pp, "q_y"), labels, seed=(4 * 1000 + 3) * 100),
                  split_prompts(100, 0.25, 4 + 3), seed=4)
    assert s.accuracy == pytest.approx(row["accuracy"]) and s.control_accuracy == pytest.approx(
        row["control_accuracy"])


def test_same_seed_same_tables(work, capsys):
    args = ["probe", "--ckpt", "tiny.pt", "--k", "2", "--prompts", "80", "--sites", "post", "--targets",
            "line,answer", *FAST]
    assert main([*args, "--out", "a"]) == 0 and main([*args, "--out", "b"]) == 0
    assert main([*args, "--out", "c", "--seed", "1"]) == 0
    capsys.readouterr()
    a, b, c = (pd.read_csv(work / d / "probes.csv") for d in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert (work / "a" / "prompts.csv").read_text() == (work / "b" / "prompts.csv").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--targets", "slope"], "--targets: unknown target 'slope'"),
    (["--sites", "L5.post"], "--sites: unknown site 'L5.post'"),
    (["--positions", "q_z"], "--positions: unknown position 'q_z'"),
    (["--k", "9"], "exceeds"),
    (["--k", "0"], "--k"),
    (["--prompts", "5"], "--prompts must be >= 20"),
    (["--test-share", "0.99"], "--test-share"),
    (["--C", "0"], "--C must be > 0"),
    (["--tasks", "9,9"], "outside Z_5^2"),
])
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    if "--k" not in argv:
        argv = [*argv, "--k", "2"]
    rc = main(["probe", "--ckpt", "tiny.pt", *argv, *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (work / "reports").exists()
