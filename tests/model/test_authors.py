"""Import of the authors' released checkpoints: file-name parsing, weight mapping, task replay.

The oracle is a forward pass written here the way the authors' model computes it (their
key names, one stacked q/k/v projection, RoPE from the ``rotary-embedding-torch``
package, SDPA, pre-LN, ReLU MLP, tied head), run on random weights in their layout.
"""
import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from algos.tasks import TaskSetting
from model.authors import (
    SOURCE_NOTE,
    AuthorsRun,
    convert_authors_state_dict,
    import_authors_checkpoint,
    parse_authors_filename,
)
from model.checkpoint import CheckpointError, load_checkpoint
from model.testing import authors_state_dict

rotary = pytest.importorskip("rotary_embedding_torch")

RELEASED = (
    "noembdFalse_paraleTrue_pltask384_rope_decoder_p29_base29_row32_ntask384_nvar2_dsplitTrue_dfrac80.0_relu_"
    "n512_h4_d4_lctx512_I1_dI0_adamw_bs1536_t200000_T200000_Tw10000_lr1.50e-04_wd2.00e+00.pth",
    "noembdFalse_paraleTrue_pltask512_rope_decoder_p29_base29_row32_ntask512_nvar2_dsplitTrue_dfrac60.0_relu_"
    "n512_h4_d2_lctx512_I2_dI0_adamw_bs1024_t200000_T200000_Tw10000_lr1.50e-04_wd2.00e+00.pth",
)
TINY = dict(d_model=32, n_head=2, n_layer=2)


def tiny_run(**changes) -> AuthorsRun:
    """A small run at p = 29 (vocabulary 47 > p): 2 base tasks, 8 examples a row."""
    run = parse_authors_filename(RELEASED[0])
    fields = dict(n_tasks_pl=8, n_tasks=8, n_examples=8, data_pct=60.0, d_model=32, n_head=2, n_layer=2,
                  batch_size=64, step=100, steps=100, warmup_steps=10)
    fields.update(changes)
    run = dataclasses.replace(run, **fields)
    return dataclasses.replace(run, file_name=run.to_filename())


def write_authors_file(folder, run=None, sd=None, **sd_kwargs):
    run = run or tiny_run()
    sd = authors_state_dict(vocab_size=run.vocab_size, **{**TINY, **sd_kwargs}) if sd is None else sd
    path = folder / run.to_filename()
    torch.save(sd, path)
    return path, sd


