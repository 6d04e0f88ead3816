"""Activation patching against an independent patch, and the prompt-pair designs' invariants.

The reference (``reference_patch``) uses nothing of :mod:`model.patching`: a plain full
forward of the source prompts with a torch forward hook (``register_forward_hook``) keeping
the activation, then a plain full forward of the base prompts with a forward hook that
overwrites it at the chosen positions (and head). :class:`~model.patching.PatchingRun` instead
starts each patched run at the site's block from the cached clean base residual stream and
patches through ``GPT.hooks``. Tolerance ``atol=1e-5`` on logits (fp32 rounding).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from algos.errors import InputError
from algos.solvers import ModularRegression, RatioMatching
from algos.solvers.lines import geometry
from algos.tasks import task_labels
from compare.engine.patching import POSITIONS, make_pairs, parse_design, parse_positions, position_index
from model.checkpoint import load_checkpoint
from model.patching import PatchedPredictor, PatchingRun, PatchSite, all_sites, parse_sites, tokens_of
from model.testing import tiny_checkpoint

ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """Random weights scaled up 15x (answers depend on the prompt), 3 layers x 2 heads, p = 5."""
    path = tiny_checkpoint(tmp_path_factory.mktemp("patch") / "tiny3.pt", n_layer=3, n_head=2, seed=4)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] = {k: v * 15 if v.dim() >= 2 else v for k, v in blob["state_dict"].items()}
    torch.save(blob, path)
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def net(ckpt):
    return ckpt.build_model("cpu")


def _module(net, site: PatchSite) -> torch.nn.Module:
    block = net.blocks[site.layer]
    return {"resid": block.hook_resid_pre, "head": block.attn.hook_z, "attn": block.hook_attn_out,
            "mlp": block.hook_mlp_out}[site.kind]


def reference_patch(net, base: np.ndarray, source: np.ndarray, site: PatchSite, positions, p: int) -> np.ndarray:
    """Logits (n, p) at the last position: base prompts, the site overwritten at ``positions`` by
    its activation on the source prompts, via plain torch forward hooks on full forwards."""
    module = _module(net, site)
    kept = {}
    h = module.register_forward_hook(lambda _m, _i, out: kept.__setitem__("src", out.detach().clone()))
    try:
        with torch.no_grad():
            net(torch.as_tensor(source))
    finally:
        h.remove()
    pos = list(positions)

    def overwrite(_m, _i, out):
        out = out.clone()
        if site.kind == "head":
            out[:, pos, site.head, :] = kept["src"][:, pos, site.head, :]
        else:
            out[:, pos, :] = kept["src"][:, pos, :]
        return out

    h = module.register_forward_hook(overwrite)
    try:
        with torch.no_grad():
            logits, _ = net(torch.as_tensor(base))
    finally:
        h.remove()
    return logits[:, -1, :p].numpy()


def _pairs(ckpt, design, k, n=40, seed=0):
    s = ckpt.setting
    tasks = np.concatenate([s.pretrain_array, s.ood_array])
    return make_pairs(s, tasks, design, k, n, seed)


@pytest.mark.parametrize("design", ["task", "query", "example-line", "example-line-off"])
def test_patched_logits_equal_an_independent_patch(ckpt, net, design):
    rng = np.random.default_rng(7)
    p, cfg = ckpt.setting.p, ckpt.model_config
    sites = all_sites(cfg.n_layer, cfg.n_head)
    for k in (1, 3, 6):
        pairs = _pairs(ckpt, design, k)
        chosen = [sites[i] for i in rng.choice(len(sites), size=5, replace=False)]
        run = PatchingRun(net, pairs.base_tokens, pairs.source_tokens, chosen, p)
        changed = 0.0
        for site in chosen:
            for pos in rng.choice(POSITIONS, size=2, replace=False):
                idx = position_index(str(pos), k)
                got = run.logits(site, idx).numpy()
                ref = reference_patch(net, pairs.base_tokens, pairs.source_tokens, site, idx, p)
                np.testing.assert_allclose(got, ref, atol=ATOL, err_msg=f"{design} k={k} {site.name} {pos}")
                changed = max(changed, float(np.abs(got - run.clean_base.numpy()).max()))
        # clean runs equal plain forwards
        with torch.no_grad():
            clean = net(torch.as_tensor(pairs.base_tokens))[0][:, -1, :p].numpy()
        np.testing.assert_allclose(run.clean_base.numpy(), clean, atol=ATOL)
        assert changed > 1e-3  # some patch moved the logits: the comparison is not vacuous


def test_every_site_and_position_class_against_the_reference(ckpt, net):
    """All sites x all position classes once, at one k."""
    p, cfg = ckpt.setting.p, ckpt.model_config
    pairs = _pairs(ckpt, "task", 4, n=12, seed=3)
    sites = all_sites(cfg.n_layer, cfg.n_head)
    run = PatchingRun(net, pairs.base_tokens, pairs.source_tokens, sites, p)
    for site in sites:
        for pos in POSITIONS:
            idx = position_index(pos, 4)
            np.testing.assert_allclose(run.logits(site, idx).numpy(),
                                       reference_patch(net, pairs.base_tokens, pairs.source_tokens, site, idx, p),
                                       atol=ATOL, err_msg=f"{site.name} {pos}")


def test_patched_predictor_is_the_same_patch_behind_the_predictor_interface(ckpt, net):
    p = ckpt.setting.p
    pairs = _pairs(ckpt, "example-line", 5, n=30, seed=2)
    site, idx = PatchSite("head", 1, 0), position_index("ex_z", 5)
    pred = PatchedPredictor(ckpt, site, idx, pairs.source_examples, pairs.source_queries, device="cpu", net=net,
                            batch_prompts=7)
    out = pred.predict(pairs.base_examples, pairs.base_queries)
    ref = reference_patch(net, pairs.base_tokens, pairs.source_tokens, site, idx, p)
    np.testing.assert_allclose(out.probs, torch.softmax(torch.as_tensor(ref), -1).numpy(), atol=ATOL)
    assert out.pred.shape == (30,) and out.probs.shape == (30, p)
    with pytest.raises(InputError, match="paired"):
        pred.predict_grid(pairs.base_examples, pairs.base_queries[:3])
    with pytest.raises(InputError, match="do not pair"):
        pred.predict(pairs.base_examples[:4], pairs.base_queries[:4])


def test_patching_with_source_equal_to_base_changes_nothing(ckpt, net):
    p, cfg = ckpt.setting.p, ckpt.model_config
    pairs = _pairs(ckpt, "task", 3, n=20, seed=5)
    sites = all_sites(cfg.n_layer, cfg.n_head)
    run = PatchingRun(net, pairs.base_tokens, pairs.base_tokens, sites, p)
    clean = run.clean_base.numpy()
    np.testing.assert_allclose(run.clean_source.numpy(), clean, atol=0)
    for site in sites:
        for pos in POSITIONS:
            np.testing.assert_allclose(run.logits(site, position_index(pos, 3)).numpy(), clean, atol=ATOL)


def test_positions_shared_by_base_and_source_before_any_difference_change_nothing(ckpt, net):
    """In the query design the examples are the same tokens, so patching them is a no-op (causal model);
    the whole source at the residual stream entering block 0 is the source prompt itself."""
    p, cfg = ckpt.setting.p, ckpt.model_config
    pairs = _pairs(ckpt, "query", 4, n=25, seed=1)
    run = PatchingRun(net, pairs.base_tokens, pairs.source_tokens, all_sites(cfg.n_layer, cfg.n_head), p)
    for site in all_sites(cfg.n_layer, cfg.n_head):
        for pos in ("ex_x", "ex_y", "ex_z"):
            np.testing.assert_allclose(run.logits(site, position_index(pos, 4)).numpy(), run.clean_base.numpy(),
                                       atol=ATOL)
    np.testing.assert_allclose(run.logits(PatchSite("resid", 0), position_index("all", 4)).numpy(),
                               run.clean_source.numpy(), atol=ATOL)


# ---------------------------------------------------------------------- designs
def _lines(p, inputs):
    return geometry(p).line[inputs[..., 0] * p + inputs[..., 1]]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_designs_change_what_they_say(ckpt, k):
    p = ckpt.setting.p
    rm, mr = RatioMatching(p), ModularRegression(p)
    for design in ("task", "query", "example-line", "example-line-off"):
        pr = _pairs(ckpt, design, k, n=60, seed=11)
        be, se, bq, sq = pr.base_examples, pr.source_examples, pr.base_queries, pr.source_queries
        assert be.shape == se.shape == (60, k, 3) and pr.base_tokens.shape == (60, 3 * k + 2)
        # labels are the task's on both sides; inputs distinct; queries nonzero
        for ex, t in ((be, pr.base_tasks), (se, pr.source_tasks)):
            np.testing.assert_array_equal(ex[..., 2], (ex[..., 0] * t[:, :1] + ex[..., 1] * t[:, 1:]) % p)
            assert all(len({tuple(r) for r in row[:, :2].tolist()}) == k for row in ex)
        assert (bq.any(1)).all() and (sq.any(1)).all()
        z_b = (pr.base_tasks * bq).sum(1) % p
        z_s = (pr.source_tasks * sq).sum(1) % p
        if design == "task":
            np.testing.assert_array_equal(be[..., :2], se[..., :2])
            np.testing.assert_array_equal(bq, sq)
            assert (z_b != z_s).all()
        elif design == "query":
            np.testing.assert_array_equal(be, se)
            assert (z_b != z_s).all() and (bq != sq).any(1).all()
        else:
            np.testing.assert_array_equal(bq, sq)
            np.testing.assert_array_equal(pr.base_tasks, pr.source_tasks)
            diff = (be != se).any(-1)  # (n, k): exactly the moved example differs
            assert (diff.sum(1) == 1).all() and (diff.argmax(1) == pr.moved).all()
            on, off = (se, be) if design == "example-line" else (be, se)
            q_line = _lines(p, bq)
            assert ((_lines(p, on[..., :2]) == q_line[:, None]).sum(1) == 1).all()
            assert not (_lines(p, off[..., :2]) == q_line[:, None]).any()
            rm_on, rm_off = rm.predict(on, bq).pred, rm.predict(off, bq).pred
            np.testing.assert_array_equal(rm_on, z_b)  # Ratio Matching answers only with the example on the line
            assert (rm_off == -1).all()
            if k >= 2:  # Modular Regression answers the same on both
                np.testing.assert_array_equal(mr.predict(on, bq).pred, mr.predict(off, bq).pred)
                np.testing.assert_array_equal(mr.predict(on, bq).pred, z_b)


def test_pairs_are_deterministic_and_cycle_through_the_tasks(ckpt):
    s = ckpt.setting
    tasks = np.concatenate([s.pretrain_array, s.ood_array])
    a = make_pairs(s, tasks, "task", 3, len(tasks), seed=4)
    b = make_pairs(s, tasks, "task", 3, len(tasks), seed=4)
    c = make_pairs(s, tasks, "task", 3, len(tasks), seed=5)
    np.testing.assert_array_equal(a.base_tokens, b.base_tokens)
    np.testing.assert_array_equal(a.source_tokens, b.source_tokens)
    assert (a.base_tokens != c.base_tokens).any()
    assert sorted(map(tuple, a.base_tasks.tolist())) == sorted(map(tuple, tasks.tolist()))  # each task once
    assert (task_labels(s.p, a.source_tasks, np.zeros((1, 2), int)) == 0).all()


def test_names_and_bad_input():
    assert [x.name for x in parse_sites("L0H1,l1MLP,L2resid,L0H1", 3, 2)] == ["L0H1", "L1mlp", "L2resid"]
    assert parse_sites("L1attn", 3, 2)[0].hook == "blocks.1.hook_attn_out"
    assert PatchSite("head", 2, 1).hook == "blocks.2.attn.hook_z"
    assert len(all_sites(3, 2)) == 3 * (2 + 3)
    for spec, msg in [("L3H0", "layer 3 is out of range"), ("L0H2", "head 2 is out of range"),
                      ("mlp", "unknown component 'mlp'"), ("L0H1,,L1mlp", "empty component name")]:
        with pytest.raises(InputError, match=msg):
            parse_sites(spec, 3, 2)
    with pytest.raises(InputError, match="unknown design 'labels'"):
        parse_design("labels")
    with pytest.raises(InputError, match="unknown position 'q_z'"):
        parse_positions("q_x,q_z")
    assert parse_positions("default") == ["ex_x", "ex_y", "ex_z", "q_x", "q_y"]
    assert position_index("ex_z", 3).tolist() == [2, 5, 8] and position_index("q_y", 3).tolist() == [10]
    np.testing.assert_array_equal(tokens_of(np.zeros((2, 3, 3), int), np.ones((2, 2), int))[:, -2:], 1)
