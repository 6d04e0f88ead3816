"""``compare tasks``: print a task setting, from a checkpoint or from the authors' replay."""

from __future__ import annotations

import argparse
import json

from model.config import SettingConfig

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="print a task setting (from --ckpt or --authors-replay)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    src.add_argument("--authors-replay", action="store_true", help="replay the paper's seeds")
    p.add_argument("--p", type=int, default=29)
    p.add_argument("--base-tasks", type=int, default=96, help="base tasks (x4 by the rectangular rule)")
    p.add_argument("--random-tasks", type=int, default=0)
    p.add_argument("--seed", type=int, default=1, help="task seed")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=0.8)
    p.add_argument("--json", action="store_true", help="one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.authors_replay:
        setting = SettingConfig(
            p=args.p,
            n_base_tasks=args.base_tasks,
            n_random_tasks=args.random_tasks,
            alpha=args.alpha,
            task_seed=args.seed,
            split_seed=args.split_seed,
            convention="authors",
        ).build()
    else:
        from model.checkpoint import load_checkpoint, resolve_checkpoint

        setting = load_checkpoint(resolve_checkpoint(args.ckpt)).setting
    if args.json:
        print(json.dumps(setting.to_dict()))
    else:
        print(setting.summary())
    return 0
