"""Summaries of a comparison: rates with bootstrap intervals, attribution, the headline.

Every table here is computed from the small aggregates of :mod:`compare.engine.aggregates`, so a
run of any size is summarised in memory that does not grow with its cells; the functions
taking a per-cell table (``summarize``, ``attribution``, ``compute_all``) aggregate it
first, and give exactly what aggregating a run task by task and merging gives.

Averages and intervals
    Every rate is a ratio of sums over cells within a (split, k); the unit of resampling
    for the bootstrap is one (task, sequence) pair, drawn with replacement within its split
    (a cluster bootstrap: cells of one prompt prefix are not independent). Intervals are
    percentile intervals; the resampling weights come from ``numpy.random.default_rng``
    seeded by ``(seed, split)``, so the same seed gives the same intervals.

Attribution
    A cell's subject answer is *explained* by a reference when the reference answers the
    same residue. The exclusive attribution gives each cell to the first explaining
    reference in the given order (simplest first: Ratio Matching before Modular
    Regression before the Bayes predictors), ``none`` when no reference explains it, and
    ``abstained`` when the subject gave no answer; its shares sum to 1 per (split, k,
    outcome), outcome being ``all``, ``right`` or ``wrong`` (the subject's answer).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from compare.engine.aggregates import (
    ABSTAINED,
    NONE,
    Aggregates,
    AttributionCounts,
    UnitSums,
    aggregate,
    attribution_counts,
    unit_sums,
)
from compare.engine.breakdowns import breakdown_table, maps_table
from compare.engine.comparison import SPLITS, reference_names

__all__ = [
    "summarize",
    "summary_table",
    "paired_differences",
    "attribution",
    "attribution_table",
    "headline",
    "Summaries",
    "compute_all",
    "summaries",
    "SUMMARY_METRICS",
    "OUTCOMES",
    "NONE",
    "ABSTAINED",
]

#: Rates in the summary table, each with ``_lo`` and ``_hi`` interval columns.
SUMMARY_METRICS = (
    "coverage",  # share of cells the predictor answers
    "agreement",  # share of its answers equal to the subject's answer
    "model_acc_in",  # subject accuracy on the cells the predictor answers
    "model_acc_out",  # subject accuracy on the cells it does not answer
    "accuracy",  # the predictor's own accuracy over all cells (no answer = wrong)
    "precision",  # the predictor's accuracy where it answers
    "explains",  # share of all cells where it gives the subject's answer
    "kl",  # mean KL(subject || predictor)
    "ce",  # mean cross-entropy of the predictor under the subject's distribution
    "tv",  # mean total variation distance
    "nll",  # subject only: mean -log p(true z)
)
OUTCOMES = ("all", "right", "wrong")


# ---------------------------------------------------------------------- bootstrap
def _boot_weights(n_units: int, n_boot: int, seed: int, split: int) -> np.ndarray:
    """(n_boot, n_units) counts of each unit in each resample."""
    rng = np.random.default_rng([seed, split])
    idx = rng.integers(0, n_units, size=(n_boot, n_units))
    flat = (np.arange(n_boot)[:, None] * n_units + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(np.float64)


def _ratios(num: np.ndarray, den: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Point ratio of sums (m,) and, with weights (n_boot, n_units), the resampled ratios (n_boot, m)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        tot = den.sum(0)
        point = np.where(tot > 0, num.sum(0) / np.where(tot > 0, tot, 1.0), np.nan)
        if weights is None:
            return point, None
        bn, bd = weights @ num, weights @ den
        return point, np.where(bd > 0, bn / np.where(bd > 0, bd, 1.0), np.nan)


def _percentiles(boot: np.ndarray | None, m: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(m, np.nan), np.full(m, np.nan)
    if boot is None:
        return lo, hi
    tail = (1.0 - level) / 2.0 * 100.0
    ok = np.isfinite(boot).any(0)
    if ok.any():
        with np.errstate(invalid="ignore"):
            lo[ok] = np.nanpercentile(boot[:, ok], tail, axis=0)
            hi[ok] = np.nanpercentile(boot[:, ok], 100.0 - tail, axis=0)
    return lo, hi


def _ratio_ci(
    num: np.ndarray, den: np.ndarray, weights: np.ndarray | None, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point ratio of sums and percentile interval; num, den (n_units, m)."""
    point, boot = _ratios(num, den, weights)
    return (point, *_percentiles(boot, point.size, level))


