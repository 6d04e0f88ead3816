"""``compare inspect`` through compare.cli.main.main(argv): files, scores, manifest, errors."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from compare.cli.main import main
from model.testing import tiny_checkpoint


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


FIGURES = {"attention.png", "attention_shares.png", "pca_heads.png", "pca_heads_dlog.png", "embedding.png",
           "similarity_y.png", "similarity_z.png", "similarity_heads_y.png", "similarity_heads_z.png"}


def test_inspect_writes_a_complete_report(work, capsys):
    rc, out, err = _run(capsys, "inspect", "--ckpt", "tiny.pt", "--task", "2,3", "--k", "4", "--quiet")
    assert rc == 0, err
    folder = work / "reports" / "tiny-inspect"
    assert FIGURES | {"scores.csv", "manifest.json", "report.md", "report.html"} <= {p.name for p in folder.iterdir()}
    assert [p.name for p in (work / "reports").iterdir()] == ["tiny-inspect"]  # no temporary left
    man = json.loads((folder / "manifest.json").read_text())
    assert man["task"] == [2, 3] and man["k"] == 4 and man["layers"] == [0, 1] and man["p"] == 5
    assert len(man["fixed_examples"]) == 3 and man["generator"] == 2
    scores = pd.read_csv(folder / "scores.csv")
    assert set(scores["analysis"]) == {"attention", "head_pca", "embedding", "similarity"}
    circ = scores[scores["score"] == "circularity"]
    assert len(circ) == 2 * 2 and circ["value"].between(0, 1).all()
    html = (folder / "report.html").read_text()
    assert all(f'src="{f}"' in html for f in FIGURES) and "circularity" in html


def test_layers_and_sequences_choose_what_is_analysed(work, capsys):
    rc, _, err = _run(capsys, "inspect", "--ckpt", "tiny.pt", "--layers", "1", "--sequence", "2", "--seed", "4",
                      "--no-head-maps", "--out", "one", "--quiet")
    assert rc == 0, err
    man = json.loads((work / "one" / "manifest.json").read_text())
    from compare.engine.grid import build_sequences

    assert man["layers"] == [1] and man["sequence"] == build_sequences(5, man["k"], n_random=2, seed=4)[2].tolist()
    assert not (work / "one" / "similarity_heads_y.png").exists()
    scores = pd.read_csv(work / "one" / "scores.csv")
    assert set(scores.loc[scores["analysis"] != "embedding", "layer"]) == {1}


@pytest.mark.parametrize("argv, message", [
    (["--task", "5,1"], "outside Z_5^2"),
    (["--task", "1,2;3,4"], "give one task"),
    (["--k", "8"], "k = 8 is outside 2..7"),
    (["--k", "1"], "outside 2..7"),
    (["--layers", "2"], "no layer 2 (the model has layers 0..1)"),
    (["--layers", "a"], "expected 'all' or layer numbers"),
    (["--sequence", "zero"], "expected 'authors' or a number"),
    (["--sequence", "-1"], "N must be >= 1"),
    (["--out", "/proc/nope/x"], ""),
])
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    rc, _, err = _run(capsys, "inspect", "--ckpt", "tiny.pt", "--quiet", *argv)
    assert rc == 2 and err.count("\n") == 1 and err.startswith("compare: error: ") and message in err, err
    assert not (work / "reports").exists()


@pytest.mark.slow
def test_a_paper_d4_shaped_checkpoint_at_p29(tmp_path, capsys, monkeypatch):
    """Random weights of the paper's d = 4 shape: p = 29, d_model 512, 4 heads, 32 examples."""
    monkeypatch.chdir(tmp_path)
    tiny_checkpoint(tmp_path / "big.pt", p=29, n_base_tasks=96, d_model=512, n_layer=4, n_head=4, n_examples=32)
    rc, _, err = _run(capsys, "inspect", "--ckpt", "big.pt", "--k", "3", "--layers", "0,3", "--no-head-maps", "--quiet")
    assert rc == 0, err
    scores = pd.read_csv(tmp_path / "reports" / "big-inspect" / "scores.csv")
    assert len(scores[scores["score"] == "circularity"]) == 2 * 4
    assert json.loads((tmp_path / "reports" / "big-inspect" / "manifest.json").read_text())["generator"] == 2
