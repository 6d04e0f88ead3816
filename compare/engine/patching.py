"""Activation patching, the pure part: prompt-pair designs and the tables of a patching run.

A *design* builds pairs of k-shot prompts, a **base** and a **source**, that differ in one
controlled way; the model then runs each base prompt with one component's activation at
one class of positions taken from its source prompt (:mod:`model.patching`). Designs, each
named by what it changes (every prompt: k examples with distinct inputs drawn uniformly,
a nonzero query, labels of the task):

=====================  ======================================================================
``task``               the labels: the source prompt has the same example inputs and query
                       but the labels of another task (from the same task list) whose answer
                       at the query differs. Every algorithm that answers follows the task,
                       so both Ratio Matching's and Modular Regression's answers change.
``query``              the query: same task and examples, another nonzero query whose answer
                       differs. Example positions are identical in both prompts.
``example-line``       one example moved *onto* the query's line: no example of the base
                       prompt lies on the query's line; the source replaces example j's
                       input by c * query (c in 2..p-1, distinct inputs), labelled by the
                       task. Ratio Matching's answer changes (none -> the answer); Modular
                       Regression's does not (both prompts span the plane; k >= 2).
``example-line-off``   the same pairs with base and source swapped: the base's one example
                       on the query's line is moved off it (Ratio Matching: answer -> none).
=====================  ======================================================================

Position classes (token positions of a k-shot prompt ``x1 y1 z1 ... xk yk zk xq yq``):
``ex_x`` (3i), ``ex_y`` (3i + 1), ``ex_z`` (3i + 2) for every example i, ``q_x`` (3k),
``q_y`` (3k + 1, where the answer is read) and ``all``.

Per prompt and patch the run records the patched prediction and the logit difference
``logit(source answer) - logit(base answer)``, the answers being the model's own clean
predictions on the source and the base prompt (NaN where they coincide). The summary
(:func:`patching_table`) gives per (k, component, position, split) the
**interchange-intervention accuracy** of each algorithm — the share of prompts whose
patched prediction equals that algorithm's answer on the *source* prompt, over the prompts
where that answer exists and differs from its answer on the base prompt (the design gives
a counterfactual answer; ``iia_<alg>_clean`` is the same share for the unpatched base prediction,
the control) — and the **recovered logit difference**
``(mean LD patched - mean LD clean base) / (mean LD clean source - mean LD clean base)``
(0: the patch changes nothing, 1: the output moves all the way to the source's).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from algos.errors import InputError
from algos.solvers.lines import geometry
from algos.tasks import TaskSetting, task_labels

__all__ = [
    "DESIGNS",
    "POSITIONS",
    "DEFAULT_POSITIONS",
    "ALGORITHMS",
    "HEADLINE",
    "PromptPairs",
    "make_pairs",
    "parse_design",
    "parse_positions",
    "position_index",
    "tokens_text",
    "patching_table",
    "TABLE_COLUMNS",
]

#: The designs, each with what it changes.
DESIGNS = {
    "task": "the labels: the same example inputs and query labelled by another task whose answer at the query differs",
    "query": "the query: the same task and examples, another query whose answer differs",
    "example-line": "one example's input moved onto the query's line (c * query, c in 2..p-1): Ratio Matching's answer "
                    "changes from none to the answer, Modular Regression's does not",
    "example-line-off": "the base's one example on the query's line moved off it: Ratio Matching's answer changes "
                        "from the answer to none, Modular Regression's does not",
}
POSITIONS = ("ex_x", "ex_y", "ex_z", "q_x", "q_y", "all")
DEFAULT_POSITIONS = ("ex_x", "ex_y", "ex_z", "q_x", "q_y")
#: The algorithms whose answers on base and source each patched output is checked against.
ALGORITHMS = ("ratio_matching", "modular_regression")
#: The rate each design's heatmaps show first.
HEADLINE = {
    "task": "iia_modular_regression",
    "query": "iia_modular_regression",
    "example-line": "iia_ratio_matching",
    "example-line-off": "follows_source",
}
_DESIGN_IDS = {name: i for i, name in enumerate(DESIGNS)}


def parse_design(name: str) -> str:
    key = str(name).strip().lower()
    if key not in DESIGNS:
        raise InputError(f"--design: unknown design {name!r} (use {', '.join(DESIGNS)})")
    return key


def parse_positions(spec: str | Sequence[str]) -> list[str]:
    """``all-classes`` / ``default`` (the five classes), or a comma list of :data:`POSITIONS`."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    if len(items) == 1 and items[0].lower() in ("default", "classes"):
        return list(DEFAULT_POSITIONS)
    out: list[str] = []
    for item in items:
        if item.lower() not in POSITIONS:
            raise InputError(f"--positions: unknown position {item!r} (use {', '.join(POSITIONS)} or default)")
        if item.lower() not in out:
            out.append(item.lower())
    if not out:
        raise InputError("--positions: no positions given")
    return out


