"""The analyses on a random-weight model: prompt sets, attention shares, PCA, Pearson maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from algos.prompts import query_grid
from algos.tasks import task_labels
from interp.activations import collect
from interp.attention import attention_maps, head_attention_shares
from interp.pca import embedding_pca, head_pca
from interp.prompts import shot_prompts, token_labels
from interp.similarity import similarity_maps
from model.config import ModelConfig
from model.gpt import GPT

P = 7


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return GPT(ModelConfig(p=P, vocab_size=P, d_model=32, n_head=2, n_layer=2, n_examples=8)).eval()


@pytest.fixture(scope="module")
def prompts():
    return shot_prompts(P, (3, 5), np.array([[1, 2], [4, 0], [6, 6], [2, 5]]), 4)


def test_shot_prompts_share_the_prefix_and_run_over_every_query(prompts):
    tokens = prompts.tokens
    assert tokens.shape == (P * P, 12)
    assert (tokens[:, :9] == tokens[0, :9]).all()  # three fixed examples, labelled by the task
    assert tokens[0, :3].tolist() == [1, 2, (3 * 1 + 5 * 2) % P]
    np.testing.assert_array_equal(tokens[:, 9:11], query_grid(P))  # rows in order x·p + y
    np.testing.assert_array_equal(tokens[:, 11], task_labels(P, np.array([[3, 5]]), query_grid(P))[0])
    assert (prompts.pos_x, prompts.pos_y, prompts.pos_z) == (9, 10, 11)
    assert token_labels(2) == ["x1", "y1", "z1", "x2", "y2", "z2"]
    assert shot_prompts(P, (1, 1), np.zeros((0, 2)), 1).tokens.shape == (P * P, 3)
    with pytest.raises(ValueError, match="needs 3 before it"):
        shot_prompts(P, (1, 1), np.zeros((2, 2), dtype=int), 4)


def test_collect_keeps_the_asked_positions_of_each_layout(net, prompts):
    cache = collect(net, prompts.tokens, {"blocks.1.attn.hook_result": [9, 10], "blocks.0.attn.hook_pattern": [11],
                                          "blocks.1.hook_resid_post": [10]}, batch=13)
    _, full = net.run_with_cache(torch.as_tensor(prompts.tokens))
    # batches of 13 against one batch of 49: another matmul shape, fp32 rounding only
    np.testing.assert_allclose(cache["blocks.1.attn.hook_result"], full["blocks.1.attn.hook_result"][:, 9:11].numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(cache["blocks.0.attn.hook_pattern"],
                               full["blocks.0.attn.hook_pattern"][:, :, 11:12].numpy(), atol=1e-6)
    assert cache["blocks.1.hook_resid_post"].shape == (P * P, 1, 32)


def test_attention_maps_are_causal_distributions(net, prompts):
    maps = attention_maps(net, prompts.tokens[5], [0, 1])
    assert maps.shape == (2, 2, 12, 12)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(maps, 1) == 0)


def test_head_shares_recognise_a_previous_token_head(net, prompts):
    T = prompts.tokens.shape[1]
    prev = torch.zeros(T, T)
    prev[0, 0] = 1.0
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1.0  # every query on the token before

    def force(_m, _i, out):
        out = out.clone()
        out[:, 1] = prev  # head 1 of layer 0 becomes a previous-token head
        return out

    with net.hooks([("blocks.0.attn.hook_pattern", force)]):
        shares = head_attention_shares(net, prompts.tokens, [0, 1])
    row = shares[(shares["layer"] == 0) & (shares["head"] == 1)].iloc[0]
    assert row["previous"] == pytest.approx(1.0) and row["self"] == 0 and row["kind"] == "previous"
    # a z query's previous token is a y, never a z: a third of the positions t >= 3 are z tokens
    assert row["same_role"] == 0
    assert set(shares.columns) >= {"previous", "same_role", "z_tokens", "self", "kind"}
    values = shares[["previous", "same_role", "z_tokens", "self"]]
    assert ((values >= 0) & (values <= 1 + 1e-6)).all().all()


def test_head_pca_matches_a_direct_computation(net, prompts):
    out = head_pca(net, prompts, [0, 1])
    assert out.coords.shape == (2, 2, P * P, 3) and out.variance.shape == (2, 2, 3)
    _, cache = net.run_with_cache(torch.as_tensor(prompts.tokens))
    feats = cache["blocks.1.attn.hook_result"][:, [9, 10], 0].reshape(P * P, -1).double().numpy()  # head 0
    feats -= feats.mean(0)
    _, s, vt = np.linalg.svd(feats, full_matrices=False)
    direct = feats @ vt[:2].T
    for j in range(2):  # components are defined up to sign
        a, b = out.coords[1, 0, :, j], direct[:, j]
        np.testing.assert_allclose(np.abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)), 1.0, atol=1e-4)
    np.testing.assert_allclose(out.variance[1, 0, :2], (s[:2] ** 2) / (s**2).sum(), atol=1e-5)
    assert set(out.scores["rings_by"]) <= {"x", "y"} and out.scores["circularity"].between(0, 1).all()
    assert out.generator == 3  # the smallest primitive root mod 7


def test_embedding_pca_and_similarity_maps(net, prompts):
    emb = embedding_pca(net, P)
    assert emb.coords.shape == (P, 3)
    assert set(emb.scores) == {"planarity", "parity_r2", "planarity_null", "parity_r2_null"}
    sims = similarity_maps(net, prompts, [0, 1])
    assert set(sims.maps) == {(0, "y"), (0, "z"), (1, "y"), (1, "z")} and len(sims.head_maps) == 8
    m = sims.maps[(1, "y")]
    assert m.shape == (P * P, P * P) and np.allclose(np.diag(m), 1, atol=1e-5) and np.allclose(m, m.T, atol=1e-6)
    assert len(sims.scores) == 2 * 2 + 2 * 2 * 2  # (layer, position) + (layer, head, position)
    only_layers = similarity_maps(net, prompts, [1], heads=False)
    assert not only_layers.head_maps and len(only_layers.scores) == 2
