"""Data-parallel training under torchrun (gloo on CPU) equals one process."""
import os
import subprocess
import sys

import pytest
import torch

from model.checkpoint import load_checkpoint

ARGS = ["train", "--preset", "smoke", "--steps", "12", "--eval-every", "6", "--save-every", "6",
        "--eval-sequences", "16", "--warmup-steps", "3", "--no-progress", "--threads", "1"]


def _run(cmd, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_two_gloo_processes_equal_one(tmp_path):
    _run([sys.executable, "-m", "compare", *ARGS, "--out", str(tmp_path / "one")], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "compare", *ARGS, "--out", str(tmp_path / "two"), "--device", "cpu"], tmp_path)
    one = load_checkpoint(tmp_path / "one" / "final.pt")
    two = load_checkpoint(tmp_path / "two" / "final.pt")
    assert two.meta["world_size"] == 2 and one.meta["world_size"] == 1
    for k, v in one.state_dict.items():
        torch.testing.assert_close(two.state_dict[k], v, rtol=1e-4, atol=1e-5, msg=k)
    assert [h["step"] for h in two.history] == [h["step"] for h in one.history]
    assert abs(two.history[-1]["id_train"]["loss"] - one.history[-1]["id_train"]["loss"]) < 1e-4
