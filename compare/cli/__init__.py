"""The ``compare`` console script: a thin layer that parses arguments, calls the library and prints.

One module per command (``compare.cli.run`` for ``compare run``, ...); the model's own
commands (``train``, ``export``, ``import-authors``) live in :mod:`model.commands` and are
reached from the same parser.
"""
from compare.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
