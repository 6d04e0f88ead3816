"""What the CLI tests share: running the console script in-process, and a tiny checkpoint
whose answers depend on the prompt."""
from __future__ import annotations

from pathlib import Path

import torch

from compare.cli.main import main
from model.testing import tiny_checkpoint


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``compare ARGV`` in this process: (exit code, stdout, stderr)."""
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def scaled_tiny_checkpoint(folder: Path, scale: float = 15.0) -> Path:
    """``folder/tiny.pt``: random weights (p = 5, 8 examples, 2 layers, 2 heads) with every matrix
    scaled up ``scale`` times: at the N(0, 0.02) initialization the answers hardly depend on the
    prompt, so removing, patching or reading out a component would rarely change an arg-max."""
    path = tiny_checkpoint(folder / "tiny.pt", p=5, n_examples=8, n_layer=2, n_head=2)  # max_k = 7
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] = {k: v * scale if v.dim() >= 2 else v for k, v in blob["state_dict"].items()}
    torch.save(blob, path)
    return path