# ---------------------------------------------------------------------- summary
def summary_table(sums: UnitSums, subject: str, references: Sequence[str], *, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> pd.DataFrame:
    """One row per (split, k, predictor) with every rate of :data:`SUMMARY_METRICS`.

    Columns: split, k, predictor, n_units, n_cells, then ``<metric>``, ``<metric>_lo``,
    ``<metric>_hi`` for each metric (NaN where it does not apply). The subject's own row
    comes first in each (split, k) and carries its accuracy and nll.
    """
    num, den, unit_split, ks, cells_per = sums.num, sums.den, sums.unit_split, sums.ks, sums.cells_per
    n_k = len(ks)
    predictors = [subject, *references]
    rows: list[dict[str, object]] = []
    for si, split in enumerate(SPLITS):
        sel = unit_split == si
        if not sel.any():
            continue
        U = int(sel.sum())
        w = _boot_weights(U, n_boot, seed, si) if n_boot > 0 else None
        pt, lo, hi = _ratio_ci(num[sel].reshape(U, -1), den[sel].reshape(U, -1), w, level)
        pt, lo, hi = (a.reshape(n_k, -1) for a in (pt, lo, hi))
        for ki, k in enumerate(ks):
            present = cells_per[sel, ki] > 0
            base = {"split": split, "k": int(k), "n_units": int(present.sum()),
                    "n_cells": int(cells_per[sel, ki].sum())}
            table = {name: dict(base, predictor=name) for name in predictors}
            for j, (name, metric) in enumerate(sums.keys):
                table[name][metric] = pt[ki, j]
                table[name][f"{metric}_lo"] = lo[ki, j]
                table[name][f"{metric}_hi"] = hi[ki, j]
            rows.extend(table[name] for name in predictors)
    cols = ["split", "k", "predictor", "n_units", "n_cells"]
    for m in SUMMARY_METRICS:
        cols += [m, f"{m}_lo", f"{m}_hi"]
    out = pd.DataFrame(rows)
    for c in cols:
        if c not in out:
            out[c] = np.nan
    return out[cols].reset_index(drop=True)


def summarize(cells: pd.DataFrame, subject: str = "model", references: Sequence[str] | None = None, *,
              n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """:func:`summary_table` of a per-cell table."""
    refs = list(reference_names(cells, subject) if references is None else references)
    return summary_table(unit_sums(cells, subject, refs), subject, refs, n_boot=n_boot, seed=seed, level=level)


def paired_differences(
    a: UnitSums, b: UnitSums, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Rate of ``a`` minus rate of ``b`` per (split, k, predictor, metric), with a paired
    percentile interval: each resample draws (task, sequence) units with the weights
    :func:`summarize` uses for the same ``seed`` and split, and takes the difference of
    the two ratios of sums on those same units. ``a`` and ``b`` must come from comparisons
    over the same units and k (e.g. one model with and without an ablation).

    Columns: split, k, predictor, metric, diff, diff_lo, diff_hi.
    """
    if not (np.array_equal(a.unit_keys, b.unit_keys) and np.array_equal(a.ks, b.ks)):
        raise ValueError("paired differences need the same (task, sequence) units and k on both sides")
    common = [key for key in a.keys if key in set(b.keys)]
    ia = [a.keys.index(key) for key in common]
    ib = [b.keys.index(key) for key in common]
    n_k, m = len(a.ks), len(common)
    rows = []
    for si, split in enumerate(SPLITS):
        sel = a.unit_split == si
        if not sel.any():
            continue
        U = int(sel.sum())
        w = _boot_weights(U, n_boot, seed, si) if n_boot > 0 else None
        (pa, ba), (pb, bb) = (_ratios(s.num[sel][..., idx].reshape(U, -1), s.den[sel][..., idx].reshape(U, -1), w)
                              for s, idx in ((a, ia), (b, ib)))
        diff = (pa - pb).reshape(n_k, m)
        lo, hi = _percentiles(None if ba is None or bb is None else ba - bb, n_k * m, level)
        lo, hi = lo.reshape(n_k, m), hi.reshape(n_k, m)
        for ki, k in enumerate(a.ks):
            for j, (name, metric) in enumerate(common):
                rows.append({"split": split, "k": int(k), "predictor": name, "metric": metric,
                             "diff": diff[ki, j], "diff_lo": lo[ki, j], "diff_hi": hi[ki, j]})
    return pd.DataFrame(rows, columns=["split", "k", "predictor", "metric", "diff", "diff_lo", "diff_hi"])


# ---------------------------------------------------------------------- attribution
def attribution_table(counts: AttributionCounts, *, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """Exclusive attribution shares per (split, k, outcome, category) with intervals.

    Categories: each reference in order, then ``none``, then ``abstained``. The shares
    of one (split, k, outcome) sum to 1 (outcomes with no cells are left out).
    """
    cats, ks, unit_split = counts.categories, counts.ks, counts.unit_split
    c = counts.counts
    n_k, n_c = len(ks), len(cats)
    by_outcome = np.stack([c.sum(2), c[:, :, 1], c[:, :, 0]], axis=2)  # (U, k, 3, c)
    dens = np.repeat(by_outcome.sum(-1, keepdims=True), n_c, axis=-1)
    rows = []
    for si, split in enumerate(SPLITS):
        sel = unit_split == si
        if not sel.any():
            continue
        U = int(sel.sum())
        w = _boot_weights(U, n_boot, seed, si) if n_boot > 0 else None
        pt, lo, hi = _ratio_ci(by_outcome[sel].reshape(U, -1), dens[sel].reshape(U, -1), w, level)
        shape = (n_k, len(OUTCOMES), n_c)
        pt, lo, hi = pt.reshape(shape), lo.reshape(shape), hi.reshape(shape)
        tot = dens[sel][:, :, :, 0].sum(0)  # (k, outcome)
        for ki, k in enumerate(ks):
            for oi, outcome in enumerate(OUTCOMES):
                if tot[ki, oi] == 0:
                    continue
                for ci, cat in enumerate(cats):
                    rows.append({"split": split, "k": int(k), "outcome": outcome, "category": cat,
                                 "n_cells": int(tot[ki, oi]), "share": pt[ki, oi, ci],
                                 "share_lo": lo[ki, oi, ci], "share_hi": hi[ki, oi, ci]})
    return pd.DataFrame(rows, columns=["split", "k", "outcome", "category", "n_cells", "share", "share_lo", "share_hi"])


def attribution(cells: pd.DataFrame, subject: str = "model", order: Sequence[str] | None = None, *,
                n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """:func:`attribution_table` of a per-cell table, references in ``order``."""
    return attribution_table(attribution_counts(cells, subject, order), n_boot=n_boot, seed=seed, level=level)


def headline(summary: pd.DataFrame, attrib: pd.DataFrame | None = None, subject: str = "model") -> pd.DataFrame:
    """The report's headline table: per split and k, the subject's accuracy, each
    reference's agreement and coverage, and the share of subject answers nothing explains."""
    rows = []
    for key, g in summary.groupby(["split", "k"], sort=True, observed=True):
        split, k = cast("tuple[str, int]", key)
        row: dict[str, object] = {"split": split, "k": int(k)}
        s = g[g["predictor"] == subject]
        if len(s):
            row[f"{subject} accuracy"] = float(s["accuracy"].iloc[0])
        for _, r in g[g["predictor"] != subject].iterrows():
            row[f"{r['predictor']} coverage"] = float(r["coverage"])
            row[f"{r['predictor']} agreement"] = float(r["agreement"])
        if attrib is not None and len(attrib):
            a = attrib[(attrib["split"] == split) & (attrib["k"] == k) & (attrib["outcome"] == "all")
                       & (attrib["category"] == NONE)]
            if len(a):
                row["unexplained"] = float(a["share"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- all at once
@dataclass(frozen=True)
class Summaries:
    """Everything a report shows, computed from a comparison's aggregates."""

    summary: pd.DataFrame
    attribution: pd.DataFrame
    maps: pd.DataFrame
    headline: pd.DataFrame
    sequences: pd.DataFrame  # breakdowns.breakdown(by="sequence")
    tasks: pd.DataFrame  # breakdowns.breakdown(by="task")


def summaries(agg: Aggregates, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Summaries:
    """Every table of a run report from its :class:`~compare.engine.aggregates.Aggregates`."""
    refs = list(agg.references)
    summ = summary_table(agg.sums, agg.subject, refs, n_boot=n_boot, seed=seed, level=level)
    attrib = attribution_table(agg.attribution, n_boot=n_boot, seed=seed, level=level)
    return Summaries(
        summ, attrib, maps_table(agg.maps), headline(summ, attrib, agg.subject),
        breakdown_table(agg.sums, "sequence", agg.subject, refs), breakdown_table(agg.sums, "task", agg.subject, refs),
    )


def compute_all(cells: pd.DataFrame, p: int, subject: str = "model", references: Sequence[str] | None = None, *,
                n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Summaries:
    """:func:`summaries` of a per-cell table held in memory."""
    return summaries(aggregate(cells, p, subject, references), n_boot=n_boot, seed=seed, level=level)
