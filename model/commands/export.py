"""``compare export``: a release copy of a checkpoint (no optimizer state), e.g. for bundling.

The copy keeps the configs, task setting, history and weights, drops the trainer state,
and records in ``meta`` where it came from and the exact command that reproduces it
(a ``compare train`` command with every config field explicit, plus ``--stop-at STEP``
when the run had not reached its planned steps: batches are a pure function of
(seed, step), so that command rebuilds these weights).
"""

from __future__ import annotations

import argparse
import shlex

from algos.errors import InputError

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy a checkpoint without optimizer state (for release/bundling)")
    p.add_argument("src", help="checkpoint (last.pt, best.pt, final.pt)")
    p.add_argument("--out", required=True, help="destination .pt")
    p.add_argument("--note", default="", help="free text stored in meta['note']")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from model.checkpoint import check_output_path, load_checkpoint, resolve_checkpoint, save_checkpoint

    src = resolve_checkpoint(args.src)
    dst = Path(args.out)
    if dst.resolve() == src.resolve():
        raise InputError(f"--out {dst} would overwrite the source checkpoint")
    check_output_path(dst)
    ck = load_checkpoint(src)  # refuses a damaged, foreign or non-finite checkpoint
    from model.commands.train import reproduce_argv

    meta = dict(ck.meta)
    command = "compare " + shlex.join(reproduce_argv(ck)) if ck.setting_config is not None else meta.get("command", "")
    meta.update({"exported_from": str(src), "exported_sha256": ck.sha256, "reproduce": command})
    if args.note:
        meta["note"] = args.note
    if ck.history:
        last = ck.history[-1]
        meta["final_accuracy"] = {
            k: last[k]["acc"] for k in ("id_train", "id_test", "ood_train", "ood_test") if k in last
        }
    save_checkpoint(
        dst,
        ck.model_config,
        ck.train_config,
        ck.setting,
        ck.state_dict,
        step=ck.step,
        history=ck.history,
        meta=meta,
        setting_config=ck.setting_config,
    )
    print(f"wrote {dst} (step {ck.step}, {dst.stat().st_size / 1e6:.1f} MB); reproduce with: {command or '(unknown)'}")
    return 0
