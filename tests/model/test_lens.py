"""The logit lens and direct logit attribution against independent recomputations.

References here use neither :mod:`model.lens` nor the grid path: a plain full forward of
``model.gpt.GPT`` over every token of every prompt, the residual stream (or each component's
output) caught by forward hooks written in this file, then the final LayerNorm and the
unembedding applied by hand. Tolerance: the grid path and a full forward are different
computations (cached prefix vs. all tokens), so probabilities agree to fp32 rounding;
``atol=1e-5`` as in tests/model/test_ablation.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from algos.errors import InputError
from algos.prompts import make_examples, query_grid, random_sequences
from model.checkpoint import load_checkpoint
from model.lens import EMBED, DirectLogitAttribution, LensPredictor, dla_components, layer_name, parse_layers
from model.predictor import ModelPredictor
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
    """Random weights scaled up 15x (so answers depend on the prompt), 3 layers x 2 heads, p = 5."""
    path = tiny_checkpoint(tmp_path_factory.mktemp("lens") / "tiny3.pt", n_layer=3, n_head=2, seed=2)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] = {k: v * 15 if v.dim() >= 2 else v for k, v in blob["state_dict"].items()}
    torch.save(blob, path)
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def base(ckpt):
    return ModelPredictor(ckpt, device="cpu", batch_prefixes=4)


@pytest.fixture(scope="module")
def prompts(ckpt):
    p = ckpt.setting.p
    tasks = np.array([[1, 2], [3, 4], [0, 1], [2, 2], [4, 0]])
    return tasks, random_sequences(p, 2, 6, seed=3), (1, 4, 6)


def _tokens(ex: np.ndarray, queries: np.ndarray) -> torch.Tensor:
    n, k, _ = ex.shape
    q = len(queries)
    return torch.as_tensor(np.concatenate([np.repeat(ex.reshape(n, 3 * k), q, 0), np.tile(queries, (n, 1))], 1))


def _ln(x: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def reference_lens(net, tokens: torch.Tensor, layer: int, p: int) -> np.ndarray:
    """Softmax over residues of ln_f + unembedding of the residual stream after block ``layer``
    (the embedding for -1) at the last position, caught by a forward hook on a full forward."""
    caught = {}
    module = net.hook_embed if layer == -1 else net.blocks[layer].hook_resid_post
    handle = module.register_forward_hook(lambda _m, _i, out: caught.__setitem__("x", out.detach()))
    try:
        with torch.no_grad():
            net(tokens)
    finally:
        handle.remove()
    with torch.no_grad():
        logits = _ln(caught["x"][:, -1], net.ln_f) @ net.wte.weight.T
    return torch.softmax(logits[:, :p], -1).numpy()


def _near_tie_ok(a: np.ndarray, b: np.ndarray) -> None:
    top = np.sort(b, -1)
    clear = top[:, -1] - top[:, -2] > 1e-4
    assert (a.argmax(-1)[clear] == b.argmax(-1)[clear]).all()


@pytest.mark.parametrize("layer", [EMBED, 0, 1, 2])
def test_each_layer_equals_final_ln_and_unembedding_of_its_residual_stream(ckpt, base, prompts, layer):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    lens = LensPredictor(ckpt, layer, device="cpu", batch_prefixes=3, net=base.net)
    for k in ks:
        for seq in sequences:
            ex = make_examples(p, tasks, seq, k)
            grid = lens.predict_grid(ex, query_grid(p))
            ref = reference_lens(base.net, _tokens(ex, query_grid(p)), layer, p)
            np.testing.assert_allclose(grid.probs.reshape(-1, p), ref, atol=ATOL)
            _near_tie_ok(grid.probs.reshape(-1, p), ref)
            # the full-recomputation path too, on paired prompts
            rep = np.repeat(ex, p * p, 0)
            full = lens.predict(rep, np.tile(query_grid(p), (len(ex), 1)))
            np.testing.assert_allclose(full.probs, ref, atol=ATOL)


def test_the_last_layer_is_the_model(ckpt, base, prompts):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    last = LensPredictor(ckpt, ckpt.model_config.n_layer - 1, device="cpu", batch_prefixes=4, net=base.net)
    for k in ks:
        ex = make_examples(p, tasks, sequences[0], k)
        a, b = last.predict_grid(ex, query_grid(p)), base.predict_grid(ex, query_grid(p))
        np.testing.assert_array_equal(a.pred, b.pred)
        np.testing.assert_array_equal(a.probs, b.probs)
        q = np.tile(query_grid(p)[:7], (len(ex), 1))[: len(ex)]
        np.testing.assert_array_equal(last.predict(ex, q).probs, base.predict(ex, q).probs)


def test_layers_differ_on_a_random_model(ckpt, base, prompts):
    """The check above is not vacuous: an earlier layer's readout is another predictor."""
    tasks, sequences, _ = prompts
    p = ckpt.setting.p
    ex = make_examples(p, tasks, sequences[0], 4)
    first = LensPredictor(ckpt, 0, device="cpu", net=base.net).predict_grid(ex, query_grid(p)).probs
    model = base.predict_grid(ex, query_grid(p)).probs
    assert np.abs(first - model).max() > 1e-2


