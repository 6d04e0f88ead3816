"""The model as a mixture of algorithms, as a library call: weights per (split, k), and over training.

>>> res = compare.mixture("d4.pt", k=range(1, 9))                                   # doctest: +SKIP
>>> res.weights("ood", 8)                    # component -> weight                        # doctest: +SKIP
>>> run = compare.mixture_trajectory("checkpoints/runs/V2", k=[2, 4, 8], tasks="ood")  # doctest: +SKIP

The cells are those of ``compare run`` (every task, example sequence, k and query of the
grid); the model's distribution per cell comes from :meth:`model.ModelPredictor.predict_grid`
and each algorithm's from its own ``predict_grid`` (:mod:`algos.solvers`), both behind the one
predictor interface; :func:`compare.engine.mixture.fit_mixture` fits the weights per
(split, k) by maximum likelihood. Definitions: :mod:`compare.engine.mixture`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from algos.prompts import make_examples, query_grid
from compare.api.inputs import (
    CheckpointLike,
    ComparisonInputs,
    base_manifest,
    check_precision,
    checkpoint_block,
    comparison_inputs,
    model_predictor,
    parse_batch_size,
)
from compare.engine.grid import task_splits
from compare.engine.mixture import COMPONENTS, EPSILON, component_distributions, fit_mixture
from compare.errors import InputError, UsageError
from compare.storage import files

__all__ = ["MixtureResult", "mixture", "mixture_trajectory", "MIXTURE_COLUMNS", "DEFINITION"]

#: Columns of mixture.csv (``step`` first in a run's table).
MIXTURE_COLUMNS = ("split", "k", "n_cells", "component", "weight", "same_as", "ll_single", "ll_fit",
                   "ll_best_single", "best_single", "ll_ceiling", "iterations", "converged")

DEFINITION = (
    "per (split, k) the weights w of a convex mixture sum_j w_j q_j of the components' distributions that maximize "
    "the per-cell mean log-likelihood (1/N) sum_cells sum_z P_model(z) log sum_j w_j q_j(z) of the model's own "
    "distributions (= minimize the cross-entropy from the model to the mixture), by EM from uniform weights; "
    "ratio_matching / modular_regression: (1 - eps) on the algorithm's answer + eps uniform where it answers, "
    "uniform where it does not; bayes_memorized / bayes_uniform: (1 - eps) the posterior predictive + eps uniform; "
    "uniform: 1/p. ll_single: the log-likelihood under that component alone; ll_ceiling: -H(P_model), reached only "
    "if the mixture equals the model; same_as: a component equal to an earlier one on every cell (weight NaN, "
    "its weight is the earlier one's). Natural logarithms, nats per cell."
)


@dataclass
class MixtureResult:
    """``table``: one row per ([step,] split, k, component) (``mixture.csv``): the component's
    fitted weight and its single log-likelihood, beside the fit's, the best single's and the
    ceiling."""

    table: pd.DataFrame
    manifest: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def weights(self, split: str, k: int, step: int | None = None) -> pd.Series:
        """Fitted weight per component for one (split, k) (and snapshot ``step`` of a run)."""
        t = self._group(split, k, step)
        return t.set_index("component")["weight"]

    def fit(self, split: str, k: int, step: int | None = None) -> pd.Series:
        """The fit-level columns of one (split, k[, step]): ll_fit, ll_best_single, best_single, ll_ceiling, ..."""
        t = self._group(split, k, step)
        return t.iloc[0][["n_cells", "ll_fit", "ll_best_single", "best_single", "ll_ceiling", "iterations",
                          "converged"]]

    def _group(self, split: str, k: int, step: int | None) -> pd.DataFrame:
        t = self.table
        sel = (t["split"] == split) & (t["k"] == int(k))
        if "step" in t.columns:
            step = int(t["step"].max()) if step is None else int(step)
            sel &= t["step"] == step
        out = t[sel]
        if out.empty:
            raise InputError(f"no mixture fit for split {split}, k = {k}" + (f", step {step}" if step else ""))
        return out

    def write_report(self, folder: str | Path) -> Path:
        """Write ``mixture.csv``, the figures, manifest and pages atomically."""
        from compare.reports.mixture import write_mixture_report

        out, self.manifest, self.figures = files.publish_report(
            folder, self.manifest, lambda tmp, m: write_mixture_report(tmp, self.table, m))
        return out


def _check_epsilon(epsilon: float) -> float:
    eps = float(epsilon)
    if not 0.0 < eps < 1.0:
        raise UsageError(f"--epsilon must be in (0, 1), got {epsilon}")
    return eps


def _cells(inputs: ComparisonInputs):
    """(k, sequence index, examples (n_tasks, k, 3)) in a fixed order."""
    p = inputs.ckpt.setting.p
    for k in inputs.ks:
        for s, seq in enumerate(inputs.sequences):
            yield k, s, make_examples(p, inputs.tasks, seq, k)


def _components(inputs: ComparisonInputs, epsilon: float) -> dict[tuple[str, int], np.ndarray]:
    """Each (split, k) group's component distributions (N, J, p), cells in :func:`_cells` order."""
    p = inputs.ckpt.setting.p
    queries = query_grid(p)
    splits = task_splits(inputs.ckpt.setting, inputs.tasks).astype(str)
    refs = _references(inputs)
    parts: dict[tuple[str, int], list[np.ndarray]] = {}
    for k, _, ex in _cells(inputs):
        preds = {r.name: r.predict_grid(ex, queries) for r in refs}
        comps = component_distributions(preds, p, epsilon).reshape(len(ex), len(queries), len(COMPONENTS), p)
        for split in ("id", "ood"):
            rows = splits == split
            if rows.any():
                parts.setdefault((split, k), []).append(comps[rows].reshape(-1, len(COMPONENTS), p))
    return {key: np.concatenate(v) for key, v in parts.items()}


