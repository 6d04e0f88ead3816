"""Bounds the library checks before it starts work (a light module: the parser reads them)."""
from __future__ import annotations

__all__ = ["MAX_CELLS"]

#: Default bound on a run's cells (tasks x sequences x k x p^2) before it starts: the paper's
#: largest grid (p = 29, 841 tasks, 17 sequences, k 1..32) has 385 million.
MAX_CELLS = 1_000_000_000
