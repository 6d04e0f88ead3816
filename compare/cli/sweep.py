"""``compare sweep``: the phase diagram over the number of pre-training tasks and alpha.

Each point of the grid is one ordinary ``compare train`` command writing to
``OUT/n{tasks}_a{alpha}/``. By default the points run one after another in this
process. With ``--scheduler slurm`` nothing is trained here: the commands go to
``OUT/commands.txt`` and ``OUT/sweep.sbatch`` is a SLURM job array running line
``$SLURM_ARRAY_TASK_ID`` of it (submit with ``sbatch OUT/sweep.sbatch``). Either way,
``compare sweep ... --collect`` (also run at the end of a sequential sweep) assembles
the diagram from whatever points have evaluated so far: ``phases.csv``, ``phases.png``
and ``phases.md`` in OUT. Points are resumable, since each is a ``compare train`` run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from compare.errors import UsageError

__all__ = ["add_parser", "point_commands"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="phase diagram: train over n_tasks x alpha, then classify")
    p.add_argument("--preset", default="smoke", help="base preset of every point")
    p.add_argument("--base-tasks", required=True, help="base-task counts, e.g. 2,4,6,9 (x4 tasks each)")
    p.add_argument("--alpha", default="0.6", help="train-input fractions, e.g. 0.4,0.8")
    p.add_argument("--out", required=True, help="sweep folder")
    p.add_argument(
        "--scheduler",
        choices=["none", "slurm"],
        default="none",
        help="none: run points here, one after another; slurm: write a job array",
    )
    p.add_argument("--collect", action="store_true", help="only assemble the diagram from finished points")
    p.add_argument("--threshold", type=float, default=None, help="last-shot accuracy that counts as solved")
    p.add_argument(
        "train_args",
        nargs=argparse.REMAINDER,
        help="after --: extra `compare train` flags for every point (e.g. -- --steps 3000 --p 7)",
    )
    p.set_defaults(func=run)


def _floats(spec: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated numbers, got {spec!r}") from None
    if not values:
        raise UsageError(f"{what}: no values given")
    return values


def _ints(spec: str, what: str) -> list[int]:
    values = _floats(spec, what)
    if any(v != int(v) or v < 1 for v in values):
        raise UsageError(f"{what}: expected positive integers, got {spec!r}")
    return [int(v) for v in values]


def point_commands(args: argparse.Namespace) -> list[tuple[int, float, Path, list[str]]]:
    """(base tasks, alpha, run folder, `compare train` argv) for every point of the grid."""
    extra = [a for a in (args.train_args or []) if a != "--"]
    for flag in ("--out", "--base-tasks", "--alpha", "--preset"):
        if flag in extra:
            raise UsageError(f"{flag} is set by the sweep itself; remove it after --")
    points = []
    for alpha in _floats(args.alpha, "--alpha"):
        if not 0 < alpha < 1:
            raise UsageError(f"--alpha: {alpha} is not in (0, 1)")
        for base in _ints(args.base_tasks, "--base-tasks"):
            folder = Path(args.out) / f"n{4 * base}_a{alpha:g}"
            argv = [
                "train",
                "--preset",
                args.preset,
                "--base-tasks",
                str(base),
                "--alpha",
                f"{alpha:g}",
                "--out",
                str(folder),
                "--no-progress",
                *extra,
            ]
            points.append((base, alpha, folder, argv))
    return points


def run(args: argparse.Namespace) -> int:
    from compare.cli.main import main as cli_main

    points = point_commands(args)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the sweep folder ({exc.strerror})") from None
    if not args.collect:
        if args.scheduler == "slurm":
            _write_slurm(out, points)
            print(
                f"wrote {out}/commands.txt and {out}/sweep.sbatch ({len(points)} points); "
                f"submit with: sbatch {out}/sweep.sbatch, then: compare sweep ... --collect"
            )
            return 0
        for i, (base, alpha, folder, argv) in enumerate(points, 1):
            print(f"[{i}/{len(points)}] {4 * base} tasks, alpha {alpha:g} -> {folder}", file=sys.stderr)
            code = cli_main(argv)
            if code:
                return code
    return _collect(out, points, args.threshold)


def _write_slurm(out: Path, points) -> None:
    from compare.storage.files import atomic_write_text

    lines = [shlex.join(["compare", *argv]) for _, _, _, argv in points]
    atomic_write_text(out / "commands.txt", "\n".join(lines) + "\n")
    script = "\n".join(
        [
            "#!/bin/bash",
            "#SBATCH --job-name=icl-sweep",
            f"#SBATCH --array=0-{len(points) - 1}",
            "#SBATCH --output=%x-%A_%a.log",
            "# One phase-diagram point per array task; each is a resumable `compare train` run.",
            f"cd {shlex.quote(os.getcwd())}",
            f'line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str((out / "commands.txt").resolve()))})',
            'eval "$line"',
            "",
        ]
    )
    atomic_write_text(out / "sweep.sbatch", script)


def _collect(out: Path, points, threshold: float | None) -> int:
    from compare.engine.phases import DEFAULT_THRESHOLD, TABLE_COLUMNS, phase_table, read_point
    from compare.reports.training import write_phase_report

    rows = []
    for base, alpha, folder, _ in points:
        point = read_point(folder)
        if point is not None:
            n_tasks = point.pop("n_tasks") or 4 * base
            rows.append({"n_base_tasks": base, "n_tasks": n_tasks, "alpha": alpha, **point})
    if not rows:
        print(f"no point of {out} has been evaluated yet", file=sys.stderr)
        return 0
    table = phase_table(rows, DEFAULT_THRESHOLD if threshold is None else threshold)
    write_phase_report(out, table, DEFAULT_THRESHOLD if threshold is None else threshold)
    print(table[[c for c in TABLE_COLUMNS if c in table and "_last_at_best" not in c]].to_string(index=False))
    return 0
