"""The paper's transformer: configs, the decoder, data, training, checkpoints, the predictor.

Depends on torch and ``algos``; never imports ``compare``. A notebook's entry points::

    from model import load, ModelPredictor, GPT, get_preset, train, RunSpec

    ck = load("d4.pt")                       # configs, task setting, weights, history
    net = ck.build_model()                   # the GPT (hook points named as TransformerLens's)
    pred = ModelPredictor(ck)                # behind the predictor interface of ``algos.solvers``

The console commands that belong to the model (``compare train``, ``export``,
``import-authors``) live in :mod:`model.commands`.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__all__ = [
    "load",
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "ModelConfig",
    "TrainConfig",
    "SettingConfig",
    "Preset",
    "PRESETS",
    "get_preset",
    "GPT",
    "HookPoint",
    "ModelPredictor",
    "Ablation",
    "AblatedPredictor",
    "parse_ablations",
    "RunSpec",
    "train",
]


_WHERE = {
    "Checkpoint": "model.checkpoint",
    "CheckpointError": "model.checkpoint",
    "load_checkpoint": "model.checkpoint",
    "resolve_checkpoint": "model.checkpoint",
    "save_checkpoint": "model.checkpoint",
    "ModelConfig": "model.config",
    "TrainConfig": "model.config",
    "SettingConfig": "model.config",
    "Preset": "model.config",
    "PRESETS": "model.config",
    "get_preset": "model.config",
    "GPT": "model.gpt",
    "HookPoint": "model.gpt",
    "ModelPredictor": "model.predictor",
    "Ablation": "model.ablation",
    "AblatedPredictor": "model.ablation",
    "parse_ablations": "model.ablation",
    "RunSpec": "model.train",
    "train": "model.train",
}

if TYPE_CHECKING:
    from model.ablation import AblatedPredictor, Ablation, parse_ablations
    from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint, resolve_checkpoint, save_checkpoint
    from model.config import PRESETS, ModelConfig, Preset, SettingConfig, TrainConfig, get_preset
    from model.gpt import GPT, HookPoint
    from model.predictor import ModelPredictor
    from model.train import RunSpec, train


def __getattr__(name: str) -> Any:
    # names load lazily: `from model.config import ...` must not import torch and the decoder
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'model' has no attribute {name!r}")


def load(spec: str | os.PathLike[str]) -> Checkpoint:
    """A checkpoint by path or bundled name (``"d4.pt"``): a file of that name in the working
    folder wins over the bundled one. Never runs code (``weights_only=True``).

    >>> load("d4.pt").setting.p
    11
    """
    from model.checkpoint import load_checkpoint, resolve_checkpoint

    return load_checkpoint(resolve_checkpoint(spec))
