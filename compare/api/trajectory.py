"""Agreement over training as a library call: every snapshot of a run scored like a checkpoint.

>>> res = compare.trajectory("checkpoints/runs/V2", k=[2, 4, 8])       # doctest: +SKIP
>>> res.crossings.query("predictor == 'ratio_matching'")              # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from compare.api.inputs import base_manifest, check_precision, comparison_inputs, model_predictor, parse_batch_size
from compare.api.stream import progress_bar, stream_aggregates
from compare.engine.crossings import crossings
from compare.engine.summary import summaries
from compare.errors import UsageError
from compare.storage import files
from model.checkpoint import load_checkpoint

__all__ = ["TrajectoryResult", "trajectory", "snapshot_files", "read_history"]


@dataclass
class TrajectoryResult:
    """``table``: the summary rows of every snapshot with its ``step`` (``trajectory.csv``);
    ``crossings``: the first step each predictor's agreement reaches 0.5 and 0.9;
    ``history``: the run's ``metrics.jsonl`` (the four-set accuracies)."""

    table: pd.DataFrame
    crossings: pd.DataFrame
    history: list[dict[str, Any]]
    manifest: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def write_report(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``trajectory.csv``, ``crossings.csv``, one figure per k, manifest and pages atomically
        into an absent or empty folder, or over an earlier ``compare trajectory`` report of the
        same run folder (another run's only with ``overwrite``), replacing only the suite's
        files; any other folder is refused (:mod:`compare.storage.ownership`)."""
        from compare.reports.trajectory import write_trajectory_report

        t0 = time.perf_counter()
        out = Path(folder)
        manifest = dict(self.manifest)
        with files.atomic_output_dir(out, overwrite=overwrite) as tmp:
            self.figures = write_trajectory_report(tmp, self.table, self.crossings, self.history, manifest)
            total = manifest.get("timings", {}).get("total_seconds", 0.0) + time.perf_counter() - t0
            manifest["timings"] = {"total_seconds": round(total, 3)}
            files.write_manifest(tmp, manifest)
        self.manifest = manifest
        return out.expanduser().absolute()


def snapshot_files(run_dir: Path) -> list[Path]:
    """The run's snapshot files in step order; a clear error when there are none."""
    from model.train import SNAPSHOT_DIR

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    found = sorted((run_dir / SNAPSHOT_DIR).glob("step-*.pt"))
    if not found:
        raise UsageError(f"{run_dir}: no snapshots (train with `compare train ... --snapshots 200,500,... or log:40`)")
    return found


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The run's ``metrics.jsonl`` as a list of records ([] when absent)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not a metrics file ({exc.msg} at line {exc.lineno})") from None


def trajectory(
    run_dir: str | Path,
    k: int | str | Iterable[int],
    *,
    tasks: str | Iterable[Sequence[int]] = "all",
    sequences: int = 0,
    seed: int = 0,
    every: int = 1,
    solvers: str | Sequence[str] | None = None,
    n_boot: int = 200,
    batch_size: int | str | None = 64,
    device: str = "auto",
    precision: str = "fp32",
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> TrajectoryResult:
    """Score every ``every``-th snapshot of a ``compare train --snapshots`` run folder (the last
    always) on the same tasks, example sequences and solvers, fixed by the last snapshot."""
    t_start = time.perf_counter()
    if every < 1:
        raise UsageError(f"--every must be >= 1, got {every}")
    run_path = Path(run_dir)
    found = snapshot_files(run_path)
    found = found[:-1][::every] + found[-1:]
    batch = parse_batch_size(batch_size)
    inputs = comparison_inputs(
        str(found[-1]), k, tasks=tasks, sequences=sequences, seed=seed, solver_names=solvers, n_boot=n_boot
    )
    setting = inputs.ckpt.setting
    history = read_history(run_path)
    parts = []
    total = len(found) * len(inputs.tasks) * len(inputs.sequences) * len(inputs.ks)
    with progress_bar(total, "compare trajectory", progress) as bar:
        for path in found:
            ck = load_checkpoint(path)
            if ck.setting.fingerprint() != setting.fingerprint():
                raise UsageError(f"{path}: another task setting than the run's last snapshot")
            subject = model_predictor(ck, device, batch, precision)
            acc, _ = stream_aggregates(inputs, subject, progress=bar)
            tables = summaries(acc.result(), n_boot=n_boot, seed=seed)
            parts.append(tables.summary.assign(step=ck.step))
    table = pd.concat(parts, ignore_index=True)
    table = table[["step", *[c for c in table.columns if c != "step"]]]
    manifest = base_manifest(inputs, "compare trajectory", argv)
    manifest["precision"] = check_precision(precision)
    manifest["run_dir"] = str(run_dir)  # as given: a relative path keeps the report portable
    manifest["run_identity"] = str(run_path.expanduser().resolve())  # which run (replacing a report)
    manifest["snapshots"] = [
        {"file": p.name, "step": int(s)} for p, s in zip(found, sorted(table["step"].unique()), strict=True)
    ]
    manifest["timings"] = {"total_seconds": round(time.perf_counter() - t_start, 3)}
    return TrajectoryResult(table, crossings(table), history, manifest)
