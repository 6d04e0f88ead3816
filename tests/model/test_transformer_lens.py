"""The TransformerLens export, checked independently of our model code.

The reference forward below is written from TransformerLens's conventions (v3.5.1:
``components/embed.py``, ``layer_norm.py``, ``abstract_attention.py``, ``mlps/mlp.py``,
``unembed.py``), using only the exported names and shapes: W_E[tokens]; LayerNorm
``(x - mean) / sqrt(mean((x - mean)^2) + eps) * w + b``; per head q = x W_Q[h] + b_Q[h] (and k, v);
rotary on the first ``rotary_dim`` channels with TransformerLens's own tables (frequency
``base ** (j / (rotary_dim / 2))`` for pair j, each repeated twice in a row when
``rotary_adjacent_pairs``; angle = position / frequency) and its ``rotate_every_two`` (adjacent
pairs: (x0, x1) -> (-x1, x0)); scores q.k / sqrt(d_head), causal mask, softmax; z W_O summed
over heads + b_O; MLP relu(x W_in + b_in) W_out + b_out; final LayerNorm; x W_U + b_U. It never
calls :mod:`model.gpt`. Its logits must equal our model's.
"""
from __future__ import annotations

import math

import pytest
import torch

from model.checkpoint import load_checkpoint, resolve_checkpoint
from model.testing import tiny_checkpoint
from model.transformer_lens import KIND, export_transformer_lens, tl_config, to_transformer_lens

#: Fields of HookedTransformerConfig in TransformerLens v3.5.1 (config/transformer_lens_config.py and
#: config/hooked_transformer_config.py, read from the v3.5.1 tag of TransformerLensOrg/TransformerLens).
TL_351_FIELDS = set("""
NTK_by_parts_factor NTK_by_parts_high_freq_factor NTK_by_parts_low_freq_factor NTK_original_ctx_len act_fn
attention_dir attn_only attn_scale attn_scores_soft_cap attn_types checkpoint_index checkpoint_label_type
checkpoint_value d_head d_mlp d_model d_vocab d_vocab_out decoder_start_token_id default_prepend_bos device dtype eps
experts_per_token final_rms from_checkpoint gated_mlp init_mode init_weights initializer_range layer_norm_folding
model_name n_ctx n_devices n_heads n_key_value_heads n_layers n_params norm_topk_prob normalization_type num_experts
original_architecture output_logits_soft_cap parallel_attn_mlp positional_embedding_type post_embedding_ln
relative_attention_max_distance relative_attention_num_buckets rotary_adjacent_pairs rotary_base rotary_base_local
rotary_dim rotary_scaling_factor scale_attn_by_inverse_layer_idx seed tie_word_embeddings tokenizer_name
tokenizer_prepends_bos trust_remote_code ungroup_grouped_query_attention use_NTK_by_parts_rope use_attn_in
use_attn_result use_attn_scale use_hook_mlp_in use_hook_tokens use_local_attn use_normalization_before_and_after
use_qk_norm use_split_qkv_input use_yarn_rope uses_rms_norm window_size yarn_attention_factor yarn_beta_fast
yarn_beta_slow yarn_factor yarn_original_max_position_embeddings
""".split())


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return x / scale * w + b


