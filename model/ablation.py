"""Ablated models: the transformer with some components removed, behind the predictor interface.

A *component* is one attention head ``L{l}H{h}``, one whole attention layer ``L{l}attn``
or one whole MLP ``L{l}mlp``; an *ablation* is a set of them (``L0H1+L1mlp`` is one
ablation of two components; ``none`` is the empty set, the plain model). Removing a
component replaces its output, at every token position, by

- ``zero`` — zero. A head's output is its slice of ``blocks.{l}.attn.hook_z`` (its
  attention-weighted values, *before* the output projection, so the head contributes
  nothing to the residual stream); an attention layer's is ``blocks.{l}.hook_attn_out``
  (all heads after the projection); an MLP's is ``blocks.{l}.hook_mlp_out``.
- ``mean`` — its mean over a set of prompts at that position (:class:`ActivationMeans`).
  For the comparison these are the comparison's own prompts: for each k separately, the
  mean over every (task, example sequence, query) prompt of the run with that k (all p^2
  queries of every task and sequence) at each of the 3k + 2 token positions, computed with
  the *unablated* model in a first pass (:func:`prompt_means`). A set is mean-ablated with
  every member's clean mean.

:class:`AblatedPredictor` is a :class:`~model.predictor.ModelPredictor` (named ``model``
like the plain one, so the engine scores it like any other and never learns it is
ablated). Its KV-cache grid path applies the ablation in
:meth:`~model.predictor.ModelPredictor._site`, at the places of those three hook points;
its full-recomputation :meth:`~AblatedPredictor.predict` applies it through forward hooks
on the same hook points (``GPT.hooks``). The tests check both against an independent
full forward.

>>> parse_ablation("L0H1+L1mlp", n_layer=2, n_head=2).components
(Component(kind='head', layer=0, head=1), Component(kind='mlp', layer=1, head=None))
>>> [a.name for a in all_ablations(n_layer=1, n_head=2)]
['L0H0', 'L0H1', 'L0attn', 'L0mlp']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from algos.errors import InputError
from algos.prompts import check_examples, make_examples, query_grid
from algos.solvers.base import Prediction
from model.checkpoint import Checkpoint
from model.gpt import GPT
from model.predictor import GridStage, ModelPredictor

__all__ = [
    "Component",
    "Ablation",
    "NONE",
    "MODES",
    "SITES",
    "parse_ablation",
    "parse_ablations",
    "all_ablations",
    "ActivationMeans",
    "prompt_means",
    "activation_means",
    "AblatedPredictor",
]

NONE = "none"
MODES = ("zero", "mean")
#: Hook-point names (under ``blocks.{l}.``) whose output a component's ablation replaces.
SITES = {"head": "attn.hook_z", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}
_SYNTAX = "use none, L{l}H{h}, L{l}attn, L{l}mlp, or a set joined by '+' such as L0H1+L1mlp"
_TOKEN = re.compile(r"^L(\d+)(?:H(\d+)|(attn)|(mlp))$", re.IGNORECASE)


# ---------------------------------------------------------------------- names
@dataclass(frozen=True)
class Component:
    """One removable part of the model: a head (``head`` set), an attention layer or an MLP."""

    kind: str  # "head" | "attn" | "mlp"
    layer: int
    head: int | None = None

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}" if self.kind == "head" else f"L{self.layer}{self.kind}"

    @property
    def site(self) -> str:
        """The hook point (``blocks.{layer}.<site>``) whose output this component's ablation replaces."""
        return SITES[self.kind]


@dataclass(frozen=True)
class Ablation:
    """A set of components removed together, under one name (``none``: the empty set)."""

    name: str
    components: tuple[Component, ...] = ()

    @property
    def is_none(self) -> bool:
        return not self.components


def parse_ablation(text: str, n_layer: int, n_head: int) -> Ablation:
    """One ablation: ``none``, ``L{l}H{h}``, ``L{l}attn``, ``L{l}mlp`` or a ``+``-joined set.

    Case-insensitive; the name is rewritten canonically (``l0h1`` -> ``L0H1``). Raises
    ValueError with a one-line message for an unknown token, a layer or head outside the
    checkpoint's ``n_layer`` x ``n_head``, a repeated member or ``none`` inside a set.
    """
    text = text.strip()
    if not text:
        raise InputError(f"empty component name ({_SYNTAX})")
    if text.lower() == NONE:
        return Ablation(NONE)
    parts = [t.strip() for t in text.split("+")]
    members: list[Component] = []
    for part in parts:
        if not part:
            raise InputError(f"{text!r}: empty member in the set ({_SYNTAX})")
        if part.lower() == NONE:
            raise InputError(f"{text!r}: 'none' cannot be part of a set")
        m = _TOKEN.match(part)
        if not m:
            raise InputError(f"unknown component {part!r} ({_SYNTAX})")
        layer = int(m.group(1))
        if layer >= n_layer:
            raise InputError(f"{part}: layer {layer} is out of range (the checkpoint has layers 0..{n_layer - 1})")
        if m.group(2) is not None:
            head = int(m.group(2))
            if head >= n_head:
                raise InputError(
                    f"{part}: head {head} is out of range (the checkpoint has heads 0..{n_head - 1} per layer)"
                )
            comp = Component("head", layer, head)
        else:
            comp = Component("attn" if m.group(3) else "mlp", layer)
        if comp in members:
            raise InputError(f"{text!r}: {comp.name} appears twice")
        members.append(comp)
    return Ablation("+".join(c.name for c in members), tuple(members))


