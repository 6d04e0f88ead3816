"""A checkpoint's weights in TransformerLens's names, with a config ``HookedTransformerConfig`` accepts.

Needs only torch: TransformerLens is not a dependency. The file :func:`export_transformer_lens`
writes is ``torch.save({"config": dict, "state_dict": dict, "meta": dict})`` and loads with
``torch.load(path, weights_only=True)``; in TransformerLens::

    blob = torch.load("d4-tl.pt", weights_only=True)
    model = HookedTransformer(HookedTransformerConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"], strict=False)   # missing: only buffers (mask, IGNORE, rotary_sin/cos)

Mapping (C = d_model, H = heads, hd = head_dim, V = vocab_size; ours -> TransformerLens):

======================================  ===================================================
``wte.weight`` (V, C)                    ``embed.W_E`` (V, C)
``wte.weight``.T (tied output layer)     ``unembed.W_U`` (C, V); ``unembed.b_U`` zeros (V,)
``blocks.l.ln_1.weight/bias``            ``blocks.l.ln1.w/b``; ``ln_2`` -> ``ln2``
``blocks.l.attn.qkv.weight`` (3C, C)     ``blocks.l.attn.W_Q/W_K/W_V`` (H, C, hd):
                                         W_Q[h, :, d] = Wq[h * hd + d, :]
``blocks.l.attn.o.weight`` (C, C)        ``blocks.l.attn.W_O`` (H, hd, C): W_O[h, d, :] = Wo[:, h * hd + d]
(no biases)                              ``b_Q/b_K/b_V`` zeros (H, hd), ``b_O`` zeros (C,)
``blocks.l.mlp.fc.weight`` (4C, C)       ``blocks.l.mlp.W_in`` (C, 4C) (transposed); ``b_in`` zeros
``blocks.l.mlp.proj.weight`` (C, 4C)     ``blocks.l.mlp.W_out`` (4C, C) (transposed); ``b_out`` zeros
``ln_f.weight/bias``                     ``ln_final.w/b``
======================================  ===================================================

Config: ``positional_embedding_type="rotary"``, ``rotary_dim=head_dim`` (RoPE on the full head),
``rotary_base=rope_base``, ``rotary_adjacent_pairs=True`` (our RoPE rotates channel pairs (0, 1),
(2, 3), ... with frequency base^(-2j / hd) for pair j — :func:`model.gpt.rope_tables` repeats
each frequency twice in a row and :func:`model.gpt.apply_rope` maps (x0, x1) to
(x0 cos - x1 sin, x1 cos + x0 sin): TransformerLens's GPT-J convention, which its
``rotary_adjacent_pairs=True`` selects), ``normalization_type="LN"``, ``act_fn="relu"``,
``eps=ln_eps``, ``d_mlp=mlp_ratio * d_model``, ``n_ctx`` = the training sequence length, the
attention scale 1/sqrt(hd) (TransformerLens's default), causal attention, no final RMS norm, no
parallel attention/MLP. Checked against TransformerLens v3.5.1 (docs/transformer-lens.md).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from algos.tempfiles import atomic_write
from model.checkpoint import Checkpoint
from model.config import ModelConfig

__all__ = ["tl_config", "tl_state_dict", "to_transformer_lens", "export_transformer_lens", "TL_VERSION_CHECKED",
           "KIND"]

#: ``blob["kind"]`` of an export (an earlier export may be written over; any other file is refused).
KIND = "icl-modgrok transformer-lens export"
#: The TransformerLens release whose names, shapes and config fields this export was checked against.
TL_VERSION_CHECKED = "3.5.1"


def tl_config(cfg: ModelConfig, name: str = "icl-modgrok") -> dict[str, Any]:
    """Keyword arguments of ``HookedTransformerConfig`` for a model of ``cfg`` (plain values only)."""
    return {
        "model_name": name,
        "n_layers": cfg.n_layer,
        "d_model": cfg.d_model,
        "d_head": cfg.head_dim,
        "n_heads": cfg.n_head,
        "d_mlp": cfg.mlp_ratio * cfg.d_model,
        "d_vocab": cfg.vocab_size,
        "d_vocab_out": cfg.vocab_size,
        "n_ctx": cfg.block_size,
        "act_fn": "relu",
        "eps": cfg.ln_eps,
        "normalization_type": "LN",
        "positional_embedding_type": "rotary",
        "rotary_dim": cfg.head_dim,
        "rotary_base": cfg.rope_base,
        "rotary_adjacent_pairs": True,
        "attn_only": False,
        "attention_dir": "causal",
        "use_attn_scale": True,
        "final_rms": False,
        "parallel_attn_mlp": False,
        "gated_mlp": False,
        "original_architecture": "icl-modgrok GPT (pre-LN, RoPE adjacent pairs, ReLU MLP, no biases, tied embedding)",
        "default_prepend_bos": False,
        "tokenizer_name": None,
    }


def tl_state_dict(state_dict: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our :class:`~model.gpt.GPT` state dict -> TransformerLens's ``HookedTransformer`` names and
    shapes (float32, contiguous, every bias written out as zeros)."""
    C, H, hd = cfg.d_model, cfg.n_head, cfg.head_dim
    d_mlp = cfg.mlp_ratio * C

    def get(key: str) -> torch.Tensor:
        if key not in state_dict:
            raise KeyError(f"state dict has no {key!r}")
        return state_dict[key].detach().to(torch.float32).cpu()

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=torch.float32)

    W_E = get("wte.weight")  # (V, C)
    out: dict[str, torch.Tensor] = {"embed.W_E": W_E.clone()}
    for layer in range(cfg.n_layer):
        b = f"blocks.{layer}."
        qkv = get(b + "attn.qkv.weight")  # (3C, C): rows q, k, v; row h*hd + d of each
        wq, wk, wv = qkv.split(C, dim=0)
        out[b + "ln1.w"] = get(b + "ln_1.weight")
        out[b + "ln1.b"] = get(b + "ln_1.bias")
        for name, w in (("W_Q", wq), ("W_K", wk), ("W_V", wv)):
            out[b + "attn." + name] = w.reshape(H, hd, C).permute(0, 2, 1).contiguous()  # (H, C, hd)
        out[b + "attn.W_O"] = get(b + "attn.o.weight").T.reshape(H, hd, C).contiguous()  # (H, hd, C)
        for name in ("b_Q", "b_K", "b_V"):
            out[b + "attn." + name] = zeros(H, hd)
        out[b + "attn.b_O"] = zeros(C)
        out[b + "ln2.w"] = get(b + "ln_2.weight")
        out[b + "ln2.b"] = get(b + "ln_2.bias")
        out[b + "mlp.W_in"] = get(b + "mlp.fc.weight").T.contiguous()  # (C, d_mlp)
        out[b + "mlp.b_in"] = zeros(d_mlp)
        out[b + "mlp.W_out"] = get(b + "mlp.proj.weight").T.contiguous()  # (d_mlp, C)
        out[b + "mlp.b_out"] = zeros(C)
    out["ln_final.w"] = get("ln_f.weight")
    out["ln_final.b"] = get("ln_f.bias")
    out["unembed.W_U"] = W_E.T.contiguous()  # tied: the output layer is the embedding
    out["unembed.b_U"] = zeros(cfg.vocab_size)
    return out


