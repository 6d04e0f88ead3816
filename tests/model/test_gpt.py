"""The decoder: causality, tied weights, initialization, hook points, loss mask."""
import math

import pytest
import torch

from model.config import ModelConfig
from model.gpt import GPT


def make(p=7, d=32, L=2, H=2, n=6, seed=0):
    torch.manual_seed(seed)
    return GPT(ModelConfig(p=p, vocab_size=p, d_model=d, n_head=H, n_layer=L, n_examples=n)).eval()


def test_changing_a_later_token_never_changes_earlier_logits():
    net = make()
    idx = torch.randint(0, 7, (3, 18))
    base, _ = net(idx)
    for t in [0, 5, 11, 17]:
        other = idx.clone()
        other[:, t] = (other[:, t] + 1) % 7
        logits, _ = net(other)
        # same shapes, same kernels: earlier rows are computed identically; 1e-6 only guards
        # against a kernel that mixes rows in its reductions
        assert torch.allclose(logits[:, :t], base[:, :t], atol=1e-6)
        assert not torch.allclose(logits[:, t:], base[:, t:])


def test_output_layer_is_tied_to_the_embedding():
    net = make()
    assert net.lm_head.weight is net.wte.weight
    assert net.num_params() == sum(p.numel() for p in set(net.parameters()))


def test_no_biases_in_linear_layers_and_paper_init():
    net = make(d=64, L=4)
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.bias is None
    proj = torch.cat([b.mlp.proj.weight.flatten() for b in net.blocks])
    fc = torch.cat([b.mlp.fc.weight.flatten() for b in net.blocks])
    assert fc.std().item() == pytest.approx(0.02, rel=0.05)
    assert proj.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)


def test_weight_decay_groups_cover_every_parameter_once():
    net = make()
    groups = net.param_groups(2.0)
    decayed = {id(p) for p in groups[0]["params"]}
    plain = {id(p) for p in groups[1]["params"]}
    assert id(net.wte.weight) in decayed
    assert all(id(b.ln_1.weight) in plain and id(b.ln_1.bias) in plain for b in net.blocks)
    assert decayed.isdisjoint(plain)
    assert len(decayed | plain) == len(set(map(id, net.parameters())))


def test_hook_points_expose_activations_without_changing_logits():
    net = make()
    idx = torch.randint(0, 7, (2, 12))
    plain, _ = net(idx)
    logits, cache = net.run_with_cache(idx)
    assert torch.allclose(logits, plain, atol=1e-5)
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert pattern.shape == (2, 2, 12, 12)
    assert torch.allclose(pattern.sum(-1), torch.ones(2, 2, 12), atol=1e-5)
    assert torch.all(pattern.triu(1) == 0)  # causal
    assert cache["blocks.1.attn.hook_z"].shape == (2, 12, 2, 16)  # (B, T, H, hd), TransformerLens's layout
    assert cache["blocks.1.attn.hook_q"].shape == cache["blocks.1.attn.hook_rot_q"].shape == (2, 12, 2, 16)
    assert cache["blocks.1.hook_resid_post"].shape == (2, 12, 32)
    # hooks are removed after the call
    assert not any(h._forward_hooks for h in net.hook_points().values())


def test_per_head_results_sum_to_the_attention_output_and_scores_give_the_pattern():
    net = make(H=4)
    idx = torch.randint(0, 7, (3, 12))
    _, cache = net.run_with_cache(idx)
    for layer in range(2):
        result = cache[f"blocks.{layer}.attn.hook_result"]
        assert result.shape == (3, 12, 4, 32)  # (B, T, H, C), TransformerLens's layout
        # fp32 sums of a few O(0.1) terms: 1e-6 covers the two summation orders
        torch.testing.assert_close(result.sum(2), cache[f"blocks.{layer}.hook_attn_out"], atol=1e-6, rtol=1e-5)
        z = cache[f"blocks.{layer}.attn.hook_z"]  # (B, T, H, hd)
        w = net.blocks[layer].attn.o.weight  # (C, H * hd)
        head2 = z[:, :, 2] @ w[:, 2 * 8:3 * 8].T  # head 2 alone through its columns of o
        torch.testing.assert_close(result[:, :, 2], head2, atol=1e-6, rtol=1e-5)
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"]
        assert scores.shape == (3, 4, 12, 12) and torch.isinf(scores.triu(1)[..., 0, 1:]).all()
        q = cache[f"blocks.{layer}.attn.hook_rot_q"].transpose(1, 2)  # (B, H, T, hd)
        k = cache[f"blocks.{layer}.attn.hook_rot_k"].transpose(1, 2)
        lower = torch.ones(12, 12, dtype=torch.bool).tril()
        torch.testing.assert_close(scores[..., lower], ((q @ k.transpose(-1, -2)) / 8 ** 0.5)[..., lower])
        torch.testing.assert_close(scores.softmax(-1), cache[f"blocks.{layer}.attn.hook_pattern"])


def test_hooking_one_head_result_changes_only_through_that_head():
    net = make(H=4)
    idx = torch.randint(0, 7, (2, 9))
    base, cache = net.run_with_cache(idx, ["blocks.0.attn.hook_z"])

    def drop_head_1(_m, _i, out):
        out = out.clone()
        out[:, :, 1] = 0
        return out

    def drop_z_1(_m, _i, out):
        out = out.clone()
        out[:, :, 1] = 0  # (B, T, H, hd)
        return out

    with net.hooks([("blocks.0.attn.hook_result", drop_head_1)]):
        via_result, _ = net(idx)
    with net.hooks([("blocks.0.attn.hook_z", drop_z_1)]):
        via_z, _ = net(idx)
    assert not torch.allclose(base, via_result)
    torch.testing.assert_close(via_result, via_z, atol=1e-5, rtol=1e-5)  # the same ablation, two routes


def test_a_hook_can_edit_activations_and_unknown_names_fail():
    net = make()
    idx = torch.randint(0, 7, (1, 9))
    base, _ = net(idx)
    with net.hooks([("blocks.0.hook_resid_pre", lambda m, i, o: o * 0)]):
        zeroed, _ = net(idx)
    assert not torch.allclose(base, zeroed)
    with pytest.raises(ValueError, match="no hook point named"):
        with net.hooks([("blocks.9.nothing", lambda m, i, o: o)]):
            pass


def test_loss_is_taken_only_where_targets_are_set():
    net = make()
    idx = torch.randint(0, 7, (2, 12))
    targets = torch.full((2, 12), -100)
    targets[:, 1::3] = idx[:, 2::3]
    logits, loss = net(idx, targets)
    manual = torch.nn.functional.cross_entropy(logits[:, 1::3].reshape(-1, 7), idx[:, 2::3].reshape(-1))
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)


def test_one_small_batch_overfits():
    torch.manual_seed(0)
    net = make(d=64).train()
    idx = torch.randint(0, 7, (4, 18))
    targets = torch.full_like(idx, -100)
    targets[:, 1::3] = idx[:, 2::3]
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for _ in range(150):
        _, loss = net(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
