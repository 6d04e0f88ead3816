"""The model's predictive distribution as a convex mixture of the algorithms' distributions.

Per cell c (task, example sequence, k, query) the model gives a distribution P_c over the p
residues. Each **component** j gives a distribution q_j,c:

==========================  ================================================================
``ratio_matching``          (1 - eps) on Ratio Matching's answer + eps uniform where it answers;
                            uniform where it has no answer
``modular_regression``      the same with Modular Regression's answer
``bayes_memorized``         (1 - eps) Bayes over the memorized (pre-training) tasks' posterior
                            predictive + eps uniform
``bayes_uniform``           the same over all p^2 tasks
``uniform``                 1 / p
==========================  ================================================================

eps (default :data:`EPSILON`) is a lapse rate: every algorithm's distribution is mixed with
the uniform one so that no residue has probability 0 (the model's softmax never gives 0, and
log 0 would make every single-algorithm likelihood -inf wherever the model spreads mass).

The **fit** maximizes, over weights w on the simplex, the per-cell mean log-likelihood of the
model's distributions under the mixture

    LL(w) = (1 / N) sum_c sum_z P_c(z) log sum_j w_j q_j,c(z)

— i.e. it minimizes the cross-entropy from the model's distribution to the mixture, the
"data" being the model's full distributions, not samples of them. LL is concave in w; the
fit runs EM (each step w_j <- (1/N) sum_c sum_z P_c(z) w_j q_j,c(z) / m_c(z), m the mixture;
LL never decreases) from uniform weights until LL gains less than ``tol`` per step, and keeps
the best of that point and the simplex's vertices (each single component), so the fit's LL is
at least its best single component's. Components equal on every cell of the group cannot be
told apart: only the first (in :data:`COMPONENTS` order) is fitted, the others get weight NaN
and name it in ``same_as``. The ceiling -H(P) (the model's own negative entropy, reached only
when the mixture equals the model) is reported beside.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from algos.solvers.base import Prediction

__all__ = ["COMPONENTS", "EPSILON", "MixtureFit", "component_distributions", "fit_mixture", "log_likelihood"]

#: The mixture's components, in the suite's order (the algorithms, then uniform).
COMPONENTS = ("ratio_matching", "modular_regression", "bayes_memorized", "bayes_uniform", "uniform")
#: Lapse rate mixed into every algorithm's distribution.
EPSILON = 0.01


def component_distributions(predictions: Mapping[str, Prediction], p: int, epsilon: float = EPSILON,
                            components: Sequence[str] = COMPONENTS) -> np.ndarray:
    """Each component's distribution per cell: ``predictions`` maps algorithm names to their
    grid predictions (``pred`` (n, q); ``probs`` (n, q, p) for the Bayes solvers) ->
    (n * q, J, p) float64 (see the module docstring)."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    shape: tuple[int, ...] | None = None
    for pr in predictions.values():
        shape = tuple(pr.pred.shape)
        break
    if shape is None:
        raise ValueError("no predictions given")
    n = int(np.prod(shape))
    out = np.empty((n, len(components), p), dtype=np.float64)
    flat = 1.0 / p
    for j, name in enumerate(components):
        if name == "uniform":
            out[:, j, :] = flat
            continue
        if name not in predictions:
            raise ValueError(f"no predictions of {name!r}")
        pr = predictions[name]
        if pr.probs is not None:
            dist = pr.probs.reshape(n, p).astype(np.float64)
        else:
            ans = pr.pred.reshape(n)
            dist = np.full((n, p), flat)
            hit = ans >= 0
            dist[hit] = 0.0
            dist[np.flatnonzero(hit), ans[hit]] = 1.0
        out[:, j, :] = (1.0 - epsilon) * dist + epsilon * flat
    return out


def log_likelihood(target: np.ndarray, mixture: np.ndarray) -> float:
    """(1 / N) sum_c sum_z P_c(z) log m_c(z) for target P (N, p) and mixture m (N, p); 0 log 0 = 0."""
    with np.errstate(divide="ignore"):
        logm = np.log(mixture)
    terms = np.where(target > 0, target * logm, 0.0)
    return float(terms.sum() / max(1, target.shape[0]))


@dataclass(frozen=True)
class MixtureFit:
    """The fit of one group of cells: ``weights`` (J,) (NaN for components that equal an earlier
    one on every cell, see ``same_as``), the fit's and each single component's per-cell mean
    log-likelihood, the ceiling -H(P), EM's iterations and whether it met ``tol``."""

    components: tuple[str, ...]
    weights: np.ndarray
    ll: float
    ll_single: np.ndarray
    ll_ceiling: float
    same_as: tuple[str, ...]
    iterations: int
    converged: bool
    n_cells: int

    @property
    def best_single(self) -> str:
        return self.components[int(np.nanargmax(self.ll_single))]


def fit_mixture(target: np.ndarray, comps: np.ndarray, components: Sequence[str] = COMPONENTS, *,
                tol: float = 1e-9, max_iter: int = 5000) -> MixtureFit:
    """Fit the weights of ``comps`` (N, J, p) to the model's distributions ``target`` (N, p) by
    maximum likelihood (EM; see the module docstring)."""
    target = np.asarray(target, dtype=np.float64)
    comps = np.asarray(comps, dtype=np.float64)
    N, J, p = comps.shape
    if target.shape != (N, p):
        raise ValueError(f"target: expected shape {(N, p)}, got {target.shape}")
    if len(components) != J:
        raise ValueError(f"{J} components but {len(components)} names")
    target = target / np.maximum(target.sum(-1, keepdims=True), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        ceiling = log_likelihood(target, np.where(target > 0, target, 1.0))
    ll_single = np.array([log_likelihood(target, comps[:, j]) for j in range(J)])
    # components equal on every cell: fit the first only
    same_as = [""] * J
    for j in range(J):
        for i in range(j):
            if not same_as[i] and np.allclose(comps[:, i], comps[:, j], rtol=0.0, atol=1e-12):
                same_as[j] = components[i]
                break
    free = [j for j in range(J) if not same_as[j]]
    keep = target > 0
    P = target[keep]  # (M,) the mass of each (cell, residue) with P > 0
    Q = np.stack([comps[:, j][keep] for j in free])  # (J', M)
    w = np.full(len(free), 1.0 / len(free))
    ll_prev = -np.inf
    iterations, converged = 0, False
    while iterations < max_iter:
        iterations += 1
        m = w @ Q  # (M,)
        ll = float(P @ np.log(m)) / N
        if ll - ll_prev < tol:
            converged = True
            break
        ll_prev = ll
        w = w * (Q @ (P / m)) / N
        w = w / w.sum()
    ll_em = float(P @ np.log(w @ Q)) / N
    weights = np.full(J, np.nan)
    best_vertex = int(np.argmax([ll_single[j] for j in free]))
    if ll_single[free[best_vertex]] > ll_em:  # EM stopped short of a vertex optimum
        w = np.zeros(len(free))
        w[best_vertex] = 1.0
        ll_em = float(ll_single[free[best_vertex]])
    weights[free] = w
    return MixtureFit(tuple(components), weights, ll_em, ll_single, ceiling, tuple(same_as), iterations, converged, N)
