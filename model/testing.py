"""Small checkpoints for tests and examples (random or briefly trained weights)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from model.checkpoint import save_checkpoint
from model.config import ModelConfig, SettingConfig, TrainConfig
from model.gpt import GPT

__all__ = ["tiny_checkpoint", "authors_state_dict"]


def tiny_checkpoint(
    path: str | os.PathLike,
    p: int = 5,
    n_base_tasks: int = 2,
    d_model: int = 32,
    n_layer: int = 2,
    n_head: int = 2,
    n_examples: int = 8,
    seed: int = 0,
) -> Path:
    """Write a checkpoint with randomly initialized weights (fast; for plumbing tests)."""
    setting_cfg = SettingConfig(p=p, n_base_tasks=n_base_tasks, alpha=0.6, convention="native")
    mcfg = ModelConfig(p=p, vocab_size=p, d_model=d_model, n_head=n_head, n_layer=n_layer, n_examples=n_examples)
    torch.manual_seed(seed)
    net = GPT(mcfg)
    return save_checkpoint(
        path,
        mcfg,
        TrainConfig(steps=1, seed=seed),
        setting_cfg.build(),
        net.state_dict(),
        step=0,
        meta={"command": "model.testing.tiny_checkpoint"},
        setting_config=setting_cfg,
    )


def authors_state_dict(
    vocab_size: int = 47,
    d_model: int = 32,
    n_head: int = 2,
    n_layer: int = 2,
    seed: int = 0,
    std: float = 0.2,
    rope_freqs: bool = True,
) -> dict[str, torch.Tensor]:
    """Random weights in the layout of the paper's released ``.pth`` files (their key names and shapes).

    LayerNorm scales and biases are random too, and ``lm_head.weight`` is the same tensor
    as ``transformer.wte.weight`` (tied), as a saved tied model has it. With
    ``rope_freqs`` each layer also carries the RoPE package's ``rotary_emb.freqs``.
    """
    g = torch.Generator().manual_seed(seed)
    C, hd = d_model, d_model // n_head

    def randn(*shape: int, scale: float = std) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    sd: dict[str, torch.Tensor] = {"transformer.wte.weight": randn(vocab_size, C, scale=1.0)}
    for i in range(n_layer):
        t = f"transformer.h.{i}."
        sd[t + "ln_1.weight"] = 1.0 + randn(C)
        sd[t + "ln_1.bias"] = randn(C)
        sd[t + "attn.to_qkv.weight"] = randn(3 * C, C)
        sd[t + "attn.o.weight"] = randn(C, C)
        if rope_freqs:
            sd[t + "attn.rotary_emb.freqs"] = 1.0 / (10000 ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
        sd[t + "ln_2.weight"] = 1.0 + randn(C)
        sd[t + "ln_2.bias"] = randn(C)
        sd[t + "mlp.c_fc.weight"] = randn(4 * C, C)
        sd[t + "mlp.c_proj.weight"] = randn(C, 4 * C)
    sd["transformer.ln_f.weight"] = 1.0 + randn(C)
    sd["transformer.ln_f.bias"] = randn(C)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    return sd
