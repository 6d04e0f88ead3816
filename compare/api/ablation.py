"""Ablation as a library call: the model with each component removed, scored like any predictor.

>>> tab = compare.ablate("d4.pt", k=range(1, 9), components="L0H0,L0H1").table   # doctest: +SKIP

An ablated model is just another subject predictor (:class:`model.ablation.AblatedPredictor`);
the plain model and every ablation run through the same loop and summaries as
:func:`compare.compare_checkpoint`, and :func:`compare.engine.ablation_table.ablation_rows`
turns each into rows of one table with paired bootstrap changes against the plain model.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.api.inputs import CheckpointLike, base_manifest, comparison_inputs, model_predictor, parse_batch_size
from compare.api.stream import progress_bar, stream_aggregates
from compare.engine.ablation_table import ablation_rows, most_damaging
from compare.engine.breakdowns import task_panels
from compare.engine.grid import parse_task_list, task_splits
from compare.engine.summary import paired_differences, summaries
from compare.errors import UsageError
from compare.storage import files

__all__ = ["AblationResult", "ablate", "ZERO_DEFINITION", "INTERVALS"]

ZERO_DEFINITION = (
    "the component's output set to zero at every position: a head's slice of blocks.{l}.attn.hook_z "
    "(before the output projection), an attention layer's blocks.{l}.hook_attn_out, an MLP's blocks.{l}.hook_mlp_out"
)
INTERVALS = (
    "rates: percentile bootstrap over (task, sequence) units within each split (as summary.csv); "
    "changes (delta_...): paired bootstrap, the same resampled units for the ablated and the plain model, "
    "the percentile interval of the per-resample difference"
)


@dataclass
class AblationResult:
    """``table``: one row per component (``none`` first), split and k (``ablation.csv``);
    ``panels``: the grid-figure data of the plain model and the most damaging ablation on
    ``grid_task``; ``most_damaging``: that component's name (None when none hurts)."""

    table: pd.DataFrame
    manifest: dict[str, Any]
    panels: dict[str, dict]
    grid_task: tuple[str, int, int]
    most_damaging: str | None
    figures: list[str] = field(default_factory=list)

    def write_report(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``ablation.csv``, the heatmaps, grid figures, manifest and pages atomically into
        an absent or empty folder, or over an earlier ``compare ablate`` report of the same
        checkpoint (another checkpoint's only with ``overwrite``), replacing only the suite's
        files; any other folder is refused (:mod:`compare.storage.ownership`)."""
        from compare.reports.ablation import write_ablation_report

        out, self.manifest, self.figures = files.publish_report(
            folder, self.manifest,
            lambda tmp, m: write_ablation_report(tmp, self.table, m, self.panels, self.grid_task),
            overwrite=overwrite, add_to_total=True)
        return out


def ablate(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int],
    *,
    components: str = "all",
    mode: str = "zero",
    grid_task: str | Sequence[int] | None = None,
    tasks: str | Iterable[Sequence[int]] = "all",
    sequences: int = 0,
    examples: Sequence[str | np.ndarray] = (),
    authors_sequence: bool = True,
    seed: int = 0,
    solvers: str | Sequence[str] | None = None,
    n_boot: int = 1000,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | str | None = None,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> AblationResult:
    """Score the plain model and the model with each of ``components`` removed.

    ``components``: ``"all"`` (every head, attention layer and MLP) or ``"L0H1,L2attn,L1mlp,L0H1+L1H2"``;
    ``mode``: ``"zero"`` or ``"mean"`` (replaced by its mean over the run's own prompts at each
    position, per k). The plain model, the means and every ablated copy run in one
    ``precision`` (fp32 unless bf16 is asked for), so the ``none`` rows equal
    :func:`compare.compare_checkpoint`'s. The other arguments as there.
    """
    t_start = time.perf_counter()
    if mode not in ("zero", "mean"):
        raise UsageError(f"--mode: expected zero or mean, got {mode!r}")
    wanted: tuple[int, int] | None = None
    if grid_task is not None:
        pairs = parse_task_list(grid_task) if isinstance(grid_task, str) else [tuple(int(v) for v in grid_task)]
        if len(pairs) != 1 or len(pairs[0]) != 2:
            raise UsageError(f"--grid-task: give one task 'a,b', got {grid_task!r}")
        wanted = (int(pairs[0][0]), int(pairs[0][1]))
    batch = parse_batch_size(batch_size)
    inputs = comparison_inputs(
        ckpt,
        k,
        tasks=tasks,
        sequences=sequences,
        examples=examples,
        authors_sequence=authors_sequence,
        seed=seed,
        solver_names=solvers,
        n_boot=n_boot,
    )
    ck, setting = inputs.ckpt, inputs.ckpt.setting
    cfg = ck.model_config

    from model.ablation import NONE, AblatedPredictor, Ablation, parse_ablations, prompt_means

    try:
        chosen = [a for a in parse_ablations(components, cfg.n_layer, cfg.n_head) if not a.is_none]
    except ValueError as exc:
        raise UsageError(f"--components: {exc}") from None
    ablations = [Ablation(NONE), *chosen]
    splits = task_splits(setting, inputs.tasks)
    task_list: list[tuple[int, int]] = [(int(a), int(b)) for a, b in inputs.tasks.tolist()]
    if wanted is None:
        pick = [i for i, s in enumerate(splits) if s == "ood"] or [0]
        wanted = task_list[pick[0]]
    elif wanted not in task_list:
        raise UsageError(f"--grid-task: task ({wanted[0]},{wanted[1]}) is not among the tasks run")
    shown_task: tuple[int, int] = wanted
    grid_split = str(splits[task_list.index(shown_task)])

    base = model_predictor(ck, device, batch, precision)
    from compare.reports.run import GRID_ALGORITHMS

    t0 = time.perf_counter()
    means = prompt_means(base, inputs.tasks, inputs.sequences, inputs.ks) if mode == "mean" else None
    t_means = time.perf_counter() - t0
    ref_names = [r.name for r in inputs.references]
    algos = [a for a in GRID_ALGORITHMS if a in ref_names] or ref_names[:2]
    total = len(ablations) * len(inputs.tasks) * len(inputs.sequences) * len(inputs.ks)
    parts: list[pd.DataFrame] = []
    panels: dict[str, dict] = {}
    base_sums = None
    t_engine = t_summary = 0.0
    with progress_bar(total, "compare ablate", progress) as bar:
        for ab in ablations:
            subject = AblatedPredictor(
                ck,
                ab,
                mode,
                means,
                device=str(base.device),
                batch_prefixes=batch,
                precision=base.precision,
                net=base.net,
            )
            t0 = time.perf_counter()
            found: dict[str, dict] = {}

            def grid_panel(
                i: int, cells: pd.DataFrame, name: str = subject.name, into: dict[str, dict] = found
            ) -> None:
                if task_list[i] == shown_task:
                    into["panel"] = task_panels(cells, setting.p, shown_task, 0, name, algos)

            acc, _ = stream_aggregates(inputs, subject, on_task=grid_panel, progress=bar)
            t_engine += time.perf_counter() - t0
            t0 = time.perf_counter()
            agg = acc.result()
            tables = summaries(agg, n_boot=n_boot, seed=seed)
            base_sums = agg.sums if base_sums is None else base_sums
            diffs = paired_differences(agg.sums, base_sums, n_boot=n_boot, seed=seed)
            parts.append(ablation_rows(ab.name, tables.summary, diffs, subject.name, ref_names))
            panels[ab.name] = found.get("panel", {})
            del acc, agg, tables
            t_summary += time.perf_counter() - t0
    table = pd.concat(parts, ignore_index=True)
    worst = most_damaging(table)
    shown = {NONE: panels[NONE], **({worst: panels[worst]} if worst else {})}
    manifest = {
        **base_manifest(inputs, "compare ablate", argv),
        "subject": "model",
        "references": ref_names,
        "device": str(base.device),
        "precision": base.precision,
        "ablation": {
            "mode": mode,
            "components_spec": components,
            "components": [a.name for a in chosen],
            "members": {a.name: [c.name for c in a.components] for a in chosen},
            "definition": ZERO_DEFINITION
            if mode == "zero"
            else (
                "the component's output (as for zero ablation: a head's slice of hook_z, hook_attn_out, "
                "hook_mlp_out) replaced by its mean " + (means.description if means is not None else "")
            ),
            "mean_prompts": None if means is None else {int(kk): int(n) for kk, n in means.n_prompts.items()},
            "intervals": INTERVALS,
        },
        "grid_task": {"split": grid_split, "task": list(shown_task), "sequence": 0},
        "most_damaging": worst,
        "timings": {
            "means_seconds": round(t_means, 3),
            "engine_seconds": round(t_engine, 3),
            "summaries_seconds": round(t_summary, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
            "seconds_per_component": round((time.perf_counter() - t_start) / len(ablations), 3),
        },
    }
    return AblationResult(table, manifest, shown, (grid_split, *shown_task), worst)
