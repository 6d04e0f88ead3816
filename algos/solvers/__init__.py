"""Reference solvers: every algorithm behind the one predictor interface.

Six solvers, all vectorized over prompts and queries (see :mod:`algos.solvers.lines`
for the shared representation):

- ``ratio_matching``: :class:`RatioMatching` (no distribution)
- ``modular_regression``: :class:`ModularRegression` (no distribution)
- ``bayes_memorized``: :class:`BayesMemorized` (distribution over residues)
- ``bayes_uniform``: :class:`BayesUniform` (distribution over residues)
- ``ratio_matching_majority``: :class:`RatioMatchingMajority` (no distribution)
- ``modular_regression_majority``: :class:`ModularRegressionMajority` (no distribution)

Shared conventions: -1 (``NO_ANSWER``) means no answer; the query (0, 0) is answered 0
by every solver.
"""
from __future__ import annotations

from algos.solvers.base import NO_ANSWER, Prediction, Predictor
from algos.solvers.bayes import BayesMemorized, BayesUniform
from algos.solvers.modular_regression import ModularRegression
from algos.solvers.noise_tolerant import ModularRegressionMajority, RatioMatchingMajority
from algos.solvers.ratio_matching import RatioMatching
from algos.tasks import TaskSetting

__all__ = [
    "NO_ANSWER",
    "Prediction",
    "Predictor",
    "RatioMatching",
    "ModularRegression",
    "BayesMemorized",
    "BayesUniform",
    "RatioMatchingMajority",
    "ModularRegressionMajority",
    "reference_solvers",
]


def reference_solvers(setting: TaskSetting) -> list[Predictor]:
    """All six reference solvers for a task setting, in a stable order.

    ratio_matching, modular_regression, bayes_memorized (over ``setting.pretrain_tasks``),
    bayes_uniform, ratio_matching_majority, modular_regression_majority.
    """
    p = setting.p
    return [
        RatioMatching(p),
        ModularRegression(p),
        BayesMemorized(p, setting.pretrain_array),
        BayesUniform(p),
        RatioMatchingMajority(p),
        ModularRegressionMajority(p),
    ]
