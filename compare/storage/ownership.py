"""Which files of an output folder are the suite's, and replacing only those.

A folder is the suite's when its ``manifest.json`` says so: a JSON object whose ``"tool"``
names a command of this suite (``"compare run"``, ``"compare ablate"``, ...) and whose
``"format"`` is an integer. A ``manifest.json`` of anything else (``{"name": "web"}``) does
not make a folder ours.

What is ours inside such a folder is listed by its manifest: ``"files"`` names every
top-level entry the command wrote (the manifest itself, ``cells/``, each table, figure and
page); inside ``cells/`` only the ``task-<a>-<b>.parquet`` files are ours. Manifests written
before that list existed get the names each command is known to write (:data:`LEGACY`).
Everything else in the folder (``notes.txt``, ``myfigs/``, ``src/``) belongs to the user:
no command removes, replaces or moves it, ``--overwrite`` included.

Rules every writer follows (:func:`check_output`, :func:`replace_into`, :func:`remove_owned`):

- an absent or empty folder is written;
- a folder that is not the suite's and is not empty is refused (one line naming a few of its
  entries), whatever the flags;
- a folder of another command (a ``compare run`` report given to ``compare inspect --out``) is
  refused, whatever the flags;
- a folder of the same command about another subject (another checkpoint, configuration or
  training run) is refused unless ``--overwrite``;
- replacing removes the files the old report listed and moves the new ones in; a new file
  whose name is taken by a file of the user's is refused, never written over.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from compare.errors import UsageError
from compare.storage import temps

__all__ = [
    "MANIFEST",
    "LEGACY",
    "read_json",
    "is_suite_manifest",
    "suite_manifest",
    "owned_entries",
    "foreign_entries",
    "same_subject",
    "describe",
    "check_output",
    "remove_owned",
    "replace_into",
    "listing",
    "entries",
]

MANIFEST = "manifest.json"
CELLS_DIR = "cells"
_TOOL = re.compile(r"^compare [a-z][a-z0-9-]*$")
_TASK_FILE = re.compile(r"^task-\d+-\d+\.parquet$")

_PAGES = (r"manifest\.json", r"report\.md", r"report\.html")
#: What each command wrote before manifests listed their files (regular expressions of names).
LEGACY: dict[str, tuple[str, ...]] = {
    "compare run": _PAGES
    + (
        r"cells",
        r"cells\.parquet",
        r"cells\.csv",
        r"(summary|attribution|sequences|tasks|noise_levels|noise_positions)\.csv",
        r"(curves|attribution|tasks|sequences|noise_levels|noise_positions)\.png",
        r"agreement_(id|ood)\.png",
        r"grid_(id|ood)_\d+_\d+\.png",
    ),
    "compare ablate": _PAGES + (r"ablation\.(csv|png)", r"grid_[A-Za-z0-9+]+_(id|ood)_\d+_\d+\.png"),
    "compare inspect": _PAGES
    + (
        r"scores\.csv",
        r"attention(_shares)?\.png",
        r"pca_heads(_dlog)?\.png",
        r"embedding\.png",
        r"similarity(_heads)?_[a-z]+\.png",
    ),
    "compare trajectory": _PAGES + (r"(trajectory|crossings)\.csv", r"trajectory_k\d+\.png"),
}


# ---------------------------------------------------------------------- reading
def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it is missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def is_suite_manifest(manifest: Any) -> bool:
    """Whether a manifest's content says a command of this suite wrote it."""
    return (
        isinstance(manifest, dict)
        and isinstance(manifest.get("tool"), str)
        and bool(_TOOL.match(manifest["tool"]))
        and isinstance(manifest.get("format"), int)
        and not isinstance(manifest.get("format"), bool)
    )


def suite_manifest(folder: Path) -> dict | None:
    """The folder's manifest when the suite wrote it, else None."""
    m = read_json(Path(folder) / MANIFEST)
    return m if is_suite_manifest(m) else None


def entries(folder: Path) -> list[str]:
    """The entries of ``folder`` other than temporaries, sorted ([] when it is not a folder)."""
    try:
        return sorted(temps.names_in(os.listdir(folder)))
    except (FileNotFoundError, NotADirectoryError):
        return []


