"""Compare a trained transformer with exact GF(p) algorithms, cell by cell, on k-shot grids.

The library (every command of the ``compare`` console script is one of these calls)::

    import compare

    ck = compare.load("d4.pt")                                  # a bundled name or a path
    res = compare.compare_checkpoint(ck, k=range(1, 9))         # summaries as DataFrames
    res.summary.query("split == 'ood' and k == 8 and predictor == 'model'")
    res.write_report("reports/d4")                              # the folder `compare run` writes

    abl = compare.ablate(ck, k=8, components="L0H0,L0H1")       # .table: ablation.csv
    ins = compare.inspect_checkpoint(ck, task=(7, 7), k=8)      # .scores: scores.csv
    trj = compare.trajectory("runs/d4", k=[2, 8])               # .table, .crossings
    old = compare.open_report("reports/d4")                     # a finished folder, read back

Sub-packages by role: :mod:`compare.engine` (pure: grids, the comparison stream,
aggregates, summaries), :mod:`compare.storage` (run folders, per-task cells, atomic files),
:mod:`compare.reports` (tables to figures and pages), :mod:`compare.api` (these functions)
and :mod:`compare.cli` (the console script). Names load lazily, so ``compare report`` and
``open_report`` run without torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "load",
    "solvers",
    "comparison_inputs",
    "compare_checkpoint",
    "ComparisonResult",
    "open_report",
    "rebuild_report",
    "ablate",
    "AblationResult",
    "trajectory",
    "TrajectoryResult",
    "inspect_checkpoint",
    "InspectResult",
    "patch",
    "PatchResult",
    "lens",
    "LensResult",
    "probe",
    "ProbeResult",
    "mixture",
    "mixture_trajectory",
    "MixtureResult",
    "export_transformer_lens",
    "UsageError",
    "InputError",
]

_WHERE = {
    "load": "compare.api.inputs",
    "solvers": "compare.api.inputs",
    "comparison_inputs": "compare.api.inputs",
    "compare_checkpoint": "compare.api.comparison",
    "ComparisonResult": "compare.api.result",
    "open_report": "compare.api.report",
    "rebuild_report": "compare.api.report",
    "ablate": "compare.api.ablation",
    "AblationResult": "compare.api.ablation",
    "trajectory": "compare.api.trajectory",
    "TrajectoryResult": "compare.api.trajectory",
    "inspect_checkpoint": "compare.api.inspection",
    "InspectResult": "compare.api.inspection",
    "patch": "compare.api.patching",
    "PatchResult": "compare.api.patching",
    "lens": "compare.api.lens",
    "LensResult": "compare.api.lens",
    "probe": "compare.api.probes",
    "ProbeResult": "compare.api.probes",
    "mixture": "compare.api.mixture",
    "mixture_trajectory": "compare.api.mixture",
    "MixtureResult": "compare.api.mixture",
    "export_transformer_lens": "model.transformer_lens",
    "UsageError": "compare.errors",
    "InputError": "compare.errors",
}

if TYPE_CHECKING:
    from compare.api.ablation import AblationResult, ablate
    from compare.api.comparison import compare_checkpoint
    from compare.api.inputs import comparison_inputs, load, solvers
    from compare.api.inspection import InspectResult, inspect_checkpoint
    from compare.api.lens import LensResult, lens
    from compare.api.mixture import MixtureResult, mixture, mixture_trajectory
    from compare.api.patching import PatchResult, patch
    from compare.api.probes import ProbeResult, probe
    from compare.api.report import open_report, rebuild_report
    from compare.api.result import ComparisonResult
    from compare.api.trajectory import TrajectoryResult, trajectory
    from compare.errors import InputError, UsageError
    from model.transformer_lens import export_transformer_lens


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'compare' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
