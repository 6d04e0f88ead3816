"""interp.probes: targets against brute force, the control task, a planted feature found, no signal not found."""
from __future__ import annotations

import numpy as np
import pytest

from interp.probes import (
    TARGETS,
    control_labels,
    control_types,
    fit_probe,
    probe_prompts,
    probe_sites,
    probe_targets,
    split_prompts,
)


def _brute(p, ex, q):
    """line, multiplier and ratio of one prompt by trying every c."""
    line, mult = 0, -1
    for i, (xi, yi, _) in enumerate(ex):
        hits = [c for c in range(1, p) if (c * xi % p, c * yi % p) == tuple(q)]
        if hits:
            line, mult = i + 1, hits[0]
            break
    ratio = p if q[0] == 0 else next(r for r in range(p) if r * q[0] % p == q[1])
    return line, mult, ratio


@pytest.mark.parametrize("p, k", [(5, 3), (7, 6), (11, 8)])
def test_targets_equal_brute_force(p, k):
    tasks = np.array([[a, b] for a in range(p) for b in range(p)])
    pp = probe_prompts(p, tasks, k, 300, seed=p)
    t = probe_targets(pp)
    assert set(t) == set(TARGETS)
    for i in range(len(pp)):
        line, mult, ratio = _brute(p, pp.examples[i], pp.queries[i])
        assert (t["line"][i], t["multiplier"][i], t["ratio"][i]) == (line, mult, ratio)
    assert (t["answer"] == (pp.tasks * pp.queries).sum(1) % p).all()
    on = t["line"] > 0
    assert (t["answer_on_line"][on] == t["answer"][on]).all() and (t["answer_on_line"][~on] == -1).all()
    assert (t["answer_off_line"][~on] == t["answer"][~on]).all() and (t["answer_off_line"][on] == -1).all()
    assert (t["task_a"] == pp.tasks[:, 0]).all() and (t["task_b"] == pp.tasks[:, 1]).all()
    assert (pp.queries != 0).any(1).all() and (pp.examples[..., :2] != 0).any(-1).all()  # nonzero inputs
    # the examples carry the task's labels, and distinct inputs
    z = (pp.tasks[:, None, :] * pp.examples[..., :2]).sum(-1) % p
    assert (z == pp.examples[..., 2]).all()
    assert all(len({tuple(e[:2]) for e in row}) == k for row in pp.examples)


def test_prompts_are_seeded_and_half_on_a_line():
    tasks = np.array([[1, 2], [3, 4], [0, 5]])
    a, b = probe_prompts(11, tasks, 4, 2000, seed=3), probe_prompts(11, tasks, 4, 2000, seed=3)
    assert np.array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, probe_prompts(11, tasks, 4, 2000, seed=4).tokens)
    on = (probe_targets(a)["line"] > 0).mean()
    assert 0.5 < on < 0.75  # half by construction, plus random queries that fall on a line
    assert a.tokens.shape == (2000, 14)


def test_control_labels_are_a_function_of_the_type_with_the_target_distribution():
    rng = np.random.default_rng(0)
    types = rng.integers(0, 40, 5000)
    labels = rng.choice(5, size=5000, p=[0.5, 0.2, 0.1, 0.1, 0.1])
    labels[:100] = -1
    ctl = control_labels(types, labels, seed=1)
    assert (ctl[:100] == -1).all() and (ctl[100:] >= 0).all()
    for t in np.unique(types[100:]):
        assert len(np.unique(ctl[100:][types[100:] == t])) == 1
    assert np.array_equal(ctl, control_labels(types, labels, seed=1))
    assert not np.array_equal(ctl, control_labels(types, labels, seed=2))


def test_control_types_read_the_position_s_own_input():
    pp = probe_prompts(7, np.array([[1, 2]]), 3, 50, seed=0)
    assert np.array_equal(control_types(pp, "q_x"), pp.queries[:, 0])
    assert np.array_equal(control_types(pp, "q_y"), pp.queries[:, 0] * 7 + pp.queries[:, 1])
    assert np.array_equal(control_types(pp, "ex_z"), pp.examples[:, -1, 0] * 7 + pp.examples[:, -1, 1])


def _planted(n=3000, d=32, n_classes=6, n_types=30, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    types = rng.integers(0, n_types, n)  # independent of the features
    directions = rng.normal(size=(n_classes, d))
    X = directions[labels] + noise * rng.normal(size=(n, d))
    return X, labels, types


def test_a_planted_linear_feature_is_found_and_its_control_stays_at_chance():
    X, labels, types = _planted()
    train = split_prompts(len(X), 0.25, 0)
    s = fit_probe(X, labels, control_labels(types, labels, seed=0), train)
    assert s.accuracy > 0.95
    assert abs(s.control_accuracy - s.control_majority) < 0.06  # the features say nothing of the types
    assert s.selectivity > 0.8 and s.converged
    assert (s.n_train, s.n_test, s.n_classes) == (2250, 750, 6)


def test_no_signal_gives_majority_accuracy():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 16))
    labels = rng.integers(0, 4, 2000)
    s = fit_probe(X, labels, control_labels(rng.integers(0, 20, 2000), labels, 0), split_prompts(2000, 0.25, 1))
    assert abs(s.accuracy - s.majority) < 0.06 and abs(s.control_accuracy - s.control_majority) < 0.06


def test_a_memorizable_control_is_fit_when_the_features_hold_the_type():
    """When the representation encodes the type, the control task is learnable: selectivity drops."""
    rng = np.random.default_rng(2)
    types = rng.integers(0, 8, 3000)
    X = np.eye(8)[types] + 0.05 * rng.normal(size=(3000, 8))
    labels = rng.integers(0, 3, 3000)
    s = fit_probe(X, labels, control_labels(types, labels, 5), split_prompts(3000, 0.25, 0))
    assert s.control_accuracy > 0.95 and s.selectivity < -0.5


def test_undefined_labels_are_left_out():
    X, labels, types = _planted(n=1000)
    labels = labels.copy()
    labels[::2] = -1
    s = fit_probe(X, labels, control_labels(types, labels, 0), split_prompts(1000, 0.25, 0))
    assert s.n_train + s.n_test == 500


def test_sites():
    assert [s for s, _ in probe_sites(2)] == ["embed", "L0.mid", "L0.post", "L1.mid", "L1.post"]
    assert dict(probe_sites(2))["L1.mid"] == "blocks.1.hook_resid_mid"
    assert [s for s, _ in probe_sites(2, "post")] == ["embed", "L0.post", "L1.post"]
    assert [s for s, _ in probe_sites(2, "L1.post,embed")] == ["embed", "L1.post"]
    with pytest.raises(ValueError, match="unknown site 'L2.post'"):
        probe_sites(2, "L2.post")
