"""The comparison engine: run predictors over k-shot query grids, one row per cell.

Pure: no file I/O, no plotting, no printing. The engine sees only
:class:`~algos.solvers.base.Predictor` objects: one *subject* (in practice the
transformer, named ``model``) and any number of *references*; it knows nothing about
which is which beyond that role.

For every task, example sequence and k, the first k inputs of the sequence labelled by
the task form one prefix, and :meth:`Predictor.predict_grid` is called on the full grid of
p^2 queries. Tasks are processed in chunks of at most about :data:`CHUNK_CELLS` cells and
handed out one task at a time (:func:`iter_comparison`), so memory stays bounded by the
chunk, not by the run (p = 29, 841 tasks, k 1..32, 17 sequences: 385 M cells);
:func:`run_comparison` gathers the stream into one table for runs that fit in memory.

Per-cell table columns (row order: task, sequence, k, cell x*p + y):

=====================  ================================================================
task_a, task_b          the task (a, b); z = (a*x + b*y) mod p
split                   ``id`` (a pre-training task) or ``ood`` (any other task)
input_split             ``train`` or ``test``: which side of the setting's input split
                        the query (x, y) lies on
sequence                index into the run's list of example sequences
k                       number of in-context examples
x, y, z_true            the query and its true label
pred_<subject>          the subject's prediction (-1 = no answer)
p_true_<subject>        the subject's probability of z_true (NaN without a distribution)
pred_<reference>        each reference's prediction (-1 = no answer)
kl_/ce_/tv_<reference>  for references with distributions (when the subject has one):
                        KL(subject || reference), cross-entropy -sum subject*log reference,
                        total variation; NaN where the reference gives no distribution.
                        Reference probabilities are floored at :data:`PROB_FLOOR` and
                        renormalised before the logarithm, so KL and CE stay finite.
=====================  ================================================================
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from algos.prompts import make_examples, query_grid
from algos.solvers.base import Prediction, Predictor
from algos.tasks import TaskSetting, task_labels
from compare.engine.grid import task_splits

__all__ = [
    "Comparison",
    "run_comparison",
    "iter_comparison",
    "ComparisonStream",
    "CHUNK_CELLS",
    "cell_dtype",
    "PROB_FLOOR",
    "SPLITS",
    "INPUT_SPLITS",
    "DIST_METRICS",
    "reference_names",
    "distribution_names",
]

#: Floor applied to reference probabilities before logs (KL and cross-entropy).
PROB_FLOOR = 1e-6
SPLITS = ("id", "ood")
INPUT_SPLITS = ("train", "test")
DIST_METRICS = ("kl", "ce", "tv")
#: Elements (tasks x queries x residues) per chunk of one distribution array.
_CHUNK_ELEMENTS = 1 << 21
#: Cells (tasks x sequences x k x queries) of one chunk of tasks held at once.
CHUNK_CELLS = 1 << 18


@dataclass(frozen=True)
class Comparison:
    """The engine's output: the per-cell table and what it was computed from."""

    cells: pd.DataFrame
    subject: str
    references: tuple[str, ...]
    distributions: tuple[str, ...]
    p: int
    ks: tuple[int, ...]
    tasks: np.ndarray
    sequences: np.ndarray
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def cell_dtype(p: int) -> np.dtype:
    """Smallest signed integer dtype holding -1 .. p-1."""
    return np.dtype(np.int8) if p <= 127 else np.dtype(np.int16)


def reference_names(cells: pd.DataFrame, subject: str = "model") -> list[str]:
    """Names of the reference predictors in a per-cell table, in column order."""
    return [c[5:] for c in cells.columns if c.startswith("pred_") and c[5:] != subject]


def distribution_names(cells: pd.DataFrame) -> list[str]:
    """Names of the references with per-cell distribution metrics."""
    return [c[3:] for c in cells.columns if c.startswith("kl_")]


def _check_prediction(name: str, pred: np.ndarray, probs: np.ndarray | None, n: int, q: int, p: int) -> None:
    if pred.shape != (n, q):
        raise ValueError(f"predictor {name!r}: predict_grid returned shape {pred.shape}, expected {(n, q)}")
    if pred.size and (pred.min() < -1 or pred.max() >= p):
        raise ValueError(f"predictor {name!r}: predictions outside [-1, {p})")
    if probs is not None and probs.shape != (n, q, p):
        raise ValueError(f"predictor {name!r}: probabilities of shape {probs.shape}, expected {(n, q, p)}")