def authors_forward(sd: dict, idx: torch.Tensor, n_head: int, n_layer: int, rope: bool = True,
                    cache: dict | None = None) -> torch.Tensor:
    """Logits (B, T, V) computed the way the authors' RoPETransformer does, from their state dict.

    With ``cache`` it also records, under our hook names and layouts, every activation
    that ``GPT.run_with_cache`` exposes — an independent implementation to check the hooks
    against (explicit softmax attention; per-head results from the o-projection's slices).
    """
    rec = cache.__setitem__ if cache is not None else (lambda name, value: None)
    wte = sd["transformer.wte.weight"]
    B, T = idx.shape
    C = wte.shape[1]
    hd = C // n_head
    rot = rotary.RotaryEmbedding(dim=hd)
    x = wte[idx]
    rec("hook_embed", x)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(n_layer):
        h, b = f"transformer.h.{i}.", f"blocks.{i}."
        rec(b + "hook_resid_pre", x)
        a = F.layer_norm(x, (C,), sd[h + "ln_1.weight"], sd[h + "ln_1.bias"])
        q, k, v = (a @ sd[h + "attn.to_qkv.weight"].T).split(C, dim=2)
        q, k, v = (t.view(B, T, n_head, hd).transpose(1, 2) for t in (q, k, v))
        raw_q, raw_k = q, k
        if rope:
            q, k = rot.rotate_queries_or_keys(q), rot.rotate_queries_or_keys(k)
        scores = (q @ k.transpose(-1, -2) * hd ** -0.5).masked_fill(~causal, float("-inf"))
        pattern = scores.softmax(-1)
        y = pattern @ v  # (B, H, T, hd)
        o = sd[h + "attn.o.weight"]  # (C, C): input channels ordered head by head
        result = torch.stack([y[:, j] @ o[:, j * hd:(j + 1) * hd].T for j in range(n_head)], dim=2)  # (B, T, H, C)
        attn_out = y.transpose(1, 2).contiguous().view(B, T, C) @ o.T
        heads_second = {"q": raw_q, "k": raw_k, "rot_q": q, "rot_k": k, "v": v, "z": y}  # (B, H, T, hd) here
        for name, value in [*((n, t.transpose(1, 2)) for n, t in heads_second.items()),  # hooks: (B, T, H, hd)
                            ("attn_scores", scores), ("pattern", pattern), ("result", result)]:
            rec(f"{b}attn.hook_{name}", value)
        rec(b + "hook_attn_out", attn_out)
        x = x + attn_out
        rec(b + "hook_resid_mid", x)
        m = F.layer_norm(x, (C,), sd[h + "ln_2.weight"], sd[h + "ln_2.bias"])
        post = F.relu(m @ sd[h + "mlp.c_fc.weight"].T)
        mlp_out = post @ sd[h + "mlp.c_proj.weight"].T
        rec(b + "mlp.hook_post", post)
        rec(b + "hook_mlp_out", mlp_out)
        x = x + mlp_out
        rec(b + "hook_resid_post", x)
    x = F.layer_norm(x, (C,), sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"])
    return x @ sd["lm_head.weight"].T


# ---------------------------------------------------------------------- file names
@pytest.mark.parametrize("name", RELEASED)
def test_the_released_names_parse_and_round_trip(name):
    run = parse_authors_filename("some/folder/" + name)
    assert run.file_name == name
    assert run.to_filename() == name
    run.check_supported()
    assert (run.p, run.base, run.vocab_size, run.n_examples, run.d_model, run.n_head) == (29, 29, 47, 32, 512, 4)
    assert run.n_base_tasks * 4 == run.n_tasks_pl and run.n_random_tasks == 0
    assert run.step == run.steps == 200_000 and run.warmup_steps == 10_000
    assert run.lr == pytest.approx(1.5e-4) and run.weight_decay == 2.0


def test_released_configs_match_the_paper():
    d4, d2 = (parse_authors_filename(n) for n in RELEASED)
    assert (d4.n_layer, d4.n_base_tasks, d4.alpha, d4.batch_size, d4.seed, d4.data_seed) == (4, 96, 0.8, 1536, 1, 0)
    assert (d2.n_layer, d2.n_base_tasks, d2.alpha, d2.batch_size, d2.seed, d2.data_seed) == (2, 128, 0.6, 1024, 2, 0)
    mc, tc, sc = d4.model_config(), d4.train_config(), d4.setting_config()
    assert (mc.vocab_size, mc.p, mc.n_layer, mc.n_examples) == (47, 29, 4, 32)
    assert (tc.steps, tc.batch_size, tc.warmup_steps, tc.betas, tc.seed) == (200_000, 1536, 10_000, (0.9, 0.98), 1)
    assert (sc.convention, sc.n_base_tasks, sc.task_seed, sc.split_seed, sc.alpha) == ("authors", 96, 1, 0, 0.8)


def test_a_name_without_the_step_uses_the_total_steps():
    name = RELEASED[0].replace("_t200000", "")
    run = parse_authors_filename(name)
    assert run.step is None and run.checkpoint_step == 200_000
    assert run.to_filename() == name


@pytest.mark.parametrize(
    "name, where",
    [
        ("model.pth", "noembd"),
        ("d4.pt", "noembd"),
        (RELEASED[0].replace(".pth", ".pt"), ".pth"),
        (RELEASED[0].replace("_dfrac80.0", "_dfracX"), "_dfrac"),
        (RELEASED[0].replace("_h4_", "_heads4_"), "_h<heads>"),
        (RELEASED[0].replace("_lr1.50e-04", ""), "_lr"),
        (RELEASED[0] + ".bak", ".pth"),
    ],
)
def test_a_name_that_does_not_parse_says_where(name, where):
    with pytest.raises(ValueError, match="not an authors' checkpoint file name") as err:
        parse_authors_filename(name)
    assert where in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(act_name="gelu"), "only 'relu'"),
        (dict(model_name="rope_encoder"), "rope_decoder"),
        (dict(base=10), "one token per residue"),
        (dict(parallelogram=False), "rectangular rule"),
        (dict(n_tasks_pl=10, n_tasks=10), "multiple of 4"),
        (dict(split_data=False), "split"),
        (dict(n_var=3), "nvar3"),
        (dict(d_model=30, n_head=4), "heads"),
    ],
)
def test_unsupported_configurations_are_refused(change, message):
    run = dataclasses.replace(parse_authors_filename(RELEASED[0]), **change)
    with pytest.raises(ValueError, match=message):
        run.check_supported()


