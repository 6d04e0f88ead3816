"""``compare mixture``: the model's distributions fitted as a mixture of the algorithms'.

    compare mixture --ckpt d4.pt --k 1..8 [--tasks ...] [--sequences N] [--epsilon 0.01] [--out DIR]
    compare mixture --run checkpoints/runs/V2 --k 2,4,8 [--tasks ood] [--every N] [--out DIR]

Per (split, k) — and, with ``--run``, per weight snapshot of a ``compare train --snapshots``
run — fits by maximum likelihood (EM) the weights of Ratio Matching, Modular Regression,
Bayes over the memorized tasks, Bayes over all tasks and uniform whose mixture best explains
the model's own distributions on every cell of the grid (:mod:`compare.engine.mixture`), and
writes ``mixture.csv``, the figures, ``manifest.json`` and the pages atomically to
``reports/<name>-mixture/``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import set_threads
from compare.engine.mixture import EPSILON
from compare.errors import UsageError

__all__ = ["add_parser", "mixture"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mixture",
        help="fit the model's distributions as a mixture of the algorithms' (per k, or per training snapshot)",
        description="Fit, by maximum likelihood (EM), the weights of a convex mixture of Ratio Matching, Modular "
        "Regression, Bayes over the memorized tasks, Bayes over all tasks and uniform that best explains the "
        "model's distributions on every cell of the k-shot grids, per split and k (or per snapshot of a training "
        "run with --run); write mixture.csv, figures, manifest.json and report.md/html.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    src.add_argument("--run", metavar="RUN_DIR", help="a `compare train --snapshots` run folder: fit every snapshot")
    p.add_argument("--k", required=True, metavar="SPEC", help="k values: 3, 1..8 or 2,4,8")
    p.add_argument("--tasks", default=None, metavar="SPEC",
                   help='id, ood, all or "a,b;a,b" (default: all with --ckpt, ood with --run)')
    p.add_argument("--sequences", type=int, default=0, metavar="N",
                   help="random example sequences added after the authors' shared one (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences (default 0)")
    p.add_argument("--epsilon", type=float, default=EPSILON,
                   help=f"lapse rate mixed into every algorithm's distribution (default {EPSILON})")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="with --run: every N-th snapshot (the last always)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--precision", default="fp32", help="fp32 (default) or bf16")
    p.add_argument("--batch-size", default="auto", metavar="N|auto", help="prefixes per model batch (default auto)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint or run name>-mixture/)")
    p.set_defaults(func=mixture)


def mixture(args: argparse.Namespace) -> int:
    """Handler of ``compare mixture``: the flags to :func:`compare.mixture` or
    :func:`compare.mixture_trajectory`, the report, a summary line."""
    from compare.api.mixture import mixture as api_mixture
    from compare.api.mixture import mixture_trajectory

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    argv = getattr(args, "argv", sys.argv[1:])
    if args.run is not None:
        res = mixture_trajectory(args.run, args.k, tasks=args.tasks or "ood", sequences=args.sequences,
                                 seed=args.seed, every=args.every, epsilon=args.epsilon, device=args.device,
                                 precision=args.precision, batch_size=args.batch_size, progress=not args.quiet,
                                 argv=argv)
        name = res.manifest["run_name"]
    else:
        if args.every != 1:
            raise UsageError("--every needs --run")
        res = api_mixture(args.ckpt, args.k, tasks=args.tasks or "all", sequences=args.sequences, seed=args.seed,
                          epsilon=args.epsilon, device=args.device, precision=args.precision,
                          batch_size=args.batch_size, progress=not args.quiet, argv=argv)
        name = res.manifest["checkpoint"]["name"]
    out = Path(args.out) if args.out else Path("reports") / f"{name}-mixture"
    final = res.write_report(out)
    m = res.manifest
    snaps = f"{len(m['snapshots'])} snapshots x " if "snapshots" in m else ""
    n_groups = res.table.drop_duplicates([c for c in ("step", "split", "k") if c in res.table.columns]).shape[0]
    print(f"wrote {final}: {snaps}{m['n_tasks']} tasks x {len(m['sequences'])} sequence(s) x {len(m['ks'])} k, "
          f"{n_groups} fits ({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {final / 'report.html'}")
    return 0
