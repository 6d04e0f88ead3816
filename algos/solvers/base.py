"""The one predictor interface shared by the reference solvers and the transformer.

A predictor maps k in-context examples and a query to a residue z in [0, p), or to -1
("no answer"), and, where it can, to a probability distribution over the p residues.

Two call forms:
    predict(examples (n, k, 3), queries (n, 2))       -> Prediction with pred (n,),   probs (n, p)
    predict_grid(examples (n, k, 3), queries (q, 2))  -> Prediction with pred (n, q), probs (n, q, p)

The grid form evaluates every query against every prefix; it exists so a predictor can
reuse the work that all queries of one prefix share (the transformer's KV cache, a
solver's row reduction). Its default here just broadcasts to the pointwise form.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from algos.prompts import check_examples

__all__ = ["Prediction", "Predictor", "NO_ANSWER"]

NO_ANSWER = -1


@dataclass(frozen=True)
class Prediction:
    """Predictions (int64, -1 = no answer) and optional distributions over residues."""

    pred: np.ndarray
    probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.probs is not None and self.probs.shape[:-1] != self.pred.shape:
            raise ValueError(
                f"probs shape {self.probs.shape} does not match pred shape {self.pred.shape} + (p,)"
            )


class Predictor(ABC):
    """Base class: subclasses set ``name``, ``p`` and implement :meth:`predict`."""

    name: str = "predictor"
    #: True when :meth:`predict` returns a distribution (``Prediction.probs``).
    gives_distribution: bool = False

    def __init__(self, p: int) -> None:
        from algos.field import check_prime

        self.p = check_prime(p)

    @abstractmethod
    def predict(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """examples (n, k, 3), queries (n, 2) -> pred (n,), probs (n, p) or None."""

    def predict_grid(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """examples (n, k, 3), queries (q, 2) -> pred (n, q), probs (n, q, p) or None."""
        ex, q = check_examples(self.p, examples, queries)
        n, k, _ = ex.shape
        nq = q.shape[0]
        rep_ex = np.repeat(ex, nq, axis=0)  # (n*q, k, 3)
        rep_q = np.tile(q, (n, 1))  # (n*q, 2)
        out = self.predict(rep_ex, rep_q)
        probs = None if out.probs is None else out.probs.reshape(n, nq, self.p)
        return Prediction(out.pred.reshape(n, nq), probs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"
