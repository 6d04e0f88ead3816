"""The model's prefixes of every example sequence in one call (the GPU path) give the same
cells as one call per sequence (the CPU path), and far fewer calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from algos.solvers import reference_solvers
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences, select_tasks
from model.predictor import ModelPredictor
from model.testing import tiny_checkpoint


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    from model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("bs") / "tiny.pt", p=5, n_examples=8))


def test_one_call_per_k_gives_the_same_cells(ck):
    setting = ck.setting
    tasks = select_tasks(setting, "all")
    seqs = build_sequences(5, 4, n_random=3, seed=2)
    refs = reference_solvers(setting)
    per_seq = ModelPredictor(ck, device="cpu", batch_prefixes=None, batch_sequences=False)
    batched = ModelPredictor(ck, device="cpu", batch_prefixes=None, batch_sequences=True)
    a = run_comparison(setting, tasks, seqs, (1, 3, 4), per_seq, refs).cells
    b = run_comparison(setting, tasks, seqs, (1, 3, 4), batched, refs).cells
    # answers equal; probabilities equal to float rounding (batch shapes may change summation order)
    pd.testing.assert_frame_equal(
        a.drop(columns=[c for c in a.columns if c.startswith(("p_", "kl_", "ce_", "tv_"))]),
        b.drop(columns=[c for c in b.columns if c.startswith(("p_", "kl_", "ce_", "tv_"))]),
    )
    num = [c for c in a.columns if c.startswith(("p_", "kl_", "ce_", "tv_"))]
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-4, atol=1e-6)
    assert batched.stats["calls"] * 4 == per_seq.stats["calls"]  # 4 sequences: one call per k, not per (s, k)
    assert batched.stats["prefixes"] == per_seq.stats["prefixes"]


def test_out_of_memory_halves_the_batch_and_retries(ck, monkeypatch):
    import torch

    pred = ModelPredictor(ck, device="cpu", batch_prefixes=8)
    real = pred._grid_chunk
    sizes = []

    def fragile(ex, q):
        sizes.append(len(ex))
        if len(ex) > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(ex, q)

    monkeypatch.setattr(pred, "_grid_chunk", fragile)
    examples = np.zeros((7, 2, 3), dtype=np.int64)
    queries = np.array([[x, y] for x in range(5) for y in range(5)])
    out = pred.predict_grid(examples, queries)
    assert out.probs.shape == (7, 25, 5)
    assert sizes[:3] == [7, 4, 2] and pred.stats["oom_retries"] == 2
    assert pred.batch_for(2, 25) == 2  # later calls start from the size that fitted
