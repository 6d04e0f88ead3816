"""``compare ablate``: which components carry which algorithm — the model with each component removed.

    compare ablate --ckpt d4.pt --k 1..8 [--components all|"L0H1,L2H3,L1mlp,L2attn,L0H1+L1H2"]
                   [--mode zero|mean] [--tasks ...] [--sequences N] [--seed S] [--out DIR]

Runs the plain model and each ablation (:mod:`model.ablation`) through the same engine
and summaries as ``compare run`` — an ablated model is just another subject predictor —
and writes ``ablation.csv`` (one row per component, split and k: the model's accuracy and,
for every solver, agreement and accuracy inside and outside its coverage, each with its
change from the plain model and paired bootstrap intervals), a components x k heatmap of
the changes, the grid figure of the plain model and of the most damaging ablation on one
task, ``manifest.json`` and the pages, atomically to ``reports/<name>-ablate/``
(``reports/<name>-ablate-mean/`` with ``--mode mean``).
Each component's cells are streamed task by task into aggregates, so memory holds one
task's cells at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import add_input_arguments, check_out, checkpoint_subject, set_threads

__all__ = ["add_parser", "ablate"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="remove heads, attention layers or MLPs one at a time and score each ablated model",
        description="Run the plain model and the model with each component removed (zero or mean ablation) "
        "over the k-shot grids; write ablation.csv (rates and their changes per component, split and k), "
        "heatmaps, grid figures, manifest.json and report.md/html to one folder.",
    )
    # one thread: the grid path's matmuls are small, and two threads sharing a core that is
    # busy with other work wait on each other (d4, one component: 1.6 s with one, 17-40 s with two)
    add_input_arguments(p, default_threads=1)
    p.add_argument(
        "--components",
        default="all",
        metavar="SPEC",
        help="all (default: every head, attention layer and MLP) or a comma-separated list of "
        'L{l}H{h}, L{l}attn, L{l}mlp and +-joined sets, e.g. "L0H1,L2attn,L0H1+L1H2"',
    )
    p.add_argument(
        "--mode",
        choices=("zero", "mean"),
        default="zero",
        help="zero (default): the output set to zero; mean: replaced by its mean over the run's "
        "own prompts at each position (per k, from the plain model)",
    )
    p.add_argument(
        "--grid-task", metavar="A,B", help="task of the two grid figures (default: the first o.o.d. task run)"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default reports/<checkpoint name>-ablate/, with --mode mean -ablate-mean/)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a `compare ablate` report of another checkpoint in --out (only the suite's files; "
        "a report of the same checkpoint is replaced without it; other folders are always refused)",
    )
    p.set_defaults(func=ablate)


def ablate(args: argparse.Namespace) -> int:
    """Handler of ``compare ablate``: the flags to :func:`compare.ablate`, the report, a summary line."""
    from compare.api.ablation import ablate as api_ablate

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    name, subject = checkpoint_subject(args.ckpt)
    suffix = "-ablate" if args.mode == "zero" else f"-ablate-{args.mode}"  # a mean run never replaces the zero one
    out = Path(args.out) if args.out else Path("reports") / f"{name}{suffix}"
    check_out(out, "compare ablate", subject, args.overwrite)  # before the work, not after
    res = api_ablate(
        args.ckpt,
        args.k,
        components=args.components,
        mode=args.mode,
        grid_task=args.grid_task,
        tasks=args.tasks,
        sequences=args.sequences,
        examples=args.examples,
        authors_sequence=not args.no_authors_sequence,
        seed=args.seed,
        solvers=args.solvers,
        n_boot=args.n_boot,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        progress=not args.quiet,
        argv=getattr(args, "argv", sys.argv[1:]),
    )
    final = res.write_report(out, overwrite=args.overwrite)
    n = len(res.manifest["ablation"]["components"])
    m = res.manifest
    print(
        f"wrote {final}: {n + 1} ablations (none + {n}) x {m['n_tasks']} tasks x "
        f"{len(m['sequences'])} sequence(s) x {len(m['ks'])} k, {len(res.figures)} figures "
        f"({time.perf_counter() - t_start:.1f} s)"
    )
    if res.most_damaging:
        print(f"  most damaging: {res.most_damaging}")
    print(f"  open {final / 'report.html'}")
    return 0
