"""Small aggregates of a per-cell table, from which every summary of a report is computed.

A run at paper scale has hundreds of millions of cells (p = 29, 841 tasks, k up to 32,
many example sequences); no report needs them at once. Every table and figure of a run
report is a function of three kinds of sums, each additive over tasks:

- :class:`UnitSums`: per (task, sequence) unit and k, the numerator and denominator of
  every rate (coverage, agreement, accuracy inside and outside coverage, distances, ...);
  the bootstrap resamples these units, and the per-task and per-sequence tables pool them.
- :class:`AttributionCounts`: per unit and k, cells by (subject right?, first explaining
  reference).
- :class:`MapCounts`: per (split, k, x, y), how many units each predictor agrees with the
  subject (or, for the subject, is right).

:func:`aggregate` computes them from any set of whole tasks (cells of one task are never
split between two calls); :func:`merge` joins those of disjoint task sets. Units keep the
order in which they first appear (task, then sequence), so aggregating a run task by task
and merging gives bit for bit what aggregating the whole table gives: the sums of one unit
are taken over the same cells in the same order either way.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare.engine.comparison import DIST_METRICS, PROB_FLOOR, SPLITS, distribution_names, reference_names

__all__ = [
    "UnitSums",
    "AttributionCounts",
    "MapCounts",
    "Aggregates",
    "unit_sums",
    "attribution_counts",
    "attribute_cells",
    "explained_by",
    "map_counts",
    "aggregate",
    "merge",
    "Accumulator",
    "NONE",
    "ABSTAINED",
]

NONE = "none"
ABSTAINED = "abstained"


# ---------------------------------------------------------------------- units and k
def _unit_key(task_a: np.ndarray, task_b: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    return (task_a.astype(np.int64) * 65536 + task_b.astype(np.int64)) * 65536 + sequence.astype(np.int64)


def _units(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit code per row, split code per unit, first row of each unit); a unit is one (task, sequence)."""
    key = _unit_key(cells["task_a"].to_numpy(), cells["task_b"].to_numpy(), cells["sequence"].to_numpy())
    codes, uniq = pd.factorize(key, sort=False)
    split = split_codes(cells)
    unit_split = np.zeros(len(uniq), dtype=np.int64)
    unit_split[codes] = split
    first = np.unique(codes, return_index=True)[1]
    return codes.astype(np.int64), unit_split, first


def split_codes(cells: pd.DataFrame) -> np.ndarray:
    """Per row, 0 for an i.d. task and 1 for an o.o.d. one."""
    s = cells["split"]
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == list(SPLITS):
        return s.cat.codes.to_numpy(np.int64)
    return np.where(s.astype(str).to_numpy() == "id", 0, 1).astype(np.int64)


