"""The checkpoint-backed predictor: KV-cache grid answers equal full recomputation."""
import numpy as np
import pytest

from algos.prompts import make_examples, query_grid, random_sequences
from algos.solvers.base import Predictor
from model.checkpoint import load_checkpoint
from model.predictor import ModelPredictor


@pytest.mark.parametrize("k", [1, 2, 5, 7])
def test_grid_with_prefix_reuse_equals_full_recomputation(tiny_ckpt, k):
    ck = load_checkpoint(tiny_ckpt)
    mp = ModelPredictor(ck, device="cpu", batch_prefixes=3)
    p = ck.setting.p
    tasks = np.array([[a, b] for a in range(p) for b in range(p)])[::3]
    ex = make_examples(p, tasks, random_sequences(p, 1, 7, seed=k)[0], k)
    fast = mp.predict_grid(ex, query_grid(p))
    slow = Predictor.predict_grid(mp, ex, query_grid(p))  # one full forward per (prefix, query)
    assert fast.probs.shape == (len(tasks), p * p, p)
    # two different computations (cached prefix vs. full forward): fp32 rounding of each, ~1e-6
    np.testing.assert_allclose(fast.probs, slow.probs, atol=2e-5)
    assert np.allclose(fast.probs.sum(-1), 1, atol=1e-5)
    assert (fast.pred == fast.probs.argmax(-1)).all()


def test_queries_in_any_order_and_subset(tiny_ckpt):
    ck = load_checkpoint(tiny_ckpt)
    mp = ModelPredictor(ck, device="cpu")
    p = ck.setting.p
    ex = make_examples(p, np.array([[1, 2], [3, 4]]), random_sequences(p, 1, 4, seed=0)[0], 4)
    grid = query_grid(p)
    order = np.random.default_rng(0).permutation(len(grid))[:7]
    full = mp.predict_grid(ex, grid)
    part = mp.predict_grid(ex, grid[order])
    # another number of queries is another matmul shape, so another kernel blocking on some
    # CPUs: logits move by ~1e-7 (fp32 rounding over d_model terms), probabilities by less
    np.testing.assert_allclose(part.probs, full.probs[:, order], atol=1e-6)


def test_k_beyond_the_checkpoint_is_refused(tiny_ckpt):
    ck = load_checkpoint(tiny_ckpt)
    mp = ModelPredictor(ck, device="cpu")
    p = ck.setting.p
    ex = make_examples(p, np.array([[1, 2]]), random_sequences(p, 1, ck.max_k + 1, seed=0)[0], ck.max_k + 1)
    with pytest.raises(ValueError, match="exceeds what this checkpoint supports"):
        mp.predict_grid(ex, query_grid(p))
