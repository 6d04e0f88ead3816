"""Label noise: wrong in-context labels, and how the model and the solvers cope.

A corrupted label becomes z + u mod p with u drawn uniformly from 1..p-1, so it is always
wrong (the authors' notebook's rule). Positions are shots 1..k_max of an example
sequence: the same positions for every task of that sequence (as its inputs are the
same), drawn from the seed, or given. The k-shot prompt holds the corrupted labels among
its first k shots, so the prompts of one sequence stay prefixes of each other.

Two sweeps go beside a noisy ``compare run`` (as in the authors' notebook, without its
defects: here the tasks are the checkpoint's own pre-training and o.o.d. sets, and every
corrupted position is recorded):

- :func:`noise_level_sweep`: accuracy at the last shot k against the number of wrong
  labels, 0..k/2, for the model and every solver;
- :func:`noise_position_sweep`: accuracy at each query shot k against the one corrupted
  position j (a label at j > k is not in the prompt, so those cells are clean).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from algos.errors import InputError
from compare.engine.comparison import Comparison

__all__ = ["label_offsets", "noise_level_sweep", "noise_position_sweep", "sweep_accuracy"]


def label_offsets(n_tasks: int, n_seq: int, k_max: int, p: int, *, n_wrong: int = 0, positions: Sequence[int] = (),
                  seed: int = 0) -> tuple[np.ndarray, list[list[int]]]:
    """Offsets (n_tasks, n_seq, k_max), 0 where clean, u in 1..p-1 where corrupted, and the
    corrupted shots of each sequence (1-based, sorted).

    ``positions`` (1-based shots) corrupts those shots of every sequence; otherwise
    ``n_wrong`` shots of each sequence are drawn without replacement from 1..k_max.
    """
    if p < 2:
        raise InputError("label noise needs p >= 2 (a wrong label must exist)")
    rng = np.random.default_rng(seed)
    if positions:
        bad = [j for j in positions if not 1 <= j <= k_max]
        if bad:
            raise InputError(f"--label-noise-at: shot {bad[0]} is outside 1..{k_max} (the largest k)")
        chosen = [sorted({int(j) for j in positions})] * n_seq
    else:
        if not 0 <= n_wrong <= k_max:
            raise InputError(f"--label-noise: {n_wrong} wrong labels do not fit in {k_max} shots")
        chosen = [sorted(int(j) + 1 for j in rng.choice(k_max, size=n_wrong, replace=False)) for _ in range(n_seq)]
    offsets = np.zeros((n_tasks, n_seq, k_max), dtype=np.int64)
    for s, shots in enumerate(chosen):
        for j in shots:
            offsets[:, s, j - 1] = rng.integers(1, p, size=n_tasks)
    return offsets, chosen


def sweep_accuracy(cells: pd.DataFrame, names: Sequence[str], by: Sequence[str]) -> pd.DataFrame:
    """Share of cells each predictor gets right (pred == z_true), grouped by ``by``; long form."""
    right = {n: (cells[f"pred_{n}"].to_numpy() == cells["z_true"].to_numpy()) for n in names}
    frame = cells[list(by)].assign(**{n: v for n, v in right.items()})
    out = frame.groupby(list(by), observed=True)[list(names)].mean().reset_index()
    return out.melt(id_vars=list(by), var_name="predictor", value_name="accuracy")


def noise_level_sweep(run: Callable[..., Comparison], n_tasks: int, sequences: np.ndarray, k: int, p: int,
                      seed: int) -> pd.DataFrame:
    """Accuracy at shot ``k`` with 0..k//2 wrong labels. ``run(ks, label_offsets)`` must
    return a comparison (``compare.engine.comparison.Comparison``) over the run's tasks and sequences.

    Columns: split, n_wrong, predictor, accuracy."""
    parts = []
    for n in range(k // 2 + 1):
        inner, _ = label_offsets(n_tasks, sequences.shape[0], k, p, n_wrong=n, seed=seed + 1000 + n)
        offsets = np.zeros((n_tasks, *sequences.shape[:2]), dtype=np.int64)
        offsets[..., :k] = inner  # the wrong labels lie among the first k shots
        result = run((k,), offsets)
        names = [result.subject, *result.references]
        acc = sweep_accuracy(result.cells, names, ["split"])
        parts.append(acc.assign(n_wrong=n))
    return pd.concat(parts, ignore_index=True)[["split", "n_wrong", "predictor", "accuracy"]]


def noise_position_sweep(run: Callable[..., Comparison], n_tasks: int, sequences: np.ndarray, ks: Sequence[int], p: int,
                         seed: int, subject: str) -> pd.DataFrame:
    """The subject's accuracy at each query shot k with only shot j's label wrong, j = 1..k_max.

    Columns: split, input_split, position, k, predictor, accuracy (rows for every predictor;
    the figure draws the subject)."""
    k_max = sequences.shape[1]
    parts = []
    for j in range(1, k_max + 1):
        offsets, _ = label_offsets(n_tasks, sequences.shape[0], k_max, p, positions=[j], seed=seed + 2000 + j)
        result = run(tuple(ks), offsets)
        names = [result.subject, *result.references]
        acc = sweep_accuracy(result.cells, names, ["split", "input_split", "k"])
        parts.append(acc.assign(position=j))
    return pd.concat(parts, ignore_index=True)[["split", "input_split", "position", "k", "predictor", "accuracy"]]
