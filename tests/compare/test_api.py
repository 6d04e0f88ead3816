"""The library: every command's work as a call that returns data, equal to what the command writes."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

import compare
from compare.cli.main import main
from model.testing import tiny_checkpoint

FAST = ["--threads", "1", "--n-boot", "50", "--quiet"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("api") / "tiny.pt", p=5, n_examples=8)


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue()


def test_compare_checkpoint_equals_the_folder_compare_run_writes(ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--ckpt", str(ckpt), "--k", "1..3", "--sequences", "1", "--out", "cli", *FAST]) == 0
    res = compare.compare_checkpoint(ckpt, k=range(1, 4), sequences=1, n_boot=50)
    assert res.complete and res.folder is None
    for name, table in [("summary", res.summary), ("attribution", res.attribution), ("tasks", res.tasks),
                        ("sequences", res.sequences)]:
        assert _csv(table) == (tmp_path / "cli" / f"{name}.csv").read_text(), name
    # the in-memory cells are the folder's cells, task by task
    from compare.storage.folder import read_cells

    pd.testing.assert_frame_equal(res.cells().reset_index(drop=True), read_cells(tmp_path / "cli"),
                                  check_dtype=False)
    # write_report makes the folder compare run makes
    out = res.write_report(tmp_path / "api")
    for name in ("summary.csv", "attribution.csv", "tasks.csv", "sequences.csv", "report.md"):
        a, b = (tmp_path / "api" / name).read_text(), (tmp_path / "cli" / name).read_text()
        if name == "report.md":  # the pages name the folder and the argv
            a, b = a.splitlines()[5:], b.splitlines()[5:]
        assert a == b, name
    # and a finished folder reads back as the same result
    back = compare.open_report(out)
    assert _csv(back.summary) == _csv(res.summary)
    assert back.accuracy("ood", 3) == pytest.approx(res.accuracy("ood", 3))


def test_results_hold_cells_per_task_and_bounded_when_asked(ckpt):
    res = compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4", n_boot=0)
    one = res.cells((0, 4))
    assert set(map(tuple, one[["task_a", "task_b"]].drop_duplicates().to_numpy().tolist())) == {(0, 4)}
    assert len(res.cells()) == 2 * 25
    lean = compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4", n_boot=0, keep_cells=False)
    assert _csv(lean.summary) == _csv(res.summary)
    with pytest.raises(ValueError, match="kept no cells"):
        lean.cells()


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be >= 1"),
    ({"k": "9"}, "exceeds the 7 examples"),
    ({"k": 2, "tasks": [(5, 0)]}, "outside Z_5^2"),
    ({"k": 2, "solvers": "oracle"}, "unknown solver 'oracle'"),
    ({"k": 2, "sequences": -1}, "must be >= 0"),
])
def test_bad_values_raise_one_usage_error(ckpt, kwargs, message):
    with pytest.raises(compare.InputError, match=message.replace("(", r"\(").replace("^", r"\^")):
        compare.compare_checkpoint(ckpt, **kwargs)


def test_k_accepts_int_string_and_iterables(ckpt):
    ck = compare.load(ckpt)
    for k in (3, "3", [3], range(3, 4)):
        assert compare.comparison_inputs(ck, k).ks == (3,)
    assert compare.comparison_inputs(ck, "1..3").ks == (1, 2, 3)


def test_solvers_by_name(ckpt):
    ck = compare.load(ckpt)
    assert [s.name for s in compare.solvers(ck.setting, ["modular_regression"])] == ["modular_regression"]
    assert len(compare.solvers(ck.setting)) == 6


def test_ablate_returns_the_table_compare_ablate_writes(ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--k", "2", "--components", "L0H0,L1mlp", "--n-boot", "20"]
    assert main(["ablate", "--ckpt", str(ckpt), *args, "--out", "cli", "--quiet"]) == 0
    res = compare.ablate(ckpt, k=2, components="L0H0,L1mlp", n_boot=20)
    assert list(res.table["component"].unique()) == ["none", "L0H0", "L1mlp"]
    assert _csv(res.table) == (tmp_path / "cli" / "ablation.csv").read_text()


def test_inspect_returns_scores(ckpt, tmp_path):
    res = compare.inspect_checkpoint(ckpt, task=(1, 2), k=3, layers=[0])
    assert {"attention", "head_pca", "embedding", "similarity"} <= set(res.scores["analysis"])
    assert res.manifest["task"] == [1, 2] and res.manifest["layers"] == [0]
    out = res.write_report(tmp_path / "ins")
    assert (out / "scores.csv").is_file() and (out / "report.html").is_file()
    with pytest.raises(compare.InputError, match="no layer 5"):
        compare.inspect_checkpoint(ckpt, layers=[5])


def test_public_names_are_documented():
    for name in compare.__all__:
        obj = getattr(compare, name)
        assert obj.__doc__, name


def test_precision_is_part_of_the_runs_identity(ckpt, tmp_path):
    """bf16 gives another manifest and config hash; an fp32 folder refuses bf16 cells."""
    fp32 = compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4", n_boot=0, out=tmp_path / "f")
    bf16 = compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4", n_boot=0, precision="bf16", out=tmp_path / "b")
    assert fp32.manifest["precision"] == "fp32" and bf16.manifest["precision"] == "bf16"
    assert fp32.manifest["config_hash"] != bf16.manifest["config_hash"]
    with pytest.raises(compare.InputError, match="different configuration"):
        compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4", n_boot=0, precision="bf16", out=tmp_path / "f")
    # auto is fp32 on every device: the same folder resumes
    again = compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4", n_boot=0, precision="auto", out=tmp_path / "f")
    assert again.manifest["config_hash"] == fp32.manifest["config_hash"]
    with pytest.raises(compare.InputError, match="--precision"):
        compare.compare_checkpoint(ckpt, k=2, precision="fp16")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ablate_plain_rows_equal_run_in_every_precision(ckpt, precision):
    run = compare.compare_checkpoint(ckpt, k=2, tasks="1,2;0,4;3,3", n_boot=20, precision=precision)
    abl = compare.ablate(ckpt, k=2, tasks="1,2;0,4;3,3", components="L0H0", n_boot=20, precision=precision)
    none = abl.table[abl.table["component"] == "none"].set_index(["split", "k"])
    model = run.summary[run.summary["predictor"] == "model"].set_index(["split", "k"])
    pd.testing.assert_series_equal(none["model_accuracy"], model["accuracy"], check_names=False)
