"""compare.engine.mixture: EM recovers planted weights, the fit is never below its best single component,
identical components are merged, and the components are the algorithms' distributions."""
from __future__ import annotations

import numpy as np
import pytest

from algos.prompts import make_examples, query_grid
from algos.solvers import reference_solvers
from algos.tasks import TaskSetting
from compare.engine.mixture import COMPONENTS, component_distributions, fit_mixture, log_likelihood

NAMES = ("a", "b", "c", "d")


def _comps(n=4000, J=4, p=11, seed=0, conc=0.3):
    return np.random.default_rng(seed).dirichlet(np.full(p, conc), size=(n, J))


@pytest.mark.parametrize("w", [(0.5, 0.3, 0.2, 0.0), (0.1, 0.1, 0.1, 0.7), (0.25, 0.25, 0.25, 0.25)])
def test_em_recovers_planted_weights(w):
    comps = _comps(seed=len(w))
    target = np.einsum("j,njp->np", np.array(w), comps)
    f = fit_mixture(target, comps, NAMES)
    assert np.allclose(f.weights, w, atol=2e-3), f.weights
    assert f.converged and f.ll == pytest.approx(f.ll_ceiling, abs=1e-5)  # the planted mixture is the model
    assert f.ll > max(f.ll_single) + 0.1


def test_em_recovers_weights_from_sampled_data():
    """Targets are one-hot samples of the planted mixture: the MLE is near the planted weights."""
    rng = np.random.default_rng(5)
    comps = _comps(n=20000, seed=5)
    w = np.array([0.6, 0.3, 0.1, 0.0])
    mix = np.einsum("j,njp->np", w, comps)
    z = (mix.cumsum(-1) > rng.random((len(mix), 1))).argmax(-1)
    f = fit_mixture(np.eye(11)[z], comps, NAMES)
    assert np.allclose(f.weights, w, atol=0.03), f.weights


@pytest.mark.parametrize("seed", range(6))
def test_the_fit_is_at_least_its_best_single_component(seed):
    rng = np.random.default_rng(seed)
    comps = _comps(n=500, seed=seed)
    kind = seed % 3
    if kind == 0:  # unrelated to the components
        target = rng.dirichlet(np.ones(11), size=500)
    elif kind == 1:  # exactly one component: the optimum is a vertex
        target = comps[:, 2].copy()
    else:  # one component, sharpened
        target = comps[:, 1] ** 3 / (comps[:, 1] ** 3).sum(-1, keepdims=True)
    f = fit_mixture(target, comps, NAMES)
    assert f.ll >= f.ll_single.max() - 1e-12
    assert np.isclose(np.nansum(f.weights), 1.0) and (f.weights >= 0).all()
    assert f.ll <= f.ll_ceiling + 1e-9
    if kind == 1:
        assert f.weights[2] > 0.99 and f.best_single == "c"


def test_em_never_lowers_the_likelihood():
    comps = _comps(n=800, seed=9)
    target = np.random.default_rng(9).dirichlet(np.ones(11), size=800)
    lls = [fit_mixture(target, comps, NAMES, max_iter=i, tol=-1.0).ll for i in (1, 2, 5, 20, 100)]
    assert all(b >= a - 1e-12 for a, b in zip(lls, lls[1:], strict=False))


def test_identical_components_are_merged():
    comps = _comps(n=300, seed=2)
    comps[:, 3] = comps[:, 1]
    target = 0.5 * comps[:, 0] + 0.5 * comps[:, 1]
    f = fit_mixture(target, comps, NAMES)
    assert f.same_as == ("", "", "", "b") and np.isnan(f.weights[3])
    assert np.allclose(f.weights[:3], [0.5, 0.5, 0.0], atol=2e-3)
    assert f.ll_single[3] == f.ll_single[1]


def test_log_likelihood_is_minus_cross_entropy():
    P = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    Q = np.array([[0.25, 0.25, 0.5], [0.5, 0.25, 0.25]])
    assert log_likelihood(P, Q) == pytest.approx((np.log(0.25) + np.log(0.5)) / 2)


@pytest.fixture(scope="module")
def setting():
    return TaskSetting.build(7, n_base_tasks=2, alpha=0.6)


def _preds(setting, k):
    p = setting.p
    ex = make_examples(p, np.array([[1, 2], [3, 4], [0, 5]]), query_grid(p)[[3, 10, 22, 40]], k)
    q = query_grid(p)
    return {s.name: s.predict_grid(ex, q) for s in reference_solvers(setting) if s.name in COMPONENTS}


def test_components_are_the_algorithms_distributions(setting):
    p, eps = setting.p, 0.05
    preds = _preds(setting, 2)
    comps = component_distributions(preds, p, eps)
    assert comps.shape == (3 * p * p, len(COMPONENTS), p)
    assert np.allclose(comps.sum(-1), 1.0)
    rm = preds["ratio_matching"].pred.reshape(-1)
    j = COMPONENTS.index("ratio_matching")
    hit = rm >= 0
    assert np.allclose(comps[hit, j, :][np.arange(hit.sum()), rm[hit]], 1 - eps + eps / p)
    assert np.allclose(comps[~hit, j, :], 1 / p)  # no answer: uniform
    bu = COMPONENTS.index("bayes_uniform")
    assert np.allclose(comps[:, bu], (1 - eps) * preds["bayes_uniform"].probs.reshape(-1, p) + eps / p)
    assert np.allclose(comps[:, COMPONENTS.index("uniform")], 1 / p)


def test_a_planted_mixture_of_the_algorithms_is_recovered(setting):
    """0.6 Ratio Matching + 0.3 Modular Regression + 0.1 uniform, on real solver outputs at k = 2."""
    comps = component_distributions(_preds(setting, 2), setting.p, 0.01)
    w = np.zeros(len(COMPONENTS))
    w[[COMPONENTS.index("ratio_matching"), COMPONENTS.index("modular_regression"), COMPONENTS.index("uniform")]] = (
        0.6, 0.3, 0.1)
    f = fit_mixture(np.einsum("j,njp->np", w, comps), comps)
    # at k = 2 with independent inputs Bayes over all tasks is Modular Regression: merged into it
    assert f.same_as[COMPONENTS.index("bayes_uniform")] == "modular_regression"
    got = np.nan_to_num(f.weights)
    assert np.allclose(got, w, atol=5e-3), got
