"""``compare run`` through compare.cli.main.main(argv): files, manifest, errors, atomicity, determinism."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from compare.cli.main import main
from compare.storage.folder import read_cells

FAST = ["--threads", "1", "--n-boot", "50", "--quiet"]




def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_run_writes_a_complete_folder(work, capsys):
    rc, out, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "1..3", "--sequences", "1", "--csv", *FAST)
    assert rc == 0, err
    folder = work / "reports" / "tiny"
    assert f"wrote {folder}" in out
    names = {p.name for p in folder.iterdir()}
    assert {"cells", "cells.csv", "summary.csv", "attribution.csv", "manifest.json", "report.md",
            "report.html", "curves.png", "attribution.png", "agreement_id.png", "agreement_ood.png"} <= names
    assert sum(n.startswith("grid_") for n in names) == 6
    assert sorted(p.name for p in work.iterdir()) == ["reports", "tiny.pt"]  # nothing else left behind
    assert [p.name for p in (work / "reports").iterdir()] == ["tiny"]

    man = json.loads((folder / "manifest.json").read_text())
    ck = torch.load(work / "tiny.pt", weights_only=True)
    assert man["argv"][:5] == ["run", "--ckpt", "tiny.pt", "--k", "1..3"]
    assert man["checkpoint"]["sha256"] == hashlib.sha256((work / "tiny.pt").read_bytes()).hexdigest()
    assert man["setting_fingerprint"] == ck["task_setting"]["fingerprint"]
    assert man["p"] == 5 and man["ks"] == [1, 2, 3]
    assert man["pretrain_tasks"] == ck["task_setting"]["pretrain_tasks"]
    assert man["ood_tasks"] == ck["task_setting"]["ood_tasks"]
    assert len(man["sequences"]) == 2 and all(len(s) == 3 and all(len(xy) == 2 for xy in s) for s in man["sequences"])
    assert {"numpy", "torch", "pandas", "icl-modgrok"} <= set(man["versions"])
    assert man["timings"]["total_seconds"] > 0

    cells = read_cells(folder)
    assert pd.read_csv(folder / "cells.csv").shape == cells.shape
    n_tasks = len(man["pretrain_tasks"]) + len(man["ood_tasks"])
    assert len(cells) == n_tasks * 2 * 3 * 25
    for col in ("task_a", "task_b", "split", "input_split", "sequence", "k", "x", "y", "z_true", "pred_model",
                "p_true_model", "pred_ratio_matching", "pred_modular_regression", "pred_bayes_memorized",
                "pred_bayes_uniform"):
        assert col in cells.columns
    # sequences in the manifest are the inputs the cells were computed from: the first k
    # example inputs of each sequence, labelled, are what the solvers saw
    s0 = man["sequences"][0]
    rm_k1 = cells[(cells.sequence == 0) & (cells.k == 1) & (cells.pred_ratio_matching != -1)]
    x1, y1 = s0[0]
    for x, y in rm_k1[["x", "y"]].drop_duplicates().to_numpy():
        assert any(((c * x1) % 5, (c * y1) % 5) == (x, y) for c in range(5))
    summary = pd.read_csv(folder / "summary.csv")
    assert set(summary["predictor"]) >= {"model", "ratio_matching", "modular_regression"}


def test_same_seed_same_cells(work, capsys):
    args = ["run", "--ckpt", "tiny.pt", "--k", "1,3", "--tasks", "1,2;0,4;3,3", "--sequences", "2", "--seed", "7"]
    assert _run(capsys, *args, "--out", "a", *FAST)[0] == 0
    assert _run(capsys, *args, "--out", "b", *FAST)[0] == 0
    files = {p.name: p.read_bytes() for p in sorted((work / "a" / "cells").iterdir())}
    assert files and files == {p.name: p.read_bytes() for p in sorted((work / "b" / "cells").iterdir())}
    args[-1] = "8"
    assert _run(capsys, *args, "--out", "c", *FAST)[0] == 0
    a = read_cells(work / "a")
    c = read_cells(work / "c")
    # exact by construction: the engine calls the model once per (task chunk, sequence, k), so
    # sequence 0's batches have the same shapes and values whatever the number of sequences
    assert a[a.sequence == 0].equals(c[c.sequence == 0])  # the authors' sequence does not move
    assert not a.equals(c)


def test_bundled_name_is_found_when_not_in_the_working_folder(tmp_path, monkeypatch, capsys, ckpt_dir):
    import model.checkpoint as mc

    bundled = tmp_path / "bundled"
    bundled.mkdir()
    os.link(ckpt_dir / "tiny.pt", bundled / "d4.pt")
    monkeypatch.setattr(mc, "bundled_dir", lambda: bundled)
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, out, err = _run(capsys, "run", "--ckpt", "d4.pt", "--k", "2", "--tasks", "ood", *FAST)
    assert rc == 0, err
    man = json.loads((work / "reports" / "d4" / "manifest.json").read_text())
    assert man["checkpoint"]["path"] == str((bundled / "d4.pt").resolve())


def _evil_checkpoint(path: Path, marker: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"kind": "icl-modgrok-checkpoint", "payload": Evil()}, path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--k", "0"], "--k: k must be >= 1, got 0"),
        (["--k", "5..2"], "--k: empty range '5..2'"),
        (["--k", "x"], "--k: 'x' is not an integer"),
        (["--k", "1..8"], "k = 8 exceeds the 7 examples the checkpoint's context allows"),
        (["--k", "2", "--tasks", "5,0"], r"task (5,0) is outside Z_5^2"),
        (["--k", "2", "--tasks", "1;2"], "cannot read task '1'"),
        (["--k", "2", "--tasks", "id;"], "cannot read task 'id'"),
        (["--k", "2", "--out", "tiny.pt/sub"], "cannot create output folder"),
        (["--k", "2", "--out", "tiny.pt"], "exists and is not a folder"),
        (["--k", "2", "--device", "tpu"], "unknown device"),
        (["--k", "2", "--solvers", "ratio_matching,oracle"], "unknown solver 'oracle'"),
        (["--k", "2", "--grid-tasks", "4,4;9,9"], "not among the tasks run"),
        (["--k", "2", "--sequences", "-1"], "--sequences must be >= 0"),
        (["--k", "3", "--examples", "1,1;2,2"], "--examples: k goes up to 3 but '1,1;2,2' gives only 2 input(s)"),
        (["--k", "2", "--examples", "1,1;2,5"], "--examples: input (2,5) is outside Z_5^2"),
        (["--k", "2", "--examples", "1,1;2"], "--examples: cannot read input '2'"),
        (["--k", "2", "--sequences", "0", "--no-authors-sequence"], "no example sequences"),
        (["--k", "2", "--n-boot", "-5"], "--n-boot must be >= 0"),
        (["--k"], "expected one argument"),
        ([], "the following arguments are required: --k"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(work, capsys, argv, message):
    rc, out, err = _run(capsys, "run", "--ckpt", "tiny.pt", *FAST, *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("compare: error: "), err
    assert message in err
    assert "Traceback" not in err
    assert not (work / "reports").exists()


def test_refuses_to_overwrite_a_folder_that_is_not_a_report(work, capsys):
    (work / "notes").mkdir()
    (work / "notes" / "todo.txt").write_text("keep me")
    rc, _, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "1", "--out", "notes", *FAST)
    assert rc == 2 and "it is not empty and holds no manifest.json" in err
    assert (work / "notes" / "todo.txt").read_text() == "keep me"
    rc, _, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "1", "--out", "notes", "--overwrite", *FAST)
    assert rc == 2 and (work / "notes" / "todo.txt").read_text() == "keep me"  # --overwrite replaces reports only


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "checkpoint not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(Path("tiny.pt").read_bytes()[:3000]), "not a readable checkpoint"),
        (lambda p: p.write_text("just some text\n"), "not a readable checkpoint"),
        (lambda p: torch.save({"w": torch.zeros(2)}, p), "bare state dict"),
        (lambda p: torch.save({"kind": "something-else"}, p), "not an icl-modgrok checkpoint"),
    ],
    ids=["missing", "empty", "truncated", "text", "state-dict", "foreign"],
)
def test_bad_checkpoints(work, capsys, make, message):
    path = work / "bad.pt"
    make(path)
    rc, _, err = _run(capsys, "run", "--ckpt", "bad.pt", "--k", "1", *FAST)
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (work / "reports").exists()


def test_malicious_pickle_is_refused_without_running(work, capsys):
    marker = work / "pwned"
    _evil_checkpoint(work / "evil.pt", marker)
    rc, _, err = _run(capsys, "run", "--ckpt", "evil.pt", "--k", "1", *FAST)
    assert rc == 2 and "refused" in err and err.count("\n") == 1, err
    assert not marker.exists()
    assert not (work / "reports").exists()


@pytest.mark.parametrize("form", ["torch.save", "raw pickle"])
def test_malicious_pickle_is_one_line_from_a_real_process(work, form):
    """What a user's terminal shows: pytest swallows warnings, a separate process does not."""
    import pickle
    import subprocess
    import sys

    marker = work / "pwned"
    if form == "torch.save":
        _evil_checkpoint(work / "evil.pt", marker)
    else:
        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        (work / "evil.pt").write_bytes(pickle.dumps({"kind": "icl-modgrok-checkpoint", "x": Evil()}, protocol=4))
    done = subprocess.run([sys.executable, "-m", "compare", "run", "--ckpt", "evil.pt", "--k", "1..8"],
                          cwd=work, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "refused" in done.stderr, done.stderr
    assert not marker.exists() and not (work / "reports").exists()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failure_midway_leaves_whole_files_that_a_rerun_completes(work, capsys, monkeypatch):
    """A run that fails leaves its manifest and whole task files, never a half-written file
    nor a temporary; the same command then resumes and finishes."""
    import compare.reports.run

    args = ["run", "--ckpt", "tiny.pt", "--k", "1..2", "--tasks", "1,1;2,3", *FAST]
    real = compare.reports.run.write_report

    def broken(*a, **k):
        real(*a, **k)  # the figures are written, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compare.reports.run, "write_report", broken)
    rc, _, err = _run(capsys, *args)
    assert rc == 2 and "No space left on device" in err
    folder = work / "reports" / "tiny"
    left = {p.name for p in folder.iterdir()}
    assert left == {"manifest.json", "cells"}, left  # no report file, no temporary
    assert sorted(p.name for p in (folder / "cells").iterdir()) == ["task-1-1.parquet", "task-2-3.parquet"]

    monkeypatch.setattr(compare.reports.run, "write_report", real)
    rc, out, err = _run(capsys, *args)
    assert rc == 0 and "0 task(s) computed, 2 already there" in out, err
    before = _tree(folder)
    assert "report.html" in before

    # another configuration into the same folder: refused, the folder untouched
    rc, _, err = _run(capsys, *args, "--sequences", "1")
    assert rc == 2 and "made by a different configuration" in err and "--overwrite" in err
    assert _tree(folder) == before
    assert [p.name for p in (work / "reports").iterdir()] == ["tiny"]
    rc, out, err = _run(capsys, *args, "--sequences", "1", "--overwrite")
    assert rc == 0 and "2 task(s) computed" in out, err
    assert len(read_cells(folder)) == 2 * 2 * 2 * 25


def test_interrupted_run_keeps_only_whole_files(work, capsys, monkeypatch):
    import compare.storage.cells

    real = compare.storage.cells.write_task
    calls = []

    def write_then_stop(*a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(compare.storage.cells, "write_task", write_then_stop)
    args = ["run", "--ckpt", "tiny.pt", "--k", "1..2", "--tasks", "1,1;2,3;4,0", *FAST, "--out", "elsewhere/run"]
    rc, _, err = _run(capsys, *args)
    assert rc == 130 and "interrupted" in err
    folder = work / "elsewhere" / "run"
    assert sorted(p.name for p in (folder / "cells").iterdir()) == ["task-1-1.parquet"]
    monkeypatch.setattr(compare.storage.cells, "write_task", real)
    rc, out, err = _run(capsys, *args)
    assert rc == 0 and "2 task(s) computed, 1 already there" in out, err


def test_given_example_sequences_follow_the_authors_and_precede_the_random_ones(work, capsys):
    base = ["run", "--ckpt", "tiny.pt", "--k", "1..3", *FAST, "--tasks", "ood"]
    assert _run(capsys, *base, "--sequences", "2", "--out", "plain")[0] == 0
    rc, _, err = _run(capsys, *base, "--sequences", "2", "--out", "given",
                      "--examples", "1,2;3,4;0,1;4,4", "--examples", "2,2;2,3;2,4")
    assert rc == 0, err
    plain = json.loads((work / "plain" / "manifest.json").read_text())
    given = json.loads((work / "given" / "manifest.json").read_text())
    seqs = given["sequences"]
    assert seqs[1] == [[1, 2], [3, 4], [0, 1]] and seqs[2] == [[2, 2], [2, 3], [2, 4]]  # cut to max k
    assert [seqs[0], *seqs[3:]] == plain["sequences"]  # the others are drawn as without them
    assert "sequences 1..2: given with --examples; sequences 3..4: uniform random" in given["sequences_note"]
    cells = read_cells(work / "given")
    assert sorted(cells["sequence"].unique()) == [0, 1, 2, 3, 4]


def test_label_noise_run_records_every_corruption_and_adds_its_sweeps(work, capsys):
    rc, _, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "2,4", "--tasks", "1,2;0,4;3,3", "--sequences", "1",
                      "--label-noise", "1", "--out", "noisy", *FAST)
    assert rc == 0, err
    folder = work / "noisy"
    man = json.loads((folder / "manifest.json").read_text())
    noise = man["label_noise"]
    assert noise["n_wrong"] == 1 and len(noise["shots"]) == 2 and all(1 <= s[0] <= 4 for s in noise["shots"])
    assert all(len(o[str(s[0])]) == 3 and all(1 <= u <= 4 for u in o[str(s[0])])
               for o, s in zip(noise["offsets"], noise["shots"], strict=True))
    cells = read_cells(folder)
    assert set(cells["n_wrong"]) <= {0, 1}
    assert {"noise_levels.csv", "noise_positions.csv", "noise_levels.png", "noise_positions.png"} <= {
        p.name for p in folder.iterdir()}
    assert "noise_positions.png" in (folder / "report.html").read_text()
    levels = pd.read_csv(folder / "noise_levels.csv")
    assert sorted(levels["n_wrong"].unique()) == [0, 1, 2]  # 0..k/2 at the largest k
    rc, _, err = _run(capsys, "report", str(folder), "--out", "rebuilt", "--n-boot", "10")
    assert rc == 0, err
    assert (work / "rebuilt" / "noise_positions.png").exists()  # a rebuild keeps the sweeps


@pytest.mark.parametrize("argv, message", [
    (["--label-noise", "1", "--label-noise-at", "2"], "not both"),
    (["--label-noise", "-1"], "--label-noise must be >= 0"),
    (["--label-noise", "5"], "do not fit in 4 shots"),
    (["--label-noise-at", "5"], "shot 5 is outside 1..4"),
])
def test_bad_label_noise(work, capsys, argv, message):
    rc, _, err = _run(capsys, "run", "--ckpt", "tiny.pt", "--k", "1..4", *argv, *FAST)
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (work / "reports").exists()
