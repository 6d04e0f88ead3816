"""`compare runs`: the table and figures over training run folders."""
import pandas as pd

from compare.cli.main import main
from model.checkpoint import load_checkpoint

FAST = ["--preset", "smoke", "--steps", "6", "--eval-every", "3", "--eval-sequences", "8", "--d-model", "16",
        "--n-head", "2", "--no-progress", "--threads", "1"]


def test_runs_table_over_two_runs(tmp_path, capsys):
    for name, depth in [("d2", "2"), ("d4", "4")]:
        assert main(["train", *FAST, "--n-layer", depth, "--out", str(tmp_path / name)]) == 0
    out = tmp_path / "table"
    assert main(["runs", str(tmp_path / "d2"), str(tmp_path / "d4"), "--out", str(out)]) == 0
    table = pd.read_csv(out / "runs.csv")
    assert list(table.run) == ["d2", "d4"] and list(table.n_layer) == [2, 4]
    assert (table.step == 6).all() and table.finished.all()
    assert (table.n_tasks == 4 * table.n_base_tasks + table.n_random_tasks).all()
    setting = load_checkpoint(tmp_path / "d2" / "final.pt").setting
    pre, p = set(setting.pretrain_tasks), setting.p
    mates = [sum(((c * a) % p, (c * b) % p) in pre for c in range(1, p))
             for a, b in setting.ood_tasks if (a, b) != (0, 0)]
    assert table.ood_min_line_mates[0] == min(mates)
    names = {p.name for p in out.iterdir()}
    assert {"runs.md", "ood_test_over_steps_acc.png", "curves_d2.png", "curves_d4.png"} <= names


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["runs", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_a_checkpoint_with_its_history_stands_for_its_run(tmp_path):
    assert main(["train", *FAST, "--out", str(tmp_path / "r")]) == 0
    out = tmp_path / "table"
    assert main(["runs", str(tmp_path / "r" / "final.pt"), str(tmp_path / "r"), "--out", str(out)]) == 0
    table = pd.read_csv(out / "runs.csv")
    assert list(table.run) == ["final", "r"]
    by_file, by_folder = table.iloc[0], table.iloc[1]
    for col in ("step", "n_tasks", "d_model", "chance_loss", "min_train_loss", "id_train_last"):
        assert by_file[col] == by_folder[col], col
    assert (out / "plateaus.png").is_file()


def test_a_checkpoint_without_history_is_one_line(tmp_path, capsys):
    from model.checkpoint import save_checkpoint

    assert main(["train", *FAST, "--out", str(tmp_path / "r")]) == 0
    ck = load_checkpoint(tmp_path / "r" / "final.pt")
    bare = save_checkpoint(tmp_path / "bare.pt", ck.model_config, ck.train_config, ck.setting, ck.state_dict,
                           step=ck.step)
    assert main(["runs", str(bare), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "carries no training history" in err and len(err.splitlines()) == 1


def test_bundled_checkpoints_by_name(tmp_path, capsys):
    out = tmp_path / "table"
    assert main(["runs", "d2.pt", "d4.pt", "--out", str(out)]) == 0
    table = pd.read_csv(out / "runs.csv")
    assert list(table.run) == ["d2", "d4"] and list(table.p) == [7, 11]
    assert (table.plateau_exit_step > 0).all() and (table.min_train_loss < table.chance_loss - 0.1).all()
    assert main(["runs", "nope.pt", "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_a_folder_the_suite_did_not_write_is_refused_and_kept(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "runs.csv").write_text("my table\n")
    assert main(["runs", "d2.pt", "--out", str(mine)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (mine / "runs.csv").read_text() == "my table\n" and len(list(mine.iterdir())) == 1


def test_a_rerun_replaces_only_the_suites_files(tmp_path, capsys):
    out = tmp_path / "table"
    assert main(["runs", "d2.pt", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("keep")
    assert main(["runs", "d2.pt", "--out", str(out)]) == 0  # the same runs: replaced in place
    assert main(["runs", "d4.pt", "--out", str(out)]) == 2  # other runs: only with --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["runs", "d4.pt", "--out", str(out), "--overwrite"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "notes.txt" in names and "curves_d4.png" in names and "curves_d2.png" not in names
