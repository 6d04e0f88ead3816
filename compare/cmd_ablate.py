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

from compare.errors import UsageError

__all__ = ["add_parser", "ablate"]

ZERO_DEFINITION = (
    "the component's output set to zero at every position: a head's slice of blocks.{l}.attn.hook_z "
    "(before the output projection), an attention layer's blocks.{l}.hook_attn_out, an MLP's blocks.{l}.hook_mlp_out"
)
INTERVALS = (
    "rates: percentile bootstrap over (task, sequence) units within each split (as summary.csv); "
    "changes (delta_...): paired bootstrap, the same resampled units for the ablated and the plain model, "
    "the percentile interval of the per-resample difference"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from compare.cmd_run import add_input_arguments

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
    p.add_argument("--components", default="all", metavar="SPEC",
                   help='all (default: every head, attention layer and MLP) or a comma-separated list of '
                   'L{l}H{h}, L{l}attn, L{l}mlp and +-joined sets, e.g. "L0H1,L2attn,L0H1+L1H2"')
    p.add_argument("--mode", choices=("zero", "mean"), default="zero",
                   help="zero (default): the output set to zero; mean: replaced by its mean over the run's "
                   "own prompts at each position (per k, from the plain model)")
    p.add_argument("--grid-task", metavar="A,B", help="task of the two grid figures (default: the first o.o.d. task run)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default reports/<checkpoint name>-ablate/, with --mode mean -ablate-mean/)")
    p.set_defaults(func=ablate)


def ablate(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    from compare.cmd_run import _model_predictor, read_inputs, run_manifest
    from compare.grid import parse_task_list

    grid_task = None
    if args.grid_task:
        pairs = parse_task_list(args.grid_task)
        if len(pairs) != 1:
            raise UsageError(f"--grid-task: give one task 'a,b', got {args.grid_task!r}")
        grid_task = pairs[0]
    inputs = read_inputs(args)
    ckpt, tasks, sequences, ks, references = inputs.ckpt, inputs.tasks, inputs.sequences, inputs.ks, inputs.references
    setting, p = ckpt.setting, ckpt.setting.p
    cfg = ckpt.model_config

    from model.ablation import NONE, Ablation, parse_ablations

    try:
        chosen = [a for a in parse_ablations(args.components, cfg.n_layer, cfg.n_head) if not a.is_none]
    except ValueError as exc:
        raise UsageError(f"--components: {exc}") from None
    ablations = [Ablation(NONE), *chosen]
    from compare.grid import task_splits

    splits = task_splits(setting, tasks)
    if grid_task is None:
        pick = [i for i, s in enumerate(splits) if s == "ood"] or [0]
        grid_task = tuple(int(v) for v in tasks[pick[0]])
    elif grid_task not in {tuple(t) for t in tasks.tolist()}:
        raise UsageError(f"--grid-task: task ({grid_task[0]},{grid_task[1]}) is not among the tasks run")
    grid_split = str(splits[[tuple(t) for t in tasks.tolist()].index(grid_task)])

    base = _model_predictor(ckpt, args.device, args.batch_size)
    suffix = "-ablate" if args.mode == "zero" else f"-ablate-{args.mode}"  # a mean run never replaces the zero one
    out = Path(args.out) if args.out else Path("reports") / f"{ckpt.name}{suffix}"

    import pandas as pd
    from tqdm import tqdm

    from compare import ablation_report, report
    from compare.ablation import ablation_rows, most_damaging
    from compare.aggregates import Accumulator
    from compare.breakdowns import task_panels
    from compare.engine import iter_comparison
    from compare.run_report import GRID_ALGORITHMS
    from compare.summary import paired_differences, summaries
    from model.ablation import AblatedPredictor, prompt_means

    with report.atomic_output_dir(out) as tmp:
        t0 = time.perf_counter()
        means = prompt_means(base, tasks, sequences, ks) if args.mode == "mean" else None
        t_means = time.perf_counter() - t0
        ref_names = [r.name for r in references]
        algos = [a for a in GRID_ALGORITHMS if a in ref_names] or ref_names[:2]
        total = len(ablations) * len(tasks) * len(sequences) * len(ks)
        parts, panels, base_sums = [], {}, None
        t_engine = t_summary = 0.0
        with tqdm(total=total, unit="prefix", desc="compare ablate", file=sys.stderr, disable=args.quiet,
                  dynamic_ncols=True, leave=False) as bar:
            for ab in ablations:
                subject = AblatedPredictor(ckpt, ab, args.mode, means, device=str(base.device),
                                           batch_prefixes=args.batch_size, net=base.net)
                bar.set_postfix_str(ab.name)
                t0 = time.perf_counter()
                # streamed task by task into aggregates (one task's cells at a time, as compare run)
                acc, panel = Accumulator(), None
                for j, cells in iter_comparison(setting, tasks, sequences, ks, subject, references,
                                                progress=bar.update):
                    if tuple(int(v) for v in tasks[j]) == tuple(grid_task):
                        panel = task_panels(cells, p, grid_task, 0, subject.name, algos)
                    acc.add_cells(j, cells, p, subject.name, ref_names, ks)
                t_engine += time.perf_counter() - t0
                t0 = time.perf_counter()
                agg = acc.result()
                tables = summaries(agg, n_boot=args.n_boot, seed=args.seed)
                base_sums = agg.sums if base_sums is None else base_sums
                diffs = paired_differences(agg.sums, base_sums, n_boot=args.n_boot, seed=args.seed)
                parts.append(ablation_rows(ab.name, tables.summary, diffs, subject.name, ref_names))
                panels[ab.name] = panel
                del acc, agg, tables
                t_summary += time.perf_counter() - t0
        table = pd.concat(parts, ignore_index=True)
        worst = most_damaging(table)
        shown = {NONE: panels[NONE], **({worst: panels[worst]} if worst else {})}
        manifest = {
            **run_manifest(args, inputs, tool="compare ablate"),
            "subject": "model",
            "references": ref_names,
            "device": str(base.device),
            "ablation": {
                "mode": args.mode,
                "components_spec": args.components,
                "components": [a.name for a in chosen],
                "members": {a.name: [c.name for c in a.components] for a in chosen},
                "definition": ZERO_DEFINITION if args.mode == "zero" else (
                    "the component's output (as for zero ablation: a head's slice of hook_z, hook_attn_out, "
                    "hook_mlp_out) replaced by its mean " + means.description),
                "mean_prompts": None if means is None else {int(k): int(n) for k, n in means.n_prompts.items()},
                "intervals": INTERVALS,
            },
            "grid_task": {"split": grid_split, "task": list(grid_task), "sequence": 0},
            "most_damaging": worst,
        }
        t0 = time.perf_counter()
        figures = ablation_report.write_ablation_report(tmp, table, manifest, shown, (grid_split, *grid_task))
        t_report = time.perf_counter() - t0
        manifest["timings"] = {
            "means_seconds": round(t_means, 3),
            "engine_seconds": round(t_engine, 3),
            "summaries_seconds": round(t_summary, 3),
            "report_seconds": round(t_report, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
            "seconds_per_component": round((time.perf_counter() - t_start) / len(ablations), 3),
        }
        report.write_manifest(tmp, manifest)
    final = out.expanduser().absolute()
    print(f"wrote {final}: {len(ablations)} ablations (none + {len(chosen)}) x {len(tasks)} tasks x "
          f"{len(sequences)} sequence(s) x {len(ks)} k, {len(figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    if worst:
        print(f"  most damaging: {worst}")
    print(f"  open {final / 'report.html'}")
    return 0