@dataclass
class ComparisonStream:
    """A comparison yielded task by task: iterate for ``(task index, that task's cells)`` in
    task order (columns as in the module docstring). ``timings`` (seconds per predictor and
    for the distance metrics) grow as it runs. Memory is bounded by one chunk of tasks'
    compact predictions (at most about :data:`CHUNK_CELLS` cells), whatever the number of tasks."""

    subject: str
    references: tuple[str, ...]
    distributions: tuple[str, ...]
    p: int
    ks: tuple[int, ...]
    tasks: np.ndarray
    sequences: np.ndarray
    timings: dict[str, float]
    _blocks: Iterator[tuple[int, pd.DataFrame]] = field(repr=False)

    def __iter__(self) -> Iterator[tuple[int, pd.DataFrame]]:
        return self._blocks


def iter_comparison(
    setting: TaskSetting,
    tasks: np.ndarray,
    sequences: np.ndarray,
    ks: Sequence[int],
    subject: Predictor,
    references: Sequence[Predictor],
    *,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    label_offsets: np.ndarray | None = None,
) -> ComparisonStream:
    """Run ``subject`` and ``references`` over every (task, sequence, k) prefix and every query.

    tasks (n_tasks, 2); sequences (n_seq, k_max, 2) example inputs; ks the k values
    (each <= k_max). ``progress(n)`` is called after each batch of n prefixes (a hook for a
    progress bar; the engine prints nothing). ``label_offsets`` (n_tasks, n_seq, k_max),
    0 where a label is clean, adds that much mod p to the in-context labels (label noise,
    :mod:`compare.engine.noise`); the cells' ``z_true`` stays the task's answer and a column
    ``n_wrong`` counts the corrupted labels among the first k. ``chunk_size`` fixes the
    tasks per predictor call (default: as many as :data:`CHUNK_CELLS` allows). Inputs are
    checked here, before anything runs; the work happens as the stream is iterated.
    """
    p = setting.p
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    sequences = np.asarray(sequences, dtype=np.int64)
    ks = tuple(int(k) for k in ks)
    references = list(references)
    names = [pr.name for pr in (subject, *references)]
    if len(set(names)) != len(names):
        raise ValueError(f"predictor names must be distinct, got {names}")
    for pr in (subject, *references):
        if pr.p != p:
            raise ValueError(f"predictor {pr.name!r} is for p={pr.p}, the setting has p={p}")
    if tasks.shape[0] == 0:
        raise ValueError("no tasks to compare")
    if tasks.min() < 0 or tasks.max() >= p:
        bad = tasks[(tasks < 0).any(1) | (tasks >= p).any(1)][0].tolist()
        raise ValueError(f"task {tuple(bad)} is outside Z_{p}^2")
    if sequences.ndim != 3 or sequences.shape[2] != 2 or sequences.shape[0] == 0:
        raise ValueError(f"sequences: expected shape (n_seq, k_max, 2), got {sequences.shape}")
    if sequences.min() < 0 or sequences.max() >= p:
        raise ValueError(f"sequences: inputs must lie in [0, {p})")
    if not ks or min(ks) < 1 or max(ks) > sequences.shape[1]:
        raise ValueError(f"k values {ks} must lie in [1, {sequences.shape[1]}] (the sequence length)")
    if len(set(ks)) != len(ks):
        raise ValueError(f"k values must be distinct, got {ks}")
    if label_offsets is not None:
        label_offsets = np.asarray(label_offsets, dtype=np.int64)
        if label_offsets.shape != (tasks.shape[0], *sequences.shape[:2]):
            raise ValueError(f"label_offsets: expected shape {(tasks.shape[0], *sequences.shape[:2])}, "
                             f"got {label_offsets.shape}")
    timings = {nm: 0.0 for nm in names}
    timings["metrics"] = 0.0
    blocks = _stream(setting, tasks, sequences, ks, subject, references, names, chunk_size, progress,
                     label_offsets, timings)
    dists = tuple(r.name for r in references if r.gives_distribution) if subject.gives_distribution else ()
    return ComparisonStream(subject.name, tuple(r.name for r in references), dists, p, ks, tasks, sequences,
                            timings, blocks)


def run_comparison(setting: TaskSetting, tasks: np.ndarray, sequences: np.ndarray, ks: Sequence[int],
                   subject: Predictor, references: Sequence[Predictor], **kwargs: Any) -> Comparison:
    """:func:`iter_comparison` gathered into one per-cell table (for runs that fit in memory);
    keyword arguments as there."""
    stream = iter_comparison(setting, tasks, sequences, ks, subject, references, **kwargs)
    frames = [cells for _, cells in stream]
    cells = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return Comparison(cells, stream.subject, stream.references, stream.distributions, stream.p, stream.ks,
                      stream.tasks, stream.sequences, stream.timings)


