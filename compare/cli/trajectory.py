"""``compare trajectory``: the comparison engine on every snapshot of a training run.

    compare trajectory RUN_DIR --k SPEC [--tasks ...] [--sequences N] [--every N] [--out DIR]

``RUN_DIR`` is a ``compare train`` folder trained with ``--snapshots``: its
``snapshots/step-*.pt`` are scored exactly as ``compare run`` scores a checkpoint (same
tasks, example sequences and solvers for every snapshot), and its ``metrics.jsonl`` gives
the four-set accuracies under the curves. Writes ``reports/<run>-trajectory/``
atomically: ``trajectory.csv`` (one row per step, split, k and predictor),
``crossings.csv`` (the first step each algorithm's agreement reaches 0.5 and 0.9),
``trajectory_k<k>.png`` per k, ``manifest.json``, ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import check_out, set_threads

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trajectory",
        help="agreement with each algorithm over training, from a run's snapshots",
        description="Run the comparison engine on every weight snapshot of a training run (compare train "
        "--snapshots ...) and draw model accuracy and agreement with each solver against training step.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a compare train folder with snapshots/")
    p.add_argument("--k", required=True, metavar="SPEC", help="k values: 3, 1..8 or 1,2,4")
    p.add_argument("--tasks", default="all", metavar="SPEC", help='id, ood, all (default) or "a,b;a,b"')
    p.add_argument(
        "--sequences",
        type=int,
        default=0,
        metavar="N",
        help="random example sequences added after the authors' shared one (default 0)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences and the bootstrap (default 0)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="use every N-th snapshot (the last always)")
    p.add_argument("--solvers", metavar="NAMES", help="comma-separated reference solvers (default: all)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples per snapshot (default 200)")
    p.add_argument("--batch-size", type=int, default=64, help="prefixes per model batch (default 64)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "auto"),
        help="fp32 (default, on every device) or bf16 autocast; auto is fp32",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<run folder name>-trajectory/)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a `compare trajectory` report of another run folder in --out (only the suite's files; "
        "a report of the same run is replaced without it; other folders are always refused)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``compare trajectory``: the flags to :func:`compare.trajectory`, the report, a line."""
    from compare.api.trajectory import trajectory

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else Path("reports") / f"{run_dir.resolve().name}-trajectory"
    subject = {"run_dir": str(run_dir), "run_identity": str(run_dir.expanduser().resolve())}
    check_out(out, "compare trajectory", subject, args.overwrite)  # before the work, not after
    res = trajectory(
        run_dir,
        args.k,
        tasks=args.tasks,
        sequences=args.sequences,
        seed=args.seed,
        every=args.every,
        solvers=args.solvers,
        n_boot=args.n_boot,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        progress=not args.quiet,
        argv=getattr(args, "argv", sys.argv[1:]),
    )
    final = res.write_report(out, overwrite=args.overwrite)
    steps, m = res.table["step"], res.manifest
    print(
        f"wrote {final}: {len(m['snapshots'])} snapshots (steps {int(steps.min())}..{int(steps.max())}), "
        f"{m['n_tasks']} tasks x {len(m['sequences'])} sequence(s) x {len(m['ks'])} k "
        f"({time.perf_counter() - t_start:.1f} s)"
    )
    print(f"  open {final / 'report.html'}")
    return 0
