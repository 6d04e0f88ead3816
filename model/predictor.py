"""The transformer behind the predictor interface of ``algos.solvers.base``.

``predict_grid`` is the fast path the comparison engine uses: for each k-shot prefix it
runs the 3k prefix tokens once and keeps their keys and values (a KV cache); it then
runs each distinct query x token once against that cache, and finally every (x, y)
query's y token against the prefix, its x token and itself. A query thus costs one token
instead of 3k + 2, and the answer equals full recomputation up to float rounding (a test
checks it). The prediction is the arg-max over the p residue tokens and the distribution
is the softmax over those same tokens.

The grid path does not go through the model's hook points; instead it calls
:meth:`ModelPredictor._site` at the places of ``attn.hook_z``, ``hook_attn_out`` and
``hook_mlp_out`` of every block (identity here), which is where :mod:`model.ablation`
changes activations.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from algos.prompts import check_examples
from algos.solvers.base import Prediction, Predictor
from model.checkpoint import Checkpoint
from model.device import autocast, pick_device
from model.gpt import GPT

__all__ = ["ModelPredictor", "GridStage"]


class GridStage(NamedTuple):
    """Which tokens the rows of a grid-path activation are.

    ``kind`` is ``prefix`` (rows = the 3k prefix positions 0 .. 3k-1, shared by every
    query), ``x`` (rows = the distinct query x tokens, all at position 3k; ``x_counts``
    (rows,) says how many queries each stands for) or ``y`` (rows = the queries, all at
    position 3k + 1). ``start`` is the position of the first row; ``n_queries`` the
    number of queries each prefix is asked.
    """

    kind: str
    k: int
    start: int
    n_queries: int
    x_counts: torch.Tensor | None


#: Activation memory one grid batch may take: on CPU a fixed budget (bigger batches do not
#: run faster there), on CUDA this share of the memory free when the predictor is built.
CPU_BATCH_BYTES = 64 << 20
CUDA_BATCH_SHARE = 0.25
#: On CPU, auto batches hold at most this many prefixes (the measured default before auto).
CPU_MAX_PREFIXES = 64


class _QueryPlan(NamedTuple):
    """A query grid's derived tensors on the device: distinct x tokens (nx,), queries per x
    (nx,), each query's x index (q,), each query's y token (q,)."""

    xs: torch.Tensor
    x_counts: torch.Tensor
    x_index: torch.Tensor
    ys: torch.Tensor


class ModelPredictor(Predictor):
    """Predictions of a trained checkpoint. ``batch_prefixes`` bounds memory per call.

    ``batch_prefixes=None`` (auto) sizes each batch from the model and the device: the
    prefixes whose activations (about 4 bytes x queries x (12 d_model + 2 heads x (3k + 2))
    each) fit :data:`CPU_BATCH_BYTES` on CPU (at most :data:`CPU_MAX_PREFIXES`), or
    :data:`CUDA_BATCH_SHARE` of the free GPU memory. ``precision`` ``auto`` is bf16 autocast
    on CUDA and fp32 on CPU (:func:`model.device.autocast`).
    ``net`` shares an already built network of this checkpoint (on ``device``) instead of
    building one, e.g. between the ablated copies of one model.

    On CUDA the estimate is only a start: the first grid batch's measured peak memory
    calibrates it (:attr:`memory_factor`), an out-of-memory error halves the batch and
    retries, and the query grid's derived tensors stay on the device between calls.
    ``batch_sequences`` (default: on CUDA) asks the engine to hand over the prefixes of
    every example sequence of a k in one call, so a paper-scale run makes one model call
    per (task chunk, k) instead of one per (task chunk, sequence, k); on CPU the calls
    stay as they are, so CPU results are unchanged bit for bit.
    """

    name = "model"
    gives_distribution = True

    def __init__(
        self,
        ckpt: Checkpoint,
        device: str = "auto",
        batch_prefixes: int | None = 64,
        precision: str = "fp32",
        net: GPT | None = None,
        batch_sequences: bool | None = None,
    ) -> None:
        super().__init__(ckpt.model_config.p)
        self.ckpt = ckpt
        self.device = pick_device(device)
        self.net: GPT = ckpt.build_model(self.device) if net is None else net
        self.batch_prefixes = None if batch_prefixes is None else int(batch_prefixes)
        self._budget = CPU_BATCH_BYTES
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            self._budget = int(free * CUDA_BATCH_SHARE)
        self.precision = precision
        self.max_k = ckpt.max_k
        self.batch_sequences = self.device.type == "cuda" if batch_sequences is None else bool(batch_sequences)
        #: measured peak bytes per prefix / the estimate (CUDA: set by the first grid batch)
        self.memory_factor: float | None = None
        #: grid-path statistics: model calls, prefixes, out-of-memory retries
        self.stats = {"calls": 0, "prefixes": 0, "oom_retries": 0}
        self._plans: dict[tuple[int, bytes], _QueryPlan] = {}

    # ------------------------------------------------------------------ interface
    def predict(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """Full recomputation: examples (n, k, 3), queries (n, 2) -> pred (n,), probs (n, p)."""
        ex, q = check_examples(self.p, examples, queries)
        self._check_k(ex.shape[1])
        if q.shape[0] != ex.shape[0]:
            raise ValueError(f"queries: expected {ex.shape[0]} rows to match examples, got {q.shape[0]}")
        out = []
        for start in range(0, ex.shape[0], 4096):
            tokens = np.concatenate(
                [ex[start : start + 4096].reshape(-1, ex.shape[1] * 3), q[start : start + 4096]], axis=1
            )
            idx = torch.as_tensor(tokens, device=self.device)
            with torch.no_grad(), autocast(self.device, self.precision):
                logits, _ = self.net(idx)
            out.append(F.softmax(logits[:, -1, : self.p].float(), dim=-1).cpu())
        probs = torch.cat(out).numpy().astype(np.float32)
        return Prediction(probs.argmax(-1).astype(np.int64), probs)

    def predict_grid(self, examples: np.ndarray, queries: np.ndarray) -> Prediction:
        """Prefix reuse: examples (n, k, 3), queries (q, 2) -> pred (n, q), probs (n, q, p)."""
        ex, q = check_examples(self.p, examples, queries)
        self._check_k(ex.shape[1])
        probs = np.empty((ex.shape[0], q.shape[0], self.p), dtype=np.float32)
        step = self.batch_for(ex.shape[1], q.shape[0])
        self.stats["calls"] += 1
        self.stats["prefixes"] += int(ex.shape[0])
        start = 0
        while start < ex.shape[0]:
            chunk = ex[start : start + step]
            try:
                probs[start : start + len(chunk)] = self._measured_chunk(chunk, q)
            except torch.cuda.OutOfMemoryError:  # a subclass of RuntimeError on every device
                if step == 1:
                    raise
                step = max(1, step // 2)  # halve and retry; later calls start from the smaller size
                self.batch_prefixes = step if self.batch_prefixes is not None else None
                self._oom_cap = step
                self.stats["oom_retries"] += 1
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            start += len(chunk)
        return Prediction(probs.argmax(-1).astype(np.int64), probs)

    def _measured_chunk(self, chunk: np.ndarray, q: np.ndarray) -> np.ndarray:
        """:meth:`_grid_chunk`, calibrating the memory estimate on the first CUDA batch."""
        if self.device.type != "cuda" or self.memory_factor is not None:
            return self._grid_chunk(chunk, q)
        torch.cuda.synchronize(self.device)
        base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        out = self._grid_chunk(chunk, q)
        peak = torch.cuda.max_memory_allocated(self.device) - base
        self.memory_factor = max(1.0, peak / max(1, len(chunk) * self._estimate(chunk.shape[1], q.shape[0])))
        return out

    def batch_for(self, k: int, n_queries: int) -> int:
        """Prefixes per grid batch at this k and number of queries (see the class docstring)."""
        if self.batch_prefixes is not None:
            return self.batch_prefixes
        per_prefix = self._estimate(k, n_queries) * (self.memory_factor or 1.0)
        n = max(1, int(self._budget // per_prefix))
        n = min(n, getattr(self, "_oom_cap", n))
        return min(n, CPU_MAX_PREFIXES) if self.device.type == "cpu" else n

    def _estimate(self, k: int, n_queries: int) -> int:
        """Estimated activation bytes of one prefix's grid batch (before calibration)."""
        cfg = self.ckpt.model_config
        return 4 * n_queries * (12 * cfg.d_model + 2 * cfg.n_head * (3 * k + 2))

    def _plan(self, queries: np.ndarray) -> _QueryPlan:
        """The query grid's derived tensors, on the device, computed once per distinct grid."""
        key = (queries.shape[0], queries.tobytes())
        plan = self._plans.get(key)
        if plan is None:
            dev = self.device
            xs, x_of = np.unique(queries[:, 0], return_inverse=True)  # distinct x tokens; query -> its x
            plan = _QueryPlan(
                xs=torch.as_tensor(xs, device=dev),
                x_counts=torch.as_tensor(np.bincount(x_of, minlength=len(xs)), device=dev),
                x_index=torch.as_tensor(x_of, device=dev),
                ys=torch.as_tensor(queries[:, 1], device=dev),
            )
            if len(self._plans) > 8:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    # ------------------------------------------------------------------ internals
    def _check_k(self, k: int) -> None:
        if k > self.max_k:
            raise ValueError(
                f"k = {k} exceeds what this checkpoint supports (at most {self.max_k}: it was trained on "
                f"{self.ckpt.model_config.n_examples} examples a sequence)"
            )

    def _site(self, name: str, layer: int, value: torch.Tensor, stage: GridStage) -> torch.Tensor:
        """The grid path's counterpart of the hook point ``blocks.{layer}.{name}``.

        ``name`` is ``attn.hook_z`` (value (B, H, M, hd), head-first: the hook point's (B, T, H, hd)
        transposed; per-head outputs before the
        o-projection), ``hook_attn_out`` or ``hook_mlp_out`` (value (B, M, C)); ``stage``
        says which tokens the M rows are. The plain model returns ``value`` unchanged;
        subclasses (ablation, activation means) override it, so the KV-cache path changes
        activations exactly where a forward hook on the full model would.
        """
        return value

    @torch.no_grad()
    def _grid_chunk(self, ex: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """ex (B, k, 3), queries (q, 2) -> probs (B, q, p)."""
        net, dev = self.net, self.device
        B, k, _ = ex.shape
        T0 = 3 * k
        nq = queries.shape[0]
        plan = self._plan(queries)
        xs, x_counts, x_index = plan.xs, plan.x_counts, plan.x_index  # distinct x; queries per x; query -> x
        stages = {
            "prefix": GridStage("prefix", k, 0, nq, None),
            "x": GridStage("x", k, T0, nq, x_counts),
            "y": GridStage("y", k, T0 + 1, nq, None),
        }

        def block_step(i: int, block, h: torch.Tensor, z: torch.Tensor, stage: GridStage) -> torch.Tensor:
            # z (B, H, M, hd) -> residual h (B, M, C) after attention and MLP, with the sites applied
            M = z.shape[2]
            z = self._site("attn.hook_z", i, z, stage)
            a = self._site("hook_attn_out", i, block.attn.o(z.transpose(1, 2).reshape(B, M, -1)), stage)
            h = h + a
            return h + self._site("hook_mlp_out", i, block.mlp(block.ln_2(h)), stage)

        with autocast(dev, self.precision):
            # 1. the prefix, once: keys and values of every layer (B, H, T0, hd)
            h = net.wte(torch.as_tensor(ex.reshape(B, T0), device=dev))
            cache = []
            for i, block in enumerate(net.block_list):
                qh, kh, vh = block.attn.project(block.ln_1(h), torch.arange(T0, device=dev))
                z = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
                h = block_step(i, block, h, z, stages["prefix"])
                cache.append((kh, vh))
            # 2. each distinct x token at position T0, against the prefix and itself
            hx = net.wte(xs).expand(B, -1, -1)  # (B, nx, C)
            x_cache = []
            for i, (block, (kp, vp)) in enumerate(zip(net.block_list, cache, strict=True)):
                qx, kx, vx = block.attn.project(block.ln_1(hx), torch.full((len(xs),), T0, device=dev))
                z = _attend(qx, kp, vp, [kx], [vx])
                hx = block_step(i, block, hx, z, stages["x"])
                x_cache.append((kx, vx))
            # 3. every query's y token at T0 + 1, against prefix, its x token and itself
            hy = net.wte(plan.ys).expand(B, -1, -1)  # (B, q, C)
            for i, (block, (kp, vp), (kx, vx)) in enumerate(zip(net.block_list, cache, x_cache, strict=True)):
                qy, ky, vy = block.attn.project(block.ln_1(hy), torch.full((nq,), T0 + 1, device=dev))
                z = _attend(qy, kp, vp, [kx[:, :, x_index], ky], [vx[:, :, x_index], vy])
                hy = block_step(i, block, hy, z, stages["y"])
            logits = net.lm_head(net.ln_f(hy))[..., : self.p].float()  # (B, q, p)
        return F.softmax(logits, dim=-1).cpu().numpy()


def _attend(
    q: torch.Tensor, kp: torch.Tensor, vp: torch.Tensor, ks: list[torch.Tensor], vs: list[torch.Tensor]
) -> torch.Tensor:
    """Attention of each query row to a shared prefix plus its own extra keys.

    q (B, H, M, hd); shared prefix kp, vp (B, H, T0, hd); extra ks[i], vs[i] (B, H, M, hd),
    one key per query row. Returns (B, H, M, hd).
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = [q @ kp.transpose(-2, -1)] + [(q * k).sum(-1, keepdim=True) for k in ks]  # (B,H,M,T0), (B,H,M,1)...
    w = torch.cat(scores, dim=-1).mul(scale).softmax(-1)
    T0 = kp.shape[2]
    out = w[..., :T0] @ vp
    for i, v in enumerate(vs):
        out = out + w[..., T0 + i : T0 + i + 1] * v
    return out
