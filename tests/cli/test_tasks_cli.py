"""`compare tasks` through main(argv): summaries, JSON, and bad input."""
import json

from compare.cli.main import main


def test_authors_replay_json_has_the_released_task_set(capsys):
    assert main(["tasks", "--authors-replay", "--p", "29", "--base-tasks", "96", "--seed", "1",
                 "--split-seed", "0", "--alpha", "0.8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["p"] == 29 and len(d["pretrain_tasks"]) == 384 and len(d["ood_tasks"]) == 256
    assert d["pretrain_tasks"][:6] == [[4, 21], [20, 2], [28, 9], [26, 28], [2, 6], [9, 0]]
    assert d["input_order"][:8] == [533, 145, 643, 231, 669, 408, 272, 484]
    assert d["n_train_inputs"] == 673


def test_summary_from_a_checkpoint(tmp_path, capsys):
    from model.testing import tiny_checkpoint

    ck = tiny_checkpoint(tmp_path / "t.pt")
    assert main(["tasks", "--ckpt", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "p = 5" in out and "pre-training tasks: 8" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        (["tasks", "--authors-replay", "--p", "12"], "p must be a prime"),
        (["tasks", "--authors-replay", "--p", "29", "--alpha", "1.5"], "alpha"),
        (["tasks", "--ckpt", str(tmp_path / "none.pt")], "checkpoint not found"),
        (["tasks"], "one of the arguments"),
        (["nosuchcommand"], "invalid choice"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
