"""Ablated models: the KV-cache grid path equals an independent full forward with the same ablation.

Two references, neither using :mod:`model.ablation`'s own hooks or means:

- ``hooked_forward``: a plain full forward of ``model.gpt.GPT`` over every token of every
  prompt, the ablation applied by forward hooks written here; for mean ablation the means
  come from ``GPT.run_with_cache`` over the same full prompts;
- ``weights_forward``: the decoder rewritten from the state dict (LayerNorm, RoPE on
  adjacent pairs, causal softmax attention, ReLU MLP, tied head) in float64, zero ablation
  applied inline.

Tolerances: the grid path and a full forward are different computations (cached prefix
vs. all tokens, other matmul shapes), so probabilities agree to fp32 rounding, ~1e-6;
``atol=1e-5`` leaves room and is still far below any effect of an ablation (which moves
probabilities by 1e-3 or more even on a random model, checked below).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from algos.prompts import make_examples, query_grid, random_sequences
from model.ablation import (
    AblatedPredictor,
    Ablation,
    Component,
    all_ablations,
    parse_ablation,
    parse_ablations,
    prompt_means,
)
from model.checkpoint import load_checkpoint
from model.predictor import ModelPredictor
from model.testing import tiny_checkpoint

ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Many tiny matmuls: one thread is 30x faster than two fighting a busy core for them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """Random weights, 3 layers x 2 heads (so a middle layer exists), p = 5."""
    path = tiny_checkpoint(tmp_path_factory.mktemp("abl") / "tiny3.pt", n_layer=3, n_head=2, seed=1)
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def base(ckpt):
    return ModelPredictor(ckpt, device="cpu", batch_prefixes=4)


@pytest.fixture(scope="module")
def prompts(ckpt):
    """A small comparison: 6 tasks x 2 sequences, k in (1, 3, 6), all p^2 queries."""
    p = ckpt.setting.p
    tasks = np.array([[1, 2], [3, 4], [0, 1], [2, 2], [4, 0], [1, 3]])
    sequences = random_sequences(p, 2, 6, seed=5)
    return tasks, sequences, (1, 3, 6)


def _tokens(ex: np.ndarray, queries: np.ndarray) -> torch.Tensor:
    """Every (prefix, query) prompt as one token row: ex (n, k, 3), queries (q, 2) -> (n*q, 3k+2)."""
    n, k, _ = ex.shape
    q = len(queries)
    return torch.as_tensor(np.concatenate([np.repeat(ex.reshape(n, 3 * k), q, 0), np.tile(queries, (n, 1))], 1))


# ---------------------------------------------------------------------- references
_HOOK = {"head": "attn.hook_z", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}


def reference_means(net, tasks, sequences, k, p) -> dict[str, torch.Tensor]:
    """Per hook point, its mean output over all full prompts of one k (run_with_cache), at each position."""
    names = [f"blocks.{i}.{s}" for i in range(len(net.blocks)) for s in _HOOK.values()]
    sums, n = {}, 0
    for seq in sequences:
        toks = _tokens(make_examples(p, tasks, seq, k), query_grid(p))
        _, cache = net.run_with_cache(toks, names)
        for name in names:
            act = cache[name].double()
            if name.endswith("hook_z"):  # (B, T, H, hd) -> (B, H, T, hd), the layout the means keep
                act = act.transpose(1, 2)
            sums[name] = sums.get(name, 0) + act.sum(0)  # (H, T, hd) or (T, C)
        n += len(toks)
    return {name: (s / n).float() for name, s in sums.items()}


def hooked_forward(net, ablation: Ablation, tokens: torch.Tensor, p: int, means=None) -> np.ndarray:
    """Softmax over residues at the last position of a full GPT forward, ablated by forward hooks."""

    def hook(c: Component):
        name = f"blocks.{c.layer}.{_HOOK[c.kind]}"

        def fn(_m, _inp, out):
            out = out.clone()
            repl = 0.0 if means is None else means[name]
            if c.kind == "head":
                out[:, :, c.head] = repl if means is None else repl[c.head]  # out (B, T, H, hd), mean (H, T, hd)
            else:
                out[:] = repl  # (B, T, C)
            return out

        return name, fn

    with torch.no_grad(), net.hooks([hook(c) for c in ablation.components]):
        logits, _ = net(tokens)
    return torch.softmax(logits[:, -1, :p].float(), -1).numpy()


def weights_forward(sd: dict, cfg, ablation: Ablation, tokens: torch.Tensor) -> np.ndarray:
    """The decoder rewritten from its weights in float64, zero ablation applied inline."""
    W = {k: v.double() for k, v in sd.items()}
    B, T = tokens.shape
    H, hd = cfg.n_head, cfg.d_model // cfg.n_head
    heads = {(c.layer, c.head) for c in ablation.components if c.kind == "head"}
    whole = {(c.layer, c.kind) for c in ablation.components if c.kind != "head"}

    def ln(x, name):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + cfg.ln_eps) * W[name + ".weight"] + W[name + ".bias"]

    # RoPE: channel pair (2j, 2j+1) at position t rotated by t * base^(-2j/hd)
    freq = cfg.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None]  # (T, hd/2)
    cos, sin = ang.cos(), ang.sin()

    def rope(x):  # (B, H, T, hd)
        a, b = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    h = W["wte.weight"][tokens]  # (B, T, C)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg.n_layer):
        pre = f"blocks.{i}."
        qkv = ln(h, pre + "ln_1") @ W[pre + "attn.qkv.weight"].T  # (B, T, 3C)
        q, k, v = (t.reshape(B, T, H, hd).transpose(1, 2) for t in qkv.split(cfg.d_model, -1))
        q, k = rope(q), rope(k)
        att = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(~causal, float("-inf")).softmax(-1)
        z = att @ v  # (B, H, T, hd)
        for hh in range(H):
            if (i, hh) in heads:
                z[:, hh] = 0.0
        a = z.transpose(1, 2).reshape(B, T, -1) @ W[pre + "attn.o.weight"].T
        if (i, "attn") not in whole:
            h = h + a
        m = torch.relu(ln(h, pre + "ln_2") @ W[pre + "mlp.fc.weight"].T) @ W[pre + "mlp.proj.weight"].T
        if (i, "mlp") not in whole:
            h = h + m
    logits = ln(h, "ln_f") @ W["wte.weight"].T  # tied head
    return torch.softmax(logits[:, -1, : cfg.p], -1).numpy()


SETS = ["L0H1", "L1H0+L2H1", "L1attn", "L2mlp", "L0H0+L1mlp+L2attn", "L0H0+L0H1", "L0attn+L1H1"]


def _grid_probs(pred, tasks, sequences, k, p) -> np.ndarray:
    """(n_seq * n_tasks * q, p) from the grid path, in the row order of _tokens."""
    return np.concatenate([pred.predict_grid(make_examples(p, tasks, seq, k), query_grid(p)).probs.reshape(-1, p)
                           for seq in sequences])


def _full_tokens(tasks, sequences, k, p) -> torch.Tensor:
    return torch.cat([_tokens(make_examples(p, tasks, seq, k), query_grid(p)) for seq in sequences])


# ---------------------------------------------------------------------- grid path == references
@pytest.mark.parametrize("name", SETS)
def test_zero_ablation_grid_path_equals_hooked_full_forward(ckpt, base, prompts, name):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    ab = parse_ablation(name, ckpt.model_config.n_layer, ckpt.model_config.n_head)
    pred = AblatedPredictor(ckpt, ab, "zero", device="cpu", batch_prefixes=4, net=base.net)
    for k in ks:
        fast = _grid_probs(pred, tasks, sequences, k, p)
        ref = hooked_forward(base.net, ab, _full_tokens(tasks, sequences, k, p), p)
        np.testing.assert_allclose(fast, ref, atol=ATOL)
        _same_argmax_except_near_ties(fast, ref)


@pytest.mark.parametrize("name", SETS[:4])
def test_zero_ablation_equals_the_decoder_rewritten_from_its_weights(ckpt, base, prompts, name):
    tasks, sequences, _ = prompts
    p = ckpt.setting.p
    ab = parse_ablation(name, ckpt.model_config.n_layer, ckpt.model_config.n_head)
    pred = AblatedPredictor(ckpt, ab, "zero", device="cpu", net=base.net)
    fast = _grid_probs(pred, tasks, sequences, 3, p)
    ref = weights_forward(ckpt.state_dict, ckpt.model_config, ab, _full_tokens(tasks, sequences, 3, p))
    np.testing.assert_allclose(fast, ref, atol=ATOL)  # float64 reference: only the fp32 side rounds


@pytest.mark.parametrize("name", SETS)
def test_mean_ablation_grid_path_equals_hooked_full_forward_with_cached_means(ckpt, base, prompts, name):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    means = prompt_means(base, tasks, sequences, ks)
    assert means.n_prompts == {k: len(tasks) * len(sequences) * p * p for k in ks}
    ab = parse_ablation(name, ckpt.model_config.n_layer, ckpt.model_config.n_head)
    pred = AblatedPredictor(ckpt, ab, "mean", means=means, device="cpu", batch_prefixes=4, net=base.net)
    for k in ks:
        ref_means = reference_means(base.net, tasks, sequences, k, p)
        fast = _grid_probs(pred, tasks, sequences, k, p)
        ref = hooked_forward(base.net, ab, _full_tokens(tasks, sequences, k, p), p, ref_means)
        np.testing.assert_allclose(fast, ref, atol=ATOL)
        _same_argmax_except_near_ties(fast, ref)


def test_first_pass_means_equal_cached_means_of_the_full_prompts(ckpt, base, prompts):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    means = prompt_means(base, tasks, sequences, ks)
    for k in ks:
        ref = reference_means(base.net, tasks, sequences, k, p)
        for (site, layer), m in means.by_k[k].items():
            assert m.shape == ref[f"blocks.{layer}.{site}"].shape
            # sums of ~1e3 fp32 activations of size ~1: agreement to ~1e-6
            torch.testing.assert_close(m, ref[f"blocks.{layer}.{site}"], atol=1e-5, rtol=0)


def test_full_recomputation_predict_applies_the_same_ablation(ckpt, base, prompts):
    """The predictor's own pointwise path (hooks) agrees with its grid path, both modes."""
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    means = prompt_means(base, tasks, sequences, ks)
    ab = parse_ablation("L0H1+L1mlp", 3, 2)
    ex = make_examples(p, tasks, sequences[0], 3)
    grid = query_grid(p)
    for mode in ("zero", "mean"):
        pred = AblatedPredictor(ckpt, ab, mode, means=means, device="cpu", net=base.net)
        fast = pred.predict_grid(ex, grid)
        slow = pred.predict(np.repeat(ex, len(grid), 0), np.tile(grid, (len(ex), 1)))
        np.testing.assert_allclose(fast.probs.reshape(-1, p), slow.probs, atol=ATOL)


