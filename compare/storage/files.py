"""Files, folders and pages: the I/O every report shares.

A run folder holds::

    cells.parquet      the per-cell table (compare.engine.comparison)
    cells.csv          the same, with --csv
    manifest.json      what the run was computed from (argv, versions, checkpoint, setting, k, sequences)
    summary.csv        per (split, k, predictor) rates with bootstrap intervals (compare.engine.summary)
    attribution.csv    exclusive attribution of the model's answers
    sequences.csv      per (split, k, example sequence) model accuracy and each algorithm's coverage
    tasks.csv          the same per (split, k, task)
    report.md / .html  headline table and links to every figure
    curves.png         coverage, agreement and model accuracy against k
    attribution.png    stacked attribution shares against k
    agreement_id.png, agreement_ood.png   per-cell agreement heatmaps
    grid_<split>_<a>_<b>.png              the paper's k-shot grid figure for selected tasks

Folders are written atomically (:func:`atomic_output_dir`): everything goes to a hidden
temporary folder beside the target, which becomes the target only once complete; an
earlier report of the same command has only its own files replaced, and a folder the
suite did not write is never replaced (:mod:`compare.storage.ownership`). What each kind of
report draws lives beside this module: ``run_report`` (``compare run``/``compare report``),
``ablation_report``, ``inspect_report``, ``training_report`` (phase diagrams, training runs).
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from algos.tempfiles import atomic_write
from compare.errors import UsageError
from compare.storage import ownership, temps

__all__ = [
    "atomic_output_dir",
    "remove_stale",
    "remove_stale_inside",
    "process_alive",
    "write_cells",
    "write_manifest",
    "write_manifest_to",
    "replace_manifest",
    "make_temp_dir",
    "read_run",
    "read_manifest_of",
    "write_pages",
    "copy_run_files",
    "atomic_write_text",
    "CELLS",
    "MANIFEST",
    "NOISE_LEVELS",
    "NOISE_POSITIONS",
]

CELLS = "cells.parquet"


MANIFEST = "manifest.json"


NOISE_LEVELS = "noise_levels.csv"  # label-noise sweeps of a noisy run (compare.engine.noise)


NOISE_POSITIONS = "noise_positions.csv"



# ---------------------------------------------------------------------- atomic folders
@contextlib.contextmanager
def atomic_output_dir(target: str | os.PathLike, *, overwrite: bool | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; on success its files land in ``target``.

    What may be replaced follows :mod:`compare.storage.ownership`: an absent or empty
    ``target`` becomes the temporary folder by one rename; a ``target`` holding an earlier
    report of the same command and subject (the ``tool`` and checkpoint of the manifest the
    caller wrote into the temporary folder) has the suite's files replaced one rename each,
    the user's files left in place; any other folder is refused with one line (a report of
    the same command about another subject only without ``overwrite``; ``None`` means the
    command has no such flag). The new manifest gets the list of its files.

    On any exception (KeyboardInterrupt included) the temporary folder, and any parent
    folders created for it, are removed and ``target`` is left untouched. Temporary folders
    carry the writer's host and process id; those a killed run left behind are removed
    first (:mod:`compare.storage.temps`).
    """
    target = Path(target).expanduser().absolute()
    remove_stale(target)
    if target.is_dir():
        remove_stale_inside(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"output path {target} exists and is not a folder")
    if ownership.entries(target) and ownership.suite_manifest(target) is None:
        ownership.check_output(target, None, overwrite=overwrite)  # refuses, naming what is there
    created: list[Path] = []
    parent = target.parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        tmp = make_temp_dir(target)
    except OSError as exc:
        _remove_created(created)
        raise UsageError(f"cannot create output folder {target}: {exc.strerror or exc}") from None
    try:
        yield tmp
        new = ownership.read_json(tmp / MANIFEST)
        new = new if ownership.is_suite_manifest(new) else None
        old = ownership.check_output(target, new, overwrite=overwrite)
        if new is not None:  # a new file: the manifest may be a hard link to another folder's (copy_run)
            ownership.write_json_atomic(tmp / MANIFEST, dict(new, files=sorted(ownership.entries(tmp))))
        os.chmod(tmp, 0o755 & ~_umask())
        if old is None:
            if target.is_dir():
                os.rmdir(target)  # empty (or only temporaries would make this fail: then refuse)
            os.rename(tmp, target)
        else:
            ownership.replace_into(tmp, target, old)
    except OSError as exc:  # named by the user's path, not the temporary one
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this host (a temporary file's writer)."""
    return temps.process_alive(pid)


def remove_stale(target: Path) -> list[Path]:
    """Remove the temporaries beside ``target`` that a killed or long-gone writer left
    (:mod:`compare.storage.temps`); a ``.<name>.old-…`` (a run killed while swapping) goes back
    to ``target`` when ``target`` is missing. Returns what was removed or restored."""
    return temps.remove_stale_beside(Path(target))


def remove_stale_inside(folder: Path) -> list[Path]:
    """Remove the stale temporaries of every writer inside an output folder: report and
    manifest temporaries, ``cells.csv``'s, and the task files' in ``cells/``."""
    folder = Path(folder)
    done = temps.remove_stale_in(folder, legacy=lambda n: n in temps.LEGACY_NAMES)
    done += temps.remove_stale_in(folder / "cells", legacy=lambda n: bool(_TASK_FILE.match(n)))
    return done

_TASK_FILE = re.compile(r"^task-\d+-\d+\.parquet$")


def make_temp_dir(target: Path) -> Path:
    """A fresh hidden folder beside ``target`` named for this host and process (see
    :mod:`compare.storage.temps`)."""
    for _ in range(100):
        path = Path(target).parent / temps.temp_name(Path(target).name)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def publish_report(
    folder: str | os.PathLike,
    manifest: dict,
    write: Callable[[Path, dict], list[str]],
    *,
    overwrite: bool | None = None,
    add_to_total: bool = False,
) -> tuple[Path, dict, list[str]]:
    """Write a report folder whole or not at all: ``write(tmp, manifest)`` fills a temporary
    folder (:func:`atomic_output_dir`) and returns its figures; the manifest gets
    ``timings["report_seconds"]`` (added to ``total_seconds`` too with ``add_to_total``) and is
    written beside them. Returns (the folder's absolute path, the manifest, the figures)."""
    t0 = time.perf_counter()
    out = Path(folder)
    manifest = dict(manifest)
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        figures = write(tmp, manifest)
        timings = dict(manifest.get("timings", {}))
        timings["report_seconds"] = round(time.perf_counter() - t0, 3)
        if add_to_total and "total_seconds" in timings:
            timings["total_seconds"] = round(timings["total_seconds"] + timings["report_seconds"], 3)
        manifest["timings"] = timings
        write_manifest(tmp, manifest)
    return out.expanduser().absolute(), manifest, figures


def _remove_created(created: list[Path]) -> None:
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- run files
def write_cells(folder: Path, cells: pd.DataFrame, *, csv: bool = False) -> None:
    """cells.parquet (zstd, deterministic), and cells.csv when asked."""
    cells.to_parquet(folder / CELLS, index=False, compression="zstd", engine="pyarrow")
    if csv:
        cells.to_csv(folder / "cells.csv", index=False, float_format="%.6g")


def write_manifest(folder: Path, manifest: dict) -> None:
    write_manifest_to(folder / MANIFEST, manifest)


def write_manifest_to(path: Path, manifest: dict) -> None:
    """A manifest as indented JSON at ``path`` (numpy values and paths made plain)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(manifest), fh, indent=1)
        fh.write("\n")


def replace_manifest(folder: Path, manifest: dict, *, files: Iterable[str] | None = None) -> None:
    """Rewrite a folder's manifest atomically (temporary file, then rename).

    The list of the folder's own files (``"files"``) is kept as the manifest on disk has it,
    unless ``files`` gives a new one: only the writers that add or remove files change it."""
    folder = Path(folder)
    manifest = dict(manifest)
    if files is not None:
        manifest["files"] = sorted(set(files))
    else:
        on_disk = ownership.read_json(folder / MANIFEST)
        if isinstance(on_disk, dict) and "files" in on_disk:
            manifest["files"] = on_disk["files"]
        else:
            manifest.pop("files", None)
    atomic_write(folder / MANIFEST, lambda tmp: write_manifest_to(tmp, manifest))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_manifest_of(folder: str | os.PathLike) -> dict:
    """A run folder's ``manifest.json`` (UsageError with one line if missing or unusable)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    if not (folder / MANIFEST).is_file():
        raise UsageError(f"{folder} has no {MANIFEST} (not a compare run folder)")
    try:
        with open(folder / MANIFEST, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{folder / MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or "p" not in manifest or "ks" not in manifest:
        raise UsageError(f"{folder / MANIFEST} is not a compare manifest (no p or ks)")
    if manifest.get("tool", "compare run") != "compare run":
        raise UsageError(f"{folder} holds a `{manifest.get('tool')}` report, not a `compare run` folder")
    return manifest


def read_run(folder: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """Load ``cells.parquet`` and ``manifest.json`` from a run folder of the single-file
    layout (UsageError if unusable)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    for name in (CELLS, MANIFEST):
        if not (folder / name).is_file():
            raise UsageError(f"{folder} has no {name} (not a compare run folder)")
    manifest = read_manifest_of(folder)
    try:
        cells = pd.read_parquet(folder / CELLS, engine="pyarrow")
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise UsageError(f"cannot read {folder / CELLS}: {' '.join(str(exc).split())}") from None
    subject = manifest.get("subject", "model")
    need = {"task_a", "task_b", "split", "sequence", "k", "x", "y", "z_true", f"pred_{subject}"}
    missing = need - set(cells.columns)
    if missing:
        raise UsageError(f"{folder / CELLS} lacks columns {sorted(missing)}")
    return cells, manifest


def write_pages(folder: Path, title: str, about: Sequence[tuple[str, str]],
                sections: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]], str]],
                figures: Sequence[tuple[str, str]]) -> None:
    """report.md and report.html: a title, an "about" list, table sections and figures.

    ``sections`` are (heading, column names, rows of cell strings, a note in Markdown that
    may hold links); ``figures`` are (file name, caption).
    """
    md = [f"# {title}", ""]
    md += [f"- **{k}**: {v}" for k, v in about]
    for name, head, body, text in sections:
        md += ["", f"## {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in body]
        md += ["", text]
    md += ["", "## Figures", ""]
    for name, caption in figures:
        md += [f"### {caption}", "", f"![{caption}]({name})", ""]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")

    e = html.escape
    h = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
        "img{max-width:100%}figure{margin:1.5em 0}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in about) + "</ul>",
    ]
    for name, head, body, text in sections:
        h += [f"<h2>{e(name)}</h2>", "<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>"]
        h += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in body]
        h += ["</table>", "<p>" + _md_links_to_html(e(text)) + "</p>"]
    h.append("<h2>Figures</h2>")
    for name, caption in figures:
        h.append(f'<figure><a href="{e(name)}"><img src="{e(name)}" alt="{e(caption)}"></a>'
                 f'<figcaption>{e(caption)}</figcaption></figure>')
    h.append("</body></html>")
    (folder / "report.html").write_text("\n".join(h), encoding="utf-8")


def _md_links_to_html(text: str) -> str:
    import re

    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def copy_run_files(src: Path, dst: Path) -> None:
    """Bring a run's data files (cells, manifest, optional csv) into a new folder."""
    for name in (CELLS, MANIFEST, "cells.csv", NOISE_LEVELS, NOISE_POSITIONS):
        if (src / name).is_file():
            try:
                os.link(src / name, dst / name)
            except OSError:
                shutil.copy2(src / name, dst / name)


# ---------------------------------------------------------------------- phase diagrams
def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through a temporary file and a rename."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

