"""``compare import-authors``: turn one of the paper's released ``.pth`` files into a checkpoint."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-authors",
        help="convert an authors' released .pth (configuration read from its file name) into a checkpoint",
        description=(
            "Map the weights of one of the paper's released state dicts onto this project's model, "
            "rebuild the task setting by replaying the seeds in the file name, and write a checkpoint "
            "that every command accepts. The file must keep the authors' name: it carries the configuration."
        ),
    )
    p.add_argument("file", metavar="FILE.pth", help="the authors' checkpoint, under its original file name")
    p.add_argument("--out", required=True, metavar="FILE.pt", help="checkpoint to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.authors import import_authors_checkpoint
    from model.checkpoint import check_output_path, load_checkpoint

    if Path(args.out).resolve() != Path(args.file).resolve():  # (the same file: refused below, naming it)
        check_output_path(args.out)
    argv = getattr(args, "argv", None) or sys.argv[1:]
    out = import_authors_checkpoint(args.file, args.out, command="compare " + shlex.join(argv))
    ck = load_checkpoint(out)
    m, s = ck.model_config, ck.setting
    print(
        f"wrote {out}: d_model {m.d_model}, {m.n_head} heads, depth {m.n_layer}, p {m.p} (vocabulary {m.vocab_size}), "
        f"{m.n_examples} examples a row, step {ck.step}; task setting {s.fingerprint()} "
        f"({len(s.pretrain_tasks)} pre-training, {len(s.ood_tasks)} o.o.d. tasks, alpha {s.alpha})"
    )
    return 0
