"""What a comparison runs over, checked once: a checkpoint, k, tasks, example sequences, solvers.

Every library function (:func:`compare.compare_checkpoint`, :func:`compare.ablate`,
:func:`compare.trajectory`) and every command reads its inputs through
:func:`comparison_inputs`, so a bad value gets the same one-line
:class:`~compare.errors.UsageError` from a notebook and from the console.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Union

import numpy as np

import model
from algos.solvers import reference_solvers
from algos.solvers.base import Predictor
from compare.engine.grid import (
    build_sequences,
    check_ks,
    parse_example_sequence,
    parse_k,
    parse_task_list,
    select_tasks,
)
from compare.errors import UsageError
from model.checkpoint import Checkpoint, CheckpointError
from model.predictor import ModelPredictor

__all__ = [
    "CheckpointLike",
    "ComparisonInputs",
    "load",
    "comparison_inputs",
    "model_predictor",
    "solvers",
    "base_manifest",
    "checkpoint_block",
    "package_versions",
    "parse_batch_size",
    "check_precision",
    "PRECISIONS",
]

_PACKAGES = ("icl-modgrok", "numpy", "pandas", "pyarrow", "matplotlib", "torch", "galois", "tqdm")

#: A checkpoint as the library takes it: a loaded one, a path, or a bundled name ("d4.pt").
CheckpointLike = Union[Checkpoint, str, "os.PathLike[str]"]


def load(ckpt: CheckpointLike) -> Checkpoint:
    """Load a checkpoint by path or bundled name (``"d4.pt"``, ``"d2.pt"``, ``"d4-p7.pt"``).

    A file of that name in the working folder wins over the bundled one. Loading never
    runs code (``torch.load(weights_only=True)``).

    >>> ck = load("d4.pt")
    >>> ck.setting.p, ck.model_config.n_layer
    (11, 4)
    """
    if isinstance(ckpt, Checkpoint):
        return ckpt
    return model.load(ckpt)


@dataclass(frozen=True)
class ComparisonInputs:
    """Everything :func:`comparison_inputs` checked: the checkpoint and what a comparison runs over."""

    ckpt_spec: str  # how the checkpoint was named (path or bundled name)
    ckpt: Checkpoint
    ks: tuple[int, ...]
    tasks: np.ndarray  # (n_tasks, 2) int64
    sequences: np.ndarray  # (n_seq, max k, 2) int64: the example inputs, shared by every task
    references: list[Predictor]
    tasks_spec: str
    sequences_note: str
    seed: int
    n_boot: int

    @property
    def path(self) -> Path:
        return Path(self.ckpt.path) if self.ckpt.path is not None else Path(self.ckpt_spec)


def _ks(k: int | str | Iterable[int]) -> tuple[int, ...]:
    if isinstance(k, str):
        return parse_k(k)
    if isinstance(k, (int, np.integer)):
        return parse_k(str(int(k)))
    values = [int(v) for v in k]
    if not values:
        raise UsageError("--k: no k given")
    return parse_k(",".join(map(str, values)))


def _tasks_spec(tasks: str | Iterable[Sequence[int]]) -> str:
    if isinstance(tasks, str):
        if tasks.strip().lower() not in ("id", "ood", "all"):
            parse_task_list(tasks)
        return tasks
    pairs = [tuple(int(v) for v in t) for t in tasks]
    if not pairs or any(len(t) != 2 for t in pairs):
        raise UsageError(f"--tasks: expected pairs (a, b), got {pairs!r}")
    return ";".join(f"{a},{b}" for a, b in pairs)


def solvers(setting: Any, names: str | Sequence[str] | None = None) -> list[Predictor]:
    """The reference solvers of a task setting, all or those named (in the suite's order).

    >>> [s.name for s in solvers(load("d4.pt").setting, "ratio_matching,modular_regression")]
    ['ratio_matching', 'modular_regression']
    """
    references = reference_solvers(getattr(setting, "setting", setting))
    wanted = _names(names, "--solvers")
    if wanted is None:
        return references
    known = [r.name for r in references]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise UsageError(f"--solvers: unknown solver {unknown[0]!r} (known: {', '.join(known)})")
    return [r for r in references if r.name in wanted]


def comparison_inputs(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int],
    *,
    tasks: str | Iterable[Sequence[int]] = "all",
    sequences: int = 0,
    examples: Sequence[str | np.ndarray] = (),
    authors_sequence: bool = True,
    seed: int = 0,
    solver_names: str | Sequence[str] | None = None,
    n_boot: int = 1000,
) -> ComparisonInputs:
    """Check what a comparison runs over (values that need no checkpoint first), load the
    checkpoint and build the tasks, example sequences and solvers.

    ``k``: ``3``, ``"1..8"``, ``"1,2,4"`` or ``range(1, 9)``. ``tasks``: ``"id"``, ``"ood"``,
    ``"all"``, ``"a,b;a,b"`` or a list of pairs. ``sequences``: random example sequences
    after the authors' shared one (unless ``authors_sequence=False``) and the ``examples``
    given by hand (``"x,y;x,y;..."`` or arrays of shape (max k, 2)).
    """
    ks = _ks(k)
    tasks_spec = _tasks_spec(tasks)
    wanted = _names(solver_names, "--solvers")
    if sequences < 0:
        raise UsageError(f"--sequences must be >= 0, got {sequences}")
    if n_boot < 0:
        raise UsageError(f"--n-boot must be >= 0, got {n_boot}")
    spec = ckpt.name if isinstance(ckpt, Checkpoint) else str(ckpt)
    loaded = load(ckpt)
    setting = loaded.setting
    p = setting.p
    check_ks(ks, loaded.max_k, p)
    chosen = select_tasks(setting, tasks_spec)
    given = [
        parse_example_sequence(e, p, max(ks)) if isinstance(e, str) else _given(np.asarray(e), p, max(ks))
        for e in examples
    ]
    seqs = build_sequences(p, max(ks), sequences, seed, authors=authors_sequence, given=given)
    references = solvers(setting, wanted)
    note = _sequences_note(authors_sequence, len(given), sequences, seed)
    return ComparisonInputs(spec, loaded, ks, chosen, seqs, references, tasks_spec, note, seed, n_boot)


def _given(e: np.ndarray, p: int, k_max: int) -> np.ndarray:
    spec = ";".join(f"{int(x)},{int(y)}" for x, y in e.reshape(-1, 2))
    return parse_example_sequence(spec, p, k_max)


#: Precisions of analysis runs: fp32 (the default, on every device) or bf16 autocast (on request).
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """An analysis precision, checked: ``fp32`` or ``bf16`` (``auto`` is taken as fp32: analyses
    never change precision with the device, so a GPU gives the CPU's numbers)."""
    value = "fp32" if precision == "auto" else precision
    if value not in PRECISIONS:
        raise UsageError(f"--precision: expected fp32 or bf16, got {precision!r}")
    return value


def model_predictor(
    ckpt: Checkpoint, device: str = "auto", batch_size: int | None = None, precision: str = "fp32"
) -> ModelPredictor:
    """The transformer of ``ckpt`` behind the predictor interface, in fp32 unless ``precision``
    says bf16 (one clear line when its weights do not fit its config)."""
    precision = check_precision(precision)
    try:
        return ModelPredictor(ckpt, device=device, batch_prefixes=batch_size, precision=precision)
    except (RuntimeError, KeyError, TypeError) as exc:  # weights that do not fit the config
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{ckpt.path}: weights do not fit the model ({first[:200]})") from None


def base_manifest(inputs: ComparisonInputs, tool: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The manifest keys every comparison folder carries: argv, versions, checkpoint, task
    setting, k, tasks, example sequences, seed and bootstrap."""
    return {
        **manifest_header(tool, inputs.ckpt_spec, inputs.path, inputs.ckpt, argv),
        "setting": inputs.ckpt.setting.to_dict(),
        "ks": list(inputs.ks),
        "tasks_spec": inputs.tasks_spec,
        "n_tasks": int(len(inputs.tasks)),
        "sequences": inputs.sequences.tolist(),
        "sequences_note": inputs.sequences_note,
        "seed": inputs.seed,
        "n_boot": inputs.n_boot,
    }


def parse_batch_size(spec: int | str | None) -> int | None:
    """A batch size: None for auto, else a positive integer."""
    if spec is None or str(spec).strip().lower() == "auto":
        return None
    try:
        n = int(spec)
    except ValueError:
        raise UsageError(f"--batch-size must be a positive integer or auto, got {spec!r}") from None
    if n < 1:
        raise UsageError(f"--batch-size must be >= 1, got {n}")
    return n


def manifest_header(
    tool: str, spec: str, path: Path | None, ckpt: Checkpoint, argv: Sequence[str] | None = None,
    versions: dict[str, str] | None = None, *, tasks: bool = True,
) -> dict[str, Any]:
    """The keys every manifest starts with: the tool, its argv, package versions, the checkpoint
    (``path``, or ``spec`` when it has none) and its task setting (with ``tasks``, the
    pre-training and o.o.d. task lists)."""
    setting = ckpt.setting
    head = {
        "tool": tool,
        "format": 1,
        "argv": list(argv) if argv is not None else [],
        "versions": versions if versions is not None else package_versions(),
        "checkpoint": checkpoint_block(spec, Path(path) if path is not None else Path(spec), ckpt),
        "setting_fingerprint": setting.fingerprint(),
        "p": setting.p,
    }
    if tasks:
        head["pretrain_tasks"] = [list(t) for t in setting.pretrain_tasks]
        head["ood_tasks"] = [list(t) for t in setting.ood_tasks]
    return head


def checkpoint_block(spec: str, path: Path, ckpt: Checkpoint) -> dict[str, Any]:
    """What a manifest says of the checkpoint it was computed from."""
    return {
        "spec": spec,
        "path": str(Path(path).resolve()),
        "name": ckpt.name,
        "sha256": ckpt.sha256,
        "step": ckpt.step,
        "max_k": ckpt.max_k,
    }


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _names(spec: str | Sequence[str] | None, flag: str) -> list[str] | None:
    if spec is None:
        return None
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [s for s in names if s]
    if not names:
        raise UsageError(f"{flag}: no names in {spec!r}")
    return names


def _sequences_note(authors: bool, n_given: int, n_random: int, seed: int) -> str:
    parts = []
    if authors:
        parts.append("sequence 0: the authors' convention (random.seed(1), shared by all tasks)")
    first = 0 if not authors else 1
    if n_given:
        parts.append(
            f"sequence{'s' if n_given > 1 else ''} {first}{f'..{first + n_given - 1}' if n_given > 1 else ''}"
            ": given with --examples"
        )
        first += n_given
    if n_random:
        parts.append(f"sequences {first}..{first + n_random - 1}: uniform random, seed {seed}")
    return "; ".join(parts)
