"""Linear probes for the quantities the algorithms use, each beside a control task.

A *probe prompt* is a k-shot prompt ``x1 y1 z1 ... xk yk zk xq yq`` of one task: k examples
with distinct nonzero inputs drawn uniformly, labelled by the task, and a nonzero query —
with probability ``on_line_share`` a multiple ``c * (x_i, y_i)`` of a uniformly chosen
example i (c uniform in 1..p-1), otherwise uniform over the nonzero inputs (which may fall
on an example's line by chance). Tasks are used round-robin in a seeded order.

**Targets** (:data:`TARGETS`; -1 = undefined for that prompt, such prompts are left out of
that probe):

- ``line``: which example's line through the origin holds the query: the index i (1..k, the
  first in prompt order, as Ratio Matching takes it) of the first example with
  (x, y) = c * (x_i, y_i), or 0 when none (k + 1 classes);
- ``ratio``: the query's own line through the origin, its ratio y / x mod p (p for x = 0):
  what skill I of the paper ("modular map") computes (p + 1 classes);
- ``multiplier``: c with (x, y) = c * (x_i, y_i) for the line's example i (1..p-1), defined
  only where ``line`` is not 0: what skill II ("multiplication") scales by;
- ``answer``: the true z = a x + b y mod p of the query (p classes);
- ``answer_on_line`` / ``answer_off_line``: the same, only on the prompts whose query lies on
  an example's line (Ratio Matching answers them) / on none (only combining examples, skill
  III, answers them);
- ``task_a``, ``task_b``: a and b of the task (p classes each).

**Control task** (Hewitt & Liang, 2019): each *input type* gets one random label, drawn
from the target's own label distribution on the probe's prompts, and every prompt of that
type carries it. The type is the prompt's own input at the probed position: the query's x at
``q_x`` (its y is not yet seen there), the query (x, y) at ``q_y``, the last example's input
(x, y) at ``ex_z`` (with z the types would rarely repeat between training and test prompts). The control
labels are thus a deterministic function of what the position reads, unrelated to the
target; a probe that fits them is memorizing types. **Selectivity** = held-out accuracy on
the target - held-out accuracy on the control task. Each is beside its **majority** baseline
(the test share of the training set's most frequent label; the control labels' own, drawn
per type, can differ from the target's).

Fitting (:func:`fit_probe`): scikit-learn's multinomial :class:`LogisticRegression`
(L2, ``C``, lbfgs) on standardized features, trained on a seeded split of the prompts
(the same split for every site, position and target; control probes use it too).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from algos.field import inverse_table
from algos.tasks import task_labels

__all__ = [
    "TARGETS",
    "POSITIONS",
    "ProbePrompts",
    "ProbeScore",
    "probe_prompts",
    "probe_targets",
    "position_of",
    "control_types",
    "control_labels",
    "split_prompts",
    "fit_probe",
    "probe_sites",
]

#: The probed quantities, in table order.
TARGETS = ("line", "ratio", "multiplier", "answer", "answer_on_line", "answer_off_line", "task_a", "task_b")
#: Position classes: the query's x and y tokens, and the last example's z token.
POSITIONS = ("q_x", "q_y", "ex_z")


@dataclass(frozen=True)
class ProbePrompts:
    """``examples`` (n, k, 3), ``queries`` (n, 2), ``tasks`` (n, 2) of n probe prompts."""

    p: int
    k: int
    examples: np.ndarray
    queries: np.ndarray
    tasks: np.ndarray

    @property
    def tokens(self) -> np.ndarray:
        """(n, 3k + 2): ``x1 y1 z1 ... xk yk zk xq yq``."""
        n = len(self.examples)
        return np.concatenate([self.examples.reshape(n, 3 * self.k), self.queries], axis=1)

    def __len__(self) -> int:
        return len(self.examples)


def position_of(name: str, k: int) -> int:
    """The token position of a position class in a k-shot probe prompt."""
    if name == "q_x":
        return 3 * k
    if name == "q_y":
        return 3 * k + 1
    if name == "ex_z":
        return 3 * k - 1
    raise ValueError(f"unknown position {name!r} (known: {', '.join(POSITIONS)})")


def probe_prompts(p: int, tasks: np.ndarray, k: int, n: int, seed: int = 0, on_line_share: float = 0.5) -> ProbePrompts:
    """``n`` probe prompts of shot count ``k`` over ``tasks`` (m, 2), seeded (see the module docstring)."""
    if k < 1 or k > p * p - 1:
        raise ValueError(f"k must be in 1..{p * p - 1}, got {k}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    tasks = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
    rng = np.random.default_rng([seed, k])
    order = rng.permutation(len(tasks))
    chosen = tasks[order[np.arange(n) % len(tasks)]]  # (n, 2) round-robin in a seeded order
    idx = np.stack([rng.choice(p * p - 1, size=k, replace=False) + 1 for _ in range(n)])  # nonzero inputs
    inputs = np.stack(np.divmod(idx, p), axis=-1)  # (n, k, 2)
    on = rng.random(n) < on_line_share
    pick = rng.integers(0, k, size=n)
    c = rng.integers(1, p, size=n)
    multiple = (c[:, None] * inputs[np.arange(n), pick]) % p  # (n, 2)
    free = rng.integers(1, p * p, size=n)
    queries = np.where(on[:, None], multiple, np.stack(np.divmod(free, p), axis=-1)).astype(np.int64)
    z = np.stack([task_labels(p, chosen[i : i + 1], inputs[i])[0] for i in range(n)])  # (n, k)
    examples = np.concatenate([inputs, z[..., None]], axis=-1).astype(np.int64)
    return ProbePrompts(p, k, examples, queries, chosen)


def probe_targets(prompts: ProbePrompts) -> dict[str, np.ndarray]:
    """Every target of :data:`TARGETS` per prompt, (n,) int64 each, -1 where undefined."""
    p = prompts.p
    ex, q, t = prompts.examples, prompts.queries, prompts.tasks
    inv = inverse_table(p)
    x, y = q[:, 0], q[:, 1]
    xi, yi = ex[..., 0], ex[..., 1]  # (n, k)
    on = (x[:, None] * yi - y[:, None] * xi) % p == 0  # collinear with example i (inputs nonzero)
    on &= (xi != 0) | (yi != 0)
    has = on.any(axis=1)
    first = on.argmax(axis=1)
    line = np.where(has, first + 1, 0)
    rows = np.arange(len(q))
    fx, fy = xi[rows, first], yi[rows, first]
    c = np.where(fx != 0, x * inv[fx] % p, y * inv[fy] % p)
    multiplier = np.where(has, c, -1)
    ratio = np.where(x == 0, p, y * inv[x] % p)
    answer = (t[:, 0] * x + t[:, 1] * y) % p
    return {
        "line": line.astype(np.int64),
        "ratio": ratio.astype(np.int64),
        "multiplier": multiplier.astype(np.int64),
        "answer": answer.astype(np.int64),
        "answer_on_line": np.where(has, answer, -1).astype(np.int64),
        "answer_off_line": np.where(has, -1, answer).astype(np.int64),
        "task_a": t[:, 0].astype(np.int64),
        "task_b": t[:, 1].astype(np.int64),
    }


def control_types(prompts: ProbePrompts, position: str) -> np.ndarray:
    """The input type of each prompt at ``position`` (an int id): the query's x at ``q_x``, the
    query (x, y) at ``q_y``, the last example's input (x, y) at ``ex_z``."""
    p = prompts.p
    q, last = prompts.queries, prompts.examples[:, -1]
    if position == "q_x":
        return q[:, 0].copy()
    if position == "q_y":
        return q[:, 0] * p + q[:, 1]
    if position == "ex_z":
        return last[:, 0] * p + last[:, 1]
    raise ValueError(f"unknown position {position!r} (known: {', '.join(POSITIONS)})")


