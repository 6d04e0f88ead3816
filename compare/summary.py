"""Summaries of a per-cell table: coverage, agreement, accuracy, distances, attribution.

Pure functions of the per-cell table (see :mod:`compare.engine`), so ``compare report``
rebuilds everything from ``cells.parquet`` alone.

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

import numpy as np
import pandas as pd

from compare.engine import DIST_METRICS, PROB_FLOOR, SPLITS, distribution_names, reference_names

__all__ = [
    "summarize",
    "UnitSums",
    "unit_sums",
    "paired_differences",
    "attribution",
    "attribute_cells",
    "explained_by",
    "agreement_maps",
    "task_panels",
    "breakdown",
    "BREAKDOWNS",
    "headline",
    "Summaries",
    "compute_all",
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
NONE = "none"
ABSTAINED = "abstained"


# ---------------------------------------------------------------------- helpers
def _units(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(unit code per row, split code per unit); a unit is one (task, sequence)."""
    key = (
        cells["task_a"].to_numpy(np.int64) * 65536 + cells["task_b"].to_numpy(np.int64)
    ) * 65536 + cells["sequence"].to_numpy(np.int64)
    codes, uniq = pd.factorize(key, sort=False)
    split = _split_codes(cells)
    unit_split = np.zeros(len(uniq), dtype=np.int64)
    unit_split[codes] = split
    return codes.astype(np.int64), unit_split


def _split_codes(cells: pd.DataFrame) -> np.ndarray:
    s = cells["split"]
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == list(SPLITS):
        return s.cat.codes.to_numpy(np.int64)
    return np.where(s.astype(str).to_numpy() == "id", 0, 1).astype(np.int64)


