"""Activation patching: the model run on base prompts with one component's activation from source prompts.

A *site* is one component's output at one layer, named as :mod:`model.ablation` names
components, plus the residual stream:

============  ==============================  =====================================================
``L{l}H{h}``  ``blocks.{l}.attn.hook_z``      head h's slice (its attention-weighted values; through
                                              its slice of W_O this is its result, so patching one
                                              patches the other)
``L{l}attn``  ``blocks.{l}.hook_attn_out``    the attention layer's output (all heads after W_O)
``L{l}mlp``   ``blocks.{l}.hook_mlp_out``     the MLP's output
``L{l}resid`` ``blocks.{l}.hook_resid_pre``   the residual stream entering block l
============  ==============================  =====================================================

Patching a site at a set of token positions replaces, for every base prompt, the site's
activation at those positions by its activation on the paired source prompt (the clean
source run); everything downstream is recomputed. Base and source prompts have the same
length (same k). The base prompt's residual stream entering block l does not depend on
anything patched at block l or above, so :class:`PatchingRun` runs each patched forward
from block l on (from the cached clean base residual stream), with the patch applied by a
forward hook on the site's hook point (:meth:`model.gpt.GPT.hooks`); the tests check it
against a full forward with a plain torch forward hook.

:class:`PatchedPredictor` is the patched model behind the predictor interface: its
:meth:`~PatchedPredictor.predict` answers base prompts paired row by row with the source
prompts it was built with (a grid has no source pairing, so it has no grid path).

>>> [s.name for s in parse_sites("L0H1,L1resid", n_layer=2, n_head=2)]
['L0H1', 'L1resid']
>>> [s.name for s in all_sites(n_layer=1, n_head=2)]
['L0resid', 'L0H0', 'L0H1', 'L0attn', 'L0mlp']
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from algos.errors import InputError
from algos.prompts import check_examples
from algos.solvers.base import Prediction
from model.checkpoint import Checkpoint
from model.gpt import GPT
from model.predictor import ModelPredictor

__all__ = ["SITES", "PatchSite", "parse_sites", "all_sites", "PatchingRun", "PatchedPredictor", "tokens_of"]

#: Hook point (under ``blocks.{l}.``) of each kind of site.
SITES = {"resid": "hook_resid_pre", "head": "attn.hook_z", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}
_SYNTAX = "use all, or a comma list of L{l}H{h}, L{l}attn, L{l}mlp, L{l}resid"
_TOKEN = re.compile(r"^L(\d+)(?:H(\d+)|(attn)|(mlp)|(resid))$", re.IGNORECASE)


@dataclass(frozen=True)
class PatchSite:
    """One patchable activation: a head (``head`` set), an attention layer's or MLP's output, or
    the residual stream entering a block."""

    kind: str  # "resid" | "head" | "attn" | "mlp"
    layer: int
    head: int | None = None

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}" if self.kind == "head" else f"L{self.layer}{self.kind}"

    @property
    def hook(self) -> str:
        """The full hook-point name, e.g. ``blocks.1.attn.hook_z``."""
        return f"blocks.{self.layer}.{SITES[self.kind]}"


def all_sites(n_layer: int, n_head: int) -> list[PatchSite]:
    """Every site, layer by layer: the residual stream, each head, the attention layer, the MLP."""
    out = []
    for layer in range(n_layer):
        out += [PatchSite("resid", layer)] + [PatchSite("head", layer, h) for h in range(n_head)]
        out += [PatchSite("attn", layer), PatchSite("mlp", layer)]
    return out


def parse_sites(spec: str | Sequence[str], n_layer: int, n_head: int) -> list[PatchSite]:
    """``all`` or a comma list of site names (case-insensitive; repeats dropped, order kept)."""
    if isinstance(spec, str) and spec.strip().lower() == "all":
        return all_sites(n_layer, n_head)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: dict[str, PatchSite] = {}
    for raw in items:
        item = str(raw).strip()
        if not item:
            raise InputError(f"empty component name ({_SYNTAX})")
        m = _TOKEN.match(item)
        if not m:
            raise InputError(f"unknown component {item!r} ({_SYNTAX})")
        layer = int(m.group(1))
        if layer >= n_layer:
            raise InputError(f"{item}: layer {layer} is out of range (the checkpoint has layers 0..{n_layer - 1})")
        if m.group(2) is not None:
            head = int(m.group(2))
            if head >= n_head:
                raise InputError(f"{item}: head {head} is out of range (the checkpoint has heads 0..{n_head - 1} "
                                 "per layer)")
            site = PatchSite("head", layer, head)
        else:
            site = PatchSite("attn" if m.group(3) else "mlp" if m.group(4) else "resid", layer)
        out.setdefault(site.name, site)
    if not out:
        raise InputError(f"no components given ({_SYNTAX})")
    return list(out.values())


def tokens_of(examples: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """examples (n, k, 3), queries (n, 2) -> token ids (n, 3k + 2)."""
    n, k, _ = examples.shape
    return np.concatenate([np.asarray(examples).reshape(n, 3 * k), np.asarray(queries)], axis=1).astype(np.int64)


def _overwrite(site: PatchSite, positions: torch.Tensor, source: torch.Tensor) -> Callable:
    """A forward hook writing ``source`` (the site's clean source activation, same layout) at
    ``positions`` (and, for a head, only its slice)."""

    def fn(_m: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        if site.kind == "head":  # (B, T, H, hd)
            out[:, positions, site.head] = source[:, positions, site.head].to(out.dtype)
        else:  # (B, T, C)
            out[:, positions] = source[:, positions].to(out.dtype)
        return out

    return fn


class PatchingRun:
    """Clean runs of paired base and source prompts, and patched runs of the base prompts.

    ``base`` and ``source`` are token ids (n, T) with the same T; ``sites`` the sites to be
    patched (their source activations are cached). :meth:`logits` gives the p residue logits
    at the last position (the query's y) of a patched run; ``clean_base``/``clean_source``
    those of the clean runs. Memory: the clean base residual stream of every layer and the
    source activation of every site, for all n prompts (split the prompts to bound it).
    """

    def __init__(self, net: GPT, base: np.ndarray, source: np.ndarray, sites: Sequence[PatchSite], p: int,
                 device: torch.device | str = "cpu") -> None:
        base, source = np.asarray(base, dtype=np.int64), np.asarray(source, dtype=np.int64)
        if base.shape != source.shape or base.ndim != 2:
            raise InputError(f"base and source prompts must have the same shape (n, T), got {base.shape} and "
                             f"{source.shape}")
        self.net, self.p = net, p
        self.device = torch.device(device)
        self.T = base.shape[1]
        self.base = torch.as_tensor(base, device=self.device)
        self.source = torch.as_tensor(source, device=self.device)
        hooks = sorted({s.hook for s in sites})
        with torch.no_grad():
            logits, cache = net.run_with_cache(self.source, hooks)
            self.clean_source = logits[:, -1, :p].float()
            resid = [f"blocks.{i}.hook_resid_pre" for i in range(len(net.blocks))]
            logits, base_cache = net.run_with_cache(self.base, resid)
            self.clean_base = logits[:, -1, :p].float()
        self.source_cache = cache
        self.base_resid = [base_cache[name] for name in resid]
        self.forward_passes = 2

    def logits(self, site: PatchSite, positions: np.ndarray | Sequence[int]) -> torch.Tensor:
        """(n, p) logits at the last position with ``site`` patched at token ``positions``."""
        pos = torch.as_tensor(np.asarray(positions, dtype=np.int64), device=self.device)
        if pos.numel() and (int(pos.min()) < 0 or int(pos.max()) >= self.T):
            raise InputError(f"positions must lie in [0, {self.T}), got {pos.tolist()}")
        src = self.source_cache[site.hook]
        net = self.net
        with torch.no_grad(), net.hooks([(site.hook, _overwrite(site, pos, src))]):
            x = self.base_resid[site.layer]
            for block in net.blocks[site.layer :]:
                x = block(x)
            out = net.lm_head(net.ln_f(x[:, -1]))[:, : self.p].float()
        self.forward_passes += 1
        return out


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class PatchedPredictor(ModelPredictor):
    """The model with ``site`` patched at ``positions`` (token indices) from paired source
    prompts (``source_examples`` (n, k, 3), ``source_queries`` (n, 2)); named ``model``.
    :meth:`predict` takes the n base prompts in the same order."""

    def __init__(self, ckpt: Checkpoint, site: PatchSite, positions: Sequence[int], source_examples: np.ndarray,
                 source_queries: np.ndarray, device: str = "auto", net: GPT | None = None,
                 batch_prompts: int = 4096) -> None:
        super().__init__(ckpt, device=device, batch_prefixes=None, precision="fp32", net=net)
        cfg = ckpt.model_config
        if site.layer >= cfg.n_layer or (site.kind == "head" and not 0 <= (site.head or 0) < cfg.n_head):
            raise InputError(f"{site.name} does not exist in a model of {cfg.n_layer} layers x {cfg.n_head} heads")
        ex, q = check_examples(self.p, source_examples, source_queries)
        self._check_k(ex.shape[1])
        self.site, self.positions = site, np.asarray(positions, dtype=np.int64)
        self.source = tokens_of(ex, q)
        self.batch_prompts = int(batch_prompts)

    def __repr__(self) -> str:
        return f"PatchedPredictor({self.site.name} at {self.positions.tolist()}, p={self.p})"

    def predict(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """Base prompts examples (n, k, 3), queries (n, 2), paired row by row with the source
        prompts -> pred (n,), probs (n, p)."""
        ex, q = check_examples(self.p, examples, queries)
        base = tokens_of(ex, q)
        if base.shape != self.source.shape:
            raise InputError(f"base prompts of shape {base.shape} do not pair with the source prompts "
                             f"{self.source.shape}")
        out = []
        for sl in _chunks(len(base), self.batch_prompts):
            run = PatchingRun(self.net, base[sl], self.source[sl], [self.site], self.p, self.device)
            out.append(torch.softmax(run.logits(self.site, self.positions), -1).cpu())
        probs = torch.cat(out).numpy().astype(np.float32)
        return Prediction(probs.argmax(-1).astype(np.int64), probs)

    def predict_grid(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        raise InputError("a patched model answers base prompts paired with its source prompts: use predict")
