"""Pearson ("cosine similarity") maps of the residual stream: the kaleidoscope.

For shot k, the residual stream after each layer (``hook_resid_post``) and each head's
result (``hook_result``) at shot k's y position (where z is predicted) and z position,
over the p^2 prompts that differ only in (x, y): the p^2 × p^2 map of Pearson
correlations, rows and columns in order x·p + y. The paper reads all y/x ratios formed
in an early layer (the kaleidoscope) and, for d = 4, the last layer shifting to the
answer (Modular Regression). Two numbers make that readable per map
(:func:`interp.scores.pair_contrast`):

- ``ratio_contrast``: mean correlation of prompts whose queries lie on the same line
  through the origin (same y/x) minus that of the other pairs;
- ``label_contrast``: the same for prompts with the same answer z.

The layer where ``ratio_contrast`` jumps is where ratios appear; a rising
``label_contrast`` is where the answer is formed.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.activations import collect
from interp.prompts import ShotPrompts
from interp.scores import pair_contrast, pearson_matrix, same_label_mask, same_ratio_mask
from model.gpt import GPT

__all__ = ["SimilarityMaps", "similarity_maps", "similarity_sites", "similarity_from", "POSITIONS"]

POSITIONS = ("y", "z")


@dataclass(frozen=True)
class SimilarityMaps:
    """maps[(layer, position)] and head_maps[(layer, head, position)]: (p^2, p^2) float32;
    scores: one row per (layer, head or -1 for the whole residual stream, position)."""

    layers: tuple[int, ...]
    maps: dict[tuple[int, str], np.ndarray]
    head_maps: dict[tuple[int, int, str], np.ndarray]
    scores: pd.DataFrame


def similarity_maps(net: GPT, prompts: ShotPrompts, layers: Sequence[int], *, heads: bool = True,
                    batch: int = 256, progress: Callable[[int], None] | None = None) -> SimilarityMaps:
    """Pearson maps after every layer in ``layers`` (and of every head's result with ``heads``)."""
    cache = collect(net, prompts.tokens, similarity_sites(prompts, layers, heads), batch=batch, progress=progress)
    return similarity_from(cache, prompts, layers, heads)


def similarity_sites(prompts: ShotPrompts, layers: Sequence[int], heads: bool = True) -> dict[str, list[int]]:
    """The activations :func:`similarity_from` reads: residuals (and head results) at y and z of shot k."""
    pos = [prompts.pos_y, prompts.pos_z]
    sites = {f"blocks.{layer}.hook_resid_post": pos for layer in layers}
    if heads:
        sites.update({f"blocks.{layer}.attn.hook_result": pos for layer in layers})
    return sites


def similarity_from(cache, prompts: ShotPrompts, layers: Sequence[int], heads: bool = True) -> SimilarityMaps:
    """:func:`similarity_maps` from collected activations (:mod:`interp.activations`)."""
    pos = [prompts.pos_y, prompts.pos_z]
    ratio, label = same_ratio_mask(prompts.p), same_label_mask(prompts.z)
    maps, head_maps, rows = {}, {}, []

    def score(sim: np.ndarray, layer: int, head: int, where: str) -> None:
        rows.append({"layer": layer, "head": head, "position": where,
                     "ratio_contrast": pair_contrast(sim, ratio), "label_contrast": pair_contrast(sim, label)})

    for layer in layers:
        resid = cache.at(f"blocks.{layer}.hook_resid_post", pos)  # (p^2, 2, C)
        for i, where in enumerate(POSITIONS):
            maps[(layer, where)] = sim = pearson_matrix(resid[:, i])
            score(sim, layer, -1, where)
        if heads:
            result = cache.at(f"blocks.{layer}.attn.hook_result", pos)  # (p^2, 2, H, C)
            for head in range(result.shape[2]):
                for i, where in enumerate(POSITIONS):
                    head_maps[(layer, head, where)] = sim = pearson_matrix(result[:, i, head])
                    score(sim, layer, head, where)
    return SimilarityMaps(tuple(layers), maps, head_maps, pd.DataFrame(rows))
