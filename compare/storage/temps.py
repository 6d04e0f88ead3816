"""Temporary files and folders that name their writer, and the rule that removes stale ones.

Every file or folder the suite writes appears under a temporary name first and is renamed
into place when complete. The temporary name carries the writer's identity::

    .<name>.tmp-h<host>-p<pid>-<random>     being written
    .<name>.old-h<host>-p<pid>-<random>     a folder renamed aside while its replacement lands

``<host>`` is the first 8 hex digits of the SHA-256 of the host name, ``<pid>`` the writer's
process id. A later command that touches the folder removes a temporary when

- it was written on **this** host and its process is gone (a killed run), or
- it is older than :data:`LEASE_S` (by modification time), whichever host wrote it.

A live writer on another node of a shared file system (a SLURM array, a multi-node
``torchrun``) is never touched: its process id means nothing here, and its file is younger
than the lease. Names written by earlier versions (``.<name>.tmp-<pid>-…`` with no host,
or no pid at all) are removed when their pid is dead on this host or, without a pid, when
older than an hour, as those versions did.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from algos.tempfiles import LEASE_S, host_id, is_stale, parse, process_alive, temp_name

__all__ = [
    "LEASE_S",
    "host_id",
    "temp_name",
    "is_temporary",
    "parse",
    "is_stale",
    "remove_stale_in",
    "remove_stale_beside",
    "process_alive",
    "names_in",
]

#: Files an earlier version wrote under a temporary name with no host inside a report folder.
LEGACY_NAMES = frozenset({"report", "manifest.json", "cells.csv"})


def is_temporary(entry: str) -> bool:
    """Whether ``entry`` (a file name inside an output folder) is one of the suite's
    temporaries: any name of this module's form, or an earlier version's temporary of a file
    the suite writes there."""
    info = parse(entry)
    return info is not None and (info["host"] is not None or info["name"] in LEGACY_NAMES)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_in(
    folder: Path,
    names: Callable[[str], bool] | None = None,
    restore: Callable[[Path, Path], bool] | None = None,
    legacy: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Remove the stale temporaries directly inside ``folder`` whose target name passes
    ``names`` (default: every name). Names of earlier versions (no host) are looser, so only
    those whose target name passes ``legacy`` are considered (default: none). A stale
    ``.old-`` folder goes back to its target when ``restore(aside, target)`` says so (a
    writer killed while swapping); else it is removed. Returns what was removed or restored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for path in entries:
        info = parse(path.name)
        if info is None or (names is not None and not names(info["name"])):
            continue
        if info["host"] is None and (legacy is None or not legacy(info["name"])):
            continue
        if not is_stale(path, info):
            continue
        target = folder / info["name"]
        if info["kind"] == "old" and restore is not None and restore(path, target):
            os.rename(path, target)
        else:
            _remove(path)
        done.append(path)
    return done


def remove_stale_beside(target: Path) -> list[Path]:
    """Remove the stale temporaries of ``target`` in its parent folder (``.<target>.tmp-…``);
    a stale ``.<target>.old-…`` (a swap that was killed) goes back to ``target`` when
    ``target`` is missing."""
    target = Path(target)

    def mine(n: str) -> bool:
        return n == target.name

    return remove_stale_in(
        target.parent, names=mine, legacy=mine, restore=lambda aside, t: aside.is_dir() and not t.exists()
    )


def names_in(entries: Iterable[str]) -> list[str]:
    """The entries that are not temporaries."""
    return [e for e in entries if not is_temporary(e)]
