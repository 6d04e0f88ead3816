"""``compare trajectory``: every snapshot scored as ``compare run`` scores it, and the crossings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compare.cli.main import main
from compare.engine.crossings import crossings

FAST = ["--quiet", "--threads", "1", "--n-boot", "20"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "smoke"
    rc = main(["train", "--preset", "smoke", "--steps", "60", "--eval-every", "20", "--save-every", "20",
               "--eval-sequences", "16", "--snapshots", "5,20,60", "--no-progress", "--threads", "1",
               "--out", str(out)])
    assert rc == 0
    return out


def test_trajectory_scores_every_snapshot_like_compare_run(run_dir, tmp_path, capsys):
    rc = main(["trajectory", str(run_dir), "--k", "1,3", "--tasks", "1,2;0,4;3,3", "--out", str(tmp_path / "t"), *FAST])
    assert rc == 0, capsys.readouterr().err
    t = tmp_path / "t"
    assert {"trajectory.csv", "crossings.csv", "trajectory_k1.png", "trajectory_k3.png", "manifest.json",
            "report.md", "report.html"} <= {p.name for p in t.iterdir()}
    table = pd.read_csv(t / "trajectory.csv")
    assert sorted(table["step"].unique()) == [5, 20, 60]
    last = table[table["step"] == 60].drop(columns="step").reset_index(drop=True)
    rc = main(["run", "--ckpt", str(run_dir / "snapshots" / "step-0000060.pt"), "--k", "1,3", "--tasks", "1,2;0,4;3,3",
               "--out", str(tmp_path / "r"), *FAST])
    assert rc == 0
    direct = pd.read_csv(tmp_path / "r" / "summary.csv")
    pd.testing.assert_frame_equal(last[direct.columns], direct, check_exact=False, rtol=1e-5)  # CSV rounding only
    cross = pd.read_csv(t / "crossings.csv")
    assert set(cross["threshold"]) == {0.5, 0.9} and len(cross) == 2 * len(table.groupby(["split", "k", "predictor"]))


def test_crossings_find_the_first_step_at_or_above_each_threshold():
    table = pd.DataFrame({"step": [10, 20, 40, 80] * 2, "split": "ood", "k": 4,
                          "predictor": ["ratio_matching"] * 4 + ["model"] * 4,
                          "agreement": [0.2, 0.5, 0.95, 0.7, np.nan, np.nan, np.nan, np.nan],
                          "accuracy": [0.1, 0.1, 0.1, 0.1, 0.3, 0.6, 0.8, 0.85]})
    c = crossings(table).set_index(["predictor", "threshold"])["step"]
    assert c[("ratio_matching", 0.5)] == 20 and c[("ratio_matching", 0.9)] == 40
    assert c[("model", 0.5)] == 20 and np.isnan(c[("model", 0.9)])


def test_bad_input(run_dir, tmp_path, capsys):
    for argv, message in [([str(tmp_path / "nope")], "no such run folder"), ([str(tmp_path)], "no snapshots"),
                          ([str(run_dir), "--every", "0"], "--every must be >= 1"),
                          ([str(run_dir), "--k", "99"], "exceeds")]:
        if "--k" not in argv:
            argv = [*argv, "--k", "2"]
        rc = main(["trajectory", *argv, "--out", str(tmp_path / "x"), *FAST])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err, (argv, err)
    assert not (tmp_path / "x").exists()
