"""Cached activations at chosen positions, in batches, through the model's hook points.

Storing every activation of p^2 prompts is wasteful (a p = 29, d_model 512 model's
per-head results alone are hundreds of MB a layer), so each hook keeps only the token
positions asked for, batch by batch.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from model.gpt import GPT

__all__ = ["collect", "position_axis", "merge_sites", "Activations"]

#: hooks whose tensors put the head axis before the (query) position axis: (B, H, T, S)
_HEAD_FIRST = ("hook_pattern", "hook_attn_scores")


def position_axis(name: str) -> int:
    """The query-position axis of a hook's tensor (see the layouts in ``model.gpt``)."""
    return 2 if name.rsplit(".", 1)[-1] in _HEAD_FIRST else 1


def merge_sites(*sites: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """One site map asking for every position any of ``sites`` asks for (so one forward pass serves all)."""
    out: dict[str, set[int]] = {}
    for s in sites:
        for name, positions in s.items():
            out.setdefault(name, set()).update(int(t) for t in positions)
    return {name: sorted(pos) for name, pos in out.items()}


class Activations(dict):
    """name -> array as :func:`collect` returns it, plus ``at(name, positions)`` to read a
    subset of the positions that were kept (each analysis asks for its own)."""

    def __init__(self, arrays: dict[str, np.ndarray], positions: Mapping[str, Sequence[int]]) -> None:
        super().__init__(arrays)
        self.positions = {name: list(pos) for name, pos in positions.items()}

    def at(self, name: str, positions: Sequence[int]) -> np.ndarray:
        kept = self.positions[name]
        missing = [t for t in positions if t not in kept]
        if missing:
            raise KeyError(f"{name}: position {missing[0]} was not collected (have {kept})")
        return np.take(self[name], [kept.index(t) for t in positions], axis=position_axis(name))


@torch.no_grad()
def collect(net: GPT, tokens: np.ndarray, sites: Mapping[str, Sequence[int]], *, batch: int = 256,
            progress: Callable[[int], None] | None = None) -> Activations:
    """Run ``tokens`` (N, T) through ``net`` and keep each hook's activations at its positions.

    ``sites`` maps hook names to token positions. Returns name -> float32 array with the
    hook's own layout, its position axis cut to the positions asked for (in that order).
    ``progress(n)`` is called after each batch of n prompts.
    """
    device = next(net.parameters()).device
    parts: dict[str, list[np.ndarray]] = {name: [] for name in sites}

    def keeper(name: str, positions: list[int]) -> Callable:
        axis = position_axis(name)

        def fn(_m, _i, out: torch.Tensor) -> None:
            index = torch.as_tensor(positions, device=out.device)
            parts[name].append(out.index_select(axis, index).float().cpu().numpy())

        return fn

    hooks = [(name, keeper(name, list(pos))) for name, pos in sites.items()]
    net.eval()
    with net.hooks(hooks):
        for start in range(0, len(tokens), batch):
            chunk = torch.as_tensor(tokens[start : start + batch], device=device)
            net(chunk)
            if progress is not None:
                progress(len(chunk))
    return Activations({name: np.concatenate(p, axis=0) for name, p in parts.items()}, sites)