def _same_argmax_except_near_ties(a: np.ndarray, b: np.ndarray, tie: float = 1e-4) -> None:
    """Arg-maxes agree wherever the top two probabilities are more than ``tie`` apart."""
    top2 = np.sort(b, -1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > tie
    assert (a.argmax(-1)[clear] == b.argmax(-1)[clear]).all()


# ---------------------------------------------------------------------- none, and not vacuous
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_none_is_the_plain_model_exactly(ckpt, base, prompts, mode):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    means = prompt_means(base, tasks, sequences, ks) if mode == "mean" else None
    pred = AblatedPredictor(ckpt, Ablation("none"), mode, means=means, device="cpu", batch_prefixes=4)
    assert pred.name == base.name == "model"
    ex = make_examples(p, tasks, sequences[1], 6)
    a, b = pred.predict_grid(ex, query_grid(p)), base.predict_grid(ex, query_grid(p))
    assert np.array_equal(a.probs, b.probs) and np.array_equal(a.pred, b.pred)


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_every_single_component_changes_the_output(ckpt, base, prompts, mode):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    means = prompt_means(base, tasks, sequences, ks) if mode == "mean" else None
    ex = make_examples(p, tasks, sequences[0], 6)
    plain = base.predict_grid(ex, query_grid(p)).probs
    for ab in all_ablations(3, 2):
        pred = AblatedPredictor(ckpt, ab, mode, means=means, device="cpu", net=base.net)
        moved = np.abs(pred.predict_grid(ex, query_grid(p)).probs - plain).max()
        assert moved > 100 * ATOL, f"{ab.name} ({mode}) moved probabilities by only {moved:.1e}"


def test_mean_mode_refuses_a_k_it_has_no_means_for(ckpt, base, prompts):
    tasks, sequences, _ = prompts
    means = prompt_means(base, tasks, sequences, (1,))
    pred = AblatedPredictor(ckpt, parse_ablation("L0mlp", 3, 2), "mean", means=means, device="cpu", net=base.net)
    with pytest.raises(ValueError, match="no activation means for k = 2"):
        pred.predict_grid(make_examples(5, tasks, sequences[0], 2), query_grid(5))


def test_mean_mode_needs_means_and_modes_are_checked(ckpt):
    with pytest.raises(ValueError, match="needs activation means"):
        AblatedPredictor(ckpt, parse_ablation("L0H0", 3, 2), "mean", device="cpu")
    with pytest.raises(ValueError, match="unknown ablation mode 'resample'"):
        AblatedPredictor(ckpt, parse_ablation("L0H0", 3, 2), "resample", device="cpu")
    with pytest.raises(ValueError, match="does not exist"):
        AblatedPredictor(ckpt, Ablation("L5H0", (Component("head", 5, 0),)), device="cpu")


# ---------------------------------------------------------------------- names
def test_names_parse_to_components_canonically():
    ab = parse_ablation(" l1h0 + L2MLP+L0attn ", 3, 2)
    assert ab.name == "L1H0+L2mlp+L0attn"
    assert ab.components == (Component("head", 1, 0), Component("mlp", 2), Component("attn", 0))
    assert parse_ablation("none", 3, 2).is_none
    assert [a.name for a in parse_ablations("L0H1,L2attn,L0H1,L0H0+L1H1", 3, 2)] == ["L0H1", "L2attn", "L0H0+L1H1"]
    names = [a.name for a in parse_ablations("all", 2, 3)]
    assert names == ["L0H0", "L0H1", "L0H2", "L0attn", "L0mlp", "L1H0", "L1H1", "L1H2", "L1attn", "L1mlp"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("L9H0", "L9H0: layer 9 is out of range (the checkpoint has layers 0..2)"),
        ("L0H99", "L0H99: head 99 is out of range (the checkpoint has heads 0..1 per layer)"),
        ("L3mlp", "layer 3 is out of range"),
        ("mlp", "unknown component 'mlp'"),
        ("L0", "unknown component 'L0'"),
        ("H1", "unknown component 'H1'"),
        ("L0H1+", "'L0H1+': empty member in the set"),
        ("L-1H0", "unknown component 'L-1H0'"),
        ("L0H1,,L1H0", "empty component name"),
        ("L0H1+none", "'none' cannot be part of a set"),
        ("L0H1+l0h1", "L0H1 appears twice"),
    ],
)
def test_bad_names_are_one_line_value_errors(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_ablations(spec, 3, 2)
    assert "\n" not in str(info.value)