def owned_entries(folder: Path, manifest: dict) -> set[str]:
    """The top-level entries of ``folder`` that its (suite) manifest says are the suite's."""
    listed = manifest.get("files")
    if isinstance(listed, list) and all(isinstance(n, str) for n in listed):
        own = {n for n in listed if n and "/" not in n and n not in (".", "..")}
    else:
        patterns = [re.compile(f"^(?:{p})$") for p in LEGACY.get(str(manifest.get("tool")), _PAGES)]
        own = {n for n in entries(folder) if any(p.match(n) for p in patterns)}
    return own | {MANIFEST}


def foreign_entries(folder: Path, manifest: dict | None) -> list[str]:
    """The entries of ``folder`` that are not the suite's (all of them when ``manifest`` is None)."""
    own = owned_entries(folder, manifest) if manifest is not None else set()
    return [n for n in entries(folder) if n not in own]


def listing(folder: Path, names: Iterable[str], most: int = 3) -> str:
    """``notes.txt, src/, … (5 in all)``: a few names for a one-line message."""
    names = list(names)
    shown = [n + ("/" if (Path(folder) / n).is_dir() else "") for n in names[:most]]
    return ", ".join(shown) + (f", … ({len(names)} in all)" if len(names) > most else "")


# ---------------------------------------------------------------------- subjects
def _subject(manifest: dict) -> tuple[str, Any]:
    tool = manifest.get("tool")
    if tool == "compare run":
        return "configuration", manifest.get("config_hash")
    if tool == "compare runs":
        return "runs", manifest.get("runs")
    if tool == "compare trajectory":
        if manifest.get("run_identity"):
            return "run", manifest["run_identity"]
        return "run_dir", manifest.get("run_dir")
    return "checkpoint", (manifest.get("checkpoint") or {}).get("sha256")


def same_subject(old: dict, new: dict) -> bool:
    """Whether two manifests of one command are about the same subject: the same configuration
    (``compare run``), training run (``compare trajectory``), list of runs (``compare runs``) or
    checkpoint (the others)."""
    kind_a, a = _subject(old)
    kind_b, b = _subject(new)
    if kind_a == kind_b == "run_dir" or {kind_a, kind_b} == {"run", "run_dir"}:
        da, db = old.get("run_dir"), new.get("run_dir")
        if not (isinstance(da, str) and isinstance(db, str) and da and db):
            return False
        return Path(da).expanduser().resolve() == Path(db).expanduser().resolve()
    return kind_a == kind_b and a is not None and a == b


def describe(manifest: dict) -> str:
    """``the `compare inspect` report of d4 (sha256 0123abcd…)``, for messages."""
    tool = manifest.get("tool", "?")
    kind, value = _subject(manifest)
    if kind == "checkpoint":
        name = (manifest.get("checkpoint") or {}).get("name", "?")
        about = f"of checkpoint {name}" + (f" (sha256 {str(value)[:12]}…)" if value else "")
    elif kind == "configuration":
        about = f"of configuration {str(value)[:12]}…" if value else "of an unknown configuration"
    elif kind == "runs":
        about = f"of runs {', '.join(value or [])[:80]}"
    else:
        about = f"of run {manifest.get('run_dir', '?')}"
    return f"the `{tool}` report {about}"