def control_labels(types: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Hewitt & Liang's control task: one label per type, drawn (seeded) from the empirical
    distribution of ``labels`` where defined (>= 0); -1 where ``labels`` is -1."""
    types = np.asarray(types)
    labels = np.asarray(labels)
    ok = labels >= 0
    out = np.full(labels.shape, -1, dtype=np.int64)
    if not ok.any():
        return out
    rng = np.random.default_rng(seed)
    kinds, inverse = np.unique(types[ok], return_inverse=True)
    draw = rng.choice(labels[ok], size=len(kinds), replace=True)
    out[ok] = draw[inverse]
    return out


def split_prompts(n: int, test_share: float, seed: int) -> np.ndarray:
    """A seeded train/test split of n prompts: a boolean array, True = train."""
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    rng = np.random.default_rng([seed, 7919])
    n_test = max(1, int(round(n * test_share)))
    train = np.ones(n, dtype=bool)
    train[rng.permutation(n)[:n_test]] = False
    return train


@dataclass(frozen=True)
class ProbeScore:
    """One probe: held-out accuracy on the target and on its control task, the majority
    baseline, sizes, and whether both fits converged."""

    accuracy: float
    control_accuracy: float
    majority: float
    control_majority: float
    n_train: int
    n_test: int
    n_classes: int
    converged: bool

    @property
    def selectivity(self) -> float:
        return self.accuracy - self.control_accuracy


def _fit_score(X: np.ndarray, y: np.ndarray, train: np.ndarray, C: float, max_iter: int, seed: int
               ) -> tuple[float, bool]:
    """Held-out accuracy of a multinomial logistic regression; a one-class training set predicts it."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    test = ~train
    classes = np.unique(y[train])
    if len(classes) < 2:
        return float((y[test] == classes[0]).mean()), True
    scaler = StandardScaler().fit(X[train])
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(X[train]), y[train])
    converged = bool(np.all(np.asarray(model.n_iter_) < max_iter))
    return float((model.predict(scaler.transform(X[test])) == y[test]).mean()), converged