def position_index(position: str, k: int) -> np.ndarray:
    """The token positions of one class in a k-shot prompt (3k + 2 tokens)."""
    ex = 3 * np.arange(k)
    table: dict[str, np.ndarray] = {"ex_x": ex, "ex_y": ex + 1, "ex_z": ex + 2, "q_x": np.array([3 * k]),
                                    "q_y": np.array([3 * k + 1]), "all": np.arange(3 * k + 2)}
    if position not in table:
        raise InputError(f"unknown position {position!r} (use {', '.join(POSITIONS)})")
    out: np.ndarray = table[position].astype(np.int64)
    return out


@dataclass(frozen=True)
class PromptPairs:
    """Base and source prompts of one design and k, row i of each array one pair.

    ``base_examples``/``source_examples`` (n, k, 3), ``base_queries``/``source_queries`` (n, 2),
    ``base_tasks``/``source_tasks`` (n, 2), ``moved`` (n,) the example index a design moved
    (-1: none)."""

    design: str
    k: int
    base_examples: np.ndarray
    base_queries: np.ndarray
    base_tasks: np.ndarray
    source_examples: np.ndarray
    source_queries: np.ndarray
    source_tasks: np.ndarray
    moved: np.ndarray

    def __len__(self) -> int:
        return int(self.base_queries.shape[0])

    @property
    def base_tokens(self) -> np.ndarray:
        """(n, 3k + 2) token ids ``x1 y1 z1 ... xk yk zk xq yq``."""
        return _tokens(self.base_examples, self.base_queries)

    @property
    def source_tokens(self) -> np.ndarray:
        return _tokens(self.source_examples, self.source_queries)

    def swapped(self, design: str) -> PromptPairs:
        return PromptPairs(design, self.k, self.source_examples, self.source_queries, self.source_tasks,
                           self.base_examples, self.base_queries, self.base_tasks, self.moved)


def _tokens(examples: np.ndarray, queries: np.ndarray) -> np.ndarray:
    n, k, _ = examples.shape
    return np.concatenate([examples.reshape(n, 3 * k), queries], axis=1).astype(np.int64)


def tokens_text(tokens: np.ndarray) -> list[str]:
    """Each row of token ids as one space-separated string (a prompt to retype by hand)."""
    return [" ".join(map(str, row)) for row in np.asarray(tokens).tolist()]


