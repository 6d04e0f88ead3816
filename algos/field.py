"""GF(p) helpers on top of galois: prime validation, cached field classes, inverses.

Solvers keep their hot loops in plain integer numpy (mod p) and use these helpers for
the field facts they need; galois supplies the arithmetic and the row reduction.
"""
from __future__ import annotations

from functools import cache

import galois
import numpy as np

from algos.errors import InputError

__all__ = ["check_prime", "gf", "inverse_table"]


def check_prime(p: object) -> int:
    """Return ``p`` as an int if it is a prime, else raise ``ValueError`` naming it.

    >>> check_prime(29)
    29
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise InputError(f"p must be a prime integer, got {p!r}")
    p = int(p)
    if p < 2 or not galois.is_prime(p):
        raise InputError(f"p must be a prime >= 2, got {p}")
    return p


@cache
def gf(p: int) -> type[galois.FieldArray]:
    """The galois field class GF(p), built once per prime."""
    return galois.GF(check_prime(p))


@cache
def inverse_table(p: int) -> np.ndarray:
    """Multiplicative inverses mod p as an int64 array of shape (p,); entry 0 is 0.

    >>> inverse_table(7).tolist()
    [0, 1, 4, 5, 2, 3, 6]
    """
    field = gf(p)
    table = np.zeros(p, dtype=np.int64)
    table[1:] = np.asarray(field(np.arange(1, p)) ** -1, dtype=np.int64)
    table.setflags(write=False)
    return table
