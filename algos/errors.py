"""The one error type for bad input from the user, at the bottom of the layers.

Every package raises :class:`InputError` (or a subclass: ``compare.errors.UsageError``,
``model.checkpoint.CheckpointError``) for a value the user gave that cannot work — a
k spec, a task outside Z_p^2, an unknown preset or device, a file that is not a
checkpoint. The console script prints such an error as one line and exits 2; any other
exception is a bug and keeps its traceback. It subclasses ``ValueError``, so callers that
catch ``ValueError`` keep working.
"""
from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from the user: the message is one line that names the problem."""
