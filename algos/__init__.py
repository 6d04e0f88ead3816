"""The domain: GF(p), the task setting, k-shot prompts and the reference solvers.

`algos` depends only on numpy, galois and sympy; it never imports torch, `model`
or `compare` (a test enforces it).
"""
from algos.field import check_prime, gf, inverse_table
from algos.prompts import authors_sequence, make_examples, query_grid, random_sequences
from algos.solvers import SOLVER_NAMES, reference_solvers, solver
from algos.tasks import TaskSetting, task_labels

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
]