def to_transformer_lens(ckpt: Checkpoint) -> dict[str, Any]:
    """``{"config": ..., "state_dict": ..., "meta": ...}`` of a loaded checkpoint."""
    cfg = ckpt.model_config
    meta = {
        "source": str(ckpt.path) if ckpt.path is not None else ckpt.name,
        "source_sha256": ckpt.sha256,
        "step": int(ckpt.step),
        "p": int(ckpt.setting.p),
        "setting_fingerprint": ckpt.setting.fingerprint(),
        "transformer_lens_checked": TL_VERSION_CHECKED,
        "tokens": "residues 0..p-1 are tokens 0..p-1; a prompt is x1 y1 z1 ... xk yk zk xq yq, the answer read at yq",
    }
    return {"kind": KIND, "config": tl_config(cfg, name=f"icl-modgrok-{ckpt.name}"),
            "state_dict": tl_state_dict(ckpt.state_dict, cfg), "meta": meta}


def export_transformer_lens(ckpt: Checkpoint | str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write ``ckpt`` (loaded, a path or a bundled name) in TransformerLens's format to ``out``
    (written to a temporary file beside it, then renamed). Returns the path written."""
    from model.checkpoint import load_checkpoint, resolve_checkpoint

    ck = ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(resolve_checkpoint(ckpt))
    dst = Path(out)
    _check_output(dst)
    blob = to_transformer_lens(ck)
    return atomic_write(dst, lambda tmp: torch.save(blob, tmp))


def _check_output(dst: Path) -> None:
    """``dst`` may be written: absent, or an earlier export (one line, :class:`InputError`, otherwise)."""
    from algos.errors import InputError

    if dst.is_dir():
        raise InputError(f"--out {dst} is a folder; give the path of the .pt file to write "
                         f"(e.g. {dst / 'model-tl.pt'})")
    if not dst.parent.is_dir():
        raise InputError(f"--out {dst}: no folder {dst.parent}")
    if dst.exists() or dst.is_symlink():
        try:
            blob = torch.load(dst, map_location="cpu", weights_only=True)
            ours = isinstance(blob, dict) and blob.get("kind") == KIND
        except Exception:  # noqa: BLE001 - any unreadable file is not ours
            ours = False
        if not ours:
            raise InputError(f"--out {dst} exists and is not a TransformerLens export of this suite; choose another "
                             "path (no command writes over a file the suite did not write)")