def all_ablations(n_layer: int, n_head: int) -> list[Ablation]:
    """Every head, every attention layer and every MLP, one at a time, layer by layer."""
    out = []
    for layer in range(n_layer):
        comps = [Component("head", layer, h) for h in range(n_head)]
        comps += [Component("attn", layer), Component("mlp", layer)]
        out += [Ablation(c.name, (c,)) for c in comps]
    return out


def parse_ablations(spec: str, n_layer: int, n_head: int) -> list[Ablation]:
    """``all`` (:func:`all_ablations`) or a comma-separated list of :func:`parse_ablation`
    names; repeats are dropped, order kept."""
    if spec.strip().lower() == "all":
        return all_ablations(n_layer, n_head)
    items = spec.split(",")
    out: dict[str, Ablation] = {}
    for item in items:
        ab = parse_ablation(item, n_layer, n_head)
        out.setdefault(ab.name, ab)
    return list(out.values())


# ---------------------------------------------------------------------- means
@dataclass
class ActivationMeans:
    """Per k, the mean output of every component site at every token position.

    ``by_k[k][(site, layer)]`` is (H, 3k + 2, hd) for ``attn.hook_z`` and (3k + 2, C) for
    ``hook_attn_out`` / ``hook_mlp_out``; ``n_prompts[k]`` is the number of prompts
    averaged. ``description`` says which prompts (for the manifest).
    """

    by_k: dict[int, dict[tuple[str, int], torch.Tensor]] = field(default_factory=dict)
    n_prompts: dict[int, int] = field(default_factory=dict)
    description: str = ""

    def at(self, k: int, site: str, layer: int) -> torch.Tensor:
        if k not in self.by_k:
            raise InputError(f"mean ablation: no activation means for k = {k} (have k = {sorted(self.by_k)})")
        return self.by_k[k][(site, layer)]


class _MeanRecorder(ModelPredictor):
    """The plain grid path, summing every site's output per (k, position) as it goes."""

    def __init__(self, base: ModelPredictor) -> None:
        super().__init__(
            base.ckpt,
            device=str(base.device),
            batch_prefixes=base.batch_prefixes,
            precision=base.precision,
            net=base.net,
        )
        self.sums: dict[int, dict[tuple[str, int], torch.Tensor]] = {}
        self.counts: dict[int, int] = {}

    def _grid_chunk(self, ex: np.ndarray, queries: np.ndarray) -> np.ndarray:
        out = super()._grid_chunk(ex, queries)
        k = ex.shape[1]
        self.counts[k] = self.counts.get(k, 0) + ex.shape[0] * queries.shape[0]
        return out

    def _site(self, name: str, layer: int, value: torch.Tensor, stage: GridStage) -> torch.Tensor:
        # value (B, H, M, hd) or (B, M, C): rows M along dim -2; every row stands for some prompts
        v = value.detach().to(torch.float64)
        if stage.kind == "prefix":  # each prefix position is in all n_queries prompts of its prefix
            part = v.sum(0) * stage.n_queries  # (..., T0, d)
        elif stage.kind == "x":  # row j is the x token of x_counts[j] queries
            assert stage.x_counts is not None  # an x stage always carries its counts
            part = (v * stage.x_counts.to(v)[:, None]).sum(0).sum(-2, keepdim=True)  # (..., 1, d)
        else:  # one row per query
            part = v.sum(0).sum(-2, keepdim=True)  # (..., 1, d)
        per_k = self.sums.setdefault(stage.k, {})
        T = 3 * stage.k + 2
        if (name, layer) not in per_k:
            shape = list(part.shape)
            shape[-2] = T
            per_k[(name, layer)] = torch.zeros(shape, dtype=torch.float64, device=v.device)
        per_k[(name, layer)][..., stage.start : stage.start + part.shape[-2], :] += part
        return value


def activation_means(
    base: ModelPredictor, prompts: Iterable[np.ndarray], queries: np.ndarray, description: str = ""
) -> ActivationMeans:
    """Mean output of every site at every position over all prompts ``examples x queries``.

    ``prompts`` yields example arrays (n, k, 3) (any mix of k); each is asked every query of
    ``queries`` (q, 2), so it stands for n * q prompts. Computed with the unablated grid
    path of ``base``, in float64 sums.
    """
    rec = _MeanRecorder(base)
    for ex in prompts:
        rec.predict_grid(ex, queries)
    by_k = {
        k: {key: (s / rec.counts[k]).to(torch.float32) for key, s in sums.items()}
        for k, sums in sorted(rec.sums.items())
    }
    return ActivationMeans(by_k, dict(sorted(rec.counts.items())), description)


