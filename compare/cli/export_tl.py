"""``compare export-tl``: a checkpoint's weights in TransformerLens's names and config.

    compare export-tl d4.pt --out d4-tl.pt

Writes ``{"kind", "config", "state_dict", "meta"}`` with ``torch.save``: ``config`` holds the
keyword arguments of TransformerLens's ``HookedTransformerConfig`` and ``state_dict`` the
weights under ``HookedTransformer``'s names (:mod:`model.transformer_lens`). Needs only torch.
"""
from __future__ import annotations

import argparse

__all__ = ["add_parser", "export_tl"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-tl",
        help="write a checkpoint's weights and config in TransformerLens's format (HookedTransformer names)",
        description="Write a checkpoint as {config, state_dict} for TransformerLens: "
        "HookedTransformer(HookedTransformerConfig(**config)).load_state_dict(state_dict, strict=False) "
        "gives the same logits. TransformerLens is not needed to export.",
    )
    p.add_argument("src", help="checkpoint file, or a bundled name (d2.pt, d4.pt, d4-p7.pt)")
    p.add_argument("--out", required=True, help="destination .pt")
    p.set_defaults(func=export_tl)


def export_tl(args: argparse.Namespace) -> int:
    """Handler of ``compare export-tl``."""
    from model.checkpoint import load_checkpoint, resolve_checkpoint
    from model.transformer_lens import TL_VERSION_CHECKED, export_transformer_lens

    ck = load_checkpoint(resolve_checkpoint(args.src))
    dst = export_transformer_lens(ck, args.out)
    cfg = ck.model_config
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.2f} MB): {cfg.n_layer} layers x {cfg.n_head} heads, d_model "
          f"{cfg.d_model}, rotary on adjacent pairs; names and config of TransformerLens {TL_VERSION_CHECKED}")
    return 0
