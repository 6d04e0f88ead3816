"""Attention maps of every layer and head, and what each head attends to.

The map of one prompt shows the structure; the shares, averaged over the p^2 prompts of
shot k at every query position from the second shot on, classify heads:

- ``previous``: attention on the token just before (position t - 1);
- ``same_role``: on tokens of the same role (x, y or z) in earlier shots (t - 3, t - 6, ...),
  the sparse period-3 pattern the paper shows for the middle layers of its d = 4 model;
- ``z_tokens``: on answer tokens z of earlier shots (the labels);
- ``self``: on the query position itself.

A head's ``kind`` is the category holding at least half of its attention (``previous``,
``same_role``, ``z_tokens``, ``self``), else ``mixed``. The shares overlap (a z token three
back from a z query is both ``same_role`` and ``z_tokens``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from interp.activations import collect
from model.gpt import GPT

__all__ = ["attention_maps", "head_attention_shares", "share_sites", "shares_from", "SHARES"]

SHARES = ("previous", "same_role", "z_tokens", "self")


def attention_maps(net: GPT, tokens: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """The softmax patterns of one prompt: tokens (T,) -> (len(layers), H, T, T)."""
    T = len(tokens)
    sites = {f"blocks.{layer}.attn.hook_pattern": list(range(T)) for layer in layers}
    cache = collect(net, np.asarray(tokens)[None], sites)
    return np.stack([cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in layers])


def _share_masks(T: int) -> dict[str, np.ndarray]:
    """(T, T) bool masks, query t (rows) -> key s (columns), s <= t."""
    t = np.arange(T)[:, None]
    s = np.arange(T)[None, :]
    causal = s <= t
    return {
        "previous": s == t - 1,
        "same_role": causal & (s < t) & ((t - s) % 3 == 0),
        "z_tokens": causal & (s < t) & (s % 3 == 2),
        "self": s == t,
    }


def head_attention_shares(net: GPT, tokens: np.ndarray, layers: Sequence[int], *, batch: int = 256,
                          progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Per (layer, head): the mean attention share of each category (``SHARES``) and ``kind``.

    tokens (N, T) with T >= 6; averaged over prompts and over query positions t >= 3.
    """
    sites = share_sites(layers, tokens.shape[1])
    return shares_from(collect(net, tokens, sites, batch=batch, progress=progress), layers, tokens.shape[1])


def share_sites(layers: Sequence[int], T: int) -> dict[str, list[int]]:
    """The activations :func:`shares_from` reads: every pattern at query positions 3..T-1."""
    if T < 6:
        raise ValueError(f"head shares need at least two shots (6 tokens), got {T}")
    return {f"blocks.{layer}.attn.hook_pattern": list(range(3, T)) for layer in layers}


def shares_from(cache, layers: Sequence[int], T: int) -> pd.DataFrame:
    """:func:`head_attention_shares` from collected activations (:mod:`interp.activations`)."""
    masks = _share_masks(T)
    rows = []
    for layer in layers:
        mean = cache.at(f"blocks.{layer}.attn.hook_pattern", range(3, T)).mean(axis=0)  # (H, T-3, T)
        for head in range(mean.shape[0]):
            shares = {k: float((mean[head] * m[3:]).sum(-1).mean()) for k, m in masks.items()}
            top = max(shares, key=shares.__getitem__)
            rows.append({"layer": layer, "head": head, **shares, "kind": top if shares[top] >= 0.5 else "mixed"})
    return pd.DataFrame(rows)
