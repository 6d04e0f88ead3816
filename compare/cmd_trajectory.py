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
import json
import sys
import time
from pathlib import Path

import pandas as pd

from compare.errors import UsageError

__all__ = ["add_parser", "run", "snapshot_files"]


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
    p.add_argument("--sequences", type=int, default=0, metavar="N",
                   help="random example sequences added after the authors' shared one (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences and the bootstrap (default 0)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="use every N-th snapshot (the last always)")
    p.add_argument("--solvers", metavar="NAMES", help="comma-separated reference solvers (default: all)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples per snapshot (default 200)")
    p.add_argument("--batch-size", type=int, default=64, help="prefixes per model batch (default 64)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<run folder name>-trajectory/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def snapshot_files(run_dir: Path) -> list[Path]:
    """The run's snapshot files in step order; a clear error when there are none."""
    from model.train import SNAPSHOT_DIR

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    files = sorted((run_dir / SNAPSHOT_DIR).glob("step-*.pt"))
    if not files:
        raise UsageError(f"{run_dir}: no snapshots (train with `compare train ... --snapshots 200,500,... or log:40`)")
    return files


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    if args.every < 1:
        raise UsageError(f"--every must be >= 1, got {args.every}")
    run_dir = Path(args.run_dir)
    files = snapshot_files(run_dir)
    files = files[:-1][:: args.every] + files[-1:]
    from compare.cmd_run import _model_predictor, read_inputs, run_manifest

    # the last snapshot fixes what every snapshot is scored on (read_inputs checks the flags)
    args.ckpt, args.examples, args.no_authors_sequence = str(files[-1]), [], False
    inputs = read_inputs(args)
    setting = inputs.ckpt.setting
    history = _history(run_dir)
    out = Path(args.out) if args.out else Path("reports") / f"{run_dir.resolve().name}-trajectory"

    from tqdm import tqdm

    from compare import report
    from compare.aggregates import Accumulator
    from compare.engine import iter_comparison
    from compare.summary import summaries
    from compare.trajectory import crossings
    from model.checkpoint import load_checkpoint

    parts = []
    total = len(files) * len(inputs.tasks) * len(inputs.sequences) * len(inputs.ks)
    with tqdm(total=total, unit="prefix", desc="compare trajectory", file=sys.stderr, disable=args.quiet,
              dynamic_ncols=True, leave=False) as bar:
        for path in files:
            ck = load_checkpoint(path)
            if ck.setting.fingerprint() != setting.fingerprint():
                raise UsageError(f"{path}: another task setting than the run's last snapshot")
            subject = _model_predictor(ck, args.device, args.batch_size)
            # streamed task by task into aggregates, as compare run does: bounded memory at p = 29
            acc = Accumulator()
            refs = [r.name for r in inputs.references]
            for j, cells in iter_comparison(setting, inputs.tasks, inputs.sequences, inputs.ks, subject,
                                            inputs.references, progress=bar.update):
                acc.add_cells(j, cells, setting.p, subject.name, refs, inputs.ks)
            tables = summaries(acc.result(), n_boot=args.n_boot, seed=args.seed)
            parts.append(tables.summary.assign(step=ck.step))
    table = pd.concat(parts, ignore_index=True)
    table = table[["step", *[c for c in table.columns if c != "step"]]]
    cross = crossings(table)

    manifest = run_manifest(args, inputs, tool="compare trajectory")
    manifest["run_dir"] = str(run_dir)  # as given: a relative path keeps the report portable
    manifest["snapshots"] = [{"file": p.name, "step": int(s)} for p, s in zip(files, sorted(table["step"].unique()))]
    with report.atomic_output_dir(out) as tmp:
        table.to_csv(tmp / "trajectory.csv", index=False, float_format="%.6g")
        cross.to_csv(tmp / "crossings.csv", index=False)
        figures = _write_figures(tmp, table, history, inputs.ks)
        _write_pages(tmp, manifest, cross, figures, inputs.ks)
        manifest["timings"] = {"total_seconds": round(time.perf_counter() - t_start, 3)}
        report.write_manifest(tmp, manifest)
    final = out.expanduser().absolute()
    print(f"wrote {final}: {len(files)} snapshots (steps {int(table['step'].min())}..{int(table['step'].max())}), "
          f"{len(inputs.tasks)} tasks x {len(inputs.sequences)} sequence(s) x {len(inputs.ks)} k "
          f"({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {final / 'report.html'}")
    return 0


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not a metrics file ({exc.msg} at line {exc.lineno})") from None


def _write_figures(folder: Path, table: pd.DataFrame, history: list[dict], ks) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.trajectory import plot_trajectory

    figures = []
    for k in ks:
        fig, axes = plt.subplots(3, 1, figsize=(7.5, 9), sharex=True, layout="constrained")
        plot_trajectory(table, history, k, axes)
        name = f"trajectory_k{k}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, f"k = {k}: model accuracy and agreement with each algorithm against training step "
                        "(dotted: agreement with Ratio Matching / Modular Regression first reaches 0.5; dash-dot: 0.9)"))
    return figures


def _write_pages(folder: Path, manifest: dict, cross: pd.DataFrame, figures, ks) -> None:
    from compare.report import write_pages

    def step(v) -> str:
        return "never" if pd.isna(v) else f"{int(v):,}"

    rows = []
    for (split, k, predictor), g in cross.groupby(["split", "k", "predictor"], observed=True, sort=True):
        by = dict(zip(g["threshold"], g["step"]))
        rows.append([split, str(k), predictor, step(by.get(0.5)), step(by.get(0.9))])
    about = [("run", manifest["run_dir"]), ("snapshots", f"{len(manifest['snapshots'])}, steps "
              f"{manifest['snapshots'][0]['step']:,}..{manifest['snapshots'][-1]['step']:,}"),
             ("k", ", ".join(map(str, ks))), ("tasks", f"{manifest['n_tasks']} ({manifest['tasks_spec']})"),
             ("example sequences", f"{len(manifest['sequences'])} ({manifest['sequences_note']})")]
    sections = [("When each algorithm's agreement first reaches 0.5 and 0.9", ["split", "k", "predictor",
                 "step ≥ 0.5", "step ≥ 0.9"], rows,
                 "For the model itself: its accuracy. Every number per snapshot: [trajectory.csv](trajectory.csv).")]
    write_pages(folder, f"Agreement over training: {Path(manifest['run_dir']).name}", about, sections, figures)
