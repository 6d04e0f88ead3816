"""``compare probe``: linear probes of the residual stream for the algorithms' quantities, with controls.

    compare probe --ckpt d4.pt [--k 8] [--prompts 2000] [--sites all|post|"L0.mid,L3.post"]
                  [--positions all|q_x,q_y,ex_z] [--targets all|line,ratio,multiplier,answer,...]
                  [--tasks all|id|ood|"a,b;a,b"] [--seed S] [--out DIR]

Draws N probe prompts per k (seeded), keeps the residual stream at every site and position
class in one forward pass, and fits a scikit-learn logistic regression per (site, position,
target) on a seeded train split of the prompts, beside the same probe on Hewitt & Liang's
control task and the majority baseline (:mod:`interp.probes`). Writes ``probes.csv``,
``prompts.csv``, ``probes_k<k>.png``, ``manifest.json`` and the pages atomically to
``reports/<name>-probe/``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.cli.run import set_threads

__all__ = ["add_parser", "probe"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="linear probes of the residual stream (line, ratio, multiplier, answer, task) beside control tasks",
        description="Fit logistic-regression probes from the residual stream at each site (embedding, after each "
        "attention layer, after each MLP) and position (the query's x and y, the last example's z) for the "
        "quantities the algorithms use; report held-out accuracy beside Hewitt & Liang's control task "
        "(selectivity) and the majority baseline; write probes.csv, prompts.csv, heatmaps, manifest.json and "
        "report.md/html.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    p.add_argument("--k", default="8", metavar="SPEC", help="k values: 8 (default), 1..8 or 2,8")
    p.add_argument("--prompts", type=int, default=2000, metavar="N", help="probe prompts per k (default 2000)")
    p.add_argument("--sites", default="all", metavar="SPEC",
                   help='all (default: embed, L{l}.mid and L{l}.post of every block), post, or e.g. "L0.mid,L3.post"')
    p.add_argument("--positions", default="all", metavar="SPEC", help="all (default) or a comma list of q_x, q_y, ex_z")
    p.add_argument("--targets", default="all", metavar="SPEC",
                   help="all (default) or a comma list of line, ratio, multiplier, answer, answer_on_line, "
                   "answer_off_line, task_a, task_b")
    p.add_argument("--tasks", default="all", metavar="SPEC",
                   help='id, ood, all (default) or "a,b;a,b", used round-robin in a seeded order')
    p.add_argument("--test-share", type=float, default=0.25, help="share of prompts held out (default 0.25)")
    p.add_argument("--on-line-share", type=float, default=0.5,
                   help="share of prompts whose query is put on an example's line (default 0.5)")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prompts, the split and the controls (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto or cuda")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint name>-probe/)")
    p.set_defaults(func=probe)


def probe(args: argparse.Namespace) -> int:
    """Handler of ``compare probe``: the flags to :func:`compare.probe`, the report, a summary line."""
    from compare.api.probes import probe as api_probe

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    res = api_probe(args.ckpt, args.k, prompts=args.prompts, tasks=args.tasks, positions=args.positions,
                    sites=args.sites, targets=args.targets, test_share=args.test_share,
                    on_line_share=args.on_line_share, C=args.C, seed=args.seed, device=args.device,
                    progress=not args.quiet, argv=getattr(args, "argv", sys.argv[1:]))
    m = res.manifest
    out = Path(args.out) if args.out else Path("reports") / f"{m['checkpoint']['name']}-probe"
    final = res.write_report(out)
    pr = m["probe"]
    print(f"wrote {final}: {m['counts']['probes']} probes ({len(pr['sites'])} sites x {len(pr['positions'])} "
          f"positions x {len(pr['targets'])} targets x {len(m['ks'])} k), each beside its control, on "
          f"{pr['prompts_per_k']} prompts per k ({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {final / 'report.html'}")
    return 0
