"""Where the averages come from: per-task and per-sequence tables, per-cell agreement maps
and the data of one task's grid figure.

The tables are computed from :mod:`compare.engine.aggregates` (``breakdown_table``,
``maps_table``); ``breakdown`` and ``agreement_maps`` are the same for a per-cell table
held in memory. ``task_panels`` reads the cells of one task only.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from compare.engine.aggregates import MapCounts, UnitSums, k_codes, map_counts, unit_sums
from compare.engine.comparison import SPLITS, reference_names

__all__ = ["breakdown", "breakdown_table", "BREAKDOWNS", "agreement_maps", "maps_table", "task_panels"]

#: What :func:`breakdown` can group by, and the columns that name one group.
BREAKDOWNS = {
    "sequence": ("sequence",),
    "task": ("task_a", "task_b"),
    "sequence_task": ("sequence", "task_a", "task_b"),
}


def breakdown_table(sums: UnitSums, by: str, subject: str, references: Sequence[str]) -> pd.DataFrame:
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
    n_u, n_k = sums.cells_per.shape
    present = sums.cells_per.reshape(-1) > 0  # (unit, k) pairs with cells

    def per_pair(a: np.ndarray) -> np.ndarray:  # (n_units, n_k) -> one value per present pair
        return a.reshape(-1)[present]

    unit_cols = {"task_a": sums.unit_task[:, 0], "task_b": sums.unit_task[:, 1], "sequence": sums.unit_sequence}
    cols: dict[str, object] = {
        "split": np.repeat(sums.unit_split, n_k)[present],
        "k": np.tile(sums.ks, n_u)[present],
        **{c: np.repeat(unit_cols[c], n_k)[present] for c in keys},
        "n_units": np.ones(int(present.sum()), dtype=np.int64),
        "n_cells": per_pair(sums.cells_per),
        "right": per_pair(sums.column(subject, "accuracy")[0]),
    }
    for r in references:
        cols[f"{r}_answers"] = per_pair(sums.column(r, "coverage")[0])
        cols[f"{r}_agrees"] = per_pair(sums.column(r, "agreement")[0])
    g = pd.DataFrame(cols).groupby(["split", "k", *keys], sort=True).sum()
    out = pd.DataFrame({"n_units": g["n_units"], "n_cells": g["n_cells"].astype(np.int64)})
    out["accuracy"] = g["right"] / g["n_cells"]
    for r in references:
        out[f"{r}_coverage"] = g[f"{r}_answers"] / g["n_cells"]
        out[f"{r}_agreement"] = g[f"{r}_agrees"] / g[f"{r}_answers"].replace(0, np.nan)
    out = out.reset_index()
    out["split"] = np.asarray(SPLITS)[out["split"].to_numpy()]
    return out


def breakdown(cells: pd.DataFrame, by: str, subject: str = "model",
              references: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`breakdown_table` of a per-cell table."""
    refs = list(reference_names(cells, subject) if references is None else references)
    return breakdown_table(unit_sums(cells, subject, refs), by, subject, refs)


def maps_table(counts: MapCounts) -> pd.DataFrame:
    """Per (split, k, x, y, predictor): the share of (task, sequence) units where the
    predictor gives the subject's answer (no answer never agrees). For the subject itself
    the share is its accuracy. Columns: split, k, x, y, predictor, share, n."""
    p, ks = counts.p, counts.ks
    q = p * p
    present = counts.n > 0
    gi = np.nonzero(present)[0]
    n = counts.n[present]
    base = {
        "split": pd.Categorical.from_codes(gi // (len(ks) * q), categories=pd.Index(list(SPLITS))),
        "k": ks[(gi // q) % len(ks)].astype(np.int16),
        "x": (gi % q // p).astype(np.int16),
        "y": (gi % p).astype(np.int16),
    }
    frames = [pd.DataFrame(dict(base, predictor=name, share=(counts.hits[present, j] / n).astype(np.float32),
                                n=n.astype(np.int32)))
              for j, name in enumerate(counts.predictors)]
    out = pd.concat(frames, ignore_index=True)
    return out[["split", "k", "x", "y", "predictor", "share", "n"]]


def agreement_maps(cells: pd.DataFrame, p: int, subject: str = "model",
                   predictors: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`maps_table` of a per-cell table."""
    return maps_table(map_counts(cells, p, subject, predictors))


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
    kcode, ks = k_codes(sub)
    x = sub["x"].to_numpy(np.int64)
    y = sub["y"].to_numpy(np.int64)
    z = sub["z_true"].to_numpy()
    s_right = sub[f"pred_{subject}"].to_numpy() == z

    def place(values: np.ndarray, dtype: npt.DTypeLike) -> np.ndarray:
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


