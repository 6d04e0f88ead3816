"""The task setting: the one source of truth for p, the task sets and the input split.

A task is a vector (a, b) in Z_p^2 with z = (a*x + b*y) mod p. Pre-training tasks come
from the paper's *rectangular rule*: n base tasks (a, b) drawn uniformly without
replacement, and for each one three partners (a, y), (x, b), (x, y) with x != y and both
different from a and b, none already chosen. Every other task is out-of-distribution.
All p^2 inputs (x, y), indexed x*p + y, are put in one order shared by every task; the
first ``n_train_inputs`` of that order are the *train inputs*, the rest *test inputs*.

Two constructors:

- :meth:`TaskSetting.build` uses numpy generators seeded explicitly (the project's own
  convention) and reseeds the rectangular rule when a greedy pass cannot complete;
- :meth:`TaskSetting.authors_replay` replays the paper's released code (Python
  ``random`` for tasks and the o.o.d. shuffle, legacy ``np.random.seed`` + ``shuffle``
  for the input split) so that the task sets of its released runs are rebuilt exactly.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from algos.errors import InputError
from algos.field import check_prime

__all__ = ["TaskSetting", "task_labels", "line_multiples_in", "same_line_counts", "SETTING_FORMAT", "MAX_P",
           "check_supported_p"]

SETTING_FORMAT = 1
#: The largest p a task setting is built for (the largest prime below 1024). A setting holds
#: the order of all p^2 inputs and draws from all p^2 tasks; at p = 1021 that is about a
#: million of each (some 400 MB and a few seconds); p = 1000003 would need terabytes.
MAX_P = 1021
_MAX_PARTNER_TRIES = 1000
_MAX_RESEEDS = 50


def check_supported_p(p: int) -> int:
    """``p`` when it is at most :data:`MAX_P`; one line (:class:`InputError`) before any p^2 allocation otherwise."""
    if p > MAX_P:
        raise InputError(
            f"p = {p} is beyond what the suite supports (p <= {MAX_P}): a task setting holds all p^2 = {p * p:,} "
            "inputs and tasks, which would not fit in memory"
        )
    return p


def task_labels(p: int, tasks: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Labels z = (a*x + b*y) mod p for every task and input.

    tasks: (n, 2) int, inputs: (m, 2) int -> (n, m) int64.
    """
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    inputs = np.asarray(inputs, dtype=np.int64).reshape(-1, 2)
    labels: np.ndarray = (tasks @ inputs.T) % p  # (n, m)
    return labels



def same_line_counts(p: int, tasks: np.ndarray, among: np.ndarray) -> np.ndarray:
    """For each task (a, b), how many tasks of ``among`` lie on its line through the
    origin: the multiples c·(a, b), c = 1..p-1 (the task itself counts when in ``among``).

    Tasks on one line share their zero set {(x, y): a·x + b·y = 0} and differ only by a
    scale of every answer, so an o.o.d. task whose line is full of pre-training tasks is
    o.o.d. only by that scale. (0, 0) is alone on its "line".
    tasks (n, 2), among (m, 2) -> (n,) int64.
    """
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    hits = line_multiples_in(p, tasks, among)
    zero = (tasks == 0).all(axis=1)  # its p - 1 "multiples" are all (0, 0): count it once
    return np.where(zero, hits[:, 0], hits.sum(axis=1)).astype(np.int64)


