"""``compare inspect``: the paper's representation figures for one checkpoint, each with its scores.

    compare inspect --ckpt d4.pt [--task a,b] [--k K] [--sequence authors|N] [--layers 0,2|all]
                    [--out DIR] [--device auto|cpu|cuda]

For one task, example sequence and shot k (``interp``): the attention maps of every layer
and head and what each head attends to; the per-head PCA of shot k's x and y positions
("circles of circles"), labelled by (x, y) and by discrete logarithms; the PCA of the
residue embeddings (even/odd planes); the Pearson maps of the residual stream and of each
head at shot k's y and z positions (the kaleidoscope). Writes ``reports/<name>-inspect/``
atomically: PNGs, ``scores.csv`` (one row per score), ``manifest.json``, ``report.md`` and
``report.html``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import check_out, checkpoint_subject

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="attention maps, per-head PCA, embedding planes and Pearson maps of a checkpoint, scored",
        description="The representation analyses of the paper for one task, example sequence and shot k, "
        "each figure with a score: attention maps and head classes, circles of circles (per-head PCA), "
        "even/odd embedding planes, kaleidoscope (Pearson) maps.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    p.add_argument("--task", metavar="A,B", help="the task (a, b) (default: the first o.o.d. task with a, b != 0)")
    p.add_argument(
        "--k",
        type=int,
        help="the shot analysed; the prompt holds k - 1 fixed examples before it "
        "(default: 8, or the checkpoint's largest k if smaller)",
    )
    p.add_argument(
        "--sequence",
        default="authors",
        metavar="authors|N",
        help="the example sequence: the authors' (default) or N >= 1, random sequence N as "
        "`compare run --sequences N --seed S` draws it when its largest k is this --k (random "
        "draws depend on their length; the authors' sequence does not)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences (default 0)")
    p.add_argument("--layers", default="all", metavar="SPEC", help='layers to analyse: "all" (default) or "0,2"')
    p.add_argument("--no-head-maps", action="store_true", help="skip the per-head Pearson maps (scores of layers only)")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint name>-inspect/)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a `compare inspect` report of another checkpoint in --out (only the suite's files; "
        "a report of the same checkpoint is replaced without it; other folders are always refused)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=256, help="prompts per forward pass (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``compare inspect``: the flags to :func:`compare.inspect_checkpoint`, the report, a line."""
    from compare.api.inspection import inspect_checkpoint

    t_start = time.perf_counter()
    name, subject = checkpoint_subject(args.ckpt)
    out = Path(args.out) if args.out else Path("reports") / f"{name}-inspect"
    check_out(out, "compare inspect", subject, args.overwrite)  # before the work, not after
    res = inspect_checkpoint(
        args.ckpt,
        task=args.task,
        k=args.k,
        sequence=args.sequence,
        seed=args.seed,
        layers=args.layers,
        head_maps=not args.no_head_maps,
        device=args.device,
        batch_size=args.batch_size,
        progress=not args.quiet,
        argv=getattr(args, "argv", sys.argv[1:]),
    )
    final = res.write_report(out, overwrite=args.overwrite)
    m = res.manifest
    print(
        f"wrote {final}: task ({m['task'][0]},{m['task'][1]}), shot {m['k']}, layers "
        f"{','.join(map(str, m['layers']))}, {len(res.scores)} scores, {len(res.figures)} figures "
        f"({time.perf_counter() - t_start:.1f} s)"
    )
    print(f"  open {final / 'report.html'}")
    return 0
