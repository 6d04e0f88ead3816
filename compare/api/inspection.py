"""The paper's representation analyses as a library call: one task, example sequence and shot.

>>> res = compare.inspect_checkpoint("d4.pt", task=(7, 7), k=8)     # doctest: +SKIP
>>> res.scores.query("analysis == 'head_pca'")                      # doctest: +SKIP

Attention maps and what each head attends to, per-head PCA of shot k's x and y positions
("circles of circles"), the PCA of the residue embeddings (even/odd planes) and the
Pearson maps of the residual stream (the kaleidoscope), each with its score
(:mod:`interp`), from one forward pass over the p^2 prompts of the shot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.api.inputs import CheckpointLike, load, manifest_header
from compare.engine.grid import build_sequences, parse_task_list
from compare.errors import UsageError
from compare.storage import files

__all__ = ["InspectResult", "inspect_checkpoint", "parse_layers"]


@dataclass
class InspectResult:
    """The arrays of every analysis (``maps``, ``shares``, ``heads``, ``embedding``,
    ``similarity``, ``prompts``), ``scores`` (one row per score, ``scores.csv``) and the
    manifest; :meth:`write_report` draws the figures and pages."""

    maps: Any
    shares: Any
    heads: Any
    embedding: Any
    similarity: Any
    prompts: Any
    scores: pd.DataFrame
    manifest: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def write_report(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """PNGs, ``scores.csv``, manifest and pages, atomically into ``folder``: an absent or
        empty folder, or an earlier ``compare inspect`` report of the same checkpoint (another
        checkpoint's only with ``overwrite``), whose own files are replaced and the user's
        kept; any other folder is refused (:mod:`compare.storage.ownership`)."""
        from compare.reports.inspect import write_inspect_report

        t0 = time.perf_counter()
        out = Path(folder)
        manifest = dict(self.manifest)
        with files.atomic_output_dir(out, overwrite=overwrite) as tmp:
            self.figures = list(
                write_inspect_report(
                    tmp,
                    manifest,
                    self.maps,
                    self.shares,
                    self.heads,
                    self.embedding,
                    self.similarity,
                    self.prompts,
                    self.scores,
                )
            )
            total = manifest.get("timings", {}).get("total_seconds", 0.0) + time.perf_counter() - t0
            manifest["timings"] = {"total_seconds": round(total, 3)}
            files.write_manifest(tmp, manifest)
        self.manifest = manifest
        return out.expanduser().absolute()


def inspect_checkpoint(
    ckpt: CheckpointLike,
    *,
    task: str | Sequence[int] | None = None,
    k: int | None = None,
    sequence: str | int = "authors",
    seed: int = 0,
    layers: str | Sequence[int] = "all",
    head_maps: bool = True,
    device: str = "auto",
    batch_size: int = 256,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> InspectResult:
    """Every representation analysis of ``ckpt`` for one task, example sequence and shot ``k``.

    ``task``: ``(a, b)`` or ``"a,b"`` (default: the first o.o.d. task with a, b != 0); ``k``:
    the shot analysed, 2..max k (default 8 or the largest); ``sequence``: ``"authors"`` or N,
    random sequence N as ``compare run --sequences N --seed S`` draws it; ``layers``:
    ``"all"``, ``"0,2"`` or a list.
    """
    t_start = time.perf_counter()
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    from model.device import pick_device

    ck = load(ckpt)
    spec = ck.name if not isinstance(ckpt, (str, Path)) else str(ckpt)
    setting, mcfg = ck.setting, ck.model_config
    p = setting.p
    k = k if k is not None else min(8, ck.max_k)
    if not 2 <= k <= ck.max_k:
        raise UsageError(
            f"--k: k = {k} is outside 2..{ck.max_k} (the checkpoint's context allows at most "
            f"{ck.max_k}; the attention shares need an earlier shot)"
        )
    layer_list = parse_layers(layers if isinstance(layers, str) else ",".join(map(str, layers)), mcfg.n_layer)
    the_task = _task(task, setting)
    seq, sequence_note = _sequence(sequence, p, k, seed)
    dev = pick_device(device)
    net = ck.build_model(dev).eval()

    from algos.prompts import make_examples
    from compare.api.stream import progress_bar
    from compare.reports.inspect import score_table
    from interp.activations import collect, merge_sites
    from interp.attention import attention_maps, share_sites, shares_from
    from interp.pca import embedding_pca, head_pca_from, head_pca_sites
    from interp.prompts import shot_prompts
    from interp.similarity import similarity_from, similarity_sites

    prompts = shot_prompts(p, the_task, seq, k)
    one = make_examples(p, np.asarray([the_task]), seq, k).reshape(-1)  # (3k,) the k-shot prompt itself
    T = prompts.tokens.shape[1]
    sites = merge_sites(
        share_sites(layer_list, T),
        head_pca_sites(prompts, layer_list),
        similarity_sites(prompts, layer_list, head_maps),
    )
    with progress_bar(len(prompts.tokens), "compare inspect", progress) as bar:
        cache = collect(net, prompts.tokens, sites, batch=batch_size, progress=bar)  # one forward pass
    maps = attention_maps(net, one, layer_list)
    shares = shares_from(cache, layer_list, T)
    heads = head_pca_from(cache, prompts, layer_list)
    sims = similarity_from(cache, prompts, layer_list, head_maps)
    del cache
    emb = embedding_pca(net, p)
    scores = score_table(shares, heads, emb, sims)
    manifest = {
        **manifest_header("compare inspect", spec, ck.path, ck, argv, tasks=False),
        "model": {"d_model": mcfg.d_model, "n_layer": mcfg.n_layer, "n_head": mcfg.n_head},
        "task": list(the_task),
        "task_split": "ood"
        if tuple(the_task) in {tuple(t) for t in setting.ood_tasks}
        else ("id" if tuple(the_task) in {tuple(t) for t in setting.pretrain_tasks} else "neither"),
        "k": k,
        "sequence": seq.tolist(),
        "sequence_note": sequence_note,
        "fixed_examples": [[int(v) for v in row] for row in make_examples(p, np.asarray([the_task]), seq, k - 1)[0]]
        if k > 1
        else [],
        "layers": layer_list,
        "generator": heads.generator,
        "device": str(dev),
        "timings": {"total_seconds": round(time.perf_counter() - t_start, 3)},
    }
    return InspectResult(maps, shares, heads, emb, sims, prompts, scores, manifest)


def parse_layers(spec: str, n_layer: int) -> list[int]:
    """ "all" or "0,2" -> sorted layer indices, each checked against the model's depth."""
    if spec.strip().lower() == "all":
        return list(range(n_layer))
    try:
        layers = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise UsageError(f"--layers: expected 'all' or layer numbers like 0,2, got {spec!r}") from None
    if not layers:
        raise UsageError("--layers: no layer given")
    bad = [layer for layer in layers if not 0 <= layer < n_layer]
    if bad:
        raise UsageError(f"--layers: no layer {bad[0]} (the model has layers 0..{n_layer - 1})")
    return layers


def _task(spec: str | Sequence[int] | None, setting: Any) -> tuple[int, int]:
    p = setting.p
    if spec is None:  # an o.o.d. task with both components nonzero (the paper's figures use (6, 6) at p = 29)
        pool = sorted(map(tuple, setting.ood_tasks if len(setting.ood_tasks) else setting.pretrain_tasks))
        full = [t for t in pool if t[0] and t[1]]
        first = (full or pool)[0]
        return int(first[0]), int(first[1])
    tasks = parse_task_list(spec) if isinstance(spec, str) else [tuple(int(v) for v in spec)]
    if len(tasks) != 1 or len(tasks[0]) != 2:
        raise UsageError(f"--task: give one task a,b, got {spec!r}")
    a, b = tasks[0]
    if not (0 <= a < p and 0 <= b < p):
        raise UsageError(f"--task: ({a},{b}) is outside Z_{p}^2")
    return int(a), int(b)


def _sequence(spec: str | int, p: int, k: int, seed: int) -> tuple[np.ndarray, str]:
    spec = str(spec).strip().lower()
    if spec in ("authors", "0"):
        return build_sequences(p, k)[0], "the authors' sequence (sequence 0 of `compare run`)"
    try:
        n = int(spec)
    except ValueError:
        raise UsageError(f"--sequence: expected 'authors' or a number N >= 1, got {spec!r}") from None
    if n < 1:
        raise UsageError(f"--sequence: N must be >= 1, got {n}")
    return build_sequences(p, k, n_random=n, seed=seed)[n], f"random sequence {n} (seed {seed})"