def k_codes(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(index of each row's k in the sorted k values, those k values)."""
    k = cells["k"].to_numpy(np.int64)
    ks = np.unique(k)
    return np.searchsorted(ks, k), ks


def _sum_by(group: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(group, weights=values.astype(np.float64, copy=False), minlength=n_groups)


# ---------------------------------------------------------------------- unit sums
@dataclass(frozen=True)
class UnitSums:
    """Numerator and denominator of every rate of :func:`compare.engine.summary.summarize`, per (unit, k).

    A unit is one (task, sequence) pair, in the order it first appears in the cells
    (``unit_keys`` (n_units,) identifies them, ``unit_split`` (n_units,) is its split code,
    ``unit_task`` (n_units, 2) and ``unit_sequence`` (n_units,) name it); ``keys`` names the
    m columns as (predictor, metric); ``num`` and ``den`` are (n_units, n_k, m);
    ``cells_per`` (n_units, n_k) counts cells. Two tables of the same comparison (same
    tasks, sequences and k) have the same units, so a paired bootstrap
    (:func:`compare.engine.summary.paired_differences`) can resample them together.
    """

    keys: tuple[tuple[str, str], ...]
    num: np.ndarray
    den: np.ndarray
    unit_keys: np.ndarray
    unit_split: np.ndarray
    ks: np.ndarray
    cells_per: np.ndarray
    unit_task: np.ndarray
    unit_sequence: np.ndarray

    def column(self, predictor: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(num, den), each (n_units, n_k), of one rate."""
        j = self.keys.index((predictor, metric))
        return self.num[..., j], self.den[..., j]


def unit_sums(cells: pd.DataFrame, subject: str = "model", references: Sequence[str] | None = None) -> UnitSums:
    """Per (task, sequence) unit and k, the sums every rate of
    :data:`compare.engine.summary.SUMMARY_METRICS` is a ratio of."""
    refs = list(reference_names(cells, subject) if references is None else references)
    dists = set(distribution_names(cells))
    unit, unit_split, first = _units(cells)
    kcode, ks = k_codes(cells)
    n_units, n_k = len(unit_split), len(ks)
    group = unit * n_k + kcode
    G = n_units * n_k

    s_pred = cells[f"pred_{subject}"].to_numpy()
    z = cells["z_true"].to_numpy()
    n_cells = _sum_by(group, G, np.ones(len(cells)))
    s_right = s_pred == z
    s_ans = s_pred != -1

    # blocks: (predictor, metric, numerator per group, denominator per group)
    blocks: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    nright = _sum_by(group, G, s_right)
    nans = _sum_by(group, G, s_ans)
    blocks += [
        (subject, "coverage", nans, n_cells),
        (subject, "accuracy", nright, n_cells),
        (subject, "precision", nright, nans),
    ]
    ptrue_col = f"p_true_{subject}"
    if ptrue_col in cells and cells[ptrue_col].notna().any():
        pt = cells[ptrue_col].to_numpy(np.float64)
        ok = np.isfinite(pt)
        nll = -np.log(np.maximum(np.where(ok, pt, 1.0), PROB_FLOOR))
        blocks.append((subject, "nll", _sum_by(group, G, np.where(ok, nll, 0.0)), _sum_by(group, G, ok)))
    for r in refs:
        rp = cells[f"pred_{r}"].to_numpy()
        ans = rp != -1
        agree = ans & (rp == s_pred)
        a = _sum_by(group, G, ans)
        ag = _sum_by(group, G, agree)
        rin = _sum_by(group, G, s_right & ans)
        rr = _sum_by(group, G, rp == z)
        blocks += [
            (r, "coverage", a, n_cells),
            (r, "agreement", ag, a),
            (r, "model_acc_in", rin, a),
            (r, "model_acc_out", nright - rin, n_cells - a),
            (r, "accuracy", rr, n_cells),
            (r, "precision", rr, a),
            (r, "explains", ag, n_cells),
        ]
        if r in dists:
            for m in DIST_METRICS:
                v = cells[f"{m}_{r}"].to_numpy(np.float64)
                ok = np.isfinite(v)
                blocks.append((r, m, _sum_by(group, G, np.where(ok, v, 0.0)), _sum_by(group, G, ok)))

    num = np.stack([b[2] for b in blocks], axis=-1).reshape(n_units, n_k, -1)
    den = np.stack([b[3] for b in blocks], axis=-1).reshape(n_units, n_k, -1)
    ta, tb, sq = (cells[c].to_numpy(np.int64)[first] for c in ("task_a", "task_b", "sequence"))
    return UnitSums(tuple((b[0], b[1]) for b in blocks), num, den, _unit_key(ta, tb, sq), unit_split, ks,
                    n_cells.reshape(n_units, n_k), np.stack([ta, tb], axis=1), sq)


# ---------------------------------------------------------------------- attribution
def explained_by(cells: pd.DataFrame, subject: str = "model", order: Sequence[str] | None = None) -> np.ndarray:
    """Per-cell bit mask of the references that give the subject's answer: bit i is set
    when ``order[i]`` answers and agrees (at most 15 references; int16)."""
    order = list(reference_names(cells, subject) if order is None else order)
    if len(order) > 15:
        raise ValueError(f"at most 15 references fit the mask, got {len(order)}")
    s_pred = cells[f"pred_{subject}"].to_numpy()
    mask = np.zeros(len(cells), dtype=np.int16)
    for i, r in enumerate(order):
        rp = cells[f"pred_{r}"].to_numpy()
        mask |= (((rp != -1) & (rp == s_pred)).astype(np.int16) << i).astype(np.int16)
    return mask


def attribute_cells(cells: pd.DataFrame, subject: str = "model", order: Sequence[str] | None = None) -> np.ndarray:
    """Per-cell exclusive attribution code: index into ``order``, then len(order) = none,
    len(order) + 1 = abstained (the subject gave no answer)."""
    order = list(reference_names(cells, subject) if order is None else order)
    s_pred = cells[f"pred_{subject}"].to_numpy()
    code = np.full(len(cells), len(order), dtype=np.int16)
    todo = np.ones(len(cells), dtype=bool)
    for i, r in enumerate(order):
        rp = cells[f"pred_{r}"].to_numpy()
        hit = todo & (rp != -1) & (rp == s_pred)
        code[hit] = i
        todo &= ~hit
    code[s_pred == -1] = len(order) + 1
    return code


@dataclass(frozen=True)
class AttributionCounts:
    """``counts`` (n_units, n_k, 2, n_categories): cells of each unit and k by whether the
    subject is right (index 1) or not (0) and by exclusive attribution category
    (``categories``: the references in order, then ``none``, then ``abstained``); units and
    k as in the :class:`UnitSums` of the same cells."""

    categories: tuple[str, ...]
    counts: np.ndarray
    unit_split: np.ndarray
    ks: np.ndarray


def attribution_counts(cells: pd.DataFrame, subject: str = "model",
                       order: Sequence[str] | None = None) -> AttributionCounts:
    order = list(reference_names(cells, subject) if order is None else order)
    cats = (*order, NONE, ABSTAINED)
    code = attribute_cells(cells, subject, order)
    right = (cells[f"pred_{subject}"].to_numpy() == cells["z_true"].to_numpy()).astype(np.int64)
    unit, unit_split, _ = _units(cells)
    kcode, ks = k_codes(cells)
    n_units, n_k, n_c = len(unit_split), len(ks), len(cats)
    flat = ((unit * n_k + kcode) * 2 + right) * n_c + code
    counts = np.bincount(flat, minlength=n_units * n_k * 2 * n_c).reshape(n_units, n_k, 2, n_c).astype(np.float64)
    return AttributionCounts(cats, counts, unit_split, ks)


# ---------------------------------------------------------------------- maps
@dataclass(frozen=True)
class MapCounts:
    """Per (split, k, cell x*p + y): ``n`` (n_splits * n_k * p^2,) units present and
    ``hits`` (same, n_predictors): units where each predictor gives the subject's answer
    (the subject's own column: where it is right). ``ks`` are the run's k values; a k
    absent from a part of the run simply has no units there."""

    p: int
    ks: np.ndarray
    predictors: tuple[str, ...]
    n: np.ndarray
    hits: np.ndarray


def map_counts(cells: pd.DataFrame, p: int, subject: str = "model", predictors: Sequence[str] | None = None,
               ks: np.ndarray | None = None) -> MapCounts:
    preds = (subject, *(reference_names(cells, subject) if predictors is None else predictors))
    kcode, own = k_codes(cells)
    ks = own if ks is None else np.asarray(ks, dtype=np.int64)
    if ks is not own:
        kcode = np.searchsorted(ks, cells["k"].to_numpy(np.int64))
    q = p * p
    cell = cells["x"].to_numpy(np.int64) * p + cells["y"].to_numpy(np.int64)
    group = (split_codes(cells) * len(ks) + kcode) * q + cell
    G = len(SPLITS) * len(ks) * q
    n = np.bincount(group, minlength=G).astype(np.float64)
    s_pred = cells[f"pred_{subject}"].to_numpy()
    z = cells["z_true"].to_numpy()
    hits = np.empty((G, len(preds)))
    for j, name in enumerate(preds):
        hit = s_pred == z if name == subject else (cells[f"pred_{name}"].to_numpy() == s_pred) & (s_pred != -1)
        hits[:, j] = np.bincount(group, weights=hit.astype(np.float64), minlength=G)
    return MapCounts(p, ks, preds, n, hits)


# ---------------------------------------------------------------------- all three
@dataclass(frozen=True)
class Aggregates:
    """Everything a run report is computed from (see the module docstring)."""

    sums: UnitSums
    attribution: AttributionCounts
    maps: MapCounts
    subject: str
    references: tuple[str, ...]

    @property
    def n_cells(self) -> int:
        return int(self.sums.cells_per.sum())


def aggregate(cells: pd.DataFrame, p: int, subject: str = "model", references: Sequence[str] | None = None,
              ks: Sequence[int] | None = None) -> Aggregates:
    """The aggregates of whole tasks' cells. ``ks`` (the run's k values) fixes the k axis
    of the maps so that parts of one run merge; by default the k values present."""
    refs = tuple(reference_names(cells, subject) if references is None else references)
    kk = None if ks is None else np.asarray(sorted(ks), dtype=np.int64)
    return Aggregates(unit_sums(cells, subject, refs), attribution_counts(cells, subject, refs),
                      map_counts(cells, p, subject, refs, kk), subject, refs)


def merge(parts: Sequence[Aggregates]) -> Aggregates:
    """The aggregates of the union of disjoint task sets, units in the order of ``parts``."""
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    for a in parts[1:]:
        if (a.sums.keys != first.sums.keys or a.references != first.references or a.subject != first.subject
                or not np.array_equal(a.sums.ks, first.sums.ks) or not np.array_equal(a.maps.ks, first.maps.ks)):
            raise ValueError("aggregates of different comparisons (predictors, metrics or k differ) cannot be merged")
    if len(parts) == 1:
        return first

    def cat(get: Callable[[Aggregates], np.ndarray]) -> np.ndarray:
        return np.concatenate([get(a) for a in parts], axis=0)

    s = UnitSums(first.sums.keys, cat(lambda a: a.sums.num), cat(lambda a: a.sums.den),
                 cat(lambda a: a.sums.unit_keys), cat(lambda a: a.sums.unit_split), first.sums.ks,
                 cat(lambda a: a.sums.cells_per), cat(lambda a: a.sums.unit_task),
                 cat(lambda a: a.sums.unit_sequence))
    if len(np.unique(s.unit_keys)) != len(s.unit_keys):
        raise ValueError("aggregates to merge share (task, sequence) units: each task may appear in one part only")
    at = AttributionCounts(first.attribution.categories, cat(lambda a: a.attribution.counts), s.unit_split, s.ks)
    m = first.maps
    maps = MapCounts(m.p, m.ks, m.predictors, np.sum([a.maps.n for a in parts], axis=0),
                     np.sum([a.maps.hits for a in parts], axis=0))
    return Aggregates(s, at, maps, first.subject, first.references)


class Accumulator:
    """Aggregates of a run collected task by task, in any order, and merged in task order.

    Per task it keeps the unit sums and attribution counts (a few kB); the maps, which
    are as large for one task as for all, are summed as they come, so memory grows with
    the number of (task, sequence) units only.
    """

    def __init__(self) -> None:
        self._parts: dict[int, Aggregates] = {}
        self._maps: MapCounts | None = None

    def __contains__(self, index: int) -> bool:
        return index in self._parts

    def __len__(self) -> int:
        return len(self._parts)

    def add(self, index: int, agg: Aggregates) -> None:
        """Add the aggregates of the task with this index in the run's task order."""
        if index in self._parts:
            raise ValueError(f"task {index} was added twice")
        m = agg.maps
        if self._maps is None:
            self._maps = MapCounts(m.p, m.ks, m.predictors, m.n.copy(), m.hits.copy())
        else:
            if m.predictors != self._maps.predictors or not np.array_equal(m.ks, self._maps.ks):
                raise ValueError("aggregates of different comparisons cannot be accumulated")
            np.add(self._maps.n, m.n, out=self._maps.n)
            np.add(self._maps.hits, m.hits, out=self._maps.hits)
        # fresh empty arrays, not m.n[:0]: a slice is a view that would keep the whole
        # per-task map (p^2 x splits x k x predictors floats) alive for every task
        empty = MapCounts(m.p, m.ks, m.predictors, np.zeros(0), np.zeros((0, m.hits.shape[1])))
        self._parts[index] = Aggregates(agg.sums, agg.attribution, empty, agg.subject, agg.references)

    def add_cells(self, index: int, cells: pd.DataFrame, p: int, subject: str, references: Sequence[str],
                  ks: Sequence[int]) -> None:
        """Add one streamed task's cells, then hand the memory they leave free back to the OS
        (:mod:`compare.storage.memory`), so that a long stream's resident memory stays flat."""
        from compare.storage.memory import release_free_memory

        self.add(index, aggregate(cells, p, subject, references, ks))
        release_free_memory()

    def result(self) -> Aggregates:
        """The aggregates of every task added, units in task order."""
        if not self._parts or self._maps is None:  # the first add sets the maps
            raise ValueError("no tasks were added")
        merged = merge([self._parts[i] for i in sorted(self._parts)])
        return Aggregates(merged.sums, merged.attribution, self._maps, merged.subject, merged.references)
