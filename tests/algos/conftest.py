"""Hypothesis profiles for tests/algos.

``ci`` (loaded when the environment variable CI is set): derandomized, no example
database, more examples. ``dev`` (the default): a modest number of examples so the
whole directory runs in seconds. ``HYPOTHESIS_PROFILE`` picks one explicitly.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
