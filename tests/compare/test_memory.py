"""compare.storage.memory: free heap pages go back to the OS where the C library allows it."""
from __future__ import annotations

import platform

import numpy as np

from compare.storage.memory import release_free_memory


def test_release_works_exactly_where_libc_is_glibc():
    # the streaming run relies on it on Linux (benchmarks/compare_scale.py measures the effect)
    assert release_free_memory() == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def test_release_leaves_live_arrays_intact():
    live = [np.arange(1 << 12) * i for i in range(64)]
    for _ in range(16):
        freed = np.ones(1 << 18)
        del freed
        release_free_memory()
    assert all(np.array_equal(a, np.arange(1 << 12) * i) for i, a in enumerate(live))
