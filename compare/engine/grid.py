"""What a comparison runs over: k values, tasks and in-context example sequences.

Parsing of the command-line specs lives here so that every command reads them the same way:

>>> parse_k("1..4")
(1, 2, 3, 4)
>>> parse_k("1,2,8")
(1, 2, 8)
>>> parse_task_list("3,4; 0,1")
[(3, 4), (0, 1)]
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from algos.errors import InputError
from algos.prompts import authors_sequence, random_sequences
from algos.tasks import TaskSetting

__all__ = [
    "parse_k",
    "check_ks",
    "parse_task_list",
    "parse_example_sequence",
    "select_tasks",
    "task_splits",
    "build_sequences",
    "AUTHORS_SEQUENCE_SEED",
    "TASK_SETS",
]

#: The seed of the paper's grid-figure script (``random.seed(1)`` before drawing shots).
AUTHORS_SEQUENCE_SEED = 1
#: Named task sets accepted by :func:`select_tasks`.
TASK_SETS = ("id", "ood", "all")

_INT = re.compile(r"^[+-]?\d+$")


def _int(text: str, what: str) -> int:
    text = text.strip()
    if not _INT.match(text):
        raise InputError(f"{what}: {text!r} is not an integer")
    return int(text)


def parse_k(spec: str) -> tuple[int, ...]:
    """Parse a k spec: ``3``, ``1..8``, ``1,2,4`` or a mix (``1..4,8``).

    Returns the distinct values in increasing order; every k must be >= 1.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("--k: empty k spec (use e.g. 3, 1..8 or 1,2,4)")
    ks: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise InputError(f"--k: empty item in {spec!r}")
        if ".." in part:
            lo_s, _, hi_s = part.partition("..")
            lo, hi = _int(lo_s, "--k"), _int(hi_s, "--k")
            if hi < lo:
                raise InputError(f"--k: empty range {part!r} (the first value must not exceed the second)")
            values = range(lo, hi + 1)
        else:
            values = range(_int(part, "--k"), _int(part, "--k") + 1)
        for k in values:
            if k < 1:
                raise InputError(f"--k: k must be >= 1, got {k}")
            ks.add(k)
    return tuple(sorted(ks))


def check_ks(ks: tuple[int, ...], max_k: int, p: int | None = None) -> None:
    """Raise ValueError when a k exceeds what the model's context (or the p^2 inputs) allows."""
    if not ks:
        raise InputError("no k values given")
    top = max(ks)
    if top > max_k:
        raise InputError(f"--k: k = {top} exceeds the {max_k} examples the checkpoint's context allows")
    if p is not None and top > p * p:
        raise InputError(f"--k: k = {top} exceeds the {p * p} distinct inputs of Z_{p}^2")


def _parse_pairs(spec: str, flag: str, what: str) -> list[tuple[int, int]]:
    """``"a,b;a,b"`` -> pairs in order (empty items skipped); one clear error otherwise."""
    out: list[tuple[int, int]] = []
    for item in spec.split(";"):
        if not item.strip():
            continue
        parts = item.split(",")
        if len(parts) != 2:
            raise InputError(f"{flag}: cannot read {what} {item.strip()!r} (expected 'a,b')")
        out.append((_int(parts[0], flag), _int(parts[1], flag)))
    if not out:
        raise InputError(f"{flag}: no {what} in {spec!r}")
    return out


def parse_task_list(spec: str) -> list[tuple[int, int]]:
    """Parse ``"a,b;a,b"`` into a list of pairs (order kept, duplicates dropped)."""
    return list(dict.fromkeys(_parse_pairs(spec, "--tasks", "task")))


def parse_example_sequence(spec: str, p: int, k_max: int) -> np.ndarray:
    """An example sequence given by hand, ``"x,y;x,y;..."``: its first ``k_max`` inputs as
    a (k_max, 2) int64 array; every input in Z_p^2, at least ``k_max`` of them."""
    pairs = _parse_pairs(spec, "--examples", "input")
    for x, y in pairs:
        if not (0 <= x < p and 0 <= y < p):
            raise InputError(f"--examples: input ({x},{y}) is outside Z_{p}^2 (entries must lie in [0, {p}))")
    if len(pairs) < k_max:
        raise InputError(f"--examples: k goes up to {k_max} but {spec!r} gives only {len(pairs)} input(s)")
    return np.asarray(pairs[:k_max], dtype=np.int64)


def select_tasks(setting: TaskSetting, spec: str) -> np.ndarray:
    """Tasks named by ``spec`` as an (n, 2) int64 array.

    ``id``: the pre-training tasks; ``ood``: the setting's o.o.d. tasks; ``all``: both
    (i.d. first); otherwise an explicit list ``"a,b;a,b"`` of tasks in Z_p^2.
    """
    key = spec.strip().lower()
    if key == "id":
        tasks = setting.pretrain_array
    elif key == "ood":
        tasks = setting.ood_array
    elif key == "all":
        tasks = np.concatenate([setting.pretrain_array, setting.ood_array])
    else:
        pairs = parse_task_list(spec)
        p = setting.p
        for a, b in pairs:
            if not (0 <= a < p and 0 <= b < p):
                raise InputError(f"--tasks: task ({a},{b}) is outside Z_{p}^2 (entries must lie in [0, {p}))")
        tasks = np.asarray(pairs, dtype=np.int64)
    if tasks.shape[0] == 0:
        raise InputError(f"--tasks: the setting has no {key} tasks")
    return np.asarray(tasks, dtype=np.int64).reshape(-1, 2)


def task_splits(setting: TaskSetting, tasks: np.ndarray) -> np.ndarray:
    """'id' for pre-training tasks, 'ood' for every other task of Z_p^2, as an object array."""
    pre = set(setting.pretrain_tasks)
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    return np.array(["id" if t in pre else "ood" for t in map(tuple, tasks.tolist())], dtype=object)


def build_sequences(
    p: int, k_max: int, n_random: int = 0, seed: int = 0, authors: bool = True,
    given: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """The run's example sequences, (n_seq, k_max, 2).

    Sequence 0 is the authors' convention (one sequence shared by all tasks, drawn as
    their grid-figure script does) when ``authors`` is true; then the ``given`` sequences
    (each (k_max, 2), see :func:`parse_example_sequence`); then ``n_random`` sequences of
    distinct uniform inputs drawn with ``seed``. The random draw does not depend on the
    others, so adding given sequences leaves the random ones unchanged.
    """
    if n_random < 0:
        raise InputError(f"--sequences must be >= 0, got {n_random}")
    parts = []
    if authors:
        parts.append(authors_sequence(p, k_max, seed=AUTHORS_SEQUENCE_SEED)[None])
    parts += [np.asarray(g, dtype=np.int64).reshape(1, k_max, 2) for g in given]
    if n_random:
        parts.append(random_sequences(p, n_random, k_max, seed=seed))
    if not parts:
        raise InputError("no example sequences: use the authors' sequence, --examples or --sequences N with N >= 1")
    return np.concatenate(parts).astype(np.int64)
