"""The ablation table (compare.engine.ablation_table) and its heatmap (compare.reports.plots.plot_ablation_heatmap)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from compare_stand_ins import NoisyModel

from algos.solvers import ModularRegression, reference_solvers
from algos.tasks import TaskSetting
from compare.engine.ablation_table import ablation_columns, ablation_rows, most_damaging
from compare.engine.aggregates import unit_sums
from compare.engine.comparison import run_comparison
from compare.engine.grid import build_sequences
from compare.engine.summary import paired_differences, summarize

P = 5


@pytest.fixture(scope="module")
def comparisons():
    """A stand-in model and a 'damaged' copy of it (more noise), over the same prompts."""
    setting = TaskSetting.build(P, n_base_tasks=2, alpha=0.6, task_seed=3)
    tasks = np.array(list(itertools.product(range(P), repeat=2)))
    seqs = build_sequences(P, 4, n_random=1, seed=1)
    refs = reference_solvers(setting)
    ks = (1, 2, 4)
    plain = run_comparison(setting, tasks, seqs, ks, NoisyModel(ModularRegression(P), strength=3.0, noise=0.5), refs)
    damaged = run_comparison(setting, tasks, seqs, ks, NoisyModel(ModularRegression(P), strength=0.5, noise=2.0), refs)
    return plain, damaged


def _rows(name, result, base, n_boot=50):
    refs = list(result.references)
    diffs = paired_differences(unit_sums(result.cells), unit_sums(base.cells), n_boot=n_boot, seed=0)
    return ablation_rows(name, summarize(result.cells, n_boot=n_boot), diffs, "model", refs)


def test_rows_carry_the_rates_and_their_changes(comparisons):
    plain, damaged = comparisons
    table = pd.concat([_rows("none", plain, plain), _rows("L0H0", damaged, plain)], ignore_index=True)
    assert list(table.columns) == ablation_columns(list(plain.references))
    assert len(table) == 2 * 2 * 3  # components x splits x k
    none = table[table.component == "none"]
    assert (none.filter(like="delta_").fillna(0).to_numpy() == 0).all()
    hit = table[table.component == "L0H0"].set_index(["split", "k"])
    base = none.set_index(["split", "k"])
    np.testing.assert_allclose(hit["delta_model_accuracy"], hit["model_accuracy"] - base["model_accuracy"], atol=1e-12)
    assert (hit["delta_model_accuracy"] < 0).all()  # more noise, fewer right answers
    ok = hit["delta_model_accuracy_lo"].notna()
    assert (hit.loc[ok, "delta_model_accuracy_lo"] <= hit.loc[ok, "delta_model_accuracy"]).all()
    assert (hit.loc[ok, "delta_model_accuracy"] <= hit.loc[ok, "delta_model_accuracy_hi"]).all()


def test_most_damaging_is_the_largest_mean_drop(comparisons):
    plain, damaged = comparisons
    table = pd.concat([_rows("none", plain, plain), _rows("small", plain, plain), _rows("big", damaged, plain)])
    assert most_damaging(table) == "big"
    assert most_damaging(table[table.component == "none"]) is None
    assert most_damaging(table[table.split == "id"]) == "big"  # falls back to the split present


def test_heatmap_draws_components_by_k_and_returns_the_axes(comparisons):
    import matplotlib.pyplot as plt

    from compare.reports.plots import plot_ablation_heatmap

    plain, damaged = comparisons
    table = pd.concat([_rows("none", plain, plain), _rows("L0H0+L1mlp", damaged, plain)], ignore_index=True)
    fig, ax = plt.subplots()
    out = plot_ablation_heatmap(table, "delta_model_accuracy", "ood", ax, title="t")
    assert out is ax
    img = ax.images[-1].get_array()
    assert img.shape == (2, 3)  # components x k
    assert [t.get_text() for t in ax.get_yticklabels()] == ["none", "L0H0+L1mlp"]
    assert np.all(np.asarray(img)[0] == 0) and np.all(np.asarray(img)[1] < 0)
    plt.close(fig)
