"""docs/gpu.md quotes the committed benchmark results it names."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "gpu.md").read_text()


def _json(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / name).read_text())


def _in_doc(text: str) -> None:
    assert text in " ".join(DOC.split()), f"docs/gpu.md does not say {text!r}"


def test_bf16_flip_rate():
    rate = _json("gpu_check_reduced_cpu.json")["parity"]["bf16_flip_rate"]
    _in_doc(f"changes the answer of {100 * rate:.1f} % of the cells")


def test_model_calls():
    d = _json("model_calls.json")
    b, s = d["batched"], d["per_sequence"]
    _in_doc(f"{b['calls']} calls of {b['prefixes_per_call']:.0f} prefixes instead of {s['calls']:,} calls of one")
    _in_doc(f"({b['total_seconds']:.1f} s against {s['total_seconds']:.1f} s there")
    assert d["same_answers"] and d["max_abs_dp_true"] <= 3e-8


def test_train_batches():
    d = _json("train_batches.json")["per_world"]
    _in_doc(f"takes {d['1']['rank0_ms']:.0f} ms with 1 rank and {d['8']['rank0_ms']:.1f} ms with 8")
    assert all(row["bit_identical"] for row in d.values())


def test_compare_run_against_the_commit_before_the_refactor():
    d = _json("compare_run_vs_d797d07.json")
    text = " ".join((ROOT / "docs" / "benchmarks.md").read_text().split())
    want = (f"median of 3 **{d['median_seconds']:.2f} s** against {d['baseline_median_seconds']:.2f} s for d797d07: "
            f"ratio **{d['ratio_vs_baseline']:.3f}**")
    assert want in text


def test_transformer_lens_check():
    d = _json("transformer_lens_check.json")
    text = " ".join((ROOT / "docs" / "transformer-lens.md").read_text().split())
    assert f"TransformerLens {d['transformer_lens']}'s `HookedTransformer`" in text
    for name, row in d["models"].items():
        assert f"{row['max_abs_logit_diff']:.1e} for `{name}`" in text
        assert row["same_argmax"] and not row["unexpected_keys"]
        assert set(row["keys_not_taken"]) <= {"IGNORE", "mask", "rotary_cos", "rotary_sin"}
