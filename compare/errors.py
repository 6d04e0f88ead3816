"""The error type the CLI turns into one line on stderr and exit code 2."""
from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad user input: a wrong flag value, a missing file, an unwritable folder."""
