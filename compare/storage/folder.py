"""A run folder built in place, task by task: configuration, shards, resume, the report step.

``compare run`` streams each task's cells into ``cells/`` (:mod:`compare.storage.cells`)
and keeps only small aggregates (:mod:`compare.engine.aggregates`) in memory. The folder's
``manifest.json`` is written first and names the configuration (checkpoint SHA-256,
tasks, example sequences, k, solvers, label noise, schema version) by its hash:

- a folder made by the same configuration is resumed: tasks whose file carries that hash,
  names its task and holds the run's number of rows are skipped, whichever process or
  shard wrote them (a truncated file, or one copied over another task's, is computed again);
- a folder made by another configuration (or by a version that wrote no hash) is
  refused unless ``--overwrite``, which removes only the files the suite wrote there; a
  folder the suite did not write, or another command's report, is always refused
  (:mod:`compare.storage.ownership`);
- the manifest is checked against itself before a report trusts it (:func:`check_manifest`):
  its fields must give its configuration hash;
- a shard is a set of tasks (``I, I+N, I+2N, ...``); shards share nothing but the folder.
  The process that finds every task present writes the summaries and the report, under a
  lock so that two finishing at once do not both write; ``compare report DIR`` does the
  same from the files alone.

Each task file and each report file appears whole (temporary name, then rename); what a
killed run leaves is a resumable folder, never a half-written file.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.engine.aggregates import Accumulator
from compare.errors import UsageError
from compare.storage import cells as cells_store
from compare.storage import files as report
from compare.storage import ownership, temps

__all__ = [
    "Shard",
    "resolve_shard",
    "prepare_folder",
    "missing_tasks",
    "report_lock",
    "folder_aggregates",
    "publish_report",
    "write_cells_csv",
    "read_cells",
    "read_manifest",
    "copy_run",
    "write_run_report",
    "task_order_of",
    "run_config",
    "field_digests",
    "check_manifest",
    "rerun_command",
    "rows_per_task",
]

#: Files of a run folder that are data, not report output (kept when a report is rebuilt).
DATA_FILES = frozenset({report.MANIFEST, report.CELLS, "cells.csv", report.NOISE_LEVELS, report.NOISE_POSITIONS})


# ---------------------------------------------------------------------- shards
@dataclass(frozen=True)
class Shard:
    """Tasks ``index, index + count, ...`` of a run; ``source`` says where the numbers came from."""

    index: int = 0
    count: int = 1
    source: str = "single process"

    def select(self, n_tasks: int) -> np.ndarray:
        """Indices of this shard's tasks among ``n_tasks``."""
        return np.arange(self.index, n_tasks, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def resolve_shard(spec: str | None, env: Mapping[str, str] | None = None) -> Shard:
    """``--shard I/N`` when given; else ``torchrun``'s RANK/WORLD_SIZE; else a SLURM job
    array's SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (ids counted from SLURM_ARRAY_TASK_MIN);
    else one process doing every task.

    The variables are checked like the flag: a rank outside 0..WORLD_SIZE-1, a world size
    below 1, one of a pair without the other, or a value that is not an integer is one line
    (:class:`UsageError`), never a shard that silently computes nothing or everything."""
    env = os.environ if env is None else env
    if spec is not None:
        try:
            i, n = (int(v) for v in spec.split("/"))
        except ValueError:
            raise UsageError(f"--shard: expected I/N (e.g. 0/4), got {spec!r}") from None
        if n < 1 or not 0 <= i < n:
            raise UsageError(f"--shard {spec}: need 0 <= I < N")
        return Shard(i, n, "--shard")

    def number(name: str) -> int:
        try:
            return int(str(env[name]).strip())
        except ValueError:
            raise UsageError(
                f"RANK/WORLD_SIZE or SLURM_ARRAY_TASK_ID/COUNT are set but not integers ({name}={env[name]!r})"
            ) from None

    has_rank, has_world = "RANK" in env, "WORLD_SIZE" in env
    if has_rank or has_world:
        if not (has_rank and has_world):
            given, absent = ("RANK", "WORLD_SIZE") if has_rank else ("WORLD_SIZE", "RANK")
            raise UsageError(
                f"{given} is set but {absent} is not: set both (torchrun does) or neither, or pass --shard I/N"
            )
        rank, world = number("RANK"), number("WORLD_SIZE")
        if world < 1:
            raise UsageError(f"WORLD_SIZE={world}: need at least 1 process")
        if not 0 <= rank < world:
            raise UsageError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world})")
        if world > 1:
            return Shard(rank, world, "torchrun (RANK/WORLD_SIZE)")
    has_id, has_count = "SLURM_ARRAY_TASK_ID" in env, "SLURM_ARRAY_TASK_COUNT" in env
    if has_id or has_count:
        if not (has_id and has_count):
            given, absent = (
                ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
                if has_id
                else ("SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_ID")
            )
            raise UsageError(f"{given} is set but {absent} is not: pass --shard I/N to say which part this is")
        count = number("SLURM_ARRAY_TASK_COUNT")
        index = number("SLURM_ARRAY_TASK_ID") - (number("SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else 0)
        if count < 1:
            raise UsageError(f"SLURM_ARRAY_TASK_COUNT={count}: need at least 1 array task")
        if not 0 <= index < count:
            raise UsageError(f"SLURM array task {index} outside 0..{count - 1} (use --array=0-{count - 1})")
        if count > 1:
            return Shard(index, count, "SLURM job array")
    return Shard()


# ---------------------------------------------------------------------- the folder
def prepare_folder(folder: Path, manifest: dict, *, overwrite: bool) -> bool:
    """Make ``folder`` ready for the run whose ``manifest`` (with ``config_hash``) is given;
    returns True when it resumes an earlier run of the same configuration.

    A missing or empty folder is created with the manifest; a ``compare run`` folder of the
    same configuration is kept (stale temporaries of every writer removed; a manifest whose
    fields were edited is written again from this run's); a ``compare run`` folder of
    another configuration is refused with one line unless ``overwrite``, which removes only
    the files that folder's manifest lists as the suite's; any other folder (the user's,
    another command's report) is refused whatever the flags
    (:mod:`compare.storage.ownership`).
    """
    folder = Path(folder).expanduser().absolute()
    report.remove_stale(folder)
    chash = manifest["config_hash"]
    if folder.is_dir():
        report.remove_stale_inside(folder)
    old = ownership.check_output(folder, manifest, overwrite=True)  # refuses foreign folders
    if old is not None:
        theirs = old.get("config_hash")
        if theirs == chash:
            try:
                check_manifest(folder, old)
            except UsageError:  # edited by hand: this run's manifest has the same configuration
                report.replace_manifest(folder, manifest)
            return True
        if not overwrite:
            why = ("was written by an earlier version (no configuration hash)" if theirs is None
                   else "was made by a different configuration "
                        "(checkpoint, tasks, sequences, k, solvers, label noise or precision)")
            raise UsageError(f"{folder} {why}; pass --overwrite to replace it, or choose another --out")
        ownership.remove_owned(folder, old)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _create_manifest(folder, dict(manifest, files=[report.MANIFEST, cells_store.CELLS_DIR]))
    except OSError as exc:
        raise UsageError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    return False


def read_manifest(folder: Path) -> dict:
    try:
        with open(folder / report.MANIFEST, encoding="utf-8") as fh:
            out = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{folder / report.MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(out, dict):
        raise UsageError(f"{folder / report.MANIFEST} is not a compare manifest")
    return out


def _create_manifest(folder: Path, manifest: dict) -> None:
    """Write the manifest unless another shard's is already there (same configuration)."""
    path = folder / report.MANIFEST
    tmp = path.with_name(temps.temp_name(path.name))
    report.write_manifest_to(tmp, manifest)
    try:
        os.link(tmp, path)  # atomic "create if absent"
    except FileExistsError:
        if read_manifest(folder).get("config_hash") != manifest["config_hash"]:
            raise UsageError(f"{folder}: another run of a different configuration started here") from None
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------- the manifest's own check
#: Manifest names of the configuration's fields (for messages).
_FIELD_NAMES = {
    "checkpoint_sha256": "checkpoint.sha256",
    "solvers": "references",
    "label_offsets": "label_noise",
}


def run_config(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration a ``compare run`` folder's cells were computed from, built from its
    manifest's fields exactly as :func:`compare.compare_checkpoint` builds it; its
    :func:`~compare.storage.cells.config_hash` is the manifest's ``config_hash`` unless a
    field was edited."""
    config: dict[str, Any] = {
        "checkpoint_sha256": (manifest.get("checkpoint") or {}).get("sha256"),
        "setting_fingerprint": manifest.get("setting_fingerprint"),
        "tasks": manifest.get("tasks"),
        "sequences": manifest.get("sequences"),
        "ks": manifest.get("ks"),
        "subject": manifest.get("subject", "model"),
        "solvers": manifest.get("references"),
        "label_offsets": _offsets_digest(manifest),
    }
    precision = manifest.get("precision", "fp32")
    if precision != "fp32":
        config["precision"] = precision
    return config


def field_digests(config: Mapping[str, Any]) -> dict[str, str]:
    """A short digest of each configuration field (the manifest's ``config_fields``): which
    field an edit changed."""
    return {
        k: hashlib.sha256(json.dumps(v, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
        for k, v in config.items()
    }


def _offsets_digest(manifest: Mapping[str, Any]) -> str | None:
    noise = manifest.get("label_noise")
    if not noise:
        return None
    n_tasks, sequences = len(manifest["tasks"]), manifest["sequences"]
    offsets = np.zeros((n_tasks, len(sequences), len(sequences[0])), dtype=np.int64)
    for s, shots in enumerate(noise["offsets"]):
        for j, values in shots.items():
            offsets[:, s, int(j) - 1] = values
    return cells_store.array_digest(offsets)


def check_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Check a ``compare run`` manifest against itself before a report trusts it: its
    configuration fields (checkpoint, setting, tasks, sequences, k, subject, solvers, label
    noise, precision) must give its ``config_hash``, and the fields outside the hash that a
    report reads (p, the pre-training and o.o.d. tasks, the number of tasks) must agree with
    the stored task setting. One line (:class:`UsageError`) naming the fields otherwise."""
    where = Path(folder) / report.MANIFEST
    chash = manifest.get("config_hash")
    if not isinstance(chash, str):
        raise UsageError(f"{where} has no configuration hash (an early version's folder); "
                         "compute a new folder with `compare run ... --out NEW`")
    advice = ("restore it (from a backup or version control) or compute a new folder with "
              "`compare run ... --out NEW`")
    try:
        config = run_config(manifest)
        recomputed = cells_store.config_hash(config)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        raise UsageError(f"{where} is malformed (its configuration fields cannot be read); {advice}") from None
    if recomputed != chash:
        stored = manifest.get("config_fields")
        bad = []
        if isinstance(stored, dict):
            mine = field_digests(config)
            bad = [k for k in sorted(set(mine) | set(stored)) if mine.get(k) != stored.get(k)]
        if isinstance(stored, dict) and not bad:  # every field as written: the hash itself was changed
            raise UsageError(f"{where} was edited: its config_hash ({chash[:12]}…) is not the hash of its own "
                             f"fields ({recomputed[:12]}…); {advice}")
        named = ", ".join(_FIELD_NAMES.get(k, k) for k in bad) if bad else (
            "one of checkpoint, setting_fingerprint, tasks, sequences, ks, subject, references, label_noise "
            "or precision")
        raise UsageError(f"{where} was edited: {named} no longer match(es) the configuration its cells were "
                         f"computed with (config hash {chash[:12]}…); {advice}")
    wrong = []
    setting_dict = manifest.get("setting")
    if isinstance(setting_dict, dict):
        from algos.errors import InputError
        from algos.tasks import TaskSetting

        try:
            setting = TaskSetting.from_dict(setting_dict)
        except (InputError, TypeError, ValueError):
            setting = None
            wrong.append("setting")
        if setting is not None:
            if setting.fingerprint() != manifest.get("setting_fingerprint"):
                wrong.append("setting")
            if manifest.get("p") != setting.p:
                wrong.append("p")
            if manifest.get("pretrain_tasks", []) != [list(t) for t in setting.pretrain_tasks]:
                wrong.append("pretrain_tasks")
            if manifest.get("ood_tasks", []) != [list(t) for t in setting.ood_tasks]:
                wrong.append("ood_tasks")
    else:
        p = manifest.get("p")
        if not isinstance(p, int) or any(not (0 <= v < p) for t in manifest["tasks"] for v in t):
            wrong.append("p")
    if "n_tasks" in manifest and manifest["n_tasks"] != len(manifest["tasks"]):
        wrong.append("n_tasks")
    if wrong:
        raise UsageError(f"{where} was edited: {', '.join(dict.fromkeys(wrong))} no longer agree(s) with the task "
                         f"setting the run was computed with; {advice}")


def rerun_command(folder: Path, manifest: Mapping[str, Any]) -> str:
    """The ``compare run`` command that finishes (or mends) ``folder``: the manifest's own
    arguments with the checkpoint's recorded path and ``--out`` the folder itself."""
    argv = [str(a) for a in (manifest.get("argv") or [])]
    if not argv or argv[0] != "run":
        return f"the `compare run` that made {folder} (same flags, --out {folder})"
    out: list[str] = []
    ckpt_path = (manifest.get("checkpoint") or {}).get("path")
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a in ("--out", "--shard"):
            skip = True
            continue
        if a.startswith(("--out=", "--shard=")) or a == "--overwrite":
            continue
        if a == "--ckpt" and i + 1 < len(argv) and ckpt_path and Path(ckpt_path).is_file():
            out += ["--ckpt", ckpt_path]
            skip = True
            continue
        out.append(a)
    return "compare " + shlex.join([*out, "--out", str(folder)])


def missing_tasks(folder: Path, tasks: np.ndarray, chash: str, rows: int | None = None) -> list[int]:
    """Indices of ``tasks`` without a whole file of configuration ``chash`` (``rows`` rows
    each when given: :func:`compare.storage.cells.task_problem`)."""
    return [i for i, t in enumerate(tasks.tolist()) if not cells_store.task_done(folder, t, chash, rows)]


def rows_per_task(manifest: Mapping[str, Any]) -> int:
    """Cells of one task of a run: sequences x k x p^2."""
    return len(manifest["sequences"]) * len(manifest["ks"]) * int(manifest["p"]) ** 2


@contextlib.contextmanager
def report_lock(folder: Path) -> Iterator[bool]:
    """Yield True to the one process that may write the report now, False to any other
    (an advisory lock on the folder itself, so no lock file is left behind)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def folder_aggregates(folder: Path, tasks: np.ndarray, p: int, subject: str, references: Sequence[str],
                      ks: Sequence[int], have: Accumulator | None = None) -> Accumulator:
    """The aggregates of every task of a run: those in ``have`` (computed while streaming)
    and, read back one file at a time, the rest."""
    acc = have if have is not None else Accumulator()
    todo = [i for i in range(len(tasks)) if i not in acc]
    for i, cells in zip(todo, cells_store.iter_tasks(folder, tasks[todo]), strict=True):
        acc.add_cells(i, cells, p, subject, references, ks)
    return acc


def publish_report(folder: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` into a temporary folder inside ``folder``, then move every file
    it wrote into ``folder`` (each by one rename) and remove the previous report's files
    that the new one does not have. Only files the manifest lists as the suite's are
    removed or replaced; a new file whose name a file of the user's holds is refused."""
    folder = Path(folder)
    try:
        tmp = Path(report.make_temp_dir(folder / "report"))
    except OSError as exc:
        raise UsageError(f"cannot write the report into {folder}: {exc.strerror or exc}") from None
    try:
        write(tmp)
        manifest = read_manifest(folder)
        own = ownership.owned_entries(folder, manifest)
        new = set(ownership.entries(tmp))
        clash = sorted(new & (set(ownership.entries(folder)) - own))
        if clash:
            raise UsageError(
                f"{folder}: the report would write over {ownership.listing(folder, clash)}, which this suite did "
                "not write there; move them away and run `compare report` again"
            )
        report.replace_manifest(folder, manifest, files=own | new)  # names old and new while files move
        for name in sorted(new):
            os.replace(tmp / name, folder / name)
        stale = own - new - DATA_FILES - {cells_store.CELLS_DIR}
        for name in stale:
            f = folder / name
            if f.is_file() or f.is_symlink():
                f.unlink()
        report.replace_manifest(folder, read_manifest(folder), files=(own - stale) | new)
    except OSError as exc:  # named by the user's folder, not the temporary one
        raise UsageError(f"cannot write the report into {folder}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_cells_csv(folder: Path, tasks: np.ndarray) -> None:
    """cells.csv of every task, streamed (``--csv``)."""
    path = Path(folder) / "cells.csv"
    if path.exists() and "cells.csv" not in ownership.owned_entries(folder, read_manifest(folder)):
        raise UsageError(f"{path} exists and was not written by this suite; move it away to write --csv")
    tmp = path.with_name(temps.temp_name(path.name))
    try:
        for i, cells in enumerate(cells_store.iter_tasks(folder, tasks)):
            cells.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False, float_format="%.6g")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    manifest = read_manifest(folder)
    report.replace_manifest(folder, manifest, files={*ownership.owned_entries(folder, manifest), "cells.csv"})


def read_cells(folder: Path) -> pd.DataFrame:
    """Every cell of a run folder in one table (new per-task dataset or old ``cells.parquet``),
    in the run's task order; for runs that fit in memory."""
    folder = Path(folder)
    if (folder / report.CELLS).is_file():
        return pd.read_parquet(folder / report.CELLS, engine="pyarrow")
    tasks = np.asarray(read_manifest(folder)["tasks"], dtype=np.int64).reshape(-1, 2)
    return pd.concat(list(cells_store.iter_tasks(folder, tasks)), ignore_index=True)


def write_run_report(folder: Path, manifest: dict, agg, *, n_boot: int, seed: int,
                     load_task: Callable[[int, int], pd.DataFrame], tasks_in_order: Sequence[tuple[str, int, int]],
                     grid_tasks=None, grid_algorithms=None, grid_sequence: int = 0,
                     extra: Callable[[Path], None] | None = None) -> list[str]:
    """Summaries of ``agg`` (:class:`compare.engine.aggregates.Aggregates`), figures and pages,
    published into ``folder`` (:func:`publish_report`); ``extra(tmp)`` may add data files
    first (the label-noise sweeps). Returns the figure names."""
    from compare.engine.summary import summaries
    from compare.reports import run as run_report

    tables = summaries(agg, n_boot=n_boot, seed=seed)
    figures: list[str] = []

    def write(tmp: Path) -> None:
        if extra is not None:
            extra(tmp)
        for name in (report.NOISE_LEVELS, report.NOISE_POSITIONS):  # sweeps a rebuild draws again
            if (folder / name).is_file() and not (tmp / name).exists():
                _link_or_copy(folder / name, tmp / name)
        figures.extend(run_report.write_report(tmp, manifest, tables, load_task, tasks_in_order, grid_tasks=grid_tasks,
                                               grid_algorithms=grid_algorithms, grid_sequence=grid_sequence))

    publish_report(folder, write)
    return figures


def task_order_of(manifest: dict, tasks: np.ndarray) -> list[tuple[str, int, int]]:
    """(split, a, b) of each task in run order, the split from the manifest's pre-training tasks."""
    pre = {tuple(t) for t in manifest.get("pretrain_tasks", [])}
    return [("id" if (a, b) in pre else "ood", a, b) for a, b in tasks.tolist()]


def copy_run(src: Path, dst: Path) -> None:
    """A new run folder ``dst`` holding ``src``'s data (manifest, cells, noise sweeps), files
    hard-linked where the file system allows; ``dst`` must be absent, empty or a ``compare
    run`` folder of the same configuration (whose own files it replaces; the user's stay)."""
    src, dst = Path(src), Path(dst)
    with report.atomic_output_dir(dst) as tmp:
        report.copy_run_files(src, tmp)
        cells = src / cells_store.CELLS_DIR
        if cells.is_dir():
            (tmp / cells_store.CELLS_DIR).mkdir()
            for f in cells.iterdir():
                if f.is_file() and cells_store.is_task_file(f.name):
                    _link_or_copy(f, tmp / cells_store.CELLS_DIR / f.name)


def _link_or_copy(a: Path, b: Path) -> None:
    try:
        os.link(a, b)
    except OSError:
        shutil.copy2(a, b)