def fit_probe(X: np.ndarray, labels: np.ndarray, control: np.ndarray, train: np.ndarray, *, C: float = 1.0,
              max_iter: int = 500, seed: int = 0) -> ProbeScore:
    """Fit the probe of ``labels`` and of its ``control`` labels on the rows of ``X`` (n, d) where
    ``train`` and the labels are defined (>= 0); score both on the other defined rows."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    ok = labels >= 0
    if ok.sum() < 2 or not (ok & train).any() or not (ok & ~train).any():
        nan = float("nan")
        return ProbeScore(nan, nan, nan, nan, int((ok & train).sum()), int((ok & ~train).sum()), 0, True)
    Xo, yo, co, tr = X[ok], labels[ok], np.asarray(control)[ok], np.asarray(train)[ok]
    acc, conv1 = _fit_score(Xo, yo, tr, C, max_iter, seed)
    ctl, conv2 = _fit_score(Xo, co, tr, C, max_iter, seed)
    return ProbeScore(acc, ctl, _majority(yo, tr), _majority(co, tr), int(tr.sum()), int((~tr).sum()),
                      int(len(np.unique(yo))), conv1 and conv2)


def _majority(y: np.ndarray, train: np.ndarray) -> float:
    """Test share of the training rows' most frequent label."""
    values, counts = np.unique(y[train], return_counts=True)
    return float((y[~train] == values[counts.argmax()]).mean())


def probe_sites(n_layer: int, spec: str | Sequence[str] = "all") -> list[tuple[str, str]]:
    """(site name, hook name) of the residual stream: ``embed`` (``hook_embed``), then per block
    ``L{l}.mid`` (``blocks.{l}.hook_resid_mid``, after attention) and ``L{l}.post``
    (``blocks.{l}.hook_resid_post``, after the MLP). ``spec``: ``all``, ``post`` (embed and every
    ``L{l}.post``) or a comma list of site names."""
    every = [("embed", "hook_embed")]
    for layer in range(n_layer):
        every += [(f"L{layer}.mid", f"blocks.{layer}.hook_resid_mid"),
                  (f"L{layer}.post", f"blocks.{layer}.hook_resid_post")]
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "all":
            return every
        if key == "post":
            return [s for s in every if not s[0].endswith(".mid")]
        names = [s.strip() for s in spec.split(",")]
    else:
        names = [str(s).strip() for s in spec]
    known = dict(every)
    out: list[tuple[str, str]] = []
    for name in names:
        if name not in known:
            raise ValueError(f"unknown site {name!r} (known: all, post, {', '.join(known)})")
        if name not in [s for s, _ in out]:
            out.append((name, known[name]))
    if not out:
        raise ValueError("no sites given")
    order = [s for s, _ in every]
    return sorted(out, key=lambda s: order.index(s[0]))