def _label(p: int, task: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    out: np.ndarray = task_labels(p, task[None], inputs)[0]
    return out


def _rank2(p: int, inputs: np.ndarray) -> bool:
    """Whether the inputs (m, 2) span GF(p)^2."""
    g = geometry(p)
    lines = g.line[inputs[:, 0] * p + inputs[:, 1]]
    return len(set(lines.tolist()) - {g.zero_line}) >= 2


def make_pairs(setting: TaskSetting, tasks: np.ndarray, design: str, k: int, n: int, seed: int = 0) -> PromptPairs:
    """``n`` prompt pairs of ``design`` at ``k``; base tasks cycle through ``tasks`` (n_tasks, 2) in
    seeded random orders (``n = len(tasks)`` uses each task once). Deterministic in ``seed``."""
    design = parse_design(design)
    p = setting.p
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    if n < 1:
        raise InputError(f"--prompts must be >= 1, got {n}")
    if k < 1 or k > p * p - 1:
        raise InputError(f"k = {k} cannot be patched at p = {p}")
    if design.startswith("example-line"):
        if p < 3:
            raise InputError("the example-line designs need p >= 3 (a multiple c of the query with 2 <= c <= p - 1)")
        if k > p * p - p:
            raise InputError(f"k = {k}: too many examples to keep them off the query's line at p = {p}")
    if design == "query":  # the task (0, 0) answers 0 everywhere: no other query changes its answer
        tasks = tasks[tasks.any(1)]
        if not len(tasks):
            raise InputError("the query design needs a task other than (0, 0)")
    rng = np.random.default_rng([int(seed), int(k), _DESIGN_IDS[design]])
    order = np.concatenate([rng.permutation(len(tasks)) for _ in range(-(-n // len(tasks)))])[:n]
    g = geometry(p)
    grid = np.stack(np.meshgrid(np.arange(p), np.arange(p), indexing="ij"), -1).reshape(-1, 2)
    nonzero = np.arange(1, p * p)
    all_tasks = grid
    cols: dict[str, list[Any]] = {key: [] for key in ("be", "bq", "bt", "se", "sq", "st", "moved")}
    for i in range(n):
        task = tasks[order[i]]
        for _attempt in range(1000):
            inputs = grid[rng.choice(p * p, size=k, replace=False)]
            query = grid[rng.choice(nonzero)]
            q_line = g.line[query[0] * p + query[1]]
            moved = -1
            s_inputs, s_query, s_task = inputs, query, task
            if design == "task":
                z = _label(p, task, query[None])[0]
                pool = tasks[(task_labels(p, tasks, query[None])[:, 0] != z)]
                if not len(pool):
                    pool = all_tasks[task_labels(p, all_tasks, query[None])[:, 0] != z]
                s_task = pool[rng.integers(len(pool))]
            elif design == "query":
                zq = task_labels(p, task[None], grid)[0]
                cand = np.flatnonzero((zq != zq[query[0] * p + query[1]]) & (np.arange(p * p) > 0))
                if not len(cand):
                    continue
                s_query = grid[rng.choice(cand)]
            else:
                e_lines = g.line[inputs[:, 0] * p + inputs[:, 1]]
                if (e_lines == q_line).any():
                    continue
                if k >= 2 and not _rank2(p, inputs):
                    continue
                moved = int(rng.integers(k))
                c = int(rng.integers(2, p))
                new = (c * query) % p
                if (new[None] == np.delete(inputs, moved, 0)).all(1).any():
                    continue
                s_inputs = inputs.copy()
                s_inputs[moved] = new
                if k >= 2 and not _rank2(p, s_inputs):
                    continue
            break
        else:  # pragma: no cover - the constraints above are satisfiable for p >= 3
            raise InputError(f"could not draw a {design} prompt pair at k = {k}, p = {p}")
        cols["be"].append(np.concatenate([inputs, _label(p, task, inputs)[:, None]], 1))
        cols["bq"].append(query)
        cols["bt"].append(task)
        cols["se"].append(np.concatenate([s_inputs, _label(p, s_task, s_inputs)[:, None]], 1))
        cols["sq"].append(s_query)
        cols["st"].append(s_task)
        cols["moved"].append(moved)
    arr = {key: np.asarray(v, dtype=np.int64) for key, v in cols.items()}
    pairs = PromptPairs("example-line" if design == "example-line-off" else design, k, arr["be"], arr["bq"], arr["bt"],
                        arr["se"], arr["sq"], arr["st"], arr["moved"])
    return pairs.swapped("example-line-off") if design == "example-line-off" else pairs


# ---------------------------------------------------------------------- tables
#: Columns of the summary table (patching.csv), after the keys.
TABLE_COLUMNS = (
    "n_prompts", "changed", "follows_source", "n_follows", "iia_ratio_matching", "iia_ratio_matching_clean",
    "n_cf_ratio_matching", "iia_modular_regression", "iia_modular_regression_clean", "n_cf_modular_regression",
    "agree_ratio_matching_base", "agree_ratio_matching_source",
    "agree_modular_regression_base", "agree_modular_regression_source", "ld", "ld_clean_base", "ld_clean_source",
    "ld_recovered", "n_ld",
)


def _share(hit: np.ndarray, mask: np.ndarray) -> float:
    n = int(mask.sum())
    return float(hit[mask].mean()) if n else np.nan


def patching_table(prompts: pd.DataFrame, patched: pd.DataFrame) -> pd.DataFrame:
    """One row per (design, k, component, kind, layer, head, position, split) — split ``all``,
    ``id`` and ``ood`` (of the base task) — from the per-prompt table (one row per pair: its
    ``prompt`` id, ``split``, the model's clean answers ``model_base``/``model_source``, each
    algorithm's ``<alg>_base``/``<alg>_source`` and the clean ``ld_base``/``ld_source``) and the
    per-patch table (``prompt``, ``component``, ``kind``, ``layer``, ``head``, ``position``,
    ``pred``, ``ld``). Rates as in the module docstring."""
    info = prompts.set_index("prompt")
    keys = ["design", "k", "component", "kind", "layer", "head", "position"]
    rows = []
    for key, grp in patched.groupby(keys, sort=False, dropna=False):
        pr = info.loc[grp["prompt"].to_numpy()]
        pred = grp["pred"].to_numpy(np.int64)
        ld = grp["ld"].to_numpy(np.float64)
        for split in ("all", "id", "ood"):
            sel = np.ones(len(grp), bool) if split == "all" else (pr["split"].to_numpy() == split)
            if not sel.any():
                continue
            mb, ms = pr["model_base"].to_numpy()[sel], pr["model_source"].to_numpy()[sel]
            pd_ = pred[sel]
            row = dict(zip(keys, key, strict=True))
            row["split"] = split
            row["n_prompts"] = int(sel.sum())
            row["changed"] = float((pd_ != mb).mean())
            differ = ms != mb
            row["follows_source"] = _share(pd_ == ms, differ)
            row["n_follows"] = int(differ.sum())
            for alg in ALGORITHMS:
                ab, as_ = pr[f"{alg}_base"].to_numpy()[sel], pr[f"{alg}_source"].to_numpy()[sel]
                cf = (as_ >= 0) & (as_ != ab)
                row[f"iia_{alg}"] = _share(pd_ == as_, cf)
                row[f"iia_{alg}_clean"] = _share(mb == as_, cf)  # the control: the unpatched base prediction
                row[f"n_cf_{alg}"] = int(cf.sum())
                row[f"agree_{alg}_base"] = _share(pd_ == ab, ab >= 0)
                row[f"agree_{alg}_source"] = _share(pd_ == as_, as_ >= 0)
            ok = np.isfinite(ld[sel])
            lb, ls = pr["ld_base"].to_numpy(float)[sel], pr["ld_source"].to_numpy(float)[sel]
            if ok.any():
                m, mb_, ms_ = ld[sel][ok].mean(), lb[ok].mean(), ls[ok].mean()
                row.update(ld=m, ld_clean_base=mb_, ld_clean_source=ms_,
                           ld_recovered=(m - mb_) / (ms_ - mb_) if ms_ != mb_ else np.nan, n_ld=int(ok.sum()))
            else:
                row.update(ld=np.nan, ld_clean_base=np.nan, ld_clean_source=np.nan, ld_recovered=np.nan, n_ld=0)
            rows.append(row)
    out = pd.DataFrame(rows, columns=[*keys, "split", *TABLE_COLUMNS])
    for col in ("layer", "head"):
        out[col] = out[col].astype("Int64")
    return out
