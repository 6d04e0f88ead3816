"""``compare patch`` through compare.cli.main.main(argv): files, rows rerun by hand, rates, errors, determinism."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_testing import run_cli

from compare.cli.main import main
from model.checkpoint import load_checkpoint

FAST = ["--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def ckpt_dir(scaled_ckpt_dir: Path) -> Path:
    """Random weights scaled up 15x, so patches change answers."""
    return scaled_ckpt_dir



_run = run_cli


@pytest.fixture(scope="module", params=["task", "example-line"])
def patch_run(request, ckpt_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("patch")
    os.link(ckpt_dir / "tiny.pt", work / "tiny.pt")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        rc = main(["patch", "--ckpt", "tiny.pt", "--k", "2,3", "--design", request.param, "--prompts", "30", *FAST])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return request.param, work / "reports" / f"tiny-patch-{request.param}", work / "tiny.pt"


def test_patch_writes_a_complete_folder(patch_run):
    design, folder, _ = patch_run
    names = {p.name for p in folder.iterdir()}
    assert {"patching.csv", "prompts.csv", "patched.parquet", "heads_k2.png", "heads_k3.png", "layers_k2.png",
            "layers_k3.png", "manifest.json", "report.md", "report.html"} <= names
    man = json.loads((folder / "manifest.json").read_text())
    comps = ["L0resid", "L0H0", "L0H1", "L0attn", "L0mlp", "L1resid", "L1H0", "L1H1", "L1attn", "L1mlp"]
    assert man["tool"] == "compare patch" and man["patching"]["design"] == design
    assert man["patching"]["components"] == comps
    assert man["patching"]["positions"] == ["ex_x", "ex_y", "ex_z", "q_x", "q_y"]
    assert man["patching"]["position_index"]["ex_z"]["3"] == [2, 5, 8]
    assert man["counts"]["prompts"] == 60 and man["counts"]["patched_rows"] == 60 * 10 * 5
    prompts = pd.read_csv(folder / "prompts.csv")
    assert len(prompts) == 60 and prompts["prompt"].is_unique
    assert {"base_tokens", "source_tokens", "ratio_matching_base", "modular_regression_source", "model_base",
            "model_source", "ld_base", "ld_source", "z_base", "z_source"} <= set(prompts.columns)
    table = pd.read_csv(folder / "patching.csv")
    assert not table.duplicated(["k", "component", "position", "split"]).any()
    assert set(table["split"]) <= {"all", "id", "ood"}
    assert len(table[table.split == "all"]) == 2 * 10 * 5
    for col in ("iia_ratio_matching", "iia_modular_regression", "follows_source", "ld_recovered", "changed"):
        vals = table[col].dropna()
        assert ((vals >= -1e9) & (vals <= 1e9)).all()
        if col != "ld_recovered":
            assert vals.between(0, 1).all()
    if design == "example-line":  # Ratio Matching's answer changes (none -> answer), Modular Regression's does not
        assert (table["n_cf_ratio_matching"][table.split == "all"] == 30).all()
        assert (table["n_cf_modular_regression"][table.split == "all"] == 0).all()
        assert table["iia_modular_regression"].isna().all()
    # patches change answers somewhere on a random model
    assert (table["changed"] > 0).any()


def test_rates_recomputed_from_the_per_prompt_rows(patch_run):
    _, folder, _ = patch_run
    prompts = pd.read_csv(folder / "prompts.csv").set_index("prompt")
    patched = pd.read_parquet(folder / "patched.parquet")
    table = pd.read_csv(folder / "patching.csv")
    row = table[(table.split == "all")].iloc[7]
    sel = patched[(patched.component == row.component) & (patched.position == row.position) & (patched.k == row.k)]
    pr = prompts.loc[sel["prompt"]]
    pred = sel["pred"].to_numpy()
    assert row.changed == pytest.approx((pred != pr["model_base"].to_numpy()).mean(), abs=1e-6)
    cf = (pr["ratio_matching_source"] >= 0) & (pr["ratio_matching_source"] != pr["ratio_matching_base"])
    hit = pred[cf.to_numpy()] == pr["ratio_matching_source"].to_numpy()[cf.to_numpy()]
    assert (np.isnan(row.iia_ratio_matching) and not cf.any()) or row.iia_ratio_matching == pytest.approx(hit.mean(),
                                                                                                             abs=1e-6)
    np.testing.assert_array_equal(sel["agrees_modular_regression_source"].to_numpy(),
                                  pred == pr["modular_regression_source"].to_numpy())


def test_any_row_can_be_rerun_by_hand(patch_run):
    """The tokens in prompts.csv and a plain hooked forward give the patched prediction of patched.parquet."""
    _, folder, ckpt_path = patch_run
    net = load_checkpoint(ckpt_path).build_model("cpu")
    prompts = pd.read_csv(folder / "prompts.csv").set_index("prompt")
    patched = pd.read_parquet(folder / "patched.parquet")
    man = json.loads((folder / "manifest.json").read_text())
    rng = np.random.default_rng(0)
    for i in rng.choice(len(patched), size=12, replace=False):
        r = patched.iloc[int(i)]
        pr = prompts.loc[r.prompt]
        base = torch.tensor([[int(t) for t in pr.base_tokens.split()]])
        source = torch.tensor([[int(t) for t in pr.source_tokens.split()]])
        hook = man["patching"]["hooks"][r.component]
        pos = man["patching"]["position_index"][r.position][str(r.k)]
        module = dict(net.named_modules())[hook]
        kept: dict[str, torch.Tensor] = {}

        def keep(_m, _i, out, kept=kept):
            kept["a"] = out.detach().clone()

        h = module.register_forward_hook(keep)
        with torch.no_grad():
            net(source)
        h.remove()

        def put(_m, _i, out, pos=pos, r=r, kept=kept):
            out = out.clone()
            if r.kind == "head":
                out[:, pos, int(r["head"])] = kept["a"][:, pos, int(r["head"])]
            else:
                out[:, pos] = kept["a"][:, pos]
            return out

        h = module.register_forward_hook(put)
        with torch.no_grad():
            logits = net(base)[0][0, -1, : man["p"]]
        h.remove()
        assert int(logits.argmax()) == int(r.pred)
        with torch.no_grad():
            assert int(net(base)[0][0, -1, : man["p"]].argmax()) == int(pr.model_base)


def test_same_seed_same_tables(work, capsys):
    def args(seed: int) -> list[str]:
        return ["patch", "--ckpt", "tiny.pt", "--k", "3", "--design", "query", "--components", "L0H1,L1mlp,L0resid",
                "--positions", "q_x,q_y,all", "--prompts", "25", "--seed", str(seed), *FAST]

    assert _run(capsys, *args(4), "--out", "a")[0] == 0
    assert _run(capsys, *args(4), "--out", "b")[0] == 0
    assert _run(capsys, *args(5), "--out", "c")[0] == 0
    for name in ("patching.csv", "prompts.csv"):
        assert (work / "a" / name).read_bytes() == (work / "b" / name).read_bytes()
    assert (work / "a" / "prompts.csv").read_bytes() != (work / "c" / "prompts.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(work / "a" / "patched.parquet"),
                                  pd.read_parquet(work / "b" / "patched.parquet"))
    table = pd.read_csv(work / "a" / "patching.csv")
    # the residual stream entering block 0 at every position is the source prompt itself
    row = table[(table.component == "L0resid") & (table.position == "all") & (table.split == "all")].iloc[0]
    assert row.n_follows > 0 and row.follows_source == 1.0
    assert row.ld_recovered == pytest.approx(1.0, abs=1e-4)


def test_example_line_off_and_tasks(work, capsys):
    rc, out, err = _run(capsys, "patch", "--ckpt", "tiny.pt", "--k", "4", "--design", "example-line-off",
                        "--components", "L0resid", "--positions", "all", "--tasks", "ood", "--prompts", "20", *FAST)
    assert rc == 0, err
    folder = work / "reports" / "tiny-patch-example-line-off"
    table = pd.read_csv(folder / "patching.csv")
    prompts = pd.read_csv(folder / "prompts.csv")
    assert set(prompts["split"]) == {"ood"} and (prompts["ratio_matching_source"] == -1).all()
    row = table[table.split == "all"].iloc[0]
    assert row.follows_source == 1.0 or np.isnan(row.follows_source)  # the whole source prompt: the source's answer
    assert row.n_cf_ratio_matching == 0
    assert "20 prompt pairs" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--design", "labels"], "--design: unknown design 'labels'"),
        (["--components", "L9H0"], "--components: L9H0: layer 9 is out of range (the checkpoint has layers 0..1)"),
        (["--components", "L0H9"], "--components: L0H9: head 9 is out of range"),
        (["--components", "mlp"], "--components: unknown component 'mlp'"),
        (["--positions", "q_z"], "--positions: unknown position 'q_z'"),
        (["--k", "1..8"], "k = 8 exceeds the 7 examples the checkpoint's context allows"),
        (["--k", "0"], "--k: k must be >= 1, got 0"),
        (["--prompts", "0"], "--prompts must be >= 1"),
        (["--tasks", "5,0"], "task (5,0) is outside Z_5^2"),
        (["--out", "tiny.pt"], "exists and is not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    base = ["patch", "--ckpt", "tiny.pt", "--prompts", "5", *FAST]
    if "--k" not in argv:
        base += ["--k", "2"]
    rc, _, err = _run(capsys, *base, *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("compare: error: "), err
    assert message in err
    assert not (work / "reports").exists()


def test_api_matches_the_command(work, capsys):
    import compare

    args = ["patch", "--ckpt", "tiny.pt", "--k", "2", "--components", "L0H0", "--prompts", "10", *FAST]
    assert _run(capsys, *args, "--out", "cli")[0] == 0
    res = compare.patch("tiny.pt", k=2, components="L0H0", prompts=10)
    res.write_report(work / "api")
    assert (work / "api" / "patching.csv").read_bytes() == (work / "cli" / "patching.csv").read_bytes()
    assert 0 <= res.rate("L0H0", "q_y", 2, "changed") <= 1
    with pytest.raises(compare.InputError, match="no row"):
        res.rate("L1H0", "q_y", 2)
    assert compare.PatchResult.__doc__ and compare.patch.__doc__
