"""Temporary names that carry their writer's identity, and when such a temporary is abandoned.

The bottom of the layers (standard library only), so the model's checkpoints and the
comparison's run folders follow one rule; :mod:`compare.storage.temps` adds the folder-level
clean-up. A name is ``.<name>.tmp-h<host>-p<pid>-<random>`` (``.old-`` for a folder renamed
aside); a temporary is abandoned when this host wrote it and its process is gone, or when it
is older than :data:`LEASE_S` whichever host wrote it, so a live writer on another node of a
shared file system is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["LEASE_S", "LEGACY_AGE_S", "host_id", "temp_name", "parse", "process_alive", "is_stale", "atomic_write"]

#: Age (seconds since the last write) after which a temporary of any host counts as abandoned.
#: Far longer than any single file or report takes to write.
LEASE_S = 6 * 3600.0
#: Age after which a temporary of an earlier version that recorded no process id is abandoned.
LEGACY_AGE_S = 3600.0

_NEW = re.compile(r"^\.(?P<name>.+?)\.(?P<kind>tmp|old)-h(?P<host>[0-9a-f]{8})-p(?P<pid>\d+)-.+$")
_OLD_PID = re.compile(r"^\.(?P<name>.+?)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.+)?$")
_OLD_ANY = re.compile(r"^\.(?P<name>.+?)\.(?P<kind>tmp|old)-.+$")


def host_id() -> str:
    """This host's tag in temporary names (8 hex digits of the SHA-256 of its host name)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_name(name: str, kind: str = "tmp") -> str:
    """A fresh hidden name for a temporary of ``name`` written by this process on this host."""
    return f".{name}.{kind}-h{host_id()}-p{os.getpid()}-{os.urandom(4).hex()}"


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Make ``path`` whole or not at all: ``write(tmp)`` fills a fresh temporary beside it
    (:func:`temp_name`), which is then renamed over ``path``; if anything fails the temporary
    is removed and the error goes on. The writer must not infer a format from the temporary's
    name (``fig.savefig(tmp, format="png")``)."""
    path = Path(path)
    tmp = path.with_name(temp_name(path.name))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def parse(entry: str) -> dict[str, Any] | None:
    """``{"name", "kind", "host", "pid"}`` of a temporary's name (host None for an earlier
    version's name, pid None when it recorded none); None when ``entry`` is not one."""
    m = _NEW.match(entry)
    if m:
        return {"name": m["name"], "kind": m["kind"], "host": m["host"], "pid": int(m["pid"])}
    m = _OLD_PID.match(entry)
    if m:
        return {"name": m["name"], "kind": m["kind"], "host": None, "pid": int(m["pid"])}
    m = _OLD_ANY.match(entry)
    if m:
        return {"name": m["name"], "kind": m["kind"], "host": None, "pid": None}
    return None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OverflowError:
        return False
    return True


def is_stale(
    path: Path, info: dict[str, Any] | None = None, *, now: float | None = None, lease_s: float = LEASE_S
) -> bool:
    """Whether the temporary at ``path`` was abandoned (see the module's rule)."""
    info = info if info is not None else parse(path.name)
    if info is None:
        return False
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if info["host"] is not None:
        if age > lease_s:
            return True
        return info["host"] == host_id() and not process_alive(info["pid"])
    if info["pid"] is not None:  # an earlier version's name: pid only (as it decided)
        return not process_alive(info["pid"]) or age > lease_s
    return age > LEGACY_AGE_S