def _k_codes(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    k = cells["k"].to_numpy(np.int64)
    ks = np.unique(k)
    return np.searchsorted(ks, k), ks


def _sum_by(group: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(group, weights=values.astype(np.float64, copy=False), minlength=n_groups)


def _boot_weights(n_units: int, n_boot: int, seed: int, split: int) -> np.ndarray:
    """(n_boot, n_units) counts of each unit in each resample."""
    rng = np.random.default_rng([seed, split])
    idx = rng.integers(0, n_units, size=(n_boot, n_units))
    flat = (np.arange(n_boot)[:, None] * n_units + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(np.float64)


def _ratio_ci(
    num: np.ndarray, den: np.ndarray, weights: np.ndarray | None, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point ratio of sums and percentile interval; num, den (n_units, m)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        point = num.sum(0) / den.sum(0)
        point[den.sum(0) == 0] = np.nan
        if weights is None:
            return point, np.full_like(point, np.nan), np.full_like(point, np.nan)
        bn = weights @ num
        bd = weights @ den
        ratio = np.where(bd > 0, bn / np.where(bd > 0, bd, 1.0), np.nan)
    tail = (1.0 - level) / 2.0 * 100.0
    lo = np.full(point.shape, np.nan)
    hi = np.full(point.shape, np.nan)
    ok = np.isfinite(ratio).any(0)
    if ok.any():
        lo[ok] = np.nanpercentile(ratio[:, ok], tail, axis=0)
        hi[ok] = np.nanpercentile(ratio[:, ok], 100.0 - tail, axis=0)
    return point, lo, hi


# ---------------------------------------------------------------------- summary
@dataclass(frozen=True)
class UnitSums:
    """Numerator and denominator of every rate of :func:`summarize`, per (unit, k).

    A unit is one (task, sequence) pair, in the order it first appears in the cells
    (``unit_keys`` (n_units,) identifies them, ``unit_split`` (n_units,) is its split code);
    ``keys`` names the m columns as (predictor, metric); ``num`` and ``den`` are
    (n_units, n_k, m); ``cells_per`` (n_units, n_k) counts cells. Two tables of the same
    comparison (same tasks, sequences and k) have the same units, so a paired bootstrap
    (:func:`paired_differences`) can resample them together.
    """

    keys: tuple[tuple[str, str], ...]
    num: np.ndarray
    den: np.ndarray
    unit_keys: np.ndarray
    unit_split: np.ndarray
    ks: np.ndarray
    cells_per: np.ndarray


def unit_sums(cells: pd.DataFrame, subject: str = "model", references: Sequence[str] | None = None) -> UnitSums:
    """Per (task, sequence) unit and k, the sums every rate of :data:`SUMMARY_METRICS` is a ratio of."""
    refs = list(reference_names(cells, subject) if references is None else references)
    dists = set(distribution_names(cells))
    unit, unit_split = _units(cells)
    kcode, ks = _k_codes(cells)
    n_units, n_k = len(unit_split), len(ks)
    group = unit * n_k + kcode
    G = n_units * n_k

    s_pred = cells[f"pred_{subject}"].to_numpy()
    z = cells["z_true"].to_numpy()
    ones = np.ones(len(cells))
    n_cells = _sum_by(group, G, ones)
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
    first = np.unique(unit, return_index=True)[1]  # first row of each unit, in unit order
    keys = (cells["task_a"].to_numpy(np.int64)[first] * 65536 + cells["task_b"].to_numpy(np.int64)[first]) * 65536 \
        + cells["sequence"].to_numpy(np.int64)[first]
    return UnitSums(tuple((b[0], b[1]) for b in blocks), num, den, keys, unit_split, ks, n_cells.reshape(n_units, n_k))


def summarize(
    cells: pd.DataFrame,
    subject: str = "model",
    references: Sequence[str] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per (split, k, predictor) with every rate of :data:`SUMMARY_METRICS`.

    Columns: split, k, predictor, n_units, n_cells, then ``<metric>``, ``<metric>_lo``,
    ``<metric>_hi`` for each metric (NaN where it does not apply). The subject's own row
    comes first in each (split, k) and carries its accuracy and nll.
    """
    refs = list(reference_names(cells, subject) if references is None else references)
    sums = unit_sums(cells, subject, refs)
    num, den, unit_split, ks, cells_per = sums.num, sums.den, sums.unit_split, sums.ks, sums.cells_per
    n_k = len(ks)
    predictors = [subject, *refs]
    rows = []
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
            base = {"split": split, "k": int(k), "n_units": int(present.sum()), "n_cells": int(cells_per[sel, ki].sum())}
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
    tail = (1.0 - level) / 2.0 * 100.0
    for si, split in enumerate(SPLITS):
        sel = a.unit_split == si
        if not sel.any():
            continue
        U = int(sel.sum())
        parts = []
        for s, idx in ((a, ia), (b, ib)):
            num, den = s.num[sel][..., idx].reshape(U, -1), s.den[sel][..., idx].reshape(U, -1)
            with np.errstate(invalid="ignore", divide="ignore"):
                point = np.where(den.sum(0) > 0, num.sum(0) / np.where(den.sum(0) > 0, den.sum(0), 1.0), np.nan)
                boot = None
                if n_boot > 0:
                    w = _boot_weights(U, n_boot, seed, si)
                    bn, bd = w @ num, w @ den
                    boot = np.where(bd > 0, bn / np.where(bd > 0, bd, 1.0), np.nan)
            parts.append((point, boot))
        diff = (parts[0][0] - parts[1][0]).reshape(n_k, m)
        lo = np.full(diff.size, np.nan)
        hi = np.full(diff.size, np.nan)
        if n_boot > 0:
            d = parts[0][1] - parts[1][1]  # (n_boot, n_k * m)
            ok = np.isfinite(d).any(0)
            if ok.any():
                with np.errstate(invalid="ignore"):
                    lo[ok] = np.nanpercentile(d[:, ok], tail, axis=0)
                    hi[ok] = np.nanpercentile(d[:, ok], 100.0 - tail, axis=0)
        lo, hi = lo.reshape(n_k, m), hi.reshape(n_k, m)
        for ki, k in enumerate(a.ks):
            for j, (name, metric) in enumerate(common):
                rows.append({"split": split, "k": int(k), "predictor": name, "metric": metric,
                             "diff": diff[ki, j], "diff_lo": lo[ki, j], "diff_hi": hi[ki, j]})
    return pd.DataFrame(rows, columns=["split", "k", "predictor", "metric", "diff", "diff_lo", "diff_hi"])


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


def attribution(
    cells: pd.DataFrame,
    subject: str = "model",
    order: Sequence[str] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Exclusive attribution shares per (split, k, outcome, category) with intervals.

    Categories: each reference in ``order``, then ``none``, then ``abstained``. The shares
    of one (split, k, outcome) sum to 1 (outcomes with no cells are left out).
    """
    order = list(reference_names(cells, subject) if order is None else order)
    cats = [*order, NONE, ABSTAINED]
    code = attribute_cells(cells, subject, order)
    right = (cells[f"pred_{subject}"].to_numpy() == cells["z_true"].to_numpy()).astype(np.int64)
    unit, unit_split = _units(cells)
    kcode, ks = _k_codes(cells)
    n_units, n_k, n_c = len(unit_split), len(ks), len(cats)
    # counts[unit, k, correct, category]
    flat = ((unit * n_k + kcode) * 2 + right) * n_c + code
    counts = np.bincount(flat, minlength=n_units * n_k * 2 * n_c).reshape(n_units, n_k, 2, n_c).astype(np.float64)
    by_outcome = np.stack([counts.sum(2), counts[:, :, 1], counts[:, :, 0]], axis=2)  # (U, k, 3, c)
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
                    rows.append(
                        {
                            "split": split,
                            "k": int(k),
                            "outcome": outcome,
                            "category": cat,
                            "n_cells": int(tot[ki, oi]),
                            "share": pt[ki, oi, ci],
                            "share_lo": lo[ki, oi, ci],
                            "share_hi": hi[ki, oi, ci],
                        }
                    )
    return pd.DataFrame(rows, columns=["split", "k", "outcome", "category", "n_cells", "share", "share_lo", "share_hi"])


# ---------------------------------------------------------------------- maps
def agreement_maps(
    cells: pd.DataFrame, p: int, subject: str = "model", predictors: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per (split, k, x, y, predictor): the share of (task, sequence) units where the
    predictor gives the subject's answer (no answer never agrees). For the subject itself
    the share is its accuracy. Columns: split, k, x, y, predictor, share, n."""
    preds = [subject, *(reference_names(cells, subject) if predictors is None else predictors)]
    split = _split_codes(cells)
    kcode, ks = _k_codes(cells)
    q = p * p
    cell = cells["x"].to_numpy(np.int64) * p + cells["y"].to_numpy(np.int64)
    group = (split * len(ks) + kcode) * q + cell
    G = len(SPLITS) * len(ks) * q
    n = np.bincount(group, minlength=G).astype(np.float64)
    s_pred = cells[f"pred_{subject}"].to_numpy()
    z = cells["z_true"].to_numpy()
    present = n > 0
    gi = np.nonzero(present)[0]
    base = {
        "split": pd.Categorical.from_codes(gi // (len(ks) * q), categories=list(SPLITS)),
        "k": ks[(gi // q) % len(ks)].astype(np.int16),
        "x": (gi % q // p).astype(np.int16),
        "y": (gi % p).astype(np.int16),
    }
    frames = []
    for name in preds:
        hit = s_pred == z if name == subject else (cells[f"pred_{name}"].to_numpy() == s_pred) & (s_pred != -1)
        share = np.bincount(group, weights=hit.astype(np.float64), minlength=G)[present] / n[present]
        frames.append(pd.DataFrame(dict(base, predictor=name, share=share.astype(np.float32), n=n[present].astype(np.int32))))
    out = pd.concat(frames, ignore_index=True)
    return out[["split", "k", "x", "y", "predictor", "share", "n"]]


def task_panels(
    cells: pd.DataFrame,
    p: int,
    task: tuple[int, int],
    sequence: int = 0,
    subject: str = "model",
    algorithms: Sequence[str] = ("ratio_matching", "modular_regression"),
) -> dict[str, object]:
    """The data of one grid figure: per k, p x p maps indexed [x, y].

    Returns ``{"ks": (n_k,), "model_right": bool (n_k, p, p),
    "answered": {algo: int8 (n_k, p, p)}  (0 no answer, 1 right, 2 wrong),
    "difference": {algo: int8 (n_k, p, p)}}`` (+1 red: subject right, algorithm not;
    -1 blue: algorithm right, subject not; 0 otherwise).
    """
    a, b = task
    sel = (
        (cells["task_a"].to_numpy() == a)
        & (cells["task_b"].to_numpy() == b)
        & (cells["sequence"].to_numpy() == sequence)
    )
    if not sel.any():
        raise ValueError(f"task ({a},{b}) with sequence {sequence} is not in the table")
    sub = cells.loc[sel]
    kcode, ks = _k_codes(sub)
    x = sub["x"].to_numpy(np.int64)
    y = sub["y"].to_numpy(np.int64)
    z = sub["z_true"].to_numpy()
    s_right = sub[f"pred_{subject}"].to_numpy() == z

    def place(values: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros((len(ks), p, p), dtype=dtype)
        out[kcode, x, y] = values
        return out

    answered, difference = {}, {}
    for algo in algorithms:
        rp = sub[f"pred_{algo}"].to_numpy()
        r_right = rp == z
        answered[algo] = place(np.where(rp == -1, 0, np.where(r_right, 1, 2)), np.int8)
        difference[algo] = place(s_right.astype(np.int8) - r_right.astype(np.int8), np.int8)
    return {"ks": ks, "model_right": place(s_right, bool), "answered": answered, "difference": difference}


# ---------------------------------------------------------------------- breakdowns
#: What :func:`breakdown` can group by, and the columns that name one group.
BREAKDOWNS = {"sequence": ("sequence",), "task": ("task_a", "task_b"), "sequence_task": ("sequence", "task_a", "task_b")}


def breakdown(
    cells: pd.DataFrame, by: str, subject: str = "model", references: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per (split, k, example sequence), per (split, k, task) or per (split, k, sequence,
    task): the subject's accuracy and each reference's coverage and agreement, pooled over
    everything else.

    The summary averages over tasks and sequences; these tables show where the average
    comes from: which examples a prompt holds (``by="sequence"``; sequence 0 is the
    authors' when the run used it) and which tasks are hard (``by="task"``). Columns:
    split, k, the group's columns, n_units ((task, sequence) pairs pooled), n_cells, accuracy,
    then ``<reference>_coverage`` and ``<reference>_agreement`` for each reference.
    """
    if by not in BREAKDOWNS:
        raise ValueError(f"breakdown by {by!r}: choose one of {', '.join(BREAKDOWNS)}")
    keys = list(BREAKDOWNS[by])
    refs = list(reference_names(cells, subject) if references is None else references)
    s_pred = cells[f"pred_{subject}"].to_numpy()
    unit, _ = _units(cells)  # (task, sequence) pairs: n_units counts those pooled into a group
    cols: dict[str, object] = {
        "split": pd.Categorical.from_codes(_split_codes(cells), categories=list(SPLITS)),
        "k": cells["k"].to_numpy(np.int64),
        **{c: cells[c].to_numpy(np.int64) for c in keys},
        "unit": unit,
        "n_cells": np.ones(len(cells), dtype=np.int64),
        "right": (s_pred == cells["z_true"].to_numpy()).astype(np.int64),
    }
    for r in refs:
        rp = cells[f"pred_{r}"].to_numpy()
        cols[f"{r}_answers"] = (rp != -1).astype(np.int64)
        cols[f"{r}_agrees"] = ((rp != -1) & (rp == s_pred)).astype(np.int64)
    g = pd.DataFrame(cols).groupby(["split", "k", *keys], observed=True, sort=True)
    sums = g.sum(numeric_only=True).drop(columns="unit")
    out = pd.DataFrame({"n_units": g["unit"].nunique(), "n_cells": sums["n_cells"]})
    out["accuracy"] = sums["right"] / sums["n_cells"]
    for r in refs:
        out[f"{r}_coverage"] = sums[f"{r}_answers"] / sums["n_cells"]
        out[f"{r}_agreement"] = sums[f"{r}_agrees"] / sums[f"{r}_answers"].replace(0, np.nan)
    out = out.reset_index()
    out["split"] = out["split"].astype(str)
    return out


def headline(summary: pd.DataFrame, attrib: pd.DataFrame | None = None, subject: str = "model") -> pd.DataFrame:
    """The report's headline table: per split and k, the subject's accuracy, each
    reference's agreement and coverage, and the share of subject answers nothing explains."""
    rows = []
    for (split, k), g in summary.groupby(["split", "k"], sort=True, observed=True):
        row: dict[str, object] = {"split": split, "k": int(k)}
        s = g[g["predictor"] == subject]
        if len(s):
            row[f"{subject} accuracy"] = float(s["accuracy"].iloc[0])
        for _, r in g[g["predictor"] != subject].iterrows():
            row[f"{r['predictor']} coverage"] = float(r["coverage"])
            row[f"{r['predictor']} agreement"] = float(r["agreement"])
        if attrib is not None and len(attrib):
            a = attrib[(attrib["split"] == split) & (attrib["k"] == k) & (attrib["outcome"] == "all") & (attrib["category"] == NONE)]
            if len(a):
                row["unexplained"] = float(a["share"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- all at once
@dataclass(frozen=True)
class Summaries:
    """Everything a report shows, computed from a per-cell table."""

    summary: pd.DataFrame
    attribution: pd.DataFrame
    maps: pd.DataFrame
    headline: pd.DataFrame
    sequences: pd.DataFrame  # breakdown(by="sequence")
    tasks: pd.DataFrame  # breakdown(by="task")


def compute_all(
    cells: pd.DataFrame,
    p: int,
    subject: str = "model",
    references: Sequence[str] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Summaries:
    """:func:`summarize`, :func:`attribution`, :func:`agreement_maps`, :func:`headline` and
    both :func:`breakdown` tables."""
    refs = list(reference_names(cells, subject) if references is None else references)
    summ = summarize(cells, subject, refs, n_boot=n_boot, seed=seed, level=level)
    attrib = attribution(cells, subject, refs, n_boot=n_boot, seed=seed, level=level)
    maps = agreement_maps(cells, p, subject, refs)
    return Summaries(
        summ, attrib, maps, headline(summ, attrib, subject),
        breakdown(cells, "sequence", subject, refs), breakdown(cells, "task", subject, refs),
    )
