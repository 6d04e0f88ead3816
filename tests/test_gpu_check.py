"""benchmarks/gpu_check.py in its reduced form (toy sizes, the CPU), so the GPU check cannot rot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_reduced_on_cpu(capsys, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("gpu_check", None)
    import gpu_check

    rc = gpu_check.main(["--reduced", "--device", "cpu"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert rc == 0 and result["ok"]
    assert result["parity"]["max_abs_dp_fp32"] == 0.0  # CPU against CPU
    assert 0.0 <= result["parity"]["bf16_flip_rate"] < 0.1
    assert result["resume"]["max_abs_weight_diff"] == 0.0 and result["resume"]["resumed_step"] == 40
    assert result["ablate"]["plain_rows_equal_run"]
    assert result["training"]["eager"]["loss_finite"]
