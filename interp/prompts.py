"""The prompt sets of the representation analyses.

For shot k of one task and one example sequence, the p^2 prompts share their first k - 1
examples (the sequence's first k - 1 inputs, labelled by the task) and differ only in
shot k, which runs over every input (x, y) with its true answer z: tokens
``x1 y1 z1 ... x_k y_k z_k``, rows in index order x·p + y. This is the set the paper's
PCA and similarity figures use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algos.prompts import make_examples, query_grid
from algos.tasks import task_labels

__all__ = ["ShotPrompts", "shot_prompts", "token_labels"]


@dataclass(frozen=True)
class ShotPrompts:
    """tokens (p^2, 3k); x, y, z (p^2,) of shot k; positions of shot k's x, y and z tokens."""

    p: int
    task: tuple[int, int]
    k: int
    tokens: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @property
    def pos_x(self) -> int:
        return 3 * (self.k - 1)

    @property
    def pos_y(self) -> int:
        return 3 * (self.k - 1) + 1

    @property
    def pos_z(self) -> int:
        return 3 * (self.k - 1) + 2


def shot_prompts(p: int, task: tuple[int, int], sequence: np.ndarray, k: int) -> ShotPrompts:
    """The p^2 prompts of shot k: ``sequence`` (>= k - 1, 2) gives the fixed examples."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sequence = np.asarray(sequence, dtype=np.int64)
    if k > 1 and len(sequence) < k - 1:
        raise ValueError(f"the example sequence has {len(sequence)} inputs, shot {k} needs {k - 1} before it")
    grid = query_grid(p)  # (p^2, 2)
    t = np.asarray(task, dtype=np.int64)[None]
    z = task_labels(p, t, grid)[0]  # (p^2,)
    shot = np.concatenate([grid, z[:, None]], axis=1)  # (p^2, 3)
    if k > 1:
        prefix = make_examples(p, t, sequence, k - 1).reshape(1, 3 * (k - 1))
        tokens = np.concatenate([np.repeat(prefix, len(grid), axis=0), shot], axis=1)
    else:
        tokens = shot
    return ShotPrompts(p, (int(task[0]), int(task[1])), k, tokens.astype(np.int64), grid[:, 0], grid[:, 1], z)


def token_labels(k: int) -> list[str]:
    """``["x1", "y1", "z1", ..., "xk", "yk", "zk"]``."""
    return [f"{role}{i}" for i in range(1, k + 1) for role in "xyz"]
