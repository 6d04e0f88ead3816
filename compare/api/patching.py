"""Activation patching as a library call: base prompts run with one component from source prompts.

>>> res = compare.patch("d4.pt", k=8, design="example-line")             # doctest: +SKIP
>>> res.table.query("split == 'all' and position == 'q_y'")[["component", "iia_ratio_matching"]]  # doctest: +SKIP

For each k, :func:`compare.engine.patching.make_pairs` draws ``prompts`` base/source pairs of
the design (seeded; base tasks cycle through the chosen tasks); the reference solvers
(Ratio Matching and Modular Regression, :mod:`algos.solvers`) give each algorithm's exact
answer on both prompts of every pair; :class:`model.patching.PatchingRun` runs every
(component, position class) patch; :func:`compare.engine.patching.patching_table` turns the
per-prompt records into rates per (k, component, position, split).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.api.inputs import CheckpointLike, load, manifest_header, parse_batch_size, solvers
from compare.engine.grid import check_ks, parse_k, select_tasks, task_splits
from compare.engine.patching import (
    ALGORITHMS,
    DESIGNS,
    HEADLINE,
    make_pairs,
    parse_design,
    parse_positions,
    patching_table,
    position_index,
    tokens_text,
)
from compare.errors import InputError, UsageError
from compare.storage import files
from model.checkpoint import Checkpoint

__all__ = ["PatchResult", "patch", "DEFINITIONS"]

DEFINITIONS = {
    "patch": "the base prompt is run with the component's activation at the position class replaced by its activation "
             "on the paired source prompt (clean source run); a head is its slice of blocks.{l}.attn.hook_z, an "
             "attention layer blocks.{l}.hook_attn_out, an MLP blocks.{l}.hook_mlp_out, the residual stream "
             "blocks.{l}.hook_resid_pre (entering block l)",
    "iia": "interchange-intervention accuracy of an algorithm: share of prompts whose patched prediction equals the "
           "algorithm's answer on the source prompt, over the prompts where that answer exists and differs from its "
           "answer on the base prompt (n_cf_<algorithm> of them); iia_<algorithm>_clean: the same share for the "
           "unpatched base prediction (the control: what the base prompt already gives)",
    "follows_source": "share of prompts whose patched prediction equals the model's clean prediction on the source "
                      "prompt, over the prompts where that differs from its clean prediction on the base prompt",
    "changed": "share of prompts whose patched prediction differs from the model's clean prediction on the base prompt",
    "ld": "logit difference logit(source answer) - logit(base answer) at the query's y position, the answers being the "
          "model's clean predictions on the source and base prompts (prompts where they differ); ld_recovered = "
          "(mean patched ld - mean clean base ld) / (mean clean source ld - mean clean base ld)",
    "agree": "agree_<algorithm>_<base|source>: share of prompts whose patched prediction equals that algorithm's "
             "answer on that prompt, over the prompts where it answers",
}


@dataclass
class PatchResult:
    """``table``: rates per (design, k, component, position, split) (``patching.csv``); ``prompts``:
    one row per pair with base and source tokens, tasks, the algorithms' and the model's clean
    answers (``prompts.csv``); ``patched``: one row per (prompt, component, position) with the
    patched prediction, logit difference and agreements (``patched.parquet``)."""

    table: pd.DataFrame
    prompts: pd.DataFrame
    patched: pd.DataFrame
    manifest: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def rate(self, component: str, position: str, k: int, column: str = "follows_source", split: str = "all") -> float:
        """One rate of ``table``."""
        t = self.table
        row = t[(t["component"] == component) & (t["position"] == position) & (t["k"] == k) & (t["split"] == split)]
        if row.empty:
            raise InputError(f"no row for {component} at {position}, k = {k}, split {split}")
        return float(row[column].iloc[0])

    def write_report(self, folder: str | Path) -> Path:
        """Write ``patching.csv``, ``prompts.csv``, ``patched.parquet``, heatmaps, manifest and pages atomically."""
        from compare.reports.patching import write_patching_report

        out, self.manifest, self.figures = files.publish_report(
            folder, self.manifest, lambda tmp, m: write_patching_report(tmp, self.table, self.prompts, self.patched, m))
        return out


def _ks(k: int | str | Iterable[int]) -> tuple[int, ...]:
    if isinstance(k, str):
        return parse_k(k)
    if isinstance(k, (int, np.integer)):
        return parse_k(str(int(k)))
    return parse_k(",".join(str(int(v)) for v in k) or " ")


def patch(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int],
    *,
    design: str = "task",
    components: str | Sequence[str] = "all",
    positions: str | Sequence[str] = "default",
    prompts: int = 300,
    tasks: str | Iterable[Sequence[int]] = "all",
    seed: int = 0,
    device: str = "cpu",
    batch_size: int | str | None = None,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> PatchResult:
    """Patch every one of ``components`` (``"all"``: every layer's residual stream, heads, attention
    layer and MLP; or ``"L0H1,L2attn,L1mlp,L3resid"``) at every one of ``positions`` (``"default"``:
    ex_x, ex_y, ex_z, q_x, q_y; or a comma list, ``all`` = every position) on ``prompts`` base/source
    pairs of ``design`` (``task``, ``query``, ``example-line``, ``example-line-off``) per k.
    ``tasks``: the base tasks (``"all"``, ``"id"``, ``"ood"``, ``"a,b;a,b"``), used round-robin in a
    seeded order. ``batch_size``: prompt pairs per batch (None or ``"auto"``: as many as keep their
    cached activations within :data:`BATCH_BYTES`). Same seed, same tables."""
    t_start = time.perf_counter()
    try:
        design = parse_design(design)
        pos_names = parse_positions(positions)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if int(prompts) < 1:
        raise UsageError(f"--prompts must be >= 1, got {prompts}")
    batch = parse_batch_size(batch_size)
    ks = _ks(k)
    spec = ckpt.name if isinstance(ckpt, Checkpoint) else str(ckpt)
    ck = load(ckpt)
    setting, cfg = ck.setting, ck.model_config
    p = setting.p
    check_ks(ks, ck.max_k, p)
    tasks_spec = tasks if isinstance(tasks, str) else ";".join(f"{int(a)},{int(b)}" for a, b in tasks)
    task_array = select_tasks(setting, tasks_spec)

    from model.device import pick_device
    from model.patching import PatchingRun, parse_sites

    try:
        sites = parse_sites(components, cfg.n_layer, cfg.n_head)
    except InputError as exc:
        raise UsageError(f"--components: {exc}") from None
    dev = pick_device(device)
    net = ck.build_model(dev)
    refs = solvers(setting, list(ALGORITHMS))
    prompt_parts, patch_parts = [], []
    n_forward = 0
    t_model = 0.0
    next_id = 0
    bar_total = len(ks) * len(sites) * len(pos_names)
    from compare.api.stream import progress_bar

    with progress_bar(bar_total, "compare patch", progress) as bar:
        for kk in ks:
            pairs = make_pairs(setting, task_array, design, kk, int(prompts), seed)
            n = len(pairs)
            ids = np.arange(next_id, next_id + n)
            next_id += n
            info = _prompt_rows(pairs, ids, setting, refs)
            base_tok, src_tok = pairs.base_tokens, pairs.source_tokens
            clean_b = np.empty((n, p), np.float32)
            clean_s = np.empty((n, p), np.float32)
            patched_logits = {(s.name, pos): np.empty((n, p), np.float32) for s in sites for pos in pos_names}
            t0 = time.perf_counter()
            step = batch or _auto_batch(len({s.hook for s in sites}) + cfg.n_layer, 3 * kk + 2, cfg.d_model)
            for start in range(0, n, step):
                sl = slice(start, min(n, start + step))
                run = PatchingRun(net, base_tok[sl], src_tok[sl], sites, p, dev)
                clean_b[sl] = run.clean_base.cpu().numpy()
                clean_s[sl] = run.clean_source.cpu().numpy()
                for site in sites:
                    for pos in pos_names:
                        patched_logits[(site.name, pos)][sl] = run.logits(site, position_index(pos, kk)).cpu().numpy()
                        if bar is not None and start == 0:
                            bar(1)
                n_forward += run.forward_passes
            t_model += time.perf_counter() - t0
            mb, ms = clean_b.argmax(-1), clean_s.argmax(-1)
            rows = np.arange(n)
            differ = mb != ms
            info["model_base"], info["model_source"] = mb, ms
            info["ld_base"] = np.where(differ, clean_b[rows, ms] - clean_b[rows, mb], np.nan)
            info["ld_source"] = np.where(differ, clean_s[rows, ms] - clean_s[rows, mb], np.nan)
            prompt_parts.append(info)
            for site in sites:
                for pos in pos_names:
                    lg = patched_logits[(site.name, pos)]
                    pred = lg.argmax(-1)
                    part = pd.DataFrame({
                        "prompt": ids, "design": design, "k": kk, "component": site.name, "kind": site.kind,
                        "layer": site.layer, "head": site.head, "position": pos, "pred": pred.astype(np.int16),
                        "ld": np.where(differ, lg[rows, ms] - lg[rows, mb], np.nan).astype(np.float32),
                    })
                    for alg in ALGORITHMS:
                        for side in ("base", "source"):
                            part[f"agrees_{alg}_{side}"] = pred == info[f"{alg}_{side}"].to_numpy()
                    part["follows"] = np.where(pred == mb, "base", np.where(pred == ms, "source", "other"))
                    patch_parts.append(part)
            del patched_logits
    prompts_df = pd.concat(prompt_parts, ignore_index=True)
    patched = pd.concat(patch_parts, ignore_index=True)
    patched["head"] = patched["head"].astype("Int64")
    t0 = time.perf_counter()
    table = patching_table(prompts_df, patched)
    t_table = time.perf_counter() - t0
    n_patches = len(sites) * len(pos_names) * len(ks)
    manifest = {
        **manifest_header("compare patch", spec, ck.path, ck, argv),
        "ks": list(ks),
        "tasks_spec": tasks_spec,
        "n_tasks": int(len(task_array)),
        "seed": int(seed),
        "device": str(dev),
        "patching": {
            "design": design,
            "changes": DESIGNS[design],
            "headline": HEADLINE[design],
            "prompts_per_k": int(prompts),
            "components": [s.name for s in sites],
            "hooks": {s.name: s.hook for s in sites},
            "positions": pos_names,
            "position_index": {pos: {str(kk): position_index(pos, kk).tolist() for kk in ks} for pos in pos_names},
            "algorithms": list(ALGORITHMS),
            "definitions": DEFINITIONS,
        },
        "counts": {"prompts": int(len(prompts_df)), "patches": n_patches, "patched_rows": int(len(patched)),
                   "forward_passes": int(n_forward)},
        "timings": {
            "model_seconds": round(t_model, 3),
            "table_seconds": round(t_table, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
        },
    }
    return PatchResult(table, prompts_df, patched, manifest)


#: Cached activations one batch of prompt pairs may hold (clean base residual streams and source activations).
BATCH_BYTES = 256 << 20


def _auto_batch(n_cached: int, T: int, d_model: int) -> int:
    """Prompt pairs per batch such that their ``n_cached`` cached (T, d_model) float32 activations
    together fit :data:`BATCH_BYTES`."""
    return max(1, BATCH_BYTES // (4 * n_cached * T * d_model))


def _prompt_rows(pairs, ids: np.ndarray, setting, refs) -> pd.DataFrame:
    """One row per pair: tokens, tasks, splits, true labels and each algorithm's answer on both prompts."""
    p = setting.p
    bt, st = pairs.base_tasks, pairs.source_tasks
    bq, sq = pairs.base_queries, pairs.source_queries
    out = pd.DataFrame({
        "prompt": ids,
        "design": pairs.design,
        "k": pairs.k,
        "split": task_splits(setting, bt).astype(str),
        "source_split": task_splits(setting, st).astype(str),
        "task_a": bt[:, 0], "task_b": bt[:, 1],
        "source_task_a": st[:, 0], "source_task_b": st[:, 1],
        "moved": pairs.moved,
        "base_tokens": tokens_text(pairs.base_tokens),
        "source_tokens": tokens_text(pairs.source_tokens),
        "z_base": (bt * bq).sum(1) % p,
        "z_source": (st * sq).sum(1) % p,
    })
    for r in refs:
        out[f"{r.name}_base"] = r.predict(pairs.base_examples, bq).pred
        out[f"{r.name}_source"] = r.predict(pairs.source_examples, sq).pred
    return out
