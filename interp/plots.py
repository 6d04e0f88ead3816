"""Figures of the representation analyses. Each function draws on the axes it is given
and returns them; none saves or shows (``compare.cli.inspect`` saves)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["plot_attention", "plot_head_pca", "plot_embedding_pca", "plot_similarity", "plot_head_shares"]

_CYCLIC = "twilight_shifted"  # residues and logarithms wrap around: a cyclic map


def plot_attention(pattern: np.ndarray, labels: Sequence[str], ax, title: str = ""):
    """One head's softmax pattern (T, T): queries down, keys across, token labels on both."""
    T = len(labels)
    ax.imshow(np.where(np.tril(np.ones((T, T), bool)), pattern, np.nan), cmap="viridis", vmin=0, vmax=1,
              interpolation="nearest")
    step = max(1, T // 24)
    ticks = list(range(0, T, step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=5)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=5)
    ax.set_title(title, fontsize=8)
    return ax


def plot_head_pca(coords: np.ndarray, colour: np.ndarray, ax, *, title: str = "", text: np.ndarray | None = None,
                  colour_label: str = ""):
    """Top two principal components (N, >= 2), coloured by ``colour`` (a residue or logarithm).

    With ``text`` (N,) each point is written as its label (readable for p <= 13).
    """
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=colour, cmap=_CYCLIC, s=6 if text is None else 0, linewidths=0)
    if text is not None:
        cmap = sc.get_cmap()
        norm = sc.norm
        for (u, v), t, c in zip(coords[:, :2], text, colour, strict=True):
            ax.text(u, v, str(t), fontsize=4.5, ha="center", va="center", color=cmap(norm(c)))
        ax.set_xlim(coords[:, 0].min() * 1.1 - 1e-9, coords[:, 0].max() * 1.1 + 1e-9)
        ax.set_ylim(coords[:, 1].min() * 1.1 - 1e-9, coords[:, 1].max() * 1.1 + 1e-9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    if colour_label:
        ax.set_xlabel(colour_label, fontsize=6)
    return ax


def plot_embedding_pca(coords: np.ndarray, ax, title: str = ""):
    """The p residue embeddings on their top three components (``ax`` a 3-D axes): even
    residues as circles, odd as triangles, each labelled."""
    p = len(coords)
    for parity, marker, colour, name in ((0, "o", "#0072B2", "even"), (1, "^", "#D55E00", "odd")):
        idx = np.arange(p)[np.arange(p) % 2 == parity]
        ax.scatter(coords[idx, 0], coords[idx, 1], coords[idx, 2], marker=marker, color=colour, label=name, s=18)
        for i in idx:
            ax.text(coords[i, 0], coords[i, 1], coords[i, 2], str(i), fontsize=6)
    ax.set_xlabel("PC1", fontsize=7)
    ax.set_ylabel("PC2", fontsize=7)
    ax.set_zlabel("PC3", fontsize=7)
    ax.tick_params(labelsize=5)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=8)
    return ax


def plot_similarity(sim: np.ndarray, p: int, ax, title: str = ""):
    """A p^2 x p^2 Pearson map, rows and columns in order x·p + y; grid lines between x blocks."""
    ax.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    n = p * p
    ticks = np.arange(0, n, p)
    ax.set_xticks(ticks, [str(x) for x in range(p)], fontsize=4)
    ax.set_yticks(ticks, [str(x) for x in range(p)], fontsize=4)
    ax.set_xlabel("x (blocks of p values of y)", fontsize=6)
    ax.set_title(title, fontsize=7)
    return ax


def plot_head_shares(shares: pd.DataFrame, columns: Sequence[str], ax, title: str = ""):
    """Heads (rows ``L{l}H{h}``) × attention-share categories, each share written in its cell."""
    values = shares[list(columns)].to_numpy(float)
    ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, fontsize=7)
    rows = [f"L{int(layer)}H{int(head)} ({kind})"
            for layer, head, kind in zip(shares["layer"], shares["head"], shares["kind"], strict=True)]
    ax.set_yticks(range(len(rows)), rows, fontsize=6)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=5,
                    color="white" if values[i, j] < 0.5 else "black")
    ax.set_title(title, fontsize=8)
    return ax