# ---------------------------------------------------------------------- weights
def test_imported_logits_equal_the_authors_forward(tmp_path):
    src, sd = write_authors_file(tmp_path)
    dst = import_authors_checkpoint(src, tmp_path / "imported.pt")
    ck = load_checkpoint(dst)
    assert ck.model_config.vocab_size == 47 > ck.model_config.p == 29
    net = ck.build_model()
    torch.manual_seed(0)
    idx = torch.randint(0, 47, (3, 3 * 8))  # every token of their vocabulary, a full row
    with torch.no_grad():
        ours, _ = net(idx)
        theirs = authors_forward(sd, idx, n_head=2, n_layer=2)
        no_rope = authors_forward(sd, idx, n_head=2, n_layer=2, rope=False)
    assert ours.shape == theirs.shape == (3, 24, 47)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (ours - theirs).abs().max()
    assert (ours - no_rope).abs().max() > 1e-2  # the check can tell a missing rotation


def test_cached_activations_of_an_imported_checkpoint_equal_an_independent_forward(tmp_path):
    """Every hook point, in its documented layout, against the authors'-style forward."""
    src, sd = write_authors_file(tmp_path)
    net = load_checkpoint(import_authors_checkpoint(src, tmp_path / "imported.pt")).build_model()
    torch.manual_seed(1)
    idx = torch.randint(0, 29, (2, 3 * 8))
    logits, cache = net.run_with_cache(idx)
    want: dict = {}
    with torch.no_grad():
        theirs = authors_forward(sd, idx, n_head=2, n_layer=2, cache=want)
    assert set(cache) == set(want)  # every hook point, no more, no fewer
    # fp32, O(1)-scale weights (std 0.2 in authors_state_dict): two computation orders agree to ~1e-6
    torch.testing.assert_close(logits, theirs, atol=1e-4, rtol=1e-5)
    for name, value in want.items():
        got = cache[name]
        assert got.shape == value.shape, (name, got.shape, value.shape)
        if name.endswith("hook_attn_scores"):  # -inf above the diagonal on both sides
            assert torch.equal(torch.isinf(got), torch.isinf(value)), name
            got, value = got.masked_fill(torch.isinf(got), 0), value.masked_fill(torch.isinf(value), 0)
        torch.testing.assert_close(got, value, atol=1e-4, rtol=1e-5, msg=name)


def test_imported_checkpoint_carries_setting_configs_and_provenance(tmp_path):
    run = tiny_run(seed=3, data_seed=5)
    src, _ = write_authors_file(tmp_path, run)
    ck = load_checkpoint(import_authors_checkpoint(src, tmp_path / "out" / "imported.pt"))
    expected = TaskSetting.authors_replay(p=29, n_base_tasks=2, alpha=0.6, task_seed=3, split_seed=5)
    assert ck.setting == expected
    assert ck.setting.fingerprint() == expected.fingerprint()
    assert ck.setting_config.build() == expected
    assert ck.step == 100
    assert (ck.train_config.steps, ck.train_config.batch_size, ck.train_config.warmup_steps) == (100, 64, 10)
    assert ck.train_config.lr == pytest.approx(1.5e-4) and ck.train_config.weight_decay == 2.0
    assert ck.meta["source"] == SOURCE_NOTE
    assert ck.meta["source_file"] == src.name
    import hashlib

    assert ck.meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert ck.max_k == 7


def test_the_imported_model_predicts_over_the_p_residues(tmp_path):
    from model.predictor import ModelPredictor

    src, _ = write_authors_file(tmp_path)
    ck = load_checkpoint(import_authors_checkpoint(src, tmp_path / "imported.pt"))
    mp = ModelPredictor(ck, device="cpu")
    rng = np.random.default_rng(0)
    ex = rng.integers(0, 29, size=(2, 3, 3))
    queries = np.stack(np.meshgrid(np.arange(29), np.arange(29), indexing="ij"), -1).reshape(-1, 2)[:50]
    grid = mp.predict_grid(ex, queries)
    assert grid.probs.shape == (2, 50, 29)
    assert np.allclose(grid.probs.sum(-1), 1.0, atol=1e-5)
    assert grid.pred.max() < 29


def test_a_state_dict_without_rope_buffers_imports_too(tmp_path):
    src, _ = write_authors_file(tmp_path, rope_freqs=False)
    assert load_checkpoint(import_authors_checkpoint(src, tmp_path / "a.pt")).model_config.n_layer == 2