def prompt_means(base: ModelPredictor, tasks: np.ndarray, sequences: np.ndarray, ks: Sequence[int]) -> ActivationMeans:
    """:func:`activation_means` over exactly the prompts a comparison of these tasks
    (n, 2), example sequences (n_seq, k_max, 2) and ks asks: for each k, every task's
    first k examples of every sequence, with each of the p^2 queries."""
    p = base.p
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    prompts = (make_examples(p, tasks, seq, k) for k in ks for seq in np.asarray(sequences))
    description = (
        f"for each k, the mean over every (task, example sequence, query) prompt with that k "
        f"({len(tasks)} tasks x {len(sequences)} sequence(s) x {p * p} queries) at each of the 3k + 2 "
        "token positions, computed with the unablated model in a first pass"
    )
    return activation_means(base, prompts, query_grid(p), description)


# ---------------------------------------------------------------------- the predictor
class AblatedPredictor(ModelPredictor):
    """The model with ``ablation`` removed by ``mode`` (``zero`` or ``mean``; ``mean`` needs
    ``means``). Named ``model``: to the engine it is the model. ``net`` shares a built network."""

    def __init__(
        self,
        ckpt: Checkpoint,
        ablation: Ablation,
        mode: str = "zero",
        means: ActivationMeans | None = None,
        device: str = "auto",
        batch_prefixes: int | None = 64,
        precision: str = "fp32",
        net: GPT | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"unknown ablation mode {mode!r} (use {' or '.join(MODES)})")
        if mode == "mean" and means is None and not ablation.is_none:
            raise InputError("mean ablation needs activation means (see model.ablation.prompt_means)")
        super().__init__(ckpt, device=device, batch_prefixes=batch_prefixes, precision=precision, net=net)
        cfg = ckpt.model_config
        for c in ablation.components:  # a hand-built Ablation is checked like a parsed one
            if c.layer >= cfg.n_layer or (c.kind == "head" and not 0 <= (c.head or 0) < cfg.n_head):
                raise InputError(f"{c.name} does not exist in a model of {cfg.n_layer} layers x {cfg.n_head} heads")
        self.ablation, self.mode, self.means = ablation, mode, means
        # (site, layer) -> head mask (1, H, 1, 1) bool for hook_z, None for a whole output
        self._edits: dict[tuple[str, int], torch.Tensor | None] = {}
        for c in ablation.components:
            key = (c.site, c.layer)
            if c.kind == "head":
                mask = self._edits.get(key)
                if mask is None:
                    mask = torch.zeros(1, cfg.n_head, 1, 1, dtype=torch.bool, device=self.device)
                mask[0, c.head] = True
                self._edits[key] = mask
            else:
                self._edits[key] = None

    def __repr__(self) -> str:
        return f"AblatedPredictor({self.ablation.name}, mode={self.mode}, p={self.p})"

    def _replace(self, name: str, layer: int, value: torch.Tensor, k: int, rows: slice | None) -> torch.Tensor:
        """value (B, H, M, hd) or (B, M, C) with the ablated part replaced; ``rows`` picks
        the positions of the M rows from the means (None: value spans all 3k + 2 positions)."""
        mask = self._edits[(name, layer)]
        if self.mode == "zero":
            repl = torch.zeros((), dtype=value.dtype, device=value.device)
        else:
            assert self.means is not None  # mean mode is refused without means (__init__)
            mean = self.means.at(k, name, layer)
            repl = (mean if rows is None else mean[..., rows, :]).to(value.dtype)  # (H, M', hd) or (M', C)
        if mask is None:
            return repl.expand_as(value).clone() if repl.dim() else torch.zeros_like(value)
        return torch.where(mask, repl, value)

    def _site(self, name: str, layer: int, value: torch.Tensor, stage: GridStage) -> torch.Tensor:
        if (name, layer) not in self._edits:
            return value
        # prefix rows are positions 0 .. 3k-1; the x and y rows all sit at one position each
        width = 3 * stage.k if stage.kind == "prefix" else 1
        return self._replace(name, layer, value, stage.k, slice(stage.start, stage.start + width))

    def hooks(self, k: int) -> list[tuple[str, Callable]]:
        """Forward hooks (``GPT.hooks``) applying this ablation to a full forward of
        k-shot prompts (every position 0 .. 3k + 1 present)."""

        def make(name: str, layer: int) -> Callable:
            head_axis = name == SITES["head"]  # hook_z is (B, T, H, hd); the grid path's sites (B, H, M, hd)

            def fn(_m: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
                if head_axis:
                    return self._replace(name, layer, out.transpose(1, 2), k, None).transpose(1, 2)
                return self._replace(name, layer, out, k, None)

            return fn

        return [(f"blocks.{layer}.{name}", make(name, layer)) for name, layer in self._edits]

    def predict(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """Full recomputation with the ablation applied by forward hooks: examples (n, k, 3),
        queries (n, 2) -> pred (n,), probs (n, p)."""
        ex, _ = check_examples(self.p, examples, queries)
        with self.net.hooks(self.hooks(ex.shape[1])):
            return super().predict(examples, queries)