def reference_dla(net, tokens: torch.Tensor, p: int) -> np.ndarray:
    """(n, n_components, p) direct contributions at the last position from a full forward with hooks:
    embed, per layer each head's hook_result and the MLP output, then the final LN's bias."""
    caught: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda _m, _i, out: caught.__setitem__(name, out.detach()[:, -1])

    names = [("embed", net.hook_embed)]
    for i, block in enumerate(net.blocks):
        names += [(f"result{i}", block.attn.hook_result), (f"mlp{i}", block.hook_mlp_out)]
    names.append(("final", net.blocks[-1].hook_resid_post))
    handles = [m.register_forward_hook(keep(n)) for n, m in names]
    try:
        with torch.no_grad():
            logits, _ = net(tokens)
    finally:
        for h in handles:
            h.remove()
    parts = [caught["embed"]]
    for i in range(len(net.blocks)):
        parts += list(caught[f"result{i}"].unbind(1))  # (n, H, C) -> H x (n, C)
        parts.append(caught[f"mlp{i}"])
    final = caught["final"]
    with torch.no_grad():
        sigma = torch.sqrt(final.var(-1, unbiased=False, keepdim=True) + net.ln_f.eps)
        W = net.wte.weight[:p]  # (p, C)
        out = [((c - c.mean(-1, keepdim=True)) / sigma * net.ln_f.weight) @ W.T for c in parts]
        out.append((net.ln_f.bias @ W.T).expand(len(tokens), p))
    return torch.stack(out, 1).numpy(), logits[:, -1, :p].numpy()


def test_dla_equals_hooked_full_forward_and_sums_to_the_logits(ckpt, base, prompts):
    tasks, sequences, ks = prompts
    p = ckpt.setting.p
    cfg = ckpt.model_config
    dla = DirectLogitAttribution(ckpt, device="cpu", batch_prefixes=2, net=base.net)
    assert dla.components == dla_components(cfg.n_layer, cfg.n_head)
    assert dla.components[:4] == ["embed", "L0H0", "L0H1", "L0mlp"] and dla.components[-1] == "bias"
    for k in ks:
        ex = make_examples(p, tasks, sequences[1], k)
        contrib, probs = dla.attribute(ex, query_grid(p))
        ref, logits = reference_dla(base.net, _tokens(ex, query_grid(p)), p)
        got = contrib.reshape(-1, len(dla.components), p)
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got, ref, atol=ATOL * scale)
        np.testing.assert_allclose(got.sum(1), logits, atol=ATOL * scale)
        np.testing.assert_allclose(probs, base.predict_grid(ex, query_grid(p)).probs, atol=0)


def test_parse_layers():
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("all+embed", 3) == [-1, 0, 1, 2]
    assert parse_layers("2,0,embed,0", 3) == [-1, 0, 2]
    assert parse_layers([1], 3) == [1] and parse_layers(2, 3) == [2]
    assert layer_name(-1) == "embed" and layer_name(2) == "L2"
    for bad, msg in [("3", "no layer 3"), ("-2", "no layer -2"), ("x", "'x' is not a layer"), ("0,,1", "empty item")]:
        with pytest.raises(InputError, match=msg):
            parse_layers(bad, 3)
    with pytest.raises(InputError, match="no layer 5"):
        _lens_at(5)


def _lens_at(layer):
    class _Ck:
        class model_config:  # noqa: N801 - a stand-in with the one attribute read before the check
            n_layer = 3

    return LensPredictor(_Ck(), layer)  # type: ignore[arg-type]
