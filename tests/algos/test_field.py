"""GF(p) helpers: prime validation, cached fields, inverse tables."""
from __future__ import annotations

import numpy as np
import pytest

from algos.field import check_prime, gf, inverse_table


@pytest.mark.parametrize("p", [2, 3, 5, 7, 29, 47, np.int64(31)])
def test_primes_are_accepted_as_int(p):
    out = check_prime(p)
    assert out == int(p) and type(out) is int


@pytest.mark.parametrize("p", [4, 9, 1, 0, -7, 2.0, True, "29", None])
def test_non_primes_are_rejected(p):
    with pytest.raises(ValueError, match="p must be a prime"):
        check_prime(p)


@pytest.mark.parametrize("p", [2, 3, 5, 7, 29])
def test_inverse_table_inverts_every_nonzero_residue(p):
    table = inverse_table(p)
    assert table.shape == (p,) and table[0] == 0
    for x in range(1, p):
        assert x * table[x] % p == 1
    assert not table.flags.writeable


def test_fields_are_cached_and_match_their_prime():
    assert gf(7) is gf(7)
    assert gf(7).order == 7
    with pytest.raises(ValueError, match="prime"):
        gf(8)