def _stream(setting: TaskSetting, tasks: np.ndarray, sequences: np.ndarray, ks: Sequence[int], subject: Predictor,
            references: Sequence[Predictor], names: Sequence[str], chunk_size: int | None,
            progress: Callable[[int], None] | None, label_offsets: np.ndarray | None,
            timings: dict[str, float]) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield (task index, that task's cells) in task order; see :func:`iter_comparison`."""
    p = setting.p
    predictors = [subject, *references]
    grid = query_grid(p)  # (q, 2), index x*p + y
    q = grid.shape[0]
    n_t, n_s, n_k = tasks.shape[0], sequences.shape[0], len(ks)
    small = cell_dtype(p)
    with_dist = bool(subject.gives_distribution)
    dist_refs = [r for r in references if r.gives_distribution] if with_dist else []
    # tasks per chunk: bounded by the distribution arrays of one call and by the cells held
    chunk = chunk_size or max(1, min(_CHUNK_ELEMENTS // (q * p), CHUNK_CELLS // (n_s * n_k * q)))
    for i0 in range(0, n_t, chunk):
        sl = slice(i0, min(i0 + chunk, n_t))
        ctasks = tasks[sl]
        n = ctasks.shape[0]
        shape = (n, n_s, n_k, q)
        pred = {nm: np.empty(shape, dtype=small) for nm in names}
        p_true = np.full(shape, np.nan, dtype=np.float32)
        metrics = {(m, r.name): np.full(shape, np.nan, dtype=np.float32) for r in dist_refs for m in DIST_METRICS}
        z = task_labels(p, ctasks, grid)  # (n, q)
        # a subject that prefers large batches (the model on a GPU) gets every sequence's
        # prefixes of one k in a single call; its per-sequence answers are then read from that
        ahead: dict[int, Prediction] = {}
        if getattr(subject, "batch_sequences", False) and n_s > 1:
            for ki, k in enumerate(ks):
                stacked = np.concatenate(
                    [_prefixes(p, ctasks, sequences[s], k, label_offsets, sl, s) for s in range(n_s)]
                )  # (n_s * n, k, 3), sequence-major
                t0 = time.perf_counter()
                ahead[ki] = subject.predict_grid(stacked, grid)
                timings[subject.name] += time.perf_counter() - t0
        for s in range(n_s):
            for ki, k in enumerate(ks):
                examples = _prefixes(p, ctasks, sequences[s], k, label_offsets, sl, s)  # (n, k, 3)
                subj_probs = None
                for pr in predictors:
                    t0 = time.perf_counter()
                    if pr is subject and ki in ahead:
                        both = ahead[ki]
                        rows = slice(s * n, (s + 1) * n)
                        out = Prediction(both.pred[rows], None if both.probs is None else both.probs[rows])
                    else:
                        out = pr.predict_grid(examples, grid)
                    timings[pr.name] += time.perf_counter() - t0
                    pp = np.asarray(out.pred)
                    probs = None if out.probs is None else np.asarray(out.probs)
                    _check_prediction(pr.name, pp, probs, n, q, p)
                    pred[pr.name][:, s, ki] = pp
                    t0 = time.perf_counter()
                    if pr is subject and probs is not None:
                        subj_probs = probs.astype(np.float32, copy=False)
                        p_true[:, s, ki] = np.take_along_axis(subj_probs, z[..., None], axis=-1)[..., 0]
                        # entropy of the subject, reused by every reference's KL
                        subj_entropy = _entropy(subj_probs)
                    elif subj_probs is not None and pr.gives_distribution and probs is not None:
                        kl, ce, tv = _distances(subj_probs, subj_entropy, probs)
                        metrics[("kl", pr.name)][:, s, ki] = kl
                        metrics[("ce", pr.name)][:, s, ki] = ce
                        metrics[("tv", pr.name)][:, s, ki] = tv
                    timings["metrics"] += time.perf_counter() - t0
                if progress is not None:
                    progress(n)
        for j in range(n):
            one = slice(j, j + 1)
            cells = _assemble(setting, ctasks[one], ks, grid, (1, n_s, n_k, q), small,
                              {nm: a[one] for nm, a in pred.items()}, p_true[one],
                              {key: a[one] for key, a in metrics.items()}, subject.name, names, dist_refs)
            if label_offsets is not None:
                off = label_offsets[i0 + j]  # (n_s, k_max)
                wrong = np.stack([(off[:, :k] != 0).sum(-1) for k in ks], axis=-1)  # (n_s, n_k)
                cells["n_wrong"] = np.broadcast_to(wrong[..., None], (n_s, n_k, q)).reshape(-1).astype(np.int16)
            yield i0 + j, cells


def _prefixes(p: int, tasks: np.ndarray, sequence: np.ndarray, k: int, label_offsets: np.ndarray | None,
              rows: slice, s: int) -> np.ndarray:
    """The k-shot prefixes (n, k, 3) of ``tasks`` on one example sequence, with label noise."""
    examples = make_examples(p, tasks, sequence, k)
    if label_offsets is not None:
        examples[..., 2] = (examples[..., 2] + label_offsets[rows, s, :k]) % p
    return examples


def _entropy(m: np.ndarray) -> np.ndarray:
    """Shannon entropy over the last axis (0 log 0 = 0)."""
    logm = np.log(np.maximum(m, np.finfo(m.dtype).tiny))
    logm *= m
    entropy: np.ndarray = -logm.sum(-1)
    return entropy


def _distances(m: np.ndarray, m_entropy: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KL(m || r), cross-entropy and total variation over the last axis; NaN where r is no distribution.

    r is floored at PROB_FLOOR and renormalised for the logarithm:
    log r' = log max(r, floor) - log sum max(r, floor), so CE = -sum m log max(r, floor) + log sum.
    """
    r = np.asarray(r, dtype=np.float32)
    valid = np.abs(r.sum(-1) - 1.0) < 1e-3  # also False for NaN
    work = np.maximum(r, np.float32(PROB_FLOOR))
    norm = np.log(work.sum(-1))
    np.log(work, out=work)
    work *= m
    ce = norm - work.sum(-1)
    kl = np.maximum(ce - m_entropy, 0.0)
    np.subtract(m, r, out=work)
    np.abs(work, out=work)
    tv = 0.5 * work.sum(-1)
    for a in (ce, kl, tv):
        a[~valid] = np.nan
    return kl, ce, tv


def _assemble(setting: TaskSetting, tasks: np.ndarray, ks: Sequence[int], grid: np.ndarray,
              shape: tuple[int, int, int, int], small: np.dtype, pred: dict[str, np.ndarray], p_true: np.ndarray,
              metrics: dict[tuple[str, str], np.ndarray], subject: str, names: Sequence[str],
              dist_refs: Sequence[Predictor]) -> pd.DataFrame:
    """The cells of ``tasks`` (n_t, 2) as one table; every array in ``pred``, ``p_true`` and
    ``metrics`` has ``shape`` (n_t, n_s, n_k, q)."""
    n_t, n_s, n_k, q = shape
    n = n_t * n_s * n_k * q
    per_task = n_s * n_k * q
    splits = task_splits(setting, tasks)
    split_codes = np.where(splits == "id", 0, 1).astype(np.int8)
    train = setting.train_input_mask.ravel()  # (q,), index x*p + y like the grid
    z = task_labels(setting.p, tasks, grid)  # (n_t, q)

    def cat(codes: npt.NDArray[np.integer[Any]], categories: tuple[str, ...]) -> pd.Categorical[str]:
        return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories)))

    cols: dict[str, object] = {
        "task_a": np.repeat(tasks[:, 0].astype(small), per_task),
        "task_b": np.repeat(tasks[:, 1].astype(small), per_task),
        "split": cat(np.repeat(split_codes, per_task), SPLITS),
        "input_split": cat(np.tile(np.where(train, 0, 1).astype(np.int8), n // q), INPUT_SPLITS),
        "sequence": np.tile(np.repeat(np.arange(n_s, dtype=np.int16), n_k * q), n_t),
        "k": np.tile(np.repeat(np.asarray(ks, dtype=np.int16), q), n_t * n_s),
        "x": np.tile(grid[:, 0].astype(small), n // q),
        "y": np.tile(grid[:, 1].astype(small), n // q),
        "z_true": np.broadcast_to(z[:, None, None, :], shape).reshape(n).astype(small),
        f"pred_{subject}": pred[subject].reshape(n),
        f"p_true_{subject}": p_true.reshape(n),
    }
    for nm in names[1:]:
        cols[f"pred_{nm}"] = pred[nm].reshape(n)
    for r in dist_refs:
        for m in DIST_METRICS:
            cols[f"{m}_{r.name}"] = metrics[(m, r.name)].reshape(n)
    return pd.DataFrame(cols)