def line_multiples_in(p: int, tasks: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Which multiples c·(a, b), c = 1..p-1, of each task are tasks of ``among``.

    Column c - 1 is scale c; a multiple answers c·z wherever the task answers z, so this
    says which scaled copies of a task's answers a set of tasks holds.
    tasks (n, 2), among (m, 2) -> (n, p-1) bool.
    """
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    among = np.asarray(among, dtype=np.int64).reshape(-1, 2)
    member = np.zeros(p * p, dtype=bool)
    member[among[:, 0] * p + among[:, 1]] = True
    c = np.arange(1, p, dtype=np.int64)
    multiples = (tasks[:, None, :] * c[None, :, None]) % p  # (n, p-1, 2), distinct unless the task is 0
    return member[multiples[..., 0] * p + multiples[..., 1]]


def _as_pairs(tasks: Any, p: int, what: str) -> tuple[tuple[int, int], ...]:
    """Validate a task list as distinct pairs inside Z_p^2."""
    arr = np.asarray(tasks, dtype=np.int64)
    if arr.size == 0:
        return ()
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"{what}: expected shape (n, 2), got {arr.shape}")
    if arr.min() < 0 or arr.max() >= p:
        bad = arr[(arr < 0).any(1) | (arr >= p).any(1)][0].tolist()
        raise InputError(f"{what}: task {tuple(bad)} is outside Z_{p}^2")
    pairs = tuple((int(a), int(b)) for a, b in arr)
    if len(set(pairs)) != len(pairs):
        raise InputError(f"{what}: tasks are not distinct")
    return pairs


@dataclass(frozen=True)
class TaskSetting:
    """Everything that defines a training/evaluation setting, with its provenance.

    Arrays are stored as tuples so the setting is immutable and hashable; use the
    ``*_array`` properties for numpy views.
    """

    p: int
    pretrain_tasks: tuple[tuple[int, int], ...]
    ood_tasks: tuple[tuple[int, int], ...]
    input_order: tuple[int, ...]
    n_train_inputs: int
    alpha: float
    # provenance (how the sets above were drawn)
    convention: str = "native"  # "native" | "authors" | "explicit"
    task_seed: int | None = None
    split_seed: int | None = None
    n_base_tasks: int = 0
    n_random_tasks: int = 0
    max_ood_tasks: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        p = check_supported_p(check_prime(self.p))
        object.__setattr__(self, "pretrain_tasks", _as_pairs(self.pretrain_tasks, p, "pretrain_tasks"))
        object.__setattr__(self, "ood_tasks", _as_pairs(self.ood_tasks, p, "ood_tasks"))
        if set(self.pretrain_tasks) & set(self.ood_tasks):
            raise InputError("pretrain_tasks and ood_tasks overlap")
        order = tuple(int(i) for i in self.input_order)
        if sorted(order) != list(range(p * p)):
            raise InputError(f"input_order must be a permutation of range({p * p})")
        object.__setattr__(self, "input_order", order)
        if not 0 <= self.n_train_inputs <= p * p:
            raise InputError(f"n_train_inputs must be in [0, {p * p}], got {self.n_train_inputs}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def build(
        cls,
        p: int,
        n_base_tasks: int,
        alpha: float,
        task_seed: int = 1,
        split_seed: int = 0,
        n_random_tasks: int = 0,
        max_ood_tasks: int | None = None,
    ) -> TaskSetting:
        """Draw a setting with numpy generators (the project's convention).

        The rectangular rule is greedy; when a base task finds no free partners the
        whole draw is repeated from the next derived stream (at most 50 times), so a
        given seed always yields the same set.
        """
        p = check_supported_p(check_prime(p))
        _check_alpha(alpha)
        if n_base_tasks < 0 or n_random_tasks < 0:
            raise InputError("n_base_tasks and n_random_tasks must be >= 0")
        if 4 * n_base_tasks + n_random_tasks > p * p:
            raise InputError(
                f"{4 * n_base_tasks + n_random_tasks} pre-training tasks requested but Z_{p}^2 has {p * p}"
            )
        if n_base_tasks and p < 5:
            raise InputError(f"the rectangular rule needs p >= 5 (two free values), got p={p}")
        for attempt in range(_MAX_RESEEDS):
            rng = np.random.default_rng([task_seed, attempt])
            tasks = _rectangular_numpy(p, n_base_tasks, rng)
            if tasks is not None:
                break
        else:
            raise InputError(
                f"the rectangular rule could not place {n_base_tasks} base tasks at p={p} "
                f"after {_MAX_RESEEDS} reseeds; use fewer tasks or a larger p"
            )
        taken = set(tasks)
        rest = [t for t in itertools.product(range(p), repeat=2) if t not in taken]
        if n_random_tasks:
            pick = rng.choice(len(rest), size=n_random_tasks, replace=False)
            tasks += [rest[i] for i in pick]
            taken = set(tasks)
            rest = [t for t in rest if t not in taken]
        ood = [rest[i] for i in rng.permutation(len(rest))]
        if max_ood_tasks is not None:
            ood = ood[:max_ood_tasks]
        order = np.random.default_rng(split_seed).permutation(p * p)
        return cls(
            p=p,
            pretrain_tasks=tuple(tasks),
            ood_tasks=tuple(ood),
            input_order=tuple(order.tolist()),
            n_train_inputs=_n_train(p, alpha),
            alpha=float(alpha),
            convention="native",
            task_seed=task_seed,
            split_seed=split_seed,
            n_base_tasks=n_base_tasks,
            n_random_tasks=n_random_tasks,
            max_ood_tasks=max_ood_tasks,
        )

    @classmethod
    def authors_replay(
        cls,
        p: int = 29,
        n_base_tasks: int = 96,
        alpha: float = 0.8,
        task_seed: int = 1,
        split_seed: int = 0,
        n_random_tasks: int = 0,
        max_ood_tasks: int = 256,
    ) -> TaskSetting:
        """Rebuild a setting exactly as the paper's released training script draws it.

        Python ``random`` seeded with ``task_seed`` samples the base tasks, runs the
        rectangular rule and shuffles the o.o.d. list (capped at ``max_ood_tasks`` and
        then to a multiple of 8, as that script does); legacy ``np.random.seed(split_seed)``
        with ``np.random.shuffle`` orders the inputs.
        """
        p = check_supported_p(check_prime(p))
        _check_alpha(alpha)
        if 4 * n_base_tasks + n_random_tasks > p * p:
            raise InputError(f"{4 * n_base_tasks + n_random_tasks} tasks requested but Z_{p}^2 has {p * p}")
        state = random.getstate()
        np_state = np.random.get_state()
        try:
            random.seed(task_seed)
            every: list[tuple[int, int]] = [(a, b) for a, b in itertools.product(range(p), repeat=2)]
            base = [list(t) for t in random.sample(every, n_base_tasks)]
            tasks = _rectangular_python(p, base)
            existing = {tuple(t) for t in tasks}
            remaining = list(set(every) - existing)
            extra = [list(t) for t in random.sample(remaining, n_random_tasks)]
            pre = [(t[0], t[1]) for t in tasks + extra]
            ood = list(set(every) - set(pre))
            random.shuffle(ood)
            ood = ood[:max_ood_tasks]
            ood = ood[: (len(ood) // 8) * 8] if len(ood) % 8 else ood
            np.random.seed(split_seed)
            order = np.arange(p * p)
            np.random.shuffle(order)
        finally:
            random.setstate(state)
            np.random.set_state(np_state)
        return cls(
            p=p,
            pretrain_tasks=tuple(pre),
            ood_tasks=tuple(ood),
            input_order=tuple(order.tolist()),
            n_train_inputs=_n_train(p, alpha),
            alpha=float(alpha),
            convention="authors",
            task_seed=task_seed,
            split_seed=split_seed,
            n_base_tasks=n_base_tasks,
            n_random_tasks=n_random_tasks,
            max_ood_tasks=max_ood_tasks,
        )

    # ------------------------------------------------------------------ views
    @property
    def pretrain_array(self) -> np.ndarray:
        """(n_id, 2) int64 array of pre-training tasks."""
        return np.asarray(self.pretrain_tasks, dtype=np.int64).reshape(-1, 2)

    @property
    def ood_array(self) -> np.ndarray:
        """(n_ood, 2) int64 array of o.o.d. tasks."""
        return np.asarray(self.ood_tasks, dtype=np.int64).reshape(-1, 2)

    @property
    def train_input_index(self) -> np.ndarray:
        """(n_train,) indices x*p + y of the train inputs, in split order."""
        return np.asarray(self.input_order[: self.n_train_inputs], dtype=np.int64)

    @property
    def test_input_index(self) -> np.ndarray:
        """(n_test,) indices x*p + y of the test inputs, in split order."""
        return np.asarray(self.input_order[self.n_train_inputs :], dtype=np.int64)

    @property
    def train_inputs(self) -> np.ndarray:
        """(n_train, 2) train inputs (x, y)."""
        return _index_to_xy(self.train_input_index, self.p)

    @property
    def test_inputs(self) -> np.ndarray:
        """(n_test, 2) test inputs (x, y)."""
        return _index_to_xy(self.test_input_index, self.p)

    @property
    def train_input_mask(self) -> np.ndarray:
        """(p, p) bool, True at [x, y] when (x, y) is a train input."""
        mask = np.zeros(self.p * self.p, dtype=bool)
        mask[self.train_input_index] = True
        return mask.reshape(self.p, self.p)

    def split_of(self, tasks: np.ndarray) -> np.ndarray:
        """(n,) array of 'id'/'ood'/'other' for each task (n, 2)."""
        tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
        pre = set(self.pretrain_tasks)
        ood = set(self.ood_tasks)
        return np.array(
            ["id" if t in pre else "ood" if t in ood else "other" for t in map(tuple, tasks.tolist())],
            dtype=object,
        )

    def evaluation_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The paper's four sets as (tasks (n, 2), inputs (m, 2)) pairs."""
        return {
            "id_train": (self.pretrain_array, self.train_inputs),
            "id_test": (self.pretrain_array, self.test_inputs),
            "ood_train": (self.ood_array, self.train_inputs),
            "ood_test": (self.ood_array, self.test_inputs),
        }

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form; lists for tuples."""
        d = asdict(self)
        d["pretrain_tasks"] = [list(t) for t in self.pretrain_tasks]
        d["ood_tasks"] = [list(t) for t in self.ood_tasks]
        d["input_order"] = list(self.input_order)
        d["format"] = SETTING_FORMAT
        d["fingerprint"] = self.fingerprint()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSetting:
        """Inverse of :meth:`to_dict`; checks the fingerprint when one is present."""
        if not isinstance(d, dict):
            raise InputError(f"task setting must be a dict, got {type(d).__name__}")
        fmt = d.get("format", SETTING_FORMAT)
        if fmt > SETTING_FORMAT:
            raise InputError(f"task setting format {fmt} is newer than this version ({SETTING_FORMAT})")
        known = {f for f in cls.__dataclass_fields__}
        missing = {"p", "pretrain_tasks", "ood_tasks", "input_order", "n_train_inputs", "alpha"} - set(d)
        if missing:
            raise InputError(f"task setting is missing {sorted(missing)}")
        setting = cls(**{k: v for k, v in d.items() if k in known})
        if "fingerprint" in d and d["fingerprint"] != setting.fingerprint():
            raise InputError("task setting fingerprint does not match its content")
        return setting

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical content (not provenance)."""
        canon = {
            "p": self.p,
            "pretrain_tasks": [list(t) for t in self.pretrain_tasks],
            "ood_tasks": [list(t) for t in self.ood_tasks],
            "input_order": list(self.input_order),
            "n_train_inputs": self.n_train_inputs,
        }
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def summary(self) -> str:
        """A few human-readable lines."""
        pre = ", ".join(f"({a},{b})" for a, b in self.pretrain_tasks[:8])
        more = " ..." if len(self.pretrain_tasks) > 8 else ""
        return "\n".join(
            [
                f"task setting {self.fingerprint()} ({self.convention} convention)",
                f"  p = {self.p}: {self.p ** 2} tasks, {self.p ** 2} inputs",
                f"  pre-training tasks: {len(self.pretrain_tasks)} "
                f"({self.n_base_tasks} base x 4 + {self.n_random_tasks} random): {pre}{more}",
                f"  o.o.d. tasks: {len(self.ood_tasks)}"
                + (f" (capped at {self.max_ood_tasks})" if self.max_ood_tasks is not None else ""),
                f"  inputs: {self.n_train_inputs} train / {self.p ** 2 - self.n_train_inputs} test "
                f"(alpha = {self.alpha}); order starts {list(self.input_order[:8])}",
                f"  seeds: tasks {self.task_seed}, split {self.split_seed}",
            ]
        )


# ---------------------------------------------------------------------- helpers
def _check_alpha(alpha: float) -> None:
    if not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha (the train-input fraction) must be in (0, 1), got {alpha}")


def _n_train(p: int, alpha: float) -> int:
    # Python's round, as the authors' code uses, so replays match exactly.
    return int(round(p * p * float(alpha)))


def _index_to_xy(index: np.ndarray, p: int) -> np.ndarray:
    index = np.asarray(index, dtype=np.int64)
    return np.stack([index // p, index % p], axis=-1)


def _rectangular_numpy(p: int, n_base: int, rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """One greedy pass of the rectangular rule; None when a base task gets stuck."""
    flat = rng.choice(p * p, size=n_base, replace=False)
    base = [(int(i) // p, int(i) % p) for i in flat]
    chosen = list(base)
    taken = set(base)
    for a, b in base:
        free = np.array([v for v in range(p) if v != a and v != b])
        for _ in range(_MAX_PARTNER_TRIES):
            x, y = (int(v) for v in rng.choice(free, size=2, replace=False))
            trio = [(a, y), (x, b), (x, y)]
            if not any(t in taken for t in trio):
                chosen.extend(trio)
                taken.update(trio)
                break
        else:
            return None
    return chosen


def _rectangular_python(p: int, base: list[list[int]]) -> list[list[int]]:
    """The rectangular rule with Python ``random``, in the released code's draw order."""
    tasks = [list(t) for t in base]
    for a, b in base:
        for _ in range(_MAX_PARTNER_TRIES):
            x = random.choice([i for i in range(p) if i != a and i != b])
            y = random.choice([i for i in range(p) if i != a and i != b and i != x])
            trio = [[a, y], [x, b], [x, y]]
            if all(t not in tasks for t in trio):
                tasks.extend(trio)
                break
        else:
            raise InputError(
                f"the rectangular rule (authors' replay) found no free partners for base task ({a},{b}) at p={p}"
            )
    return tasks
