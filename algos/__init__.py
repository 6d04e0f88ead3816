"""The domain: GF(p), the task setting, k-shot prompts and the reference solvers.

`algos` depends only on numpy, galois and sympy; it never imports torch, `model`
or `compare` (a test enforces it). Names load lazily, so `algos.errors` (which every
layer imports) costs nothing.

>>> from algos import TaskSetting, solver
>>> setting = TaskSetting.build(7, n_base_tasks=2, alpha=0.8)
>>> solver("modular_regression", setting).name
'modular_regression'
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "check_prime",
    "gf",
    "inverse_table",
    "TaskSetting",
    "task_labels",
    "authors_sequence",
    "random_sequences",
    "query_grid",
    "make_examples",
    "reference_solvers",
    "solver",
    "SOLVER_NAMES",
    "InputError",
]

_WHERE = {
    "check_prime": "algos.field",
    "gf": "algos.field",
    "inverse_table": "algos.field",
    "TaskSetting": "algos.tasks",
    "task_labels": "algos.tasks",
    "authors_sequence": "algos.prompts",
    "random_sequences": "algos.prompts",
    "query_grid": "algos.prompts",
    "make_examples": "algos.prompts",
    "reference_solvers": "algos.solvers",
    "solver": "algos.solvers",
    "SOLVER_NAMES": "algos.solvers",
    "InputError": "algos.errors",
}

if TYPE_CHECKING:
    from algos.errors import InputError
    from algos.field import check_prime, gf, inverse_table
    from algos.prompts import authors_sequence, make_examples, query_grid, random_sequences
    from algos.solvers import SOLVER_NAMES, reference_solvers, solver
    from algos.tasks import TaskSetting, task_labels


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'algos' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
