"""The paper's GPT-style decoder, in one readable file.

Pre-LayerNorm blocks; causal self-attention through ``scaled_dot_product_attention``
with rotary position embedding (RoPE) on the full head dimension; ReLU MLP of width
``mlp_ratio * d_model``; no biases in linear layers (LayerNorms keep theirs); a final
LayerNorm; the output layer tied to the token embedding.

RoPE convention: *adjacent* channel pairs (0, 1), (2, 3), ... of each head are rotated
together, channel pair j at position t by angle t * base^(-2j / head_dim). This is the
convention of the ``rotary-embedding-torch`` package that the paper's code uses (a
test checks numerical equality with it); the "half-split" convention of GPT-NeoX/Llama
would pair channel j with j + head_dim/2 instead.

Initialization (as the paper's code): every linear and the embedding ~ N(0, 0.02); the
MLP output projections (``mlp.proj``) further divided by sqrt(2 * n_layer).

Analysis hooks: identity :class:`HookPoint` modules at the activations of interest,
named by the module tree as in TransformerLens (``blocks.0.attn.hook_pattern``).
:meth:`GPT.hooks` registers functions on them for the duration of a ``with`` block (a
hook that returns a tensor replaces the activation); :meth:`GPT.run_with_cache` returns
the activations. B = batch, T = positions (query positions for patterns), S = key
positions, H = heads, hd = head_dim, C = d_model, V = vocabulary:

    hook_embed                      (B, T, C)    token embedding (RoPE adds no position embedding)
    blocks.{l}.hook_resid_pre       (B, T, C)    the residual stream entering block l
    blocks.{l}.attn.hook_q / hook_k (B, T, H, hd) queries and keys before RoPE
    blocks.{l}.attn.hook_rot_q / hook_rot_k (B, T, H, hd) queries and keys after RoPE
    blocks.{l}.attn.hook_v          (B, T, H, hd) values
    blocks.{l}.attn.hook_attn_scores (B, H, T, S) q·k / sqrt(hd), -inf above the diagonal (pre-softmax)
    blocks.{l}.attn.hook_pattern    (B, H, T, S) softmax of the scores
    blocks.{l}.attn.hook_z          (B, T, H, hd) each head's output before the output projection
    blocks.{l}.attn.hook_result     (B, T, H, C) each head's output through its own slice of the
                                                 output projection; summed over H it is hook_attn_out
    blocks.{l}.hook_attn_out        (B, T, C)    the attention layer's output
    blocks.{l}.hook_resid_mid       (B, T, C)    residual after attention
    blocks.{l}.mlp.hook_post        (B, T, 4C)   MLP hidden activations after ReLU
    blocks.{l}.hook_mlp_out         (B, T, C)    the MLP's output
    blocks.{l}.hook_resid_post      (B, T, C)    residual leaving block l

These are TransformerLens's names and layouts (its ``hook_q``/``hook_k`` are also taken
before the rotary embedding, ``hook_rot_q``/``hook_rot_k`` after); internally the head
axis comes first, as ``scaled_dot_product_attention`` takes it, and the hooks see
transposed views, so the plain forward is the same computation with or without them.
Scores and pattern are materialized only when something listens to them, and
the per-head results only when something listens to ``hook_result``; otherwise the fused
SDPA kernel and one output matmul run, so hooks cost nothing when unused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from model.config import ModelConfig

__all__ = ["GPT", "HookPoint", "rope_tables", "apply_rope"]


class HookPoint(nn.Identity):
    """An identity module whose only purpose is to carry forward hooks."""

    def has_hooks(self) -> bool:
        return bool(self._forward_hooks)


def rope_tables(head_dim: int, positions: torch.Tensor, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for the given positions, shape (len(positions), head_dim).

    Each frequency is repeated twice in a row, matching the adjacent-pair rotation.
    """
    # 1 / base^(2j/hd), computed as rotary-embedding-torch does, so the tables match it bit for bit
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim))
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # (T, head_dim/2)
    angles = angles.repeat_interleave(2, dim=-1)  # (T, head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs: x (..., T, hd), cos/sin (T, hd) -> (..., T, hd)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((-x2, x1), dim=-1).flatten(-2)  # (-x1', x0', -x3', x2', ...)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head causal self-attention with RoPE; q, k, v stacked in one projection."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim, self.rope_base = cfg.n_head, cfg.head_dim, cfg.rope_base
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.o = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.hook_q = HookPoint()  # (B, T, H, hd), before RoPE
        self.hook_k = HookPoint()  # (B, T, H, hd), before RoPE
        self.hook_v = HookPoint()  # (B, T, H, hd)
        self.hook_rot_q = HookPoint()  # (B, T, H, hd), after RoPE
        self.hook_rot_k = HookPoint()  # (B, T, H, hd), after RoPE
        self.hook_attn_scores = HookPoint()  # (B, H, T, S) scaled, causally masked, pre-softmax
        self.hook_pattern = HookPoint()  # (B, H, T, S) softmax weights
        self.hook_z = HookPoint()  # (B, T, H, hd) per-head outputs before the o-projection
        self.hook_result = HookPoint()  # (B, T, H, C) per-head outputs through their slice of o

    def project(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x (B, T, C) at absolute ``positions`` (T,) -> q, k, v each (B, H, T, hd), RoPE applied."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        cos, sin = rope_tables(self.head_dim, positions, self.rope_base)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = self.hook_q(q.view(B, T, self.n_head, self.head_dim)).transpose(1, 2)  # (B, H, T, hd)
        k = self.hook_k(k.view(B, T, self.n_head, self.head_dim)).transpose(1, 2)
        v = self.hook_v(v.view(B, T, self.n_head, self.head_dim)).transpose(1, 2)
        cos, sin = rope_tables(self.head_dim, torch.arange(T, device=x.device), self.rope_base)
        q = self.hook_rot_q(apply_rope(q, cos, sin).transpose(1, 2)).transpose(1, 2)
        k = self.hook_rot_k(apply_rope(k, cos, sin).transpose(1, 2)).transpose(1, 2)
        if self.hook_pattern.has_hooks() or self.hook_attn_scores.has_hooks():
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, S)
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            scores = self.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
            z = self.hook_pattern(scores.softmax(-1)) @ v
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        z = self.hook_z(z.transpose(1, 2))  # (B, T, H, hd)
        if self.hook_result.has_hooks():
            w = self.o.weight.view(C, self.n_head, self.head_dim)  # (C_out, H, hd): head h's slice of o
            result = self.hook_result(torch.einsum("bthd,chd->bthc", z, w))  # (B, T, H, C)
            return result.sum(dim=2)
        return self.o(z.reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)
        self.hook_post = HookPoint()  # (B, T, mlp_ratio*C) after ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.hook_post(F.relu(self.fc(x))))


