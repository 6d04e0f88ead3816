"""The logit lens as a library call: each layer's readout scored like any predictor, plus DLA.

>>> res = compare.lens("d4.pt", k=range(1, 9))                          # doctest: +SKIP
>>> res.agreement("ood", 8, "ratio_matching")     # by layer                   # doctest: +SKIP

Each layer's logit lens (:class:`model.lens.LensPredictor`: the residual stream after that
block at the query's y position, through the final LayerNorm and the unembedding) is a
subject predictor named ``model``; it runs through :func:`compare.api.stream.stream_aggregates`
and :func:`compare.engine.summary.summary_table` exactly as the model in ``compare run``
does, so "agreement with Ratio Matching" at a layer means what it means for the model.
The last layer's lens is the model. Direct logit attribution (:class:`model.lens.DirectLogitAttribution`)
runs over the same prompts (every task, sequence, k and query) and is averaged per
(split, k, algorithm) over the cells where that algorithm answers.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from algos.prompts import make_examples, query_grid
from compare.api.inputs import CheckpointLike, base_manifest, comparison_inputs, model_predictor, parse_batch_size
from compare.api.stream import progress_bar, stream_aggregates
from compare.engine.grid import task_splits
from compare.engine.summary import summary_table
from compare.errors import InputError, UsageError
from compare.storage import files

__all__ = ["LensResult", "lens", "LENS_DEFINITION", "DLA_DEFINITION", "DLA_COLUMNS"]

LENS_DEFINITION = (
    "layer l: the residual stream leaving block l (blocks.{l}.hook_resid_post; -1 = the token embedding) at the "
    "query's y position, through the model's final LayerNorm and the tied unembedding; prediction = arg-max over the "
    "p residue tokens, distribution = their softmax. The last layer's lens is the model's own prediction."
)
DLA_DEFINITION = (
    "direct logit attribution at the query's y position: component c's contribution to the logit of residue a is "
    "((c - mean(c)) / sigma) . (gamma * W_U[a]), sigma the final LayerNorm's scale frozen from the clean run, "
    "gamma its weight, W_U the unembedding; components: the token embedding, each head's output through its slice of "
    "W_O (hook_result), each MLP's output (hook_mlp_out), the final LayerNorm's bias; they sum to the logit. dla: the "
    "contribution to the algorithm's answer; dla_vs_mean: that minus the mean contribution over the p residues "
    "(what moves the softmax). Averaged over the cells where the algorithm answers (model: the model's own answer)."
)
#: Columns of dla.csv.
DLA_COLUMNS = ("split", "k", "algorithm", "component", "layer", "head", "n_cells", "dla", "dla_vs_mean")


@dataclass
class LensResult:
    """``table``: one row per (layer, split, k, predictor) (``lens.csv``: the summary table of
    ``compare run`` with the layer's lens as the subject ``model``); ``dla``: ``dla.csv``."""

    table: pd.DataFrame
    dla: pd.DataFrame
    manifest: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def agreement(self, split: str, k: int, predictor: str) -> pd.Series:
        """Agreement of ``predictor`` with each layer's lens (the lens's accuracy for ``model``), indexed by layer."""
        t = self.table
        sel = t[(t["split"] == split) & (t["k"] == k) & (t["predictor"] == predictor)].set_index("layer")
        return sel["accuracy" if predictor == "model" else "agreement"]

    def write_report(self, folder: str | Path) -> Path:
        """Write ``lens.csv``, ``dla.csv``, the figures, manifest and pages atomically."""
        from compare.reports.lens import write_lens_report

        out, self.manifest, self.figures = files.publish_report(
            folder, self.manifest, lambda tmp, m: write_lens_report(tmp, self.table, self.dla, m))
        return out


def lens(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int],
    *,
    layers: str | Sequence[int] = "all",
    dla: bool = True,
    tasks: str | Iterable[Sequence[int]] = "all",
    sequences: int = 0,
    examples: Sequence[str | np.ndarray] = (),
    authors_sequence: bool = True,
    seed: int = 0,
    solvers: str | Sequence[str] | None = None,
    n_boot: int = 1000,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int | str | None = None,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> LensResult:
    """Score the logit lens of each of ``layers`` (``"all"``, ``"all+embed"``, ``"0,2"`` or a list;
    -1 = the embedding) against every solver over the k-shot grids, and (``dla``) the direct
    logit attribution of every head and MLP to each algorithm's answer. The other arguments
    as :func:`compare.compare_checkpoint`."""
    t_start = time.perf_counter()
    batch = parse_batch_size(batch_size)
    inputs = comparison_inputs(ckpt, k, tasks=tasks, sequences=sequences, examples=examples,
                               authors_sequence=authors_sequence, seed=seed, solver_names=solvers, n_boot=n_boot)
    ck = inputs.ckpt
    cfg = ck.model_config

    from model.lens import DirectLogitAttribution, LensPredictor, layer_name, parse_layers

    try:
        chosen = parse_layers(layers, cfg.n_layer)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    base = model_predictor(ck, device, batch, precision)
    refs = [r.name for r in inputs.references]
    parts = []
    total = len(chosen) * len(inputs.tasks) * len(inputs.sequences) * len(inputs.ks)
    t0 = time.perf_counter()
    with progress_bar(total, "compare lens", progress) as bar:
        for layer in chosen:
            subject = LensPredictor(ck, layer, device=str(base.device), batch_prefixes=batch,
                                    precision=base.precision, net=base.net)
            acc, _ = stream_aggregates(inputs, subject, progress=bar)
            agg = acc.result()
            summ = summary_table(agg.sums, agg.subject, list(agg.references), n_boot=n_boot, seed=seed)
            summ.insert(0, "layer", layer)
            parts.append(summ)
    t_lens = time.perf_counter() - t0
    table = pd.concat(parts, ignore_index=True)
    t0 = time.perf_counter()
    dla_table = (_dla_table(inputs, DirectLogitAttribution(ck, device=str(base.device), batch_prefixes=batch,
                                                          precision=base.precision, net=base.net))
                 if dla else pd.DataFrame(columns=list(DLA_COLUMNS)))
    t_dla = time.perf_counter() - t0
    manifest = {
        **base_manifest(inputs, "compare lens", argv),
        "subject": "model",
        "references": refs,
        "device": str(base.device),
        "precision": base.precision,
        "lens": {
            "layers": chosen,
            "layer_names": [layer_name(v) for v in chosen],
            "definition": LENS_DEFINITION,
            "last_layer": cfg.n_layer - 1,
        },
        "dla": {"computed": bool(dla), "definition": DLA_DEFINITION,
                "components": list(dict.fromkeys(dla_table["component"])) if dla else []},
        "timings": {
            "lens_seconds": round(t_lens, 3),
            "seconds_per_layer": round(t_lens / len(chosen), 3),
            "dla_seconds": round(t_dla, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
        },
    }
    return LensResult(table, dla_table, manifest)


def _dla_table(inputs, rec) -> pd.DataFrame:
    """Mean direct logit attribution per (split, k, algorithm, component) over every cell of
    the comparison (each task, sequence, k and query) where the algorithm answers."""
    p = inputs.ckpt.setting.p
    queries = query_grid(p)
    splits = task_splits(inputs.ckpt.setting, inputs.tasks)
    algos = ["model", *[r.name for r in inputs.references]]
    comps = rec.components
    n_comp = len(comps)
    # sums[(split, k)] -> (n_algos,), (n_algos, n_comp), (n_algos, n_comp)
    sums: dict[tuple[str, int], list[np.ndarray]] = {}
    chunk = max(1, (8 << 20) // (len(queries) * n_comp * p * 4))  # tasks per call: about 8 MB of contributions
    for k in inputs.ks:
        for seq in inputs.sequences:
            for start in range(0, len(inputs.tasks), chunk):
                tasks = inputs.tasks[start : start + chunk]
                ex = make_examples(p, tasks, seq, k)
                contrib, probs = rec.attribute(ex, queries)  # (n, q, c, p), (n, q, p)
                answers = [probs.argmax(-1)] + [r.predict_grid(ex, queries).pred for r in inputs.references]
                mean_over = contrib.mean(-1)  # (n, q, c)
                for split in ("id", "ood"):
                    rows = splits[start : start + chunk] == split
                    if not rows.any():
                        continue
                    c_s, m_s = contrib[rows], mean_over[rows]
                    acc = sums.setdefault((split, k), [np.zeros(len(algos)), np.zeros((len(algos), n_comp)),
                                                       np.zeros((len(algos), n_comp))])
                    for j, ans in enumerate(answers):
                        a = ans[rows]  # (n', q)
                        ok = a >= 0
                        if not ok.any():
                            continue
                        at = np.take_along_axis(c_s, np.maximum(a, 0)[..., None, None], axis=-1)[..., 0]  # (n', q, c)
                        acc[0][j] += ok.sum()
                        acc[1][j] += at[ok].sum(0, dtype=np.float64)
                        acc[2][j] += (at - m_s)[ok].sum(0, dtype=np.float64)
    rows_out = []
    for (split, k), (n, s, sv) in sorted(sums.items(), key=lambda kv: (kv[0][0] != "id", kv[0][1])):
        for j, alg in enumerate(algos):
            for c, name in enumerate(comps):
                layer, head = _layer_head(name)
                cnt = int(n[j])
                rows_out.append({"split": split, "k": int(k), "algorithm": alg, "component": name, "layer": layer,
                                 "head": head, "n_cells": cnt,
                                 "dla": s[j, c] / cnt if cnt else np.nan,
                                 "dla_vs_mean": sv[j, c] / cnt if cnt else np.nan})
    out = pd.DataFrame(rows_out, columns=list(DLA_COLUMNS))
    for col in ("layer", "head"):
        out[col] = out[col].astype("Int64")
    return out


def _layer_head(name: str) -> tuple[int | None, int | None]:
    """(layer, head) of a DLA component name; None where it has none (embed, bias, an MLP's head)."""
    import re

    m = re.fullmatch(r"L(\d+)(?:H(\d+)|mlp)", name)
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None)
