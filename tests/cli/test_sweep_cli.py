"""`compare sweep`: sequential points, a SLURM array, collection, bad input."""
from compare.cli.main import main

TINY = ["--", "--steps", "4", "--eval-every", "2", "--eval-sequences", "8", "--d-model", "16", "--n-head", "2",
        "--threads", "1"]


def test_sequential_sweep_collects_a_phase_diagram(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--base-tasks", "1,2", "--alpha", "0.6", "--out", str(out), *TINY]) == 0
    assert {"n4_a0.6", "n8_a0.6", "phases.csv", "phases.png", "phases.md"} <= {p.name for p in out.iterdir()}
    text = (out / "phases.csv").read_text()
    assert text.count("\n") == 3 and "phase" in text.splitlines()[0]
    # collecting again (e.g. after more points finished) rebuilds from the run folders alone
    assert main(["sweep", "--base-tasks", "1,2,3", "--alpha", "0.6", "--out", str(out), "--collect"]) == 0
    assert (out / "phases.csv").read_text().count("\n") == 3


def test_slurm_mode_writes_a_job_array_and_trains_nothing(tmp_path):
    out = tmp_path / "sweep"
    assert main(["sweep", "--base-tasks", "1,2", "--alpha", "0.4,0.8", "--out", str(out), "--scheduler", "slurm",
                 *TINY]) == 0
    commands = (out / "commands.txt").read_text().splitlines()
    assert len(commands) == 4 and all(c.startswith("compare train --preset smoke") for c in commands)
    assert "#SBATCH --array=0-3" in (out / "sweep.sbatch").read_text()
    assert not any(p.is_dir() for p in out.iterdir())


def test_bad_input(tmp_path, capsys):
    for argv, message in [
        (["sweep", "--base-tasks", "x", "--out", str(tmp_path)], "--base-tasks"),
        (["sweep", "--base-tasks", "1", "--alpha", "1.5", "--out", str(tmp_path)], "--alpha"),
        (["sweep", "--base-tasks", "1", "--out", str(tmp_path), "--", "--out", "x"], "set by the sweep"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
