"""Layer readouts: the logit lens as a predictor per layer, and direct logit attribution.

The **logit lens** at layer ``l`` reads the residual stream leaving block ``l``
(``blocks.{l}.hook_resid_post``; ``l = -1`` is the token embedding, ``hook_embed``) at the
query's y position through the final LayerNorm and the unembedding, exactly as the model
reads its last layer: its prediction is the arg-max over the p residue tokens and its
distribution their softmax. A causal decoder's residual stream after block ``l`` does not
depend on the blocks above it, so the lens at ``l`` *is* the model cut after block ``l``:
:class:`LensPredictor` is a :class:`~model.predictor.ModelPredictor` over that cut network
(sharing the weights), with the same KV-cache grid path, and the lens of the last layer
is the model itself, bit for bit. Named ``model`` like the plain predictor, so the
comparison engine scores each layer like any other subject.

**Direct logit attribution** (DLA) splits the model's final logits at the query's y position
into the direct contribution of every component writing to the residual stream: the token
embedding, each head's output through its slice of the output projection W_O
(``hook_result``), each MLP's output, and the final LayerNorm's bias. With the final
LayerNorm's scale ``sigma`` (the standard deviation of the final residual, eps included)
*frozen from the clean run*, LayerNorm is linear in its input, so component ``c``'s
contribution to the logit of residue ``a`` is

    DLA_c(a) = ((c - mean(c)) / sigma) . (gamma * W_U[a])

(``mean`` over the d_model channels, ``gamma`` the final LayerNorm's weight, ``W_U`` the tied
unembedding), and the contributions of all components plus ``beta . W_U[a]`` sum to the
model's logit of ``a``. :class:`DirectLogitAttribution` computes them on the grid path.

>>> from model.testing import tiny_checkpoint          # doctest: +SKIP
>>> LensPredictor(ck, layer=0).predict_grid(examples, queries).pred   # doctest: +SKIP
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from algos.errors import InputError
from algos.prompts import check_examples
from model.checkpoint import Checkpoint
from model.device import autocast
from model.gpt import GPT
from model.predictor import GridStage, ModelPredictor

__all__ = [
    "EMBED",
    "LensPredictor",
    "DirectLogitAttribution",
    "parse_layers",
    "layer_name",
    "dla_components",
]

#: The lens layer index of the token embedding (the residual stream entering block 0).
EMBED = -1


def layer_name(layer: int) -> str:
    """``embed`` for :data:`EMBED`, else ``L{layer}`` (the residual stream after block ``layer``)."""
    return "embed" if layer == EMBED else f"L{layer}"


def parse_layers(spec: str | int | Sequence[int], n_layer: int) -> list[int]:
    """Lens layers: ``all`` (every block, 0 .. n_layer - 1), ``all+embed`` (the embedding too),
    or a comma list of ints (``-1`` or ``embed`` for the embedding), e.g. ``"0,2"``.
    Sorted, repeats dropped; a layer outside the model raises :class:`InputError`."""
    if isinstance(spec, (int, np.integer)):
        items: list[str] = [str(int(spec))]
    elif isinstance(spec, str):
        key = spec.strip().lower()
        if key == "all":
            return list(range(n_layer))
        if key in ("all+embed", "embed+all"):
            return [EMBED, *range(n_layer)]
        items = [t.strip() for t in spec.split(",")]
    else:
        items = [str(int(v)) for v in spec]
    out: set[int] = set()
    for item in items:
        if not item:
            raise InputError(f"--layers: empty item in {spec!r} (use all, all+embed or e.g. 0,2)")
        if item.lower() == "embed":
            out.add(EMBED)
            continue
        if not re.fullmatch(r"[+-]?\d+", item):
            raise InputError(f"--layers: {item!r} is not a layer (use all, all+embed, embed or integers)")
        layer = int(item)
        if not EMBED <= layer < n_layer:
            raise InputError(f"--layers: no layer {layer} (the checkpoint has layers 0..{n_layer - 1}; "
                             "-1 or embed is the embedding)")
        out.add(layer)
    if not out:
        raise InputError("--layers: no layers given")
    return sorted(out)


class _CutNetwork(nn.Module):
    """The model's embedding, blocks 0 .. ``layer`` and its final LayerNorm and unembedding
    (shared modules, not copies): ``forward(idx) -> (logits, None)`` like :class:`GPT`."""

    def __init__(self, net: GPT, layer: int) -> None:
        super().__init__()
        self.cfg = net.cfg
        self.wte, self.hook_embed = net.wte, net.hook_embed
        self.blocks = nn.ModuleList(list(net.blocks)[: layer + 1])
        self.ln_f, self.lm_head = net.ln_f, net.lm_head

    @property
    def block_list(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, idx: torch.Tensor, targets: None = None) -> tuple[torch.Tensor, None]:
        x = self.hook_embed(self.wte(idx))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x)), None


class LensPredictor(ModelPredictor):
    """The logit lens at ``layer`` (0 .. n_layer - 1, or :data:`EMBED`) behind the predictor
    interface; ``net`` shares an already built full network. Named ``model``."""

    def __init__(self, ckpt: Checkpoint, layer: int, device: str = "auto", batch_prefixes: int | None = 64,
                 precision: str = "fp32", net: GPT | None = None) -> None:
        n_layer = ckpt.model_config.n_layer
        if not EMBED <= int(layer) < n_layer:
            raise InputError(f"lens: no layer {layer} (the checkpoint has layers 0..{n_layer - 1}; "
                             "-1 is the embedding)")
        super().__init__(ckpt, device=device, batch_prefixes=batch_prefixes, precision=precision, net=net)
        self.layer = int(layer)
        self.full_net: GPT = self.net
        self.net = _CutNetwork(self.full_net, self.layer)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LensPredictor({layer_name(self.layer)}, p={self.p})"


def dla_components(n_layer: int, n_head: int) -> list[str]:
    """The components of :class:`DirectLogitAttribution`, in its order: ``embed``, then per
    layer its heads ``L{l}H{h}`` and its ``L{l}mlp``, then ``bias`` (the final LayerNorm's)."""
    out = ["embed"]
    for layer in range(n_layer):
        out += [f"L{layer}H{h}" for h in range(n_head)] + [f"L{layer}mlp"]
    return out + ["bias"]


class DirectLogitAttribution(ModelPredictor):
    """The grid path, recording each component's direct contribution to the p residue logits
    at the query's y position (see the module docstring). :meth:`attribute` returns them."""

    def __init__(self, ckpt: Checkpoint, device: str = "auto", batch_prefixes: int | None = 64,
                 precision: str = "fp32", net: GPT | None = None) -> None:
        super().__init__(ckpt, device=device, batch_prefixes=batch_prefixes, precision=precision, net=net)
        cfg = ckpt.model_config
        self.components = dla_components(cfg.n_layer, cfg.n_head)
        self._y: dict[tuple[str, int], torch.Tensor] = {}

    def _site(self, name: str, layer: int, value: torch.Tensor, stage: GridStage) -> torch.Tensor:
        if stage.kind == "y":
            self._y[(name, layer)] = value
        return value

    @torch.no_grad()
    def attribute(self, examples: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """examples (n, k, 3), queries (q, 2) -> (contributions (n, q, n_components, p) float32,
        the model's probabilities (n, q, p)); the contributions sum over components to the logits."""
        ex, q = check_examples(self.p, examples, queries)
        self._check_k(ex.shape[1])
        cfg = self.ckpt.model_config
        n_comp = len(self.components)
        out = np.empty((ex.shape[0], q.shape[0], n_comp, self.p), dtype=np.float32)
        probs = np.empty((ex.shape[0], q.shape[0], self.p), dtype=np.float32)
        step = self.batch_for(ex.shape[1], q.shape[0])
        net = self.net
        W_U = net.lm_head.weight[: self.p]  # (p, C), the tied unembedding of the residue tokens
        H, hd = cfg.n_head, cfg.head_dim
        for start in range(0, ex.shape[0], step):
            chunk = ex[start : start + step]
            self._y = {}
            probs[start : start + len(chunk)] = self._grid_chunk(chunk, q)
            B = len(chunk)
            with autocast(self.device, self.precision):
                h = net.wte(torch.as_tensor(q[:, 1], device=self.device)).expand(B, -1, -1)  # (B, q, C)
                parts = [h]
                for i, block in enumerate(net.block_list):
                    z = self._y[("attn.hook_z", i)]  # (B, H, q, hd)
                    w_o = block.attn.o.weight.view(-1, H, hd)  # (C, H, hd)
                    parts += list(torch.einsum("bhqd,chd->hbqc", z, w_o).unbind(0))  # H x (B, q, C)
                    h = h + self._y[("hook_attn_out", i)]
                    mlp = self._y[("hook_mlp_out", i)]
                    parts.append(mlp)
                    h = h + mlp
                ln = net.ln_f
                sigma = torch.sqrt(h.float().var(-1, unbiased=False, keepdim=True) + ln.eps)  # (B, q, 1) frozen
                read = (ln.weight[None, :] * W_U.float()).T  # (C, p): gamma * W_U[a]
                comps = torch.stack([c.float() for c in parts], 2)  # (B, q, n_comp - 1, C)
                centred = (comps - comps.mean(-1, keepdim=True)) / sigma[..., None]
                contrib = centred @ read  # (B, q, n_comp - 1, p)
                bias = (ln.bias.float() @ W_U.float().T).expand(B, q.shape[0], 1, self.p)
                out[start : start + B] = torch.cat([contrib, bias], 2).cpu().numpy()
        self._y = {}
        return out, probs
