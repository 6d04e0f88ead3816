"""Golden numbers for a tiny p: cells, summary and attribution of a fixed run.

Regenerate (after an intended change, and review the diff) with
``ICL_REGEN_GOLDEN=1 python -m pytest tests/compare/test_golden.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compare_stand_ins import NoisyModel

from algos.solvers import ModularRegression, reference_solvers
from algos.tasks import TaskSetting
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences, select_tasks
from compare.engine.summary import compute_all

GOLDEN = Path(__file__).parent / "golden"
P = 5
GOLDEN_TASKS = [(0, 0), (1, 3), (4, 2)]


@pytest.fixture(scope="module")
def run():
    setting = TaskSetting.build(P, n_base_tasks=2, alpha=0.6, task_seed=1, split_seed=0)
    tasks = select_tasks(setting, "all")
    seqs = build_sequences(P, 3, n_random=1, seed=0)
    model = NoisyModel(ModularRegression(P), strength=1.5, noise=1.5)
    result = run_comparison(setting, tasks, seqs, (1, 2, 3), model, reference_solvers(setting))
    tables = compute_all(result.cells, P, n_boot=200, seed=0)
    keep = np.zeros(len(result.cells), dtype=bool)
    for a, b in GOLDEN_TASKS:
        keep |= (result.cells["task_a"] == a).to_numpy() & (result.cells["task_b"] == b).to_numpy()
    return {"cells": result.cells[keep].reset_index(drop=True), "summary": tables.summary,
            "attribution": tables.attribution}


@pytest.mark.parametrize("name", ["cells", "summary", "attribution"])
def test_matches_golden(run, name):
    path = GOLDEN / f"p5_{name}.csv"
    got = run[name]
    if os.environ.get("ICL_REGEN_GOLDEN"):
        got.to_csv(path, index=False, float_format="%.9g")
    want = pd.read_csv(path)
    got = pd.read_csv(pd.io.common.StringIO(got.to_csv(index=False, float_format="%.9g")))
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        if pd.api.types.is_numeric_dtype(want[col]):
            np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-5, atol=1e-7,
                                       equal_nan=True, err_msg=f"{name}.{col}")
        else:
            assert (got[col].astype(str) == want[col].astype(str)).all(), f"{name}.{col}"
