"""``compare run``: the model against every reference solver on k-shot grids, to a report folder.

    compare run --ckpt d4.pt --k 1..8 [--tasks id|ood|all|"a,b;a,b"] [--sequences N]
                [--seed S] [--out DIR] [--device auto|cpu|cuda] [--csv]

Checks every input before the model runs (one line and exit code 2 on a bad one), then
streams the engine's cells task by task into the run folder (default
``reports/<checkpoint name>/``; :mod:`compare.storage.folder` for resume and shards) with a
progress bar on stderr, and writes the report once every task is there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from compare.api.limits import MAX_CELLS
from compare.errors import UsageError

__all__ = ["add_parser", "run", "add_input_arguments", "set_threads", "check_out", "checkpoint_subject"]


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
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="compute tasks I, I+N, I+2N, ... only (default: from torchrun's RANK/WORLD_SIZE or a "
        "SLURM array's SLURM_ARRAY_TASK_ID/COUNT, else every task)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a `compare run` folder made by a different configuration: only the files the suite "
        "wrote there are removed (default: refuse; a folder of the same configuration is resumed; a folder "
        "the suite did not write is always refused)",
    )
    p.add_argument(
        "--max-cells",
        type=int,
        default=MAX_CELLS,
        metavar="N",
        help=f"refuse a run of more than N cells (tasks x sequences x k x p^2) before it starts (default "
        f"{MAX_CELLS:,}; the paper's largest grid has 385 million); 0 for no bound",
    )
    p.add_argument(
        "--grid-tasks",
        metavar="SPEC",
        help='more tasks drawn as grid figures, "a,b;a,b" (added to the default 3 i.d. + 3 o.o.d.)',
    )
    p.add_argument(
        "--grid-algorithms",
        metavar="NAMES",
        help="algorithms in the grid figures (default ratio_matching,modular_regression)",
    )
    g = p.add_argument_group("label noise (compare.engine.noise)")
    g.add_argument(
        "--label-noise",
        type=int,
        default=0,
        metavar="N",
        help="make N in-context labels of each sequence wrong (z + U{1..p-1} mod p) at shots drawn from --seed",
    )
    g.add_argument(
        "--label-noise-at",
        type=int,
        action="append",
        default=[],
        metavar="SHOT",
        help="make the label of this shot (1..max k) wrong in every sequence; repeatable",
    )
    p.set_defaults(func=run)


def add_input_arguments(p: argparse.ArgumentParser, default_threads: int | None = None) -> None:
    """What a comparison runs over and how: checkpoint, k, tasks, example sequences, solvers,
    bootstrap, device and threads (shared by ``compare run`` and ``compare ablate``);
    ``default_threads`` None leaves torch's choice."""
    p.add_argument("--ckpt", required=True, help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    p.add_argument("--k", required=True, metavar="SPEC", help="k values: 3, 1..8 or 1,2,4")
    p.add_argument(
        "--tasks", default="all", metavar="SPEC", help='id, ood, all (default) or an explicit list "a,b;a,b"'
    )
    p.add_argument(
        "--sequences",
        type=int,
        default=0,
        metavar="N",
        help="random example sequences added after the authors' shared one (default 0)",
    )
    p.add_argument(
        "--examples",
        action="append",
        default=[],
        metavar="SPEC",
        help='an example sequence given by hand, "x,y;x,y;..." (at least max k inputs); '
        "repeat for more; they follow the authors' sequence and precede the random ones",
    )
    p.add_argument(
        "--no-authors-sequence",
        action="store_true",
        help="leave out the authors' sequence (then give --examples or --sequences >= 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences and the bootstrap (default 0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--solvers", metavar="NAMES", help="comma-separated reference solvers (default: all)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument(
        "--batch-size",
        default="auto",
        metavar="N|auto",
        help="prefixes per model batch (default auto: sized from the model, k and the device's memory)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "auto"),
        help="fp32 (default, on every device: a GPU gives the CPU's numbers) or bf16 autocast (faster on "
        "GPUs, ~1-3 %% of answers differ; part of the run's identity); auto is fp32",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=default_threads,
        help="torch CPU threads (default: " + (str(default_threads) if default_threads else "torch's choice") + ")",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Handler of ``compare run``: the flags to :func:`compare.compare_checkpoint`, then a summary line."""
    from compare.api.comparison import compare_checkpoint

    t_start = time.perf_counter()
    if args.threads is not None:
        set_threads(args.threads)
    res = compare_checkpoint(
        args.ckpt,
        args.k,
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
        label_noise=args.label_noise,
        label_noise_at=args.label_noise_at,
        out=args.out or Path("reports") / _name_of(args.ckpt),
        overwrite=args.overwrite,
        shard=args.shard,
        csv=args.csv,
        grid_tasks=args.grid_tasks,
        grid_algorithms=args.grid_algorithms,
        progress=not args.quiet,
        argv=getattr(args, "argv", sys.argv[1:]),
        max_cells=args.max_cells,
    )
    out, where, shard = res.folder, res.timings.get("where", ""), res.timings.get("shard", "")
    if not res.complete:
        if res.timings.get("report_writer") is False:
            print(f"{out}: shard {shard} done ({where}); another process is writing the report")
        else:
            print(
                f"{out}: shard {shard} done ({where}); {res.timings['missing']} of {len(res.task_array)} tasks "
                f"still to come: the last shard to finish writes the report, or run `compare report {out}` once "
                "they are all there"
            )
        return 0
    assert out is not None  # compare run always writes a folder
    n_tasks, n_seq, n_k = len(res.task_array), len(res.manifest["sequences"]), len(res.manifest["ks"])
    print(
        f"wrote {out}: {res.aggregates.n_cells:,} cells, {n_tasks} tasks x {n_seq} sequence(s) x "
        f"{n_k} k ({where}), {len(res.figures)} figures ({time.perf_counter() - t_start:.1f} s)"
    )
    print(f"  open {out / 'report.html'}")
    return 0


def set_threads(n: int) -> None:
    """``--threads``: torch's CPU thread count (checked: at least 1)."""
    if n < 1:
        raise UsageError(f"--threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(n)


def checkpoint_subject(spec: str) -> tuple[str, dict]:
    """A checkpoint's report name (its file's stem) and the manifest keys that say which
    checkpoint a report is about (its SHA-256), without loading it."""
    import hashlib

    from model.checkpoint import resolve_checkpoint

    path = Path(resolve_checkpoint(spec))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return path.stem, {"checkpoint": {"name": path.stem, "sha256": sha}}


def check_out(out: Path, tool: str, subject: dict, overwrite: bool) -> None:
    """Before any work: refuse an ``--out`` the command may not write (a folder the suite did not
    write, another command's report, or, without ``--overwrite``, a report about another
    subject; :func:`compare.storage.ownership.check_output`)."""
    from compare.storage import ownership

    ownership.check_output(Path(out).expanduser().absolute(), {"tool": tool, **subject}, overwrite=overwrite)


def _name_of(spec: str) -> str:
    """The default report name of a checkpoint spec (the file's stem), without loading it."""
    from model.checkpoint import resolve_checkpoint

    return Path(resolve_checkpoint(spec)).stem
