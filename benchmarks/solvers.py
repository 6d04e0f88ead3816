"""Time the six reference solvers on the paper's full k-shot grid.

At p = 29: every one of the 841 tasks, k = 1..8 examples from the authors' example
sequence (``authors_sequence(29, 8)``), all 841 queries; bayes_memorized uses the 384
pre-training tasks of the paper's d = 4 run (``TaskSetting.authors_replay(29, 96, 0.8, 1, 0)``).
Then Modular Regression is compared with the authors' way of solving one cell at a time
(a sympy 2x2 determinant and adjugate mod p, k = 2) on a sample of cells.

    python benchmarks/solvers.py            # the full run
    python benchmarks/solvers.py --quick    # a tiny run (p = 7), seconds

Human-readable lines first; the last line is one JSON object with ``full_grid_seconds``
(all six solvers, all k), per-solver seconds and ``speedup_vs_sympy`` (sympy seconds per
cell over our Modular Regression's seconds per cell on the full grid).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
from machine import emit

from algos.prompts import authors_sequence, make_examples, query_grid
from algos.solvers import ModularRegression, reference_solvers
from algos.tasks import TaskSetting


def sympy_cell(p: int, examples: np.ndarray, query: np.ndarray) -> int:
    """One k = 2 cell the authors' way: sympy determinant and adjugate mod p (-1 if singular)."""
    import sympy

    (x1, y1, z1), (x2, y2, z2) = examples.tolist()
    m = sympy.Matrix([[x1, x2], [y1, y2]])  # columns are the example inputs
    det = int(m.det()) % p
    if det == 0:
        return -1
    c = (pow(det, -1, p) * m.adjugate() * sympy.Matrix([int(query[0]), int(query[1])])) % p
    return int((c[0] * z1 + c[1] * z2) % p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run: p = 7, k <= 3, few sympy cells")
    parser.add_argument("--sympy-cells", type=int, default=None, help="cells solved with sympy (default 2000)")
    parser.add_argument("--save", metavar="PATH",
                        help="also write the JSON line there (e.g. benchmarks/results/solvers.json)")
    args = parser.parse_args(argv)

    if args.quick:
        p, k_max, n_base, n_sympy = 7, 3, 2, args.sympy_cells or 50
    else:
        p, k_max, n_base, n_sympy = 29, 8, 96, args.sympy_cells or 2000

    t0 = time.perf_counter()
    setting = TaskSetting.authors_replay(p, n_base, 0.8, 1, 0)
    solvers = reference_solvers(setting)
    grid = query_grid(p)
    tasks = grid.copy()  # every task (a, b), in index order
    sequence = authors_sequence(p, k_max)
    examples = {k: make_examples(p, tasks, sequence, k) for k in range(1, k_max + 1)}
    for solver in solvers:  # warm-up: one-off costs (galois JIT, caches) are not grid time
        solver.predict_grid(examples[1][:2], grid[:2])
    setup_seconds = time.perf_counter() - t0

    n_cells = len(tasks) * len(grid) * k_max
    print(f"p = {p}: {len(tasks)} tasks x {len(grid)} queries x k = 1..{k_max} = {n_cells:,} cells per solver")
    print(f"bayes_memorized over {len(setting.pretrain_tasks)} pre-training tasks; setup {setup_seconds:.2f} s")
    seconds: dict[str, float] = {}
    coverage: dict[str, float] = {}
    for solver in solvers:
        answered = 0
        start = time.perf_counter()
        for k in range(1, k_max + 1):
            out = solver.predict_grid(examples[k], grid)
            answered += int((out.pred != -1).sum())
            del out
        seconds[solver.name] = time.perf_counter() - start
        coverage[solver.name] = answered / n_cells
        print(f"  {solver.name:<28} {seconds[solver.name]:7.3f} s   answers {coverage[solver.name]:6.1%} of cells")
    full_grid_seconds = sum(seconds.values())
    print(f"full grid, all six solvers: {full_grid_seconds:.3f} s")

    # The authors' per-cell sympy solve at k = 2, on a sample of cells.
    rng = np.random.default_rng(0)
    task_idx = rng.integers(0, len(tasks), n_sympy)
    query_idx = rng.integers(0, len(grid), n_sympy)
    ex2 = examples[2]
    sympy_cell(p, ex2[0], grid[1])  # import sympy outside the timing
    start = time.perf_counter()
    slow = [sympy_cell(p, ex2[t], grid[q]) for t, q in zip(task_idx, query_idx, strict=True)]
    sympy_per_cell = (time.perf_counter() - start) / n_sympy
    ours = ModularRegression(p).predict_grid(ex2, grid).pred[task_idx, query_idx]
    agree = bool((np.array(slow) == ours).all())
    ours_per_cell = seconds["modular_regression"] / n_cells
    speedup = sympy_per_cell / ours_per_cell
    print(
        f"sympy per cell (k = 2, {n_sympy} cells): {sympy_per_cell * 1e6:.1f} us; "
        f"modular_regression per cell: {ours_per_cell * 1e9:.1f} ns; speedup {speedup:,.0f}x; "
        f"answers agree: {agree}"
    )
    result = {
        "benchmark": "solvers",
        "quick": args.quick,
        "p": p,
        "k_max": k_max,
        "n_tasks": len(tasks),
        "n_queries": len(grid),
        "n_pretrain_tasks": len(setting.pretrain_tasks),
        "cells_per_solver": n_cells,
        "setup_seconds": round(setup_seconds, 4),
        "solver_seconds": {k: round(v, 4) for k, v in seconds.items()},
        "coverage": {k: round(v, 4) for k, v in coverage.items()},
        "full_grid_seconds": round(full_grid_seconds, 4),
        "sympy_cells": n_sympy,
        "sympy_seconds_per_cell": sympy_per_cell,
        "modular_regression_seconds_per_cell": ours_per_cell,
        "speedup_vs_sympy": round(speedup, 1),
        "sympy_answers_agree": agree,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    emit(result, args.save)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
