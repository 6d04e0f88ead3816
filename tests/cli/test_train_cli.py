"""`compare train` through main(argv): a run folder, overrides, resumption, bad input."""
from compare.cli.main import main
from model.checkpoint import load_checkpoint

FAST = ["--steps", "8", "--eval-every", "4", "--save-every", "4", "--eval-sequences", "8", "--no-progress"]


def test_train_writes_a_self_describing_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--out", str(out), "--d-model", "32", "--n-head", "2", *FAST]) == 0
    ck = load_checkpoint(out / "final.pt")
    assert ck.step == 8 and ck.model_config.d_model == 32
    assert "compare train --preset smoke" in ck.meta["command"]
    assert ck.meta["wall_clock_seconds"] >= 0
    assert set(ck.meta["final_accuracy"]) == {"id_train", "id_test", "ood_train", "ood_test"}
    assert "wrote" in capsys.readouterr().out


def test_stop_and_resume_from_the_cli(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--out", str(out), "--stop-at", "4", *FAST]) == 0
    assert load_checkpoint(out / "last.pt").step == 4 and not (out / "final.pt").exists()
    assert main(["train", "--preset", "smoke", "--out", str(out), *FAST]) == 0
    assert load_checkpoint(out / "final.pt").step == 8


def test_bad_input(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (["train", "--preset", "nope", "--out", str(tmp_path / "a")], "unknown preset"),
        (["train", "--preset", "smoke", "--out", str(blocker / "sub"), *FAST], str(blocker)),
        (["train", "--preset", "smoke", "--p", "9", "--out", str(tmp_path / "b"), *FAST], "p must be a prime"),
        (["train", "--preset", "smoke", "--batch-size", "7", "--out", str(tmp_path / "c"), *FAST], "multiple of"),
        (["train", "--preset", "smoke", "--device", "tpu", "--out", str(tmp_path / "d"), *FAST], "unknown device"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