# ---------------------------------------------------------------------- the rules
def check_output(target: Path, new: dict | None, *, overwrite: bool | None = False) -> dict | None:
    """Check that ``target`` may receive the report whose manifest is ``new`` (at least its
    ``tool`` and subject keys; None for a folder written without a manifest).

    Returns the old report's manifest when ``target`` holds one that may be replaced, None when
    ``target`` is absent or empty. Raises :class:`UsageError` (one line) otherwise.
    ``overwrite`` None means the command has no ``--overwrite`` flag (messages then do not
    offer it)."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"output path {target} exists and is not a folder")
    if not target.exists():
        return None
    present = entries(target)
    if not present:
        return None
    old = suite_manifest(target)
    if old is None:
        why = (
            f"its {MANIFEST} was not written by this suite"
            if (target / MANIFEST).exists()
            else f"it is not empty and holds no {MANIFEST}"
        )
        raise UsageError(
            f"refusing to replace {target}: {why} (it holds {listing(target, present)}); "
            "choose another --out (no flag makes this suite write into a folder it did not make)"
        )
    if new is None:
        raise UsageError(f"refusing to replace {target}: it holds {describe(old)}; choose another --out")
    if old.get("tool") != new.get("tool"):
        raise UsageError(
            f"refusing to replace {target}: it holds {describe(old)}, not a `{new.get('tool')}` report; "
            "choose another --out"
        )
    if not overwrite and not same_subject(old, new):
        hint = (
            "pass --overwrite to replace it, or choose another --out"
            if overwrite is not None
            else ("choose another --out")
        )
        raise UsageError(f"refusing to replace {target}: it holds {describe(old)}, not this one; {hint}")
    return old


def _owned_in_cells(name: str) -> bool:
    if _TASK_FILE.match(name):
        return True
    info = temps.parse(name)
    return info is not None and bool(_TASK_FILE.match(info["name"]))


def _remove_entry(path: Path) -> None:
    """Remove one entry the suite owns; inside ``cells/`` only its task files."""
    if path.name == CELLS_DIR and path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            if _owned_in_cells(child.name):
                _rm(child)
        try:
            path.rmdir()
        except OSError:  # the user's files are still there: the folder stays
            pass
    elif path.exists() or path.is_symlink():
        _rm(path)


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_owned(folder: Path, manifest: dict, keep: Iterable[str] = ()) -> list[str]:
    """Remove the entries of ``folder`` that ``manifest`` says are the suite's (the manifest
    last), except ``keep``; the user's files stay. Returns the names removed."""
    folder = Path(folder)
    keep = set(keep)
    gone = []
    for name in sorted(owned_entries(folder, manifest) - keep - {MANIFEST}):
        if (folder / name).exists() or (folder / name).is_symlink():
            _remove_entry(folder / name)
            gone.append(name)
    if MANIFEST not in keep and (folder / MANIFEST).exists():
        (folder / MANIFEST).unlink()
        gone.append(MANIFEST)
    return gone


def write_json_atomic(path: Path, obj: Any) -> None:
    """JSON at ``path``, through a temporary name and a rename."""
    tmp = path.with_name(temps.temp_name(path.name))
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _move(src: Path, dst: Path, owned_inside: Callable[[str], bool]) -> None:
    """Move ``src`` to ``dst`` (``dst``, if present, is the suite's): a folder onto a folder
    merges, removing the old folder's own entries that the new one lacks."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
        new = {c.name for c in src.iterdir()}
        for child in sorted(src.iterdir()):
            _move(child, dst / child.name, owned_inside)
        for child in sorted(dst.iterdir()):
            if child.name not in new and owned_inside(child.name):
                _rm(child)
        src.rmdir()
        return
    if dst.is_dir() and not dst.is_symlink():
        _rm(dst)
    elif dst.exists() and os.path.samefile(src, dst):  # hard links of one file: rename would do nothing
        src.unlink()
        return
    os.replace(src, dst)


def replace_into(tmp: Path, target: Path, old: dict) -> None:
    """Replace the suite's files in ``target`` (whose manifest is ``old``) by the complete
    report in ``tmp``: each new entry moved in by a rename, the old report's other entries
    removed, the manifest last. The user's entries stay where they are; a new entry whose
    name one of them holds is refused before anything moves."""
    tmp, target = Path(tmp), Path(target)
    own = owned_entries(target, old)
    foreign = set(entries(target)) - own
    new = set(entries(tmp))
    clash = sorted(new & foreign)
    if clash:
        raise UsageError(
            f"refusing to replace {target}: the new report would write over {listing(target, clash)}, "
            "which this suite did not write there; move them away or choose another --out"
        )
    # while files move, the manifest lists old and new names: an interrupted swap leaves no
    # file of ours that the manifest does not name
    write_json_atomic(target / MANIFEST, dict(old, files=sorted(own | new)))
    for name in sorted(new - {MANIFEST}):
        _move(tmp / name, target / name, _owned_in_cells if name == CELLS_DIR else (lambda n: True))
    for name in sorted(own - new - {MANIFEST}):
        _remove_entry(target / name)
    if (tmp / MANIFEST).exists():
        os.replace(tmp / MANIFEST, target / MANIFEST)
    shutil.rmtree(tmp, ignore_errors=True)
