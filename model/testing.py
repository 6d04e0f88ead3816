"""Small checkpoints for tests and examples (random or briefly trained weights)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from model.checkpoint import save_checkpoint
from model.config import ModelConfig, SettingConfig, TrainConfig
from model.gpt import GPT

__all__ = ["tiny_checkpoint"]


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
        path, mcfg, TrainConfig(steps=1, seed=seed), setting_cfg.build(), net.state_dict(),
        step=0, meta={"command": "model.testing.tiny_checkpoint"}, setting_config=setting_cfg,
    )
