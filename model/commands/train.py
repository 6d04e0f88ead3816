"""``compare train``: train a model from a preset, with optional overrides; resumes from last.pt."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from algos.errors import InputError
from model.config import PRESETS, get_preset, snapshot_steps, with_overrides

__all__ = ["add_parser", "spec_from_args"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a transformer (presets: " + ", ".join(PRESETS) + ")")
    p.add_argument("--preset", default="smoke", help="named configuration (default: smoke)")
    p.add_argument("--out", required=True, help="run folder (last.pt, best.pt, final.pt, metrics.jsonl, curves.png)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT/last.pt exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stop-at", type=int, help="end this invocation at that step; rerun to resume from last.pt")
    g = p.add_argument_group("task setting overrides")
    g.add_argument("--p", type=int)
    g.add_argument("--base-tasks", type=int, dest="n_base_tasks")
    g.add_argument("--random-tasks", type=int, dest="n_random_tasks")
    g.add_argument("--alpha", type=float)
    g.add_argument("--task-seed", type=int)
    g.add_argument("--split-seed", type=int)
    g.add_argument("--convention", choices=["authors", "native"])
    m = p.add_argument_group("model overrides")
    m.add_argument("--d-model", type=int)
    m.add_argument("--n-head", type=int)
    m.add_argument("--n-layer", type=int)
    m.add_argument("--n-examples", type=int, help="examples per training sequence")
    t = p.add_argument_group("training overrides")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--warmup-steps", type=int)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--eval-every", type=int)
    t.add_argument("--eval-sequences", type=int)
    t.add_argument("--save-every", type=int)
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    t.add_argument("--compile", action="store_true", default=None)
    t.add_argument("--threads", type=int)
    t.add_argument(
        "--snapshots",
        metavar="STEPS",
        help="weight-only copies in OUT/snapshots/ at these steps: "
        '"200,500,1000" or "log:40" (40 log-spaced steps); for `compare trajectory`',
    )
    p.set_defaults(func=run)


def spec_from_args(args: argparse.Namespace):
    """The RunSpec a `compare train` invocation describes."""
    from model.train import RunSpec

    preset = get_preset(args.preset)
    setting = with_overrides(
        preset.setting,
        p=args.p,
        n_base_tasks=args.n_base_tasks,
        n_random_tasks=args.n_random_tasks,
        alpha=args.alpha,
        task_seed=args.task_seed,
        split_seed=args.split_seed,
        convention=args.convention,
    )
    p = setting.p
    model = with_overrides(
        preset.model,
        p=p,
        vocab_size=args.p,  # a new p gets its own vocabulary; else the preset's
        d_model=args.d_model,
        n_head=args.n_head,
        n_layer=args.n_layer,
        n_examples=args.n_examples,
    )
    train = with_overrides(
        preset.train,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        seed=args.seed,
        eval_every=args.eval_every,
        eval_sequences=args.eval_sequences,
        save_every=args.save_every,
        precision=args.precision,
        compile=args.compile,
        threads=args.threads,
    )
    if getattr(args, "snapshots", None):
        train = with_overrides(train, snapshots=snapshot_steps(args.snapshots, train.steps))
    argv = getattr(args, "argv", None) or sys.argv[1:]
    return RunSpec(
        model=model,
        train=train,
        setting=setting,
        out_dir=Path(args.out),
        device=args.device,
        resume=not args.no_resume,
        progress=not args.no_progress,
        command="compare " + shlex.join(argv),
        preset=preset.name,
        stop_at=args.stop_at,
    )


def run(args: argparse.Namespace) -> int:
    from model.train import train

    spec = spec_from_args(args)
    ck = train(spec)
    if ck is not None:
        acc = ck.meta.get("final_accuracy", {})
        name = "final.pt" if ck.step >= spec.train.steps else "last.pt"
        print(
            f"wrote {spec.out_dir}/{name} (step {ck.step}); accuracy: "
            + ", ".join(f"{k} {v:.3f}" for k, v in acc.items())
        )
    return 0


def reproduce_argv(ck, out: str = "runs/reproduce") -> list[str]:
    """`compare train` arguments that rebuild checkpoint ``ck`` exactly, every config field explicit.

    Batches are a pure function of (seed, step), so the same configs plus ``--stop-at``
    (when the run had not reached its planned steps) give the same weights on CPU.
    """
    s, m, t = ck.setting_config, ck.model_config, ck.train_config
    if s is None:
        raise InputError(f"{ck.path}: no setting config stored; cannot write a reproducing command")
    argv = [
        "train",
        "--preset",
        "smoke",
        "--out",
        out,
        "--p",
        str(s.p),
        "--base-tasks",
        str(s.n_base_tasks),
        "--random-tasks",
        str(s.n_random_tasks),
        "--alpha",
        f"{s.alpha:g}",
        "--task-seed",
        str(s.task_seed),
        "--split-seed",
        str(s.split_seed),
        "--convention",
        s.convention,
        "--d-model",
        str(m.d_model),
        "--n-head",
        str(m.n_head),
        "--n-layer",
        str(m.n_layer),
        "--n-examples",
        str(m.n_examples),
        "--steps",
        str(t.steps),
        "--batch-size",
        str(t.batch_size),
        "--lr",
        f"{t.lr:g}",
        "--warmup-steps",
        str(t.warmup_steps),
        "--weight-decay",
        f"{t.weight_decay:g}",
        "--seed",
        str(t.seed),
        "--eval-every",
        str(t.eval_every),
        "--eval-sequences",
        str(t.eval_sequences),
        "--save-every",
        str(t.save_every),
        "--precision",
        t.precision,
        "--threads",
        str(t.threads),
    ]
    if ck.step < t.steps:
        argv += ["--stop-at", str(ck.step)]
    return argv
