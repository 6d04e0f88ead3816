"""Per-head PCA ("circles of circles") and the PCA of the residue embeddings.

**Heads.** For shot k, each head's output through its own slice of the output projection
(``hook_result``) at shot k's x and y positions, concatenated, over the p^2 prompts that
differ only in (x, y): (p^2, 2·d_model), mean removed, top principal components. The paper
(Fig. 1(d)) reads an outer circle set by one input and inner circles set by the other; the
second labelling uses discrete logarithms x = g^i, y = g^j to a generator g of GF(p)* that
galois finds (never a hard-coded base; the authors' 27 and 2 are generators only mod 29).
:func:`interp.scores.circularity` scores it.

**Embeddings.** The p residue-token embeddings (rows of the tied embedding), top three
components; the paper (Fig. 1(e)) reads even and odd residues on separate planes;
:func:`interp.scores.embedding_plane_scores` scores it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from algos.field import gf
from interp.activations import collect
from interp.prompts import ShotPrompts
from interp.scores import circularity, embedding_plane_scores, pca
from model.gpt import GPT

__all__ = ["HeadPCA", "head_pca", "head_pca_sites", "head_pca_from", "EmbeddingPCA", "embedding_pca", "discrete_logs",
           "circularity_null"]


def discrete_logs(p: int) -> tuple[int, np.ndarray]:
    """(g, log) with g the smallest primitive element of GF(p) and log[v] = i for v = g^i,
    v = 1..p-1; log[0] = -1 (0 has no logarithm)."""
    field = gf(p)
    g = int(field.primitive_element)
    log = np.full(p, -1, dtype=np.int64)
    for i in range(p - 1):
        log[pow(g, i, p)] = i
    return g, log


@dataclass(frozen=True)
class HeadPCA:
    """coords (L, H, p^2, 3) top components; variance (L, H, 3) shares; scores one row per head."""

    layers: tuple[int, ...]
    coords: np.ndarray
    variance: np.ndarray
    scores: pd.DataFrame
    generator: int


def head_pca(net: GPT, prompts: ShotPrompts, layers: Sequence[int], *, batch: int = 256,
             progress: Callable[[int], None] | None = None) -> HeadPCA:
    """PCA of every head's result at shot k's x and y positions (see the module docstring)."""
    cache = collect(net, prompts.tokens, head_pca_sites(prompts, layers), batch=batch, progress=progress)
    return head_pca_from(cache, prompts, layers)


def head_pca_sites(prompts: ShotPrompts, layers: Sequence[int]) -> dict[str, list[int]]:
    """The activations :func:`head_pca_from` reads: each layer's per-head results at x and y of shot k."""
    return {f"blocks.{layer}.attn.hook_result": [prompts.pos_x, prompts.pos_y] for layer in layers}


def head_pca_from(cache, prompts: ShotPrompts, layers: Sequence[int]) -> HeadPCA:
    """:func:`head_pca` from collected activations (:mod:`interp.activations`)."""
    g, _ = discrete_logs(prompts.p)
    coords, variance, rows = [], [], []
    for layer in layers:
        result = cache.at(f"blocks.{layer}.attn.hook_result", [prompts.pos_x, prompts.pos_y])  # (p^2, 2, H, C)
        n, _, H, C = result.shape
        per_layer_c, per_layer_v = [], []
        for head in range(H):
            feats = result[:, :, head, :].reshape(n, 2 * C)  # x- and y-position vectors side by side
            xy, share = pca(feats, 3)
            xy = np.pad(xy, ((0, 0), (0, 3 - xy.shape[1])))
            share = np.pad(share, (0, 3 - len(share)))
            score, by = circularity(xy[:, :2], prompts.x, prompts.y)
            null = circularity_null(xy[:, :2], prompts.x, prompts.y)
            per_layer_c.append(xy)
            per_layer_v.append(share)
            rows.append({"layer": layer, "head": head, "circularity": score, "circularity_null": null, "rings_by": by,
                         "pc1_share": float(share[0]), "pc2_share": float(share[1]),
                         "top2_share": float(share[:2].sum())})
        coords.append(per_layer_c)
        variance.append(per_layer_v)
    return HeadPCA(tuple(layers), np.asarray(coords, dtype=np.float32), np.asarray(variance), pd.DataFrame(rows), g)


def circularity_null(coords: np.ndarray, x: np.ndarray, y: np.ndarray, n: int = 20) -> float:
    """Mean circularity of the same points with the (x, y) labels shuffled (seed 0): what
    chance grouping scores with this many points per group (groups of p points are noisy)."""
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(n):
        perm = rng.permutation(len(x))
        scores.append(circularity(coords, x[perm], y[perm])[0])
    return float(np.mean(scores))


@dataclass(frozen=True)
class EmbeddingPCA:
    """coords (p, 3) of the residue embeddings; variance (3,) shares; scores planarity, parity_r2."""

    coords: np.ndarray
    variance: np.ndarray
    scores: dict[str, float]


def embedding_pca(net: GPT, p: int) -> EmbeddingPCA:
    """Top three components of the p residue-token embeddings (rows 0..p-1 of the tied embedding)."""
    emb = net.wte.weight.detach()[:p].float().cpu().numpy()  # (p, C)
    coords, share = pca(emb, 3)
    coords = np.pad(coords, ((0, 0), (0, 3 - coords.shape[1])))
    share = np.pad(share, (0, 3 - len(share)))
    return EmbeddingPCA(coords, share, embedding_plane_scores(coords, np.arange(p)))
