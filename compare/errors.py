"""The error type the CLI turns into one line on stderr and exit code 2."""
from __future__ import annotations

from algos.errors import InputError

__all__ = ["UsageError", "InputError"]


class UsageError(InputError):
    """Bad user input: a wrong flag value, a missing file, an unwritable folder."""