def _bad(sd, key, value):
    sd = dict(sd)
    if value is None:
        del sd[key]
    else:
        sd[key] = value
    return sd


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: _bad(sd, "transformer.h.0.attn.to_qkv.weight", torch.zeros(90, 32)),
         r"transformer\.h\.0\.attn\.to_qkv\.weight has shape \(90, 32\) but the configuration .*expects \(96, 32\)"),
        (lambda sd: _bad(sd, "transformer.h.1.mlp.c_fc.weight", torch.zeros(64, 32)), r"c_fc\.weight has shape"),
        (lambda sd: _bad(_bad(sd, "transformer.wte.weight", torch.zeros(40, 32)), "lm_head.weight",
                         torch.zeros(40, 32)),
         r"transformer\.wte\.weight has shape \(40, 32\).*expects \(47, 32\)"),
        (lambda sd: _bad(sd, "transformer.ln_f.bias", None), r"missing transformer\.ln_f\.bias"),
        (lambda sd: _bad(sd, "transformer.h.2.ln_1.weight", torch.ones(32)),
         r"unexpected transformer\.h\.2\.ln_1\.weight"),
        (lambda sd: _bad(sd, "lm_head.weight", torch.zeros(47, 32)), "untied output layer"),
        (lambda sd: _bad(sd, "transformer.h.0.attn.rotary_emb.freqs", torch.ones(4)), r"rotary_emb\.freqs has shape"),
        (lambda sd: _bad(sd, "transformer.h.0.attn.rotary_emb.freqs", torch.ones(8)), "RoPE frequencies"),
    ],
)
def test_weights_that_do_not_fit_the_name_are_refused(tmp_path, edit, message):
    run = tiny_run()
    sd = edit(authors_state_dict(vocab_size=47, **TINY))
    src, _ = write_authors_file(tmp_path, run, sd=sd)
    with pytest.raises(CheckpointError, match=message) as err:
        import_authors_checkpoint(src, tmp_path / "out.pt")
    assert str(src) in str(err.value)
    assert not (tmp_path / "out.pt").exists()


def test_a_model_of_another_size_than_the_name_is_refused(tmp_path):
    run = tiny_run(d_model=64)  # the name says n64, the weights are n32
    src, _ = write_authors_file(tmp_path, run, sd=authors_state_dict(vocab_size=47, **TINY))
    with pytest.raises(CheckpointError, match=r"n64, h2, d2"):
        import_authors_checkpoint(src, tmp_path / "out.pt")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n"),
         "Git LFS pointer"),
        (lambda p: p.write_text("not a torch file"), "not a readable torch file"),
        (lambda p: torch.save([torch.zeros(2)], p), "expected a bare state dict"),
        (lambda p: torch.save({"step": 3}, p), "expected a bare state dict"),
        (lambda p: torch.save({"kind": "icl-modgrok-checkpoint"}, p), "already an icl-modgrok checkpoint"),
    ],
)
def test_files_that_are_not_state_dicts_are_refused(tmp_path, make, message):
    src = tmp_path / tiny_run().to_filename()
    make(src)
    with pytest.raises(CheckpointError, match=message) as err:
        import_authors_checkpoint(src, tmp_path / "out.pt")
    assert str(src) in str(err.value)


def test_unsafe_pickles_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("side effect",))

    src = tmp_path / tiny_run().to_filename()
    torch.save({"transformer.wte.weight": Evil()}, src)
    with pytest.raises(CheckpointError, match="refused to load"):
        import_authors_checkpoint(src, tmp_path / "out.pt")


def test_a_file_renamed_away_from_the_authors_name_is_refused(tmp_path):
    src, _ = write_authors_file(tmp_path)
    renamed = src.rename(tmp_path / "d4.pth")
    with pytest.raises(ValueError, match="not an authors' checkpoint file name"):
        import_authors_checkpoint(renamed, tmp_path / "out.pt")


def test_convert_maps_every_key_and_ties_the_head():
    sd = authors_state_dict(vocab_size=47, **TINY)
    cfg = tiny_run().model_config()
    ours = convert_authors_state_dict(sd, cfg)
    assert ours["lm_head.weight"] is ours["wte.weight"]
    assert torch.equal(ours["blocks.1.attn.qkv.weight"], sd["transformer.h.1.attn.to_qkv.weight"])
    assert torch.equal(ours["blocks.0.mlp.proj.weight"], sd["transformer.h.0.mlp.c_proj.weight"])
    from model.gpt import GPT

    assert set(ours) == set(GPT(cfg).state_dict())
    wrapped = {"module." + k: v for k, v in sd.items()}  # a DDP-wrapped save maps the same
    assert set(convert_authors_state_dict(wrapped, cfg)) == set(ours)
    assert math.isclose(float(ours["wte.weight"].std()), 1.0, rel_tol=0.2)
