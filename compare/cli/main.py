"""The ``compare`` console script: one parser, one sub-command module per command.

Every command module exposes ``add_parser(subparsers)`` (which sets ``func``) and a
handler ``func(args) -> int`` that calls the library and prints. Bad input
(:class:`algos.errors.InputError` and its subclasses, or an OS error on the user's files)
ends as one line on stderr and exit code 2; any other exception is a bug and keeps its
traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

# Command modules, in the order they appear in --help.
_COMMANDS = (
    "compare.cli.run",
    "compare.cli.report",
    "compare.cli.inspect",
    "compare.cli.ablate",
    "compare.cli.patch",
    "compare.cli.lens",
    "compare.cli.probe",
    "compare.cli.mixture",
    "compare.cli.trajectory",
    "compare.cli.tasks",
    "model.commands.train",
    "compare.cli.sweep",
    "compare.cli.runs",
    "model.commands.export",
    "compare.cli.export_tl",
    "model.commands.import_authors",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        from compare.errors import UsageError

        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="compare",
        description="In-context learning of modular arithmetic: train the paper's transformer, compare it "
        "cell by cell with GF(p) reference algorithms on k-shot grids, and write agreement reports.",
        epilog="Main job: compare run --ckpt d4.pt --k 1..8   (see `compare COMMAND --help`)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command not built yet
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input)."""
    from algos.errors import InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        args.argv = argv
        return int(args.func(args) or 0)
    except (InputError, OSError) as exc:  # bad input: one line; anything else is a bug and keeps its traceback
        print(f"compare: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compare: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return " ".join(text.split())
