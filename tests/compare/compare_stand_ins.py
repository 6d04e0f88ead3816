"""Deterministic stand-ins for the model, for engine and report tests (no torch)."""
from __future__ import annotations

import numpy as np

from algos.prompts import check_examples
from algos.solvers.base import Prediction, Predictor

__all__ = ["Oracle", "NoisyModel"]


class Oracle(Predictor):
    """A predictor that *is* another one, under the name ``model``."""

    name = "model"

    def __init__(self, inner: Predictor) -> None:
        super().__init__(inner.p)
        self.inner = inner
        self.gives_distribution = inner.gives_distribution

    def predict(self, examples, queries):
        return self.inner.predict(examples, queries)

    def predict_grid(self, examples, queries):
        return self.inner.predict_grid(examples, queries)


class NoisyModel(Predictor):
    """A model-like predictor: a softmax over residues that favours ``inner``'s answer,
    plus deterministic pseudo-noise from the prompt, so it is right, wrong and
    unexplained in a reproducible mix."""

    name = "model"
    gives_distribution = True

    def __init__(self, inner: Predictor, strength: float = 2.5, noise: float = 1.5) -> None:
        super().__init__(inner.p)
        self.inner = inner
        self.strength = strength
        self.noise = noise

    def predict(self, examples, queries):
        ex, q = check_examples(self.p, examples, queries)
        base = self.inner.predict(ex, q).pred  # (n,)
        n, k, _ = ex.shape
        r = np.arange(self.p)
        seed = (ex * np.array([3, 5, 7])).sum((1, 2)) + 11 * k  # (n,)
        phase = q[:, :1] * 0.9 + q[:, 1:] * 1.7 + seed[:, None] * 0.31  # (n, 1)
        logits = self.noise * np.sin(phase * (r[None, :] + 1.0) * 1.37)
        logits[np.arange(n), np.maximum(base, 0)] += np.where(base >= 0, self.strength, 0.0)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        return Prediction(probs.argmax(-1).astype(np.int64), probs.astype(np.float32))
