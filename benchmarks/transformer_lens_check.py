"""Our exported weights in TransformerLens itself: the logits of HookedTransformer against ours.

Needs TransformerLens 3.x installed beside the suite (it is not a dependency; 4.0 removed
``HookedTransformer``), e.g. in a throwaway environment that reuses this one's torch:

    python -m venv --system-site-packages /tmp/tlenv && /tmp/tlenv/bin/pip install "transformer-lens==3.5.1"
    /tmp/tlenv/bin/python benchmarks/transformer_lens_check.py --save benchmarks/results/transformer_lens_check.json

For each bundled checkpoint: ``model.transformer_lens.to_transformer_lens`` gives the config
and state dict, ``HookedTransformer(HookedTransformerConfig(**config))`` loads the state dict
(TransformerLens computes its own rotary tables, the only keys it does not take from us), and
16 random prompts of the model's full context go through both. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import emit  # noqa: E402

from model.checkpoint import load_checkpoint, resolve_checkpoint  # noqa: E402
from model.transformer_lens import to_transformer_lens  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save")
    args = ap.parse_args()
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    result: dict = {"benchmark": "transformer_lens_check", "transformer_lens": metadata.version("transformer-lens"),
                    "models": {}}
    for name in ("d4.pt", "d2.pt", "d4-p7.pt"):
        ck = load_checkpoint(resolve_checkpoint(name))
        exported = to_transformer_lens(ck)
        tl = HookedTransformer(HookedTransformerConfig(**exported["config"]))
        missing, unexpected = tl.load_state_dict(exported["state_dict"], strict=False)
        net = ck.build_model("cpu").eval()
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, ck.model_config.p, (16, 3 * (ck.model_config.n_examples - 1) + 2), generator=g)
        with torch.no_grad():
            ours, _ = net(idx)
            theirs = tl(idx)
        row = {
            "max_abs_logit_diff": float((ours - theirs).abs().max()),
            "same_argmax": bool((ours.argmax(-1) == theirs.argmax(-1)).all()),
            "keys_not_taken": sorted({k.split(".")[-1] for k in missing}),
            "unexpected_keys": list(unexpected),
        }
        result["models"][name] = row
        print(f"{name}: {row}")
    emit(result, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
