"""``compare lens``: what each layer's residual stream already says — the logit lens, scored like the model.

    compare lens --ckpt d4.pt --k 1..8 [--layers all|all+embed|0,2] [--no-dla] [--tasks ...] [--out DIR]

Reads the residual stream after each block at the query's y position through the final
LayerNorm and the unembedding (:mod:`model.lens`), scores each layer's arg-max against every
solver with the same engine and summaries as ``compare run``, computes the direct logit
attribution of every head and MLP to each algorithm's answer, and writes ``lens.csv``,
``dla.csv``, ``lens.png``, ``dla.png``, ``manifest.json`` and the pages atomically to
``reports/<name>-lens/``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import add_input_arguments, set_threads

__all__ = ["add_parser", "lens"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lens",
        help="the logit lens: each layer's readout scored against every algorithm; direct logit attribution",
        description="Read the residual stream after each layer (query's y position) through the final LayerNorm "
        "and the unembedding, score each layer's prediction against the reference solvers over the k-shot grids, "
        "attribute the logits to heads and MLPs, and write lens.csv, dla.csv, figures, manifest.json and "
        "report.md/html to one folder.",
    )
    add_input_arguments(p, default_threads=1)
    p.add_argument("--layers", default="all", metavar="SPEC",
                   help="all (default: every block), all+embed (the token embedding too), or e.g. 0,2 (-1 or embed: "
                   "the embedding)")
    p.add_argument("--no-dla", action="store_true", help="skip the direct logit attribution")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint name>-lens/)")
    p.set_defaults(func=lens)


def lens(args: argparse.Namespace) -> int:
    """Handler of ``compare lens``: the flags to :func:`compare.lens`, the report, a summary line."""
    from compare.api.lens import lens as api_lens

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    res = api_lens(
        args.ckpt, args.k, layers=args.layers, dla=not args.no_dla, tasks=args.tasks, sequences=args.sequences,
        examples=args.examples, authors_sequence=not args.no_authors_sequence, seed=args.seed, solvers=args.solvers,
        n_boot=args.n_boot, device=args.device, precision=args.precision, batch_size=args.batch_size,
        progress=not args.quiet, argv=getattr(args, "argv", sys.argv[1:]))
    out = Path(args.out) if args.out else Path("reports") / f"{res.manifest['checkpoint']['name']}-lens"
    final = res.write_report(out)
    m = res.manifest
    print(f"wrote {final}: {len(m['lens']['layers'])} layers x {m['n_tasks']} tasks x {len(m['sequences'])} "
          f"sequence(s) x {len(m['ks'])} k, {len(res.figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {final / 'report.html'}")
    return 0
