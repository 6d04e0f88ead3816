"""``compare run``: the model against every reference solver on k-shot grids, to a report folder.

    compare run --ckpt d4.pt --k 1..8 [--tasks id|ood|all|"a,b;a,b"] [--sequences N]
                [--seed S] [--out DIR] [--device auto|cpu|cuda] [--csv]

Checks every input before the model runs (one line and exit code 2 on a bad one), then
streams the engine's cells task by task into the run folder (default
``reports/<checkpoint name>/``; :mod:`compare.run_folder` for resume and shards) with a
progress bar on stderr, and writes the report once every task is there.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from compare.errors import UsageError

__all__ = ["add_parser", "run", "package_versions", "add_input_arguments", "read_inputs", "run_manifest", "RunInputs"]

_PACKAGES = ("icl-modgrok", "numpy", "pandas", "pyarrow", "matplotlib", "torch", "galois", "tqdm")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="compare a checkpoint with the reference solvers on k-shot grids",
        description="Run the model and every reference solver over the full grid of queries for each "
        "task, example sequence and k; stream one cells/task-<a>-<b>.parquet per task, then summary.csv, "
        "manifest.json, report.md/html and figures, into one folder. Rerunning resumes; --shard (or "
        "torchrun / a SLURM array) splits the tasks between processes.",
    )
    add_input_arguments(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint name>/)")
    p.add_argument("--csv", action="store_true", help="also write cells.csv")
    p.add_argument("--shard", metavar="I/N",
                   help="compute tasks I, I+N, I+2N, ... only (default: from torchrun's RANK/WORLD_SIZE or a "
                   "SLURM array's SLURM_ARRAY_TASK_ID/COUNT, else every task)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output folder made by a different configuration (default: refuse; a folder "
                   "of the same configuration is resumed)")
    p.add_argument("--grid-tasks", metavar="SPEC", help='more tasks drawn as grid figures, "a,b;a,b" (added to the default 3 i.d. + 3 o.o.d.)')
    p.add_argument("--grid-algorithms", metavar="NAMES",
                   help="algorithms in the grid figures (default ratio_matching,modular_regression)")
    g = p.add_argument_group("label noise (compare.noise)")
    g.add_argument("--label-noise", type=int, default=0, metavar="N",
                   help="make N in-context labels of each sequence wrong (z + U{1..p-1} mod p) at shots drawn from --seed")
    g.add_argument("--label-noise-at", type=int, action="append", default=[], metavar="SHOT",
                   help="make the label of this shot (1..max k) wrong in every sequence; repeatable")
    p.set_defaults(func=run)


def add_input_arguments(p: argparse.ArgumentParser, default_threads: int | None = None) -> None:
    """What a comparison runs over and how: checkpoint, k, tasks, example sequences, solvers,
    bootstrap, device and threads (shared by ``compare run`` and ``compare ablate``);
    ``default_threads`` None leaves torch's choice."""
    p.add_argument("--ckpt", required=True, help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    p.add_argument("--k", required=True, metavar="SPEC", help="k values: 3, 1..8 or 1,2,4")
    p.add_argument("--tasks", default="all", metavar="SPEC",
                   help='id, ood, all (default) or an explicit list "a,b;a,b"')
    p.add_argument("--sequences", type=int, default=0, metavar="N",
                   help="random example sequences added after the authors' shared one (default 0)")
    p.add_argument("--examples", action="append", default=[], metavar="SPEC",
                   help='an example sequence given by hand, "x,y;x,y;..." (at least max k inputs); '
                   "repeat for more; they follow the authors' sequence and precede the random ones")
    p.add_argument("--no-authors-sequence", action="store_true",
                   help="leave out the authors' sequence (then give --examples or --sequences >= 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences and the bootstrap (default 0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--solvers", metavar="NAMES", help="comma-separated reference solvers (default: all)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--batch-size", default="auto", metavar="N|auto",
                   help="prefixes per model batch (default auto: sized from the model, k and the device's memory)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto (default): bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--threads", type=int, default=default_threads,
                   help="torch CPU threads (default: " + (str(default_threads) if default_threads else "torch's choice") + ")")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


@dataclass(frozen=True)
class RunInputs:
    """Everything :func:`read_inputs` checked: the checkpoint and what a comparison runs over."""

    path: Path
    ckpt: object  # model.checkpoint.Checkpoint
    ks: tuple[int, ...]
    tasks: np.ndarray  # (n_tasks, 2)
    sequences: np.ndarray  # (n_seq, max k, 2)
    references: list  # the reference solvers (algos.solvers.base.Predictor)


def read_inputs(args: argparse.Namespace) -> RunInputs:
    """Check the :func:`add_input_arguments` flags (those that need no checkpoint first), load
    the checkpoint and build the tasks, example sequences and solvers; UsageError/ValueError
    with one line on bad input. Sets the torch thread count when ``--threads`` is given."""
    from compare.grid import build_sequences, check_ks, parse_example_sequence, parse_k, parse_task_list, select_tasks

    ks = parse_k(args.k)
    if args.tasks.strip().lower() not in ("id", "ood", "all"):
        parse_task_list(args.tasks)
    wanted = _names(args.solvers, "--solvers")
    if args.sequences < 0:
        raise UsageError(f"--sequences must be >= 0, got {args.sequences}")
    if args.n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {args.n_boot}")
    args.batch_size = parse_batch_size(args.batch_size)
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")

    from algos.solvers import reference_solvers
    from model.checkpoint import load_checkpoint, resolve_checkpoint

    path = resolve_checkpoint(args.ckpt)
    ckpt = load_checkpoint(path)
    setting = ckpt.setting
    p = setting.p
    check_ks(ks, ckpt.max_k, p)
    tasks = select_tasks(setting, args.tasks)
    given = [parse_example_sequence(spec, p, max(ks)) for spec in args.examples]
    sequences = build_sequences(p, max(ks), args.sequences, args.seed, authors=not args.no_authors_sequence,
                                given=given)
    references = reference_solvers(setting)
    if wanted is not None:
        known = [r.name for r in references]
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise UsageError(f"--solvers: unknown solver {unknown[0]!r} (known: {', '.join(known)})")
        references = [r for r in references if r.name in wanted]
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    return RunInputs(path, ckpt, ks, tasks, sequences, references)


def run_manifest(args: argparse.Namespace, inputs: RunInputs, tool: str = "compare run") -> dict:
    """The manifest keys every comparison folder carries: argv, versions, checkpoint, task
    setting, k, tasks, example sequences, seed and bootstrap."""
    ckpt, setting = inputs.ckpt, inputs.ckpt.setting
    return {
        "tool": tool,
        "format": 1,
        "argv": list(getattr(args, "argv", sys.argv[1:])),
        "versions": package_versions(),
        "checkpoint": checkpoint_block(args.ckpt, inputs.path, ckpt),
        "setting_fingerprint": setting.fingerprint(),
        "p": setting.p,
        "pretrain_tasks": [list(t) for t in setting.pretrain_tasks],
        "ood_tasks": [list(t) for t in setting.ood_tasks],
        "setting": setting.to_dict(),
        "ks": list(inputs.ks),
        "tasks_spec": args.tasks,
        "n_tasks": int(len(inputs.tasks)),
        "sequences": inputs.sequences.tolist(),
        "sequences_note": _sequences_note(args),
        "seed": args.seed,
        "n_boot": args.n_boot,
    }


def parse_batch_size(spec) -> int | None:
    """``--batch-size``: None for auto, else a positive integer."""
    if spec is None or str(spec).strip().lower() == "auto":
        return None
    try:
        n = int(spec)
    except ValueError:
        raise UsageError(f"--batch-size must be a positive integer or auto, got {spec!r}") from None
    if n < 1:
        raise UsageError(f"--batch-size must be >= 1, got {n}")
    return n


def checkpoint_block(spec: str, path: Path, ckpt) -> dict:
    """What a manifest says of the checkpoint it was computed from."""
    return {"spec": spec, "path": str(Path(path).resolve()), "name": ckpt.name, "sha256": ckpt.sha256,
            "step": ckpt.step, "max_k": ckpt.max_k}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _names(spec: str | None, flag: str) -> list[str] | None:
    if spec is None:
        return None
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError(f"{flag}: no names in {spec!r}")
    return names


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    from compare.grid import parse_task_list
    from compare.run_folder import resolve_shard

    # -- inputs that need no checkpoint
    grid_tasks = parse_task_list(args.grid_tasks) if args.grid_tasks else None
    grid_algorithms = _names(args.grid_algorithms, "--grid-algorithms")
    shard = resolve_shard(args.shard)
    inputs = read_inputs(args)
    ckpt, tasks, sequences, ks, references = inputs.ckpt, inputs.tasks, inputs.sequences, inputs.ks, inputs.references
    setting = ckpt.setting
    p = setting.p
    if grid_algorithms is not None:
        names = [r.name for r in references]
        unknown = [a for a in grid_algorithms if a not in names]
        if unknown:
            raise UsageError(f"--grid-algorithms: {unknown[0]!r} is not among the solvers run ({', '.join(names)})")
    if grid_tasks is not None:
        run_tasks = {tuple(t) for t in tasks.tolist()}
        missing = [t for t in grid_tasks if t not in run_tasks]
        if missing:
            raise UsageError(f"--grid-tasks: task ({missing[0][0]},{missing[0][1]}) is not among the tasks run")
    offsets, noise = _label_noise(args, inputs)
    if noise is not None and shard.count > 1:
        raise UsageError("--label-noise runs in one process (its sweeps need every task); drop --shard")
    subject = _model_predictor(ckpt, args.device, args.batch_size, args.precision)
    out = (Path(args.out) if args.out else Path("reports") / ckpt.name).expanduser().absolute()

    from tqdm import tqdm

    from compare import cells_store, run_folder, run_report
    from compare.aggregates import Accumulator
    from compare.engine import PROB_FLOOR, iter_comparison

    refs = [r.name for r in references]
    config = {
        "checkpoint_sha256": ckpt.sha256,
        "setting_fingerprint": setting.fingerprint(),
        "tasks": tasks.tolist(),
        "sequences": sequences.tolist(),
        "ks": list(ks),
        "subject": subject.name,
        "solvers": refs,
        "label_offsets": None if offsets is None else cells_store.array_digest(offsets),
    }
    chash = cells_store.config_hash(config)
    manifest = {
        **run_manifest(args, inputs),
        "subject": subject.name,
        "references": refs,
        "distribution_references": [r.name for r in references if r.gives_distribution],
        "prob_floor": PROB_FLOOR,
        "device": str(subject.device),
        "batch_prefixes": subject.batch_prefixes,
        "tasks": tasks.tolist(),
        "cells_layout": run_report.cells_layout(),
        "config_hash": chash,
    }
    if noise is not None:
        manifest["label_noise"] = noise
    resumed = run_folder.prepare_folder(out, manifest, overwrite=args.overwrite)

    # -- this shard's tasks not yet on disk, streamed one task file at a time
    mine = shard.select(len(tasks))
    todo = [int(i) for i in mine if not cells_store.task_done(out, tasks[i], chash)]
    acc = Accumulator()
    rows = cells_store.row_group_rows(len(ks), p)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if todo:
        with tqdm(total=len(todo) * len(sequences) * len(ks), unit="prefix", desc=f"compare run {shard}",
                  file=sys.stderr, disable=args.quiet, dynamic_ncols=True, leave=False) as bar:
            stream = iter_comparison(setting, tasks[todo], sequences, ks, subject, references, progress=bar.update,
                                     label_offsets=None if offsets is None else offsets[todo])
            timings = stream.timings
            for j, cells in stream:
                cells_store.write_task(out, cells, chash, rows)
                acc.add_cells(todo[j], cells, p, subject.name, refs, ks)
    t_engine = time.perf_counter() - t0
    where = f"{len(todo)} task(s) computed" + (f", {len(mine) - len(todo)} already there" if len(mine) > len(todo) else "")
    missing = run_folder.missing_tasks(out, tasks, chash)
    if missing:
        print(f"{out}: shard {shard} done ({where}); {len(missing)} of {len(tasks)} tasks still to come: the last "
              f"shard to finish writes the report, or run `compare report {out}` once they are all there")
        return 0

    # -- every task is there: summaries and report, by one process
    with run_folder.report_lock(out) as writer:
        if not writer:
            print(f"{out}: shard {shard} done ({where}); another process is writing the report")
            return 0
        t0 = time.perf_counter()
        acc = run_folder.folder_aggregates(out, tasks, p, subject.name, refs, ks, acc)
        agg = acc.result()
        t_read = time.perf_counter() - t0
        final = dict(run_folder.read_manifest(out), n_cells=agg.n_cells, status="complete")

        def extra(tmp: Path) -> None:
            if noise is not None:
                _noise_sweeps(tmp, setting, inputs, subject, noise, args.seed)

        t0 = time.perf_counter()
        figures = run_folder.write_run_report(
            out, final, agg, n_boot=args.n_boot, seed=args.seed,
            load_task=lambda a, b: cells_store.read_task(out, (a, b)),
            tasks_in_order=run_folder.task_order_of(final, tasks), grid_tasks=grid_tasks,
            grid_algorithms=grid_algorithms, extra=extra)
        if args.csv:
            run_folder.write_cells_csv(out, tasks)
        t_report = time.perf_counter() - t0
        solver_time = sum(v for k, v in timings.items() if k in refs)
        model_time = timings.get(subject.name, 0.0)
        final["timings"] = {
            "note": "this process: " + where + (" (resumed)" if resumed else ""),
            "model_inference_seconds": round(model_time, 3),
            "solvers_seconds": round(solver_time, 3),
            "solvers_each_seconds": {k: round(timings.get(k, 0.0), 3) for k in refs},
            "engine_other_seconds": round(t_engine - model_time - solver_time, 3),
            "aggregates_read_seconds": round(t_read, 3),
            "report_seconds": round(t_report, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
        }
        from compare import report

        report.replace_manifest(out, final)
    print(f"wrote {out}: {agg.n_cells:,} cells, {len(tasks)} tasks x {len(sequences)} sequence(s) x "
          f"{len(ks)} k ({where}), {len(figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {out / 'report.html'}")
    return 0


SWEEP_SOLVERS = ("ratio_matching", "modular_regression", "ratio_matching_majority", "modular_regression_majority")


def _label_noise(args: argparse.Namespace, inputs: RunInputs) -> tuple[np.ndarray | None, dict | None]:
    """The label offsets of ``--label-noise``/``--label-noise-at`` and their manifest entry."""
    if args.label_noise < 0:
        raise UsageError(f"--label-noise must be >= 0, got {args.label_noise}")
    if args.label_noise and args.label_noise_at:
        raise UsageError("give --label-noise N or --label-noise-at SHOT, not both")
    if not args.label_noise and not args.label_noise_at:
        return None, None
    from compare.noise import label_offsets

    p, k_max = inputs.ckpt.setting.p, inputs.sequences.shape[1]
    offsets, shots = label_offsets(len(inputs.tasks), inputs.sequences.shape[0], k_max, p,
                                   n_wrong=args.label_noise, positions=args.label_noise_at, seed=args.seed)
    return offsets, {
        "rule": "z + u mod p, u uniform in 1..p-1 (always wrong)",
        "n_wrong": len(shots[0]),
        "chosen": "given (--label-noise-at)" if args.label_noise_at else f"drawn per sequence, seed {args.seed}",
        "shots": shots,  # per sequence, 1-based
        # per sequence and corrupted shot, the offset u of each task (in the order of the run's tasks)
        "offsets": [{str(j): offsets[:, s, j - 1].tolist() for j in js} for s, js in enumerate(shots)],
        "sweep_k": int(max(inputs.ks)),
    }


def _noise_sweeps(folder: Path, setting, inputs: RunInputs, subject, noise: dict, seed: int) -> None:
    """noise_levels.csv and noise_positions.csv beside a noisy run (see compare.noise)."""
    from compare import report
    from compare.engine import run_comparison
    from compare.noise import noise_level_sweep, noise_position_sweep

    # the sweeps score the model against the plain and the noise-tolerant solvers only (no Bayes
    # distributions: those cost most per cell and say nothing about noise tolerance)
    refs = [r for r in inputs.references if r.name in SWEEP_SOLVERS]

    def run(ks, offsets):
        return run_comparison(setting, inputs.tasks, inputs.sequences, ks, subject, refs, label_offsets=offsets)

    p, n = setting.p, len(inputs.tasks)
    levels = noise_level_sweep(run, n, inputs.sequences, noise["sweep_k"], p, seed)
    levels.to_csv(folder / report.NOISE_LEVELS, index=False, float_format="%.6g")
    positions = noise_position_sweep(run, n, inputs.sequences, inputs.ks, p, seed, subject.name)
    positions.to_csv(folder / report.NOISE_POSITIONS, index=False, float_format="%.6g")


def _sequences_note(args: argparse.Namespace) -> str:
    parts = []
    if not args.no_authors_sequence:
        parts.append("sequence 0: the authors' convention (random.seed(1), shared by all tasks)")
    first = 0 if args.no_authors_sequence else 1
    if args.examples:
        n = len(args.examples)
        parts.append(f"sequence{'s' if n > 1 else ''} {first}{f'..{first + n - 1}' if n > 1 else ''}: given with --examples")
        first += n
    if args.sequences:
        parts.append(f"sequences {first}..{first + args.sequences - 1}: uniform random, seed {args.seed}")
    return "; ".join(parts)


def _model_predictor(ckpt, device: str, batch_size: int | None, precision: str = "auto"):
    from model.checkpoint import CheckpointError
    from model.predictor import ModelPredictor

    try:
        return ModelPredictor(ckpt, device=device, batch_prefixes=batch_size, precision=precision)
    except (RuntimeError, KeyError, TypeError) as exc:  # weights that do not fit the config
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{ckpt.path}: weights do not fit the model ({first[:200]})") from None