def _targets(inputs: ComparisonInputs, subject, progress=None) -> dict[tuple[str, int], np.ndarray]:
    """The subject's distributions (N, p) per (split, k) group, cells in :func:`_cells` order."""
    p = inputs.ckpt.setting.p
    queries = query_grid(p)
    splits = task_splits(inputs.ckpt.setting, inputs.tasks).astype(str)
    parts: dict[tuple[str, int], list[np.ndarray]] = {}
    for k, _, ex in _cells(inputs):
        probs = subject.predict_grid(ex, queries).probs  # (n, q, p)
        for split in ("id", "ood"):
            rows = splits == split
            if rows.any():
                parts.setdefault((split, k), []).append(probs[rows].reshape(-1, p))
        if progress is not None:
            progress(len(ex))
    return {key: np.concatenate(v) for key, v in parts.items()}


def _references(inputs: ComparisonInputs):
    from compare.api.inputs import solvers

    return solvers(inputs.ckpt.setting, [c for c in COMPONENTS if c != "uniform"])


def _fit_rows(targets, comps, step: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for (split, k) in sorted(targets, key=lambda key: (key[0] != "id", key[1])):
        f = fit_mixture(targets[(split, k)], comps[(split, k)], COMPONENTS)
        for j, name in enumerate(COMPONENTS):
            row: dict[str, Any] = {} if step is None else {"step": int(step)}
            row.update({
                "split": split, "k": int(k), "n_cells": f.n_cells, "component": name, "weight": f.weights[j],
                "same_as": f.same_as[j], "ll_single": f.ll_single[j], "ll_fit": f.ll,
                "ll_best_single": float(np.nanmax(f.ll_single)), "best_single": f.best_single,
                "ll_ceiling": f.ll_ceiling, "iterations": f.iterations, "converged": f.converged,
            })
            rows.append(row)
    return rows


def _inputs(ckpt, k, tasks, sequences, examples, authors_sequence, seed) -> ComparisonInputs:
    return comparison_inputs(ckpt, k, tasks=tasks, sequences=sequences, examples=examples,
                             authors_sequence=authors_sequence, seed=seed,
                             solver_names=[c for c in COMPONENTS if c != "uniform"], n_boot=0)


def mixture(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int],
    *,
    tasks: str | Iterable[Sequence[int]] = "all",
    sequences: int = 0,
    examples: Sequence[str | np.ndarray] = (),
    authors_sequence: bool = True,
    seed: int = 0,
    epsilon: float = EPSILON,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | str | None = None,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> MixtureResult:
    """Fit the model's distributions on every cell of the k-shot grids (the cells of
    ``compare run`` with the same ``k``, ``tasks``, ``sequences``, ``examples``,
    ``authors_sequence`` and ``seed``) as a mixture of the algorithms' per (split, k);
    ``epsilon``: the algorithms' lapse rate (see :mod:`compare.engine.mixture`)."""
    t_start = time.perf_counter()
    eps = _check_epsilon(epsilon)
    batch = parse_batch_size(batch_size)
    inputs = _inputs(ckpt, k, tasks, sequences, examples, authors_sequence, seed)
    t0 = time.perf_counter()
    comps = _components(inputs, eps)
    t_comp = time.perf_counter() - t0
    subject = model_predictor(inputs.ckpt, device, batch, precision)
    from compare.api.stream import progress_bar

    t0 = time.perf_counter()
    total = len(inputs.ks) * len(inputs.sequences) * len(inputs.tasks)
    with progress_bar(total, "compare mixture", progress) as bar:
        targets = _targets(inputs, subject, bar)
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = pd.DataFrame(_fit_rows(targets, comps), columns=list(MIXTURE_COLUMNS))
    t_fit = time.perf_counter() - t0
    manifest = {
        **base_manifest(inputs, "compare mixture", argv),
        "subject": "model",
        "device": str(subject.device),
        "precision": check_precision(precision),
        "mixture": {"components": list(COMPONENTS), "epsilon": eps, "definition": DEFINITION},
        "timings": {"components_seconds": round(t_comp, 3), "model_seconds": round(t_model, 3),
                    "fit_seconds": round(t_fit, 3), "total_seconds": round(time.perf_counter() - t_start, 3)},
    }
    return MixtureResult(table, manifest)


def mixture_trajectory(
    run_dir: str | Path,
    k: int | str | Iterable[int],
    *,
    tasks: str | Iterable[Sequence[int]] = "ood",
    sequences: int = 0,
    seed: int = 0,
    every: int = 1,
    epsilon: float = EPSILON,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | str | None = 64,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> MixtureResult:
    """:func:`mixture` on every ``every``-th snapshot of a ``compare train --snapshots`` run folder
    (the last always), on the same cells, fixed by the last snapshot's task setting; the
    algorithms' distributions are computed once. The table gains a ``step`` column."""
    from compare.api.trajectory import snapshot_files
    from model.checkpoint import load_checkpoint

    t_start = time.perf_counter()
    if every < 1:
        raise UsageError(f"--every must be >= 1, got {every}")
    eps = _check_epsilon(epsilon)
    batch = parse_batch_size(batch_size)
    run_path = Path(run_dir)
    found = snapshot_files(run_path)
    found = found[:-1][::every] + found[-1:]
    inputs = _inputs(str(found[-1]), k, tasks, sequences, (), True, seed)
    setting = inputs.ckpt.setting
    t0 = time.perf_counter()
    comps = _components(inputs, eps)
    t_comp = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    steps = []
    t_model = t_fit = 0.0
    from compare.api.stream import progress_bar

    total = len(found) * len(inputs.ks) * len(inputs.sequences) * len(inputs.tasks)
    with progress_bar(total, "compare mixture", progress) as bar:
        for path in found:
            ck = load_checkpoint(path)
            if ck.setting.fingerprint() != setting.fingerprint():
                raise UsageError(f"{path}: another task setting than the run's last snapshot")
            t0 = time.perf_counter()
            targets = _targets(inputs, model_predictor(ck, device, batch, precision), bar)
            t_model += time.perf_counter() - t0
            t0 = time.perf_counter()
            rows += _fit_rows(targets, comps, step=ck.step)
            t_fit += time.perf_counter() - t0
            steps.append({"file": path.name, "step": int(ck.step)})
    table = pd.DataFrame(rows, columns=["step", *MIXTURE_COLUMNS])
    manifest = base_manifest(inputs, "compare mixture", argv)
    manifest["checkpoint"] = checkpoint_block(str(found[-1]), found[-1], inputs.ckpt)
    manifest["subject"] = "model"
    manifest["precision"] = check_precision(precision)
    manifest["run_dir"] = str(run_dir)
    manifest["run_name"] = run_path.expanduser().resolve().name
    manifest["snapshots"] = steps
    manifest["mixture"] = {"components": list(COMPONENTS), "epsilon": eps, "definition": DEFINITION}
    manifest["timings"] = {"components_seconds": round(t_comp, 3), "model_seconds": round(t_model, 3),
                           "fit_seconds": round(t_fit, 3), "total_seconds": round(time.perf_counter() - t_start, 3)}
    return MixtureResult(table, manifest)
