"""Label noise: wrong labels where asked, z_true untouched, and the noise-tolerant solvers' edge."""
from __future__ import annotations

import numpy as np
import pytest
from compare_stand_ins import Oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from algos.prompts import make_examples
from algos.solvers import reference_solvers
from algos.tasks import TaskSetting, task_labels
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences
from compare.engine.noise import label_offsets, noise_level_sweep, noise_position_sweep, sweep_accuracy


def test_offsets_are_always_wrong_at_the_chosen_shots_only():
    off, shots = label_offsets(50, 3, 8, 7, n_wrong=2, seed=1)
    assert off.shape == (50, 3, 8) and all(len(s) == 2 and s == sorted(s) for s in shots)
    for s, js in enumerate(shots):
        hit = np.zeros(8, bool)
        hit[[j - 1 for j in js]] = True
        assert np.all((off[:, s, hit] >= 1) & (off[:, s, hit] <= 6))  # z + u with u in 1..p-1: never z
        assert np.all(off[:, s, ~hit] == 0)
    again, shots2 = label_offsets(50, 3, 8, 7, n_wrong=2, seed=1)
    assert np.array_equal(off, again) and shots == shots2  # same seed, same noise
    given_off, given_shots = label_offsets(4, 2, 8, 7, positions=[3, 1, 3])
    assert given_shots == [[1, 3], [1, 3]] and np.all(given_off[:, :, [0, 2]] > 0)
    with pytest.raises(ValueError, match="outside 1..8"):
        label_offsets(4, 2, 8, 7, positions=[9])
    with pytest.raises(ValueError, match="do not fit"):
        label_offsets(4, 2, 8, 7, n_wrong=9)


def _setting(p):
    return TaskSetting.build(p, n_base_tasks=2, alpha=0.6, task_seed=1, split_seed=0)


def test_the_engine_corrupts_the_prompts_and_keeps_the_true_answer():
    p = 7
    setting = _setting(p)
    tasks = np.array([[1, 2], [3, 5], [6, 6]])
    seqs = build_sequences(p, 4, n_random=1, seed=2)
    off, shots = label_offsets(3, 2, 4, p, n_wrong=1, seed=0)
    seen = []

    class Spy(Oracle):
        def predict_grid(self, examples, queries):
            seen.append(examples.copy())
            return super().predict_grid(examples, queries)

    spy = Spy(reference_solvers(setting)[1])
    res = run_comparison(setting, tasks, seqs, (2, 4), spy, reference_solvers(setting)[:2], label_offsets=off)
    clean = {(s, k): make_examples(p, tasks, seqs[s], k) for s in range(2) for k in (2, 4)}
    for (s, k), ex in zip([(s, k) for s in range(2) for k in (2, 4)], seen, strict=True):
        want = clean[(s, k)].copy()
        want[..., 2] = (want[..., 2] + off[:, s, :k]) % p
        assert np.array_equal(ex, want)
    z = task_labels(p, tasks, np.array([[x, y] for x in range(p) for y in range(p)]))
    cells = res.cells
    assert (cells["z_true"].to_numpy().reshape(3, 2, 2, p * p) == z[:, None, None, :]).all()
    expected = np.array([[[int(j <= k) for k in (2, 4)] for j in (shots[s][0],)][0] for s in range(2)])
    assert (cells["n_wrong"].to_numpy().reshape(3, 2, 2, p * p)[0, :, :, 0] == expected).all()


@given(st.sampled_from([5, 7, 11]), st.integers(0, 2**20))
@settings(max_examples=6, deadline=None)
def test_with_one_wrong_label_modular_regression_majority_beats_plain_at_k8(p, seed):
    """Per corrupted shot the majority variant is never worse, and over the 8 shots strictly better."""
    setting = _setting(p)
    rng = np.random.default_rng(seed)
    tasks = rng.integers(0, p, size=(4, 2))
    seqs = build_sequences(p, 8, n_random=1, seed=seed, authors=False)
    refs = [r for r in reference_solvers(setting) if r.name in ("modular_regression", "modular_regression_majority")]
    plain = majority = 0.0
    for j in range(1, 9):
        off, _ = label_offsets(len(tasks), 1, 8, p, positions=[j], seed=seed + j)
        cells = run_comparison(setting, tasks, seqs, (8,), Oracle(refs[0]), refs, label_offsets=off).cells
        acc = sweep_accuracy(cells, ["modular_regression", "modular_regression_majority"], ["task_a", "task_b"])
        by = acc.pivot_table(index=["task_a", "task_b"], columns="predictor", values="accuracy")
        assert (by["modular_regression_majority"] >= by["modular_regression"] - 1e-12).all()
        plain += by["modular_regression"].sum()
        majority += by["modular_regression_majority"].sum()
    assert majority > plain


def test_sweeps_cover_every_level_and_position():
    p = 5
    setting = _setting(p)
    tasks = np.array([[1, 2], [3, 4]])
    seqs = build_sequences(p, 6, n_random=0)
    refs = reference_solvers(setting)[:2]

    def run(ks, off):
        return run_comparison(setting, tasks, seqs, ks, Oracle(refs[1]), refs, label_offsets=off)

    levels = noise_level_sweep(run, 2, seqs, 6, p, seed=0)
    assert sorted(levels["n_wrong"].unique()) == [0, 1, 2, 3]
    clean = levels[(levels["n_wrong"] == 0) & (levels["predictor"] == "modular_regression")]["accuracy"]
    assert (clean == 1.0).all()  # six clean examples at p = 5 determine the task
    positions = noise_position_sweep(run, 2, seqs, (2, 4, 6), p, seed=0, subject="model")
    assert sorted(positions["position"].unique()) == list(range(1, 7)) and sorted(positions["k"].unique()) == [2, 4, 6]
    # a wrong label after the query shot is not in the prompt: those cells are clean
    late = positions[(positions["position"] > positions["k"]) & (positions["predictor"] == "modular_regression")]
    assert (late["accuracy"] == 1.0).all()
