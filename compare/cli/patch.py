"""``compare patch``: activation patching between prompts that differ in one controlled way.

    compare patch --ckpt d4.pt --k 8 --design task|query|example-line|example-line-off
                  [--components all|"L0H1,L2attn,L1mlp,L3resid"] [--positions default|ex_x,q_y,...]
                  [--prompts N] [--tasks all|id|ood|"a,b;a,b"] [--seed S] [--out DIR]

Draws N base/source prompt pairs of the design per k (seeded), runs each base prompt with
each component's activation at each position class taken from its source prompt
(:mod:`model.patching`), checks every patched prediction against Ratio Matching's and Modular
Regression's answers on both prompts, and writes ``patching.csv`` (interchange-intervention
accuracy, logit difference and agreement per design, k, component, position and split),
``prompts.csv`` (every pair's tokens and answers), ``patched.parquet`` (every patched
prediction), the heatmaps, ``manifest.json`` and the pages atomically to
``reports/<name>-patch-<design>/``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import set_threads
from compare.engine.patching import DESIGNS, POSITIONS

__all__ = ["add_parser", "patch"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "patch",
        help="activation patching: base prompts run with one component from source prompts; IIA per component",
        description="Run base prompts with each component's activation at each position class taken from source "
        "prompts that differ in one controlled way (the design); write patching.csv (interchange-intervention "
        "accuracy, logit difference), prompts.csv, patched.parquet, heatmaps, manifest.json and report.md/html.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    p.add_argument("--k", required=True, metavar="SPEC", help="k values: 3, 1..8 or 1,2,4")
    p.add_argument("--design", default="task", metavar="NAME",
                   help="what the source prompt changes: " + "; ".join(f"{n}: {d}" for n, d in DESIGNS.items())
                   + " (default task)")
    p.add_argument("--components", default="all", metavar="SPEC",
                   help='all (default: per layer the residual stream, each head, the attention layer, the MLP) or '
                   'a comma list of L{l}H{h}, L{l}attn, L{l}mlp, L{l}resid')
    p.add_argument("--positions", default="default", metavar="SPEC",
                   help=f"default (ex_x,ex_y,ex_z,q_x,q_y) or a comma list of {', '.join(POSITIONS)}")
    p.add_argument("--prompts", type=int, default=300, metavar="N", help="prompt pairs per k (default 300)")
    p.add_argument("--tasks", default="all", metavar="SPEC",
                   help='base tasks: id, ood, all (default) or "a,b;a,b", used round-robin in a seeded order')
    p.add_argument("--seed", type=int, default=0, help="seed of the prompt pairs (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto or cuda")
    p.add_argument("--batch-size", default="auto", metavar="N|auto",
                   help="prompt pairs per batch (default auto: the cached activations of a batch fit 256 MB)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint name>-patch-<design>/)")
    p.set_defaults(func=patch)


def patch(args: argparse.Namespace) -> int:
    """Handler of ``compare patch``: the flags to :func:`compare.patch`, the report, a summary line."""
    from compare.api.patching import patch as api_patch

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    res = api_patch(args.ckpt, args.k, design=args.design, components=args.components, positions=args.positions,
                    prompts=args.prompts, tasks=args.tasks, seed=args.seed, device=args.device,
                    batch_size=args.batch_size, progress=not args.quiet, argv=getattr(args, "argv", sys.argv[1:]))
    m = res.manifest
    out = Path(args.out) if args.out else Path("reports") / f"{m['checkpoint']['name']}-patch-{m['patching']['design']}"
    final = res.write_report(out)
    c = m["counts"]
    print(f"wrote {final}: {c['prompts']} prompt pairs x {len(m['patching']['components'])} components x "
          f"{len(m['patching']['positions'])} positions, {c['forward_passes']} forward passes, {len(res.figures)} "
          f"figures ({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {final / 'report.html'}")
    return 0