def _rotary_tables(cfg: dict, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """As TransformerLens: float32 tables, float64 for a float64 model."""
    rd = cfg["rotary_dim"]
    high = torch.float64 if dtype == torch.float64 else torch.float32
    pos = torch.arange(n, dtype=high)
    dim = torch.arange(rd // 2, dtype=high)
    freq = cfg["rotary_base"] ** (dim / (rd / 2))
    freq = freq.repeat_interleave(2) if cfg["rotary_adjacent_pairs"] else torch.cat([freq, freq])
    angles = pos[:, None] / freq[None, :]
    return torch.sin(angles), torch.cos(angles)


def _rotate_every_two(x: torch.Tensor, adjacent: bool) -> torch.Tensor:
    rot = x.clone()
    if adjacent:
        rot[..., ::2] = -x[..., 1::2]
        rot[..., 1::2] = x[..., ::2]
    else:
        n = x.shape[-1] // 2
        rot[..., :n] = -x[..., n:]
        rot[..., n:] = x[..., :n]
    return rot


def _apply_rotary(x: torch.Tensor, cfg: dict) -> torch.Tensor:
    """x (batch, pos, head, d_head)."""
    rd = cfg["rotary_dim"]
    sin, cos = (t.to(x.dtype) for t in _rotary_tables(cfg, x.shape[1], x.dtype))
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    out = x_rot * cos[None, :, None, :] + _rotate_every_two(x_rot, cfg["rotary_adjacent_pairs"]) * sin[None, :, None, :]
    return torch.cat([out, x_pass], dim=-1)


def reference_logits(blob: dict, tokens: torch.Tensor) -> torch.Tensor:
    """TransformerLens's forward from the exported config and state dict: tokens (B, T) -> logits (B, T, V)."""
    cfg, sd = blob["config"], blob["state_dict"]
    assert (cfg["normalization_type"], cfg["act_fn"], cfg["positional_embedding_type"]) == ("LN", "relu", "rotary")
    eps, dh = cfg["eps"], cfg["d_head"]
    x = sd["embed.W_E"][tokens]  # (B, T, C)
    T = tokens.shape[1]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for layer in range(cfg["n_layers"]):
        b = f"blocks.{layer}."
        h = _layer_norm(x, sd[b + "ln1.w"], sd[b + "ln1.b"], eps)
        q = torch.einsum("bpm,hmd->bphd", h, sd[b + "attn.W_Q"]) + sd[b + "attn.b_Q"]
        k = torch.einsum("bpm,hmd->bphd", h, sd[b + "attn.W_K"]) + sd[b + "attn.b_K"]
        v = torch.einsum("bpm,hmd->bphd", h, sd[b + "attn.W_V"]) + sd[b + "attn.b_V"]
        q, k = _apply_rotary(q, cfg), _apply_rotary(k, cfg)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        scores = torch.where(causal, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
        pattern = scores.softmax(-1)
        z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)
        x = x + torch.einsum("bqhd,hdm->bqm", z, sd[b + "attn.W_O"]) + sd[b + "attn.b_O"]
        h = _layer_norm(x, sd[b + "ln2.w"], sd[b + "ln2.b"], eps)
        post = torch.relu(h @ sd[b + "mlp.W_in"] + sd[b + "mlp.b_in"])
        x = x + post @ sd[b + "mlp.W_out"] + sd[b + "mlp.b_out"]
    x = _layer_norm(x, sd["ln_final.w"], sd["ln_final.b"], eps)
    return x @ sd["unembed.W_U"] + sd["unembed.b_U"]


def _expected_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    C, H, dh, V, M = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_vocab"], cfg["d_mlp"]
    out = {"embed.W_E": (V, C), "ln_final.w": (C,), "ln_final.b": (C,), "unembed.W_U": (C, V), "unembed.b_U": (V,)}
    for layer in range(cfg["n_layers"]):
        b = f"blocks.{layer}."
        out.update({b + "ln1.w": (C,), b + "ln1.b": (C,), b + "ln2.w": (C,), b + "ln2.b": (C,),
                    b + "attn.W_Q": (H, C, dh), b + "attn.W_K": (H, C, dh), b + "attn.W_V": (H, C, dh),
                    b + "attn.W_O": (H, dh, C), b + "attn.b_Q": (H, dh), b + "attn.b_K": (H, dh),
                    b + "attn.b_V": (H, dh), b + "attn.b_O": (C,), b + "mlp.W_in": (C, M), b + "mlp.b_in": (M,),
                    b + "mlp.W_out": (M, C), b + "mlp.b_out": (C,)})
    return out


def _check(ck, n: int = 16, seed: int = 0) -> tuple[float, float]:
    """Max |logit difference| over n random full-length sequences: in float64 (both sides; atol
    1e-4, what remains is our RoPE tables, kept in float32) and in float32 (atol 5e-4: float32
    rounding of two different summation orders, logits up to about 15)."""
    blob = to_transformer_lens(ck)
    cfg = blob["config"]
    assert set(cfg) <= TL_351_FIELDS, sorted(set(cfg) - TL_351_FIELDS)
    shapes = {k: tuple(v.shape) for k, v in blob["state_dict"].items()}
    assert shapes == _expected_shapes(cfg)
    assert all(v.dtype == torch.float32 for v in blob["state_dict"].values())
    g = torch.Generator().manual_seed(seed)
    T = cfg["n_ctx"]
    tokens = torch.randint(0, ck.model_config.p, (n, T), generator=g)
    net = ck.build_model("cpu")
    with torch.no_grad():
        ours32, _ = net(tokens)
        ref32 = reference_logits(blob, tokens)
        ours64, _ = net.double()(tokens)
        ref64 = reference_logits(dict(blob, state_dict={k: v.double() for k, v in blob["state_dict"].items()}), tokens)
    err64 = float((ours64 - ref64).abs().max())
    err32 = float((ours32 - ref32).abs().max())
    assert torch.allclose(ours64, ref64, atol=1e-4, rtol=0), err64
    assert torch.allclose(ours32, ref32, atol=5e-4, rtol=0), err32
    p = ck.model_config.p
    assert torch.equal(ours64[..., :p].argmax(-1), ref64[..., :p].argmax(-1))
    return err64, err32


def test_config_says_rotary_on_adjacent_pairs_and_no_biases():
    ck = load_checkpoint(resolve_checkpoint("d4.pt"))
    cfg = tl_config(ck.model_config)
    assert cfg["positional_embedding_type"] == "rotary" and cfg["rotary_adjacent_pairs"] is True
    assert cfg["rotary_dim"] == cfg["d_head"] == 16 and cfg["rotary_base"] == 10000.0
    assert (cfg["n_layers"], cfg["n_heads"], cfg["d_model"], cfg["d_mlp"], cfg["d_vocab"], cfg["n_ctx"]) == (
        4, 4, 64, 256, 11, 48)
    sd = to_transformer_lens(ck)["state_dict"]
    assert all(float(v.abs().max()) == 0.0 for k, v in sd.items() if k.rsplit(".", 1)[-1].startswith("b_"))
    assert torch.equal(sd["unembed.W_U"], sd["embed.W_E"].T)  # tied unembedding written out


@pytest.mark.parametrize("name", ["d4.pt", "d2.pt", "d4-p7.pt"])
def test_reference_forward_reproduces_bundled_logits(name):
    _check(load_checkpoint(resolve_checkpoint(name)))


def test_reference_forward_reproduces_a_random_model_with_random_layer_norms(tmp_path):
    """Random LayerNorm scales and biases too (a trained model's could hide a swapped w/b)."""
    path = tiny_checkpoint(tmp_path / "tiny.pt", p=5, n_layer=2, n_head=2, d_model=32)
    blob = torch.load(path, weights_only=True)
    g = torch.Generator().manual_seed(1)
    blob["state_dict"] = {k: (v + 0.3 * torch.randn(v.shape, generator=g)) if v.dim() == 1 else v * 10
                          for k, v in blob["state_dict"].items()}
    torch.save(blob, path)
    _check(load_checkpoint(path), n=8, seed=3)


def test_the_half_split_convention_would_not_match():
    """The check is not vacuous: the same weights with GPT-NeoX's pairing (channel j with j + hd/2) differ."""
    ck = load_checkpoint(resolve_checkpoint("d4.pt"))
    blob = to_transformer_lens(ck)
    blob["config"] = dict(blob["config"], rotary_adjacent_pairs=False)
    tokens = torch.randint(0, 11, (4, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, _ = ck.build_model("cpu")(tokens)
    assert float((ours - reference_logits(blob, tokens)).abs().max()) > 1e-2


def test_export_writes_a_loadable_file_and_refuses_foreign_files(tmp_path):
    out = export_transformer_lens("d4.pt", tmp_path / "d4-tl.pt")
    blob = torch.load(out, weights_only=True)
    assert blob["kind"] == KIND and blob["meta"]["transformer_lens_checked"] == "3.5.1"
    assert set(blob) == {"kind", "config", "state_dict", "meta"}
    export_transformer_lens("d4.pt", out)  # an earlier export may be replaced
    foreign = tmp_path / "notes.pt"
    foreign.write_text("mine")
    from algos.errors import InputError

    with pytest.raises(InputError, match="not a TransformerLens export"):
        export_transformer_lens("d4.pt", foreign)
    assert foreign.read_text() == "mine"
    with pytest.raises(InputError, match="is a folder"):
        export_transformer_lens("d4.pt", tmp_path)
