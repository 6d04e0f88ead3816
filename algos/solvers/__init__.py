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

from algos.errors import InputError
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
    "solver",
    "SOLVER_NAMES",
]

#: The solvers' names, in the order :func:`reference_solvers` returns them.
SOLVER_NAMES = (
    "ratio_matching",
    "modular_regression",
    "bayes_memorized",
    "bayes_uniform",
    "ratio_matching_majority",
    "modular_regression_majority",
)


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


def solver(name: str, setting: TaskSetting) -> Predictor:
    """One reference solver by name, for a task setting.

    >>> from algos.tasks import TaskSetting
    >>> solver("ratio_matching", TaskSetting.build(7, n_base_tasks=2, alpha=0.8)).name
    'ratio_matching'
    """
    for s in reference_solvers(setting):
        if s.name == name:
            return s
    raise InputError(f"unknown solver {name!r} (known: {', '.join(SOLVER_NAMES)})")