class Block(nn.Module):
    """Pre-LN residual block: x + attn(ln_1(x)), then + mlp(ln_2(.))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.mlp = MLP(cfg)
        self.hook_resid_pre = HookPoint()  # (B, T, C)
        self.hook_attn_out = HookPoint()  # (B, T, C)
        self.hook_resid_mid = HookPoint()  # (B, T, C)
        self.hook_mlp_out = HookPoint()  # (B, T, C)
        self.hook_resid_post = HookPoint()  # (B, T, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln_1(x))))
        return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln_2(x))))


class GPT(nn.Module):
    """Decoder over token ids (B, T) -> logits (B, T, vocab_size)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.hook_embed = HookPoint()  # (B, T, C)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied output layer
        self.apply(self._init)
        for block in self.block_list:
            with torch.no_grad():
                block.mlp.proj.weight.div_(math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> (logits (B, T, V), loss or None).

        ``targets`` (B, T) holds the next token to predict at each position, -100 where
        no loss is taken (the training data puts z at the y positions only).
        """
        x = self.hook_embed(self.wte(idx))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            # at least fp32 (bf16 logits are upcast; a float64 model keeps float64)
            wide = logits.to(torch.promote_types(logits.dtype, torch.float32))
            loss = F.cross_entropy(wide.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    # ------------------------------------------------------------------ hooks
    def hook_points(self) -> dict[str, HookPoint]:
        """All hook points by name, e.g. ``blocks.0.attn.hook_pattern``."""
        return {name: m for name, m in self.named_modules() if isinstance(m, HookPoint)}

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, Callable]]) -> Iterator[GPT]:
        """Register ``fn(module, input, output)`` forward hooks by name; removed on exit."""
        points = self.hook_points()
        handles = []
        try:
            for name, fn in fwd_hooks:
                if name not in points:
                    raise ValueError(f"no hook point named {name!r}")
                handles.append(points[name].register_forward_hook(fn))
            yield self
        finally:
            for h in handles:
                h.remove()

    @torch.no_grad()
    def run_with_cache(
        self, idx: torch.Tensor, names: Iterable[str] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward pass that also returns the activations at the named hook points (all by default)."""
        wanted = list(self.hook_points()) if names is None else list(names)
        cache: dict[str, torch.Tensor] = {}

        def saver(name: str) -> Callable:
            def fn(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
                cache[name] = out.detach()

            return fn

        with self.hooks([(n, saver(n)) for n in wanted]):
            logits, _ = self(idx)
        return logits, cache

    @property
    def block_list(self) -> list[Block]:
        """The blocks, typed (``self.blocks`` is an ``nn.ModuleList`` of :class:`Block`)."""
        return [cast(Block, b) for b in self.blocks]

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Matrices (tied embedding included) decay; LayerNorm weights and biases do not."""
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for _, prm in self.named_parameters():  # tied weight appears once
            (decay if prm.dim() >= 2 else no_decay).append(prm)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
