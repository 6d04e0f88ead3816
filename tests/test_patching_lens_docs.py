"""The figures docs/lens.md and docs/patching.md quote agree with the committed reports and benchmark.

Each entry names a page, a piece of its text with ``{}`` where figures go, and a function per
figure that reads it from a committed file (``reports/d4-lens/``, ``reports/d4-patch-task/``,
``reports/d4-patch-example-line/``, ``benchmarks/results/patching_d4.json``) and formats it as the
page prints it. The test fills the text in and looks for it in its page (line breaks ignored),
so a report rebuilt with other numbers fails here until the page says them. Same scheme as
tests/test_readme_figures.py, kept beside these two pages.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from docs_testing import cell as _cell
from docs_testing import last_json as _json
from docs_testing import pct
from docs_testing import read_csv as _csv

ROOT = Path(__file__).resolve().parents[1]
LENS, PATCH = "docs/lens.md", "docs/patching.md"


def lens(layer: int, split: str, predictor: str, column: str) -> Callable[[], str]:
    return lambda: pct(_cell("reports/d4-lens/lens.csv", column, layer=layer, split=split, k=8, predictor=predictor))


def dla(component: str, split: str, k: int = 8, algorithm: str = "model") -> Callable[[], str]:
    return lambda: f"{_cell('reports/d4-lens/dla.csv', 'dla_vs_mean', split=split, k=k, algorithm=algorithm, component=component):.2f}"  # noqa: E501


def pt(design: str, component: str, position: str, column: str, fmt: str = "%") -> Callable[[], str]:
    def get() -> str:
        v = _cell(f"reports/d4-patch-{design}/patching.csv", column, component=component, position=position,
                  split="all", k=8)
        return pct(v) if fmt == "%" else format(int(v), "d") if fmt == "d" else format(v, fmt)

    return get


def clean_share(design: str, side: str) -> Callable[[], str]:
    def get() -> str:
        p = _csv(f"reports/d4-patch-{design}/prompts.csv")
        return pct(float((p[f"model_{side}"] == p[f"z_{side}"]).mean()))

    return get


def bench(*path: str, fmt: str = ".2f") -> Callable[[], str]:
    def get() -> str:
        node = _json("benchmarks/results/patching_d4.json")
        for key in path:
            node = node[key]
        return format(float(node), fmt) if fmt != "d" else str(int(node))

    return get


def timing(key: str) -> Callable[[], str]:
    return lambda: f"{json.loads((ROOT / 'reports/d4-lens/manifest.json').read_text())['timings'][key]:.1f}"


FIGURES = [
    (LENS, "at k = 8 its o.o.d. accuracy is {} %, {} % and {} %",
     [lens(v, "ood", "model", "accuracy") for v in (0, 1, 2)]),
    (LENS, "its agreement with Ratio Matching, where Ratio Matching answers, {} %, {} % and {} %",
     [lens(v, "ood", "ratio_matching", "agreement") for v in (0, 1, 2)]),
    (LENS, "it is {} % o.o.d. and {} % i.d.",
     [lens(3, "ood", "model", "accuracy"), lens(3, "id", "model", "accuracy")]),
    (LENS, "agrees with Ratio Matching on {} % of the o.o.d. cells", [lens(3, "ood", "ratio_matching", "agreement")]),
    (LENS, "relative to the mean over residues, is {} (i.d.) and {} (o.o.d.)",
     [dla("L3mlp", "id"), dla("L3mlp", "ood")]),
    (LENS, "the next component, L2mlp, gives {} and {}", [dla("L2mlp", "id"), dla("L2mlp", "ood")]),
    (LENS, "is {} at k = 1 and {} at k = 8", [dla("L3mlp", "ood", 1), dla("L3mlp", "ood", 8)]),
    (LENS, "cost {} plain forwards ({} s against {} s), the DLA {} s",
     [bench("lens", "all_layers_in_forwards"), bench("lens", "all_layers_seconds", fmt=".3f"),
      bench("lens", "model_forward_seconds", fmt=".3f"), bench("lens", "dla_seconds", fmt=".3f")]),
    (LENS, "say {} s for the four layers (`lens_seconds`), {} s for the DLA (`dla_seconds`), {} s in all "
     "(`total_seconds`) and {} s to write the report",
     [timing("lens_seconds"), timing("dla_seconds"), timing("total_seconds"), timing("report_seconds")]),
    (PATCH, "answers differ between base and source on {} of 300 pairs",
     [pt("task", "L0resid", "ex_z", "n_follows", "d")]),
    (PATCH, "on {} % (entering block 1, `L1resid`) and {} % (entering block 2, `L2resid`) of pairs, and on {} % "
     "entering block 3", [pt("task", c, "ex_z", "follows_source") for c in ("L1resid", "L2resid", "L3resid")]),
    (PATCH, "{} % entering block 2 (`L2resid`), {} % entering block 3 (`L3resid`); block 2's attention output at "
     "`q_y` alone gives {} % (`L2attn`), and its interchange-intervention accuracy for Modular Regression is {} % "
     "against a control of {} %",
     [pt("task", "L2resid", "q_y", "follows_source"), pt("task", "L3resid", "q_y", "follows_source"),
      pt("task", "L2attn", "q_y", "follows_source"), pt("task", "L2attn", "q_y", "iia_modular_regression"),
      pt("task", "L2attn", "q_y", "iia_modular_regression_clean")]),
    (PATCH, "give {} % (L2H0), {} % (L2H1), {} % (L2H2) and {} % (L2H3)",
     [pt("task", f"L2H{h}", "q_y", "follows_source") for h in range(4)]),
    (PATCH, "On the {} pairs where the source query lies on an example's line (`n_cf_ratio_matching`), L2H0 alone "
     "gives Ratio Matching's counterfactual answer on {} % (`iia_ratio_matching`) against {} % for Modular "
     "Regression's", [pt("task", "L2H0", "q_y", "n_cf_ratio_matching", "d"),
                      pt("task", "L2H0", "q_y", "iia_ratio_matching"),
                      pt("task", "L2H0", "q_y", "iia_modular_regression")]),
    (PATCH, "The clean model is right on {} % of base prompts (no example on the query's line) and on {} % of source "
     "prompts", [clean_share("example-line", "base"), clean_share("example-line", "source")]),
    (PATCH, "its answer changes on {} of 300 pairs (`n_follows`). Ratio Matching's counterfactual answer exists on "
     "all {} (`n_cf_ratio_matching`); Modular Regression's never changes (`n_cf_modular_regression` {})",
     [pt("example-line", "L3mlp", "q_y", c, "d") for c in ("n_follows", "n_cf_ratio_matching",
                                                            "n_cf_modular_regression")]),
    (PATCH, "gives the source's answer on {} % of the {} pairs whose answer changes (`follows_source`), recovers {} "
     "of the logit difference (`ld_recovered`), and raises Ratio Matching's interchange-intervention accuracy to "
     "{} % from the control's {} %",
     [pt("example-line", "L3mlp", "q_y", "follows_source"), pt("example-line", "L3mlp", "q_y", "n_follows", "d"),
      pt("example-line", "L3mlp", "q_y", "ld_recovered", ".2f"),
      pt("example-line", "L3mlp", "q_y", "iia_ratio_matching"),
      pt("example-line", "L3mlp", "q_y", "iia_ratio_matching_clean")]),
    (PATCH, "follows the source on {} % but changes {} % of all predictions (`changed`), lowering Ratio Matching's "
     "interchange-intervention accuracy to {} %; block 3's attention output (`L3attn`) follows on {} %",
     [pt("example-line", "L3resid", "q_y", "follows_source"), pt("example-line", "L3resid", "q_y", "changed"),
      pt("example-line", "L3resid", "q_y", "iia_ratio_matching"),
      pt("example-line", "L3attn", "q_y", "follows_source")]),
    (PATCH, "140 patches, {} forward passes (each patched run starts at the patched block from the cached clean base "
     "residual stream) in {} s, {} s more to write the report",
     [bench("forward_passes", fmt="d"), bench("seconds"), bench("report_seconds")]),
]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("doc, text, figures", FIGURES, ids=[f"{Path(d).stem}: {t[:40]}" for d, t, _ in FIGURES])
def test_pages_quote_the_committed_figures(doc, text, figures):
    expected = _flat(text.format(*(f() for f in figures)))
    assert expected in _flat((ROOT / doc).read_text()), f"{doc} should say: {expected!r}"


def test_no_head_writes_much_directly():
    """docs/lens.md: 'no head more than 0.08 in absolute value' (dla.csv, model's answer, k = 8)."""
    t = _csv("reports/d4-lens/dla.csv")
    heads = t[(t["k"] == 8) & (t["algorithm"] == "model") & t["head"].notna()]
    assert len(heads) == 2 * 16 and heads["dla_vs_mean"].abs().max() <= 0.08
    assert "no head more than 0.08 in absolute value" in _flat((ROOT / LENS).read_text())
