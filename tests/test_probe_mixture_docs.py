"""The figures docs/probes.md and docs/mixture.md quote agree with the committed reports.

Each entry names a page, a piece of its text with ``{}`` where figures go, and a function per
figure that reads it from a committed file (``reports/d4-probe/``, ``reports/d4-mixture/``,
``reports/V2-mixture/``) and formats it as the page prints it. The test fills the text in and
looks for it in its page (line breaks ignored), so a report rebuilt with other numbers fails here
until the page says them. Same scheme as tests/test_patching_lens_docs.py.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from docs_testing import cell as _cell
from docs_testing import manifest as _manifest
from docs_testing import pct
from docs_testing import read_csv as _csv

ROOT = Path(__file__).resolve().parents[1]
PROBES, MIXTURE, TL = "docs/probes.md", "docs/mixture.md", "docs/transformer-lens.md"
PROBE_CSV = "reports/d4-probe/probes.csv"
D4_MIX, V2_MIX = "reports/d4-mixture/mixture.csv", "reports/V2-mixture/mixture.csv"


def pr(site: str, target: str, column: str = "accuracy", position: str = "q_y", fmt: str = "%") -> Callable[[], str]:
    def get() -> str:
        v = _cell(PROBE_CSV, column, k=8, position=position, site=site, target=target)
        return pct(v) if fmt == "%" else format(v, fmt) if fmt != "d" else str(int(v))

    return get


def pr_max(target: str, column: str = "accuracy", **where) -> Callable[[], str]:
    def get() -> str:
        t = _csv(PROBE_CSV)
        sel = t[(t["target"] == target) & (t["k"] == 8)]
        for col, val in where.items():
            sel = sel[sel[col] == val]
        return pct(float(sel[column].max()))

    return get


def pr_majority(target: str) -> Callable[[], str]:
    def get() -> str:
        t = _csv(PROBE_CSV)
        values = t[(t["target"] == target) & (t["k"] == 8)]["majority"].unique()
        assert len(values) == 1  # one split per k: the same baseline at every site
        return pct(float(values[0]))

    return get


def probe_manifest(*path: str, fmt: str = "%") -> Callable[[], str]:
    def get() -> str:
        node = _manifest("reports/d4-probe")
        for key in path:
            node = node[key]
        return pct(float(node)) if fmt == "%" else format(float(node), fmt)

    return get


def mix(split: str, k: int, component: str, column: str = "weight", file: str = D4_MIX, step: int | None = None,
        fmt: str = ".3f") -> Callable[[], str]:
    def get() -> str:
        where = {"split": split, "k": k, "component": component}
        if step is not None:
            where["step"] = step
        v = _cell(file, column, **where)
        return f"{v:{fmt}}" if fmt != "-" else f"−{-v:.3f}"

    return get


def neg(split: str, k: int, column: str, file: str = D4_MIX) -> Callable[[], str]:
    """A group-level log-likelihood, printed with a minus sign as the page does."""
    return lambda: f"−{-_cell(file, column, split=split, k=k, component='uniform'):.3f}"


def v2(k: int, component: str, step: int) -> Callable[[], str]:
    return mix("ood", k, component, file=V2_MIX, step=step)


def _v2_rows(k: int, component: str, until: int | None = None) -> pd.Series:
    t = _csv(V2_MIX)
    sel = t[(t["k"] == k) & (t["component"] == component) & (t["split"] == "ood")]
    if until is not None:
        sel = sel[sel["step"] <= until]
    return sel.set_index("step")["weight"]


def v2_max(k: int, component: str, until: int | None = None) -> Callable[[], str]:
    return lambda: f"{_v2_rows(k, component, until).max():.3f}"


def v2_argmax(k: int, component: str) -> Callable[[], str]:
    return lambda: f"{int(_v2_rows(k, component).idxmax()):,}"


def timing(folder: str, key: str) -> Callable[[], str]:
    return lambda: f"{_manifest(folder)['timings'][key]:.1f}"


FIGURES = [
    (PROBES, "3,000 prompts over the 121 tasks, 750 held out; the model answers {} % of them",
     [probe_manifest("probe", "model_accuracy", "8")]),
    (PROBES, "The `ratio` probe reads {} % from the embedding (`embed`) and {} % right after block 0's attention "
     "(`L0.mid`), and stays at {} % through `L2.post`; it falls to {} % after block 3's attention (`L3.mid`) and to {} "
     "% after the last MLP (`L3.post`)",
     [pr("embed", "ratio"), pr("L0.mid", "ratio"), pr("L2.post", "ratio"), pr("L3.mid", "ratio"),
      pr("L3.post", "ratio")]),
    (PROBES, "Its control is high early — {} % at `L0.mid`", [pr("L0.mid", "ratio", "control_accuracy")]),
    (PROBES, "so the selectivity is {} there and {} at `L2.post` (control {} %)",
     [pr("L0.mid", "ratio", "selectivity", fmt=".3f"), pr("L2.post", "ratio", "selectivity", fmt=".3f"),
      pr("L2.post", "ratio", "control_accuracy")]),
    (PROBES, "The `line` probe stays near its majority ({} %) until block 2: {} % at `L2.mid`, {} % at `L2.post` and "
     "{} % after block 3's attention (`L3.mid`, control {} %, selectivity {}), then {} % at `L3.post`",
     [pr_majority("line"), pr("L2.mid", "line"), pr("L2.post", "line"), pr("L3.mid", "line"),
      pr("L3.mid", "line", "control_accuracy"), pr("L3.mid", "line", "selectivity", fmt=".3f"),
      pr("L3.post", "line")]),
    (PROBES, "at no site and position does the `multiplier` probe exceed {} % (majority {} %)",
     [pr_max("multiplier"), pr_majority("multiplier")]),
    (PROBES, "`answer` reads {} % after block 3's attention (`L3.mid`) and {} % after its MLP (`L3.post`, "
     "control {} %, selectivity {})",
     [pr("L3.mid", "answer"), pr("L3.post", "answer"), pr("L3.post", "answer", "control_accuracy"),
      pr("L3.post", "answer", "selectivity", fmt=".3f")]),
    (PROBES, "(`answer_on_line`) it is {} % at `L3.mid` and {} % at `L3.post`; on those only combining examples "
     "answers (`answer_off_line`, {} held out) {} % and {} %",
     [pr("L3.mid", "answer_on_line"), pr("L3.post", "answer_on_line"),
      pr("L3.post", "answer_off_line", "n_test", fmt="d"), pr("L3.mid", "answer_off_line"),
      pr("L3.post", "answer_off_line")]),
    (PROBES, "`task_a` and `task_b` never exceed {} % and {} % (majority {} % and {} %), both at `L2.post`",
     [pr_max("task_a"), pr_max("task_b"), pr_majority("task_a"), pr_majority("task_b")]),
    (PROBES, "no target except `line` exceeds {} % at any site", [lambda: pct(float(
        _csv(PROBE_CSV).query("position == 'q_x' and target != 'line' and k == 8")["accuracy"].max()))]),
    (PROBES, "while every control up to `L3.mid` is at least {} %", [lambda: pct(float(
        _csv(PROBE_CSV).query("position == 'q_x' and site != 'L3.post' and k == 8")["control_accuracy"].min()))]),
    (PROBES, "at `ex_z` no probe exceeds {} %", [pr_max("line", position="ex_z")]),
    (PROBES, "the example on the query's line is located only partly ({} % at best, after block 3's attention)",
     [pr("L3.mid", "line")]),
    (PROBES, "where Ratio Matching suffices ({} % → {} % across it) and where only Modular Regression answers ({} % → "
     "{} %)", [pr("L3.mid", "answer_on_line"), pr("L3.post", "answer_on_line"), pr("L3.mid", "answer_off_line"),
               pr("L3.post", "answer_off_line")]),
    (PROBES, "fits 216 probes and their 216 controls", []),
    (PROBES, "the manifest's `timings` say {} s for the forward passes, {} s for the fits, {} s in all",
     [timing("reports/d4-probe", "model_seconds"), timing("reports/d4-probe", "fit_seconds"),
      timing("reports/d4-probe", "total_seconds")]),
    (MIXTURE, "On o.o.d. tasks Modular Regression's weight is {} at k = 2, {} at k = 4, {} at k = 5 and {} at k = 8, "
     "while Ratio Matching's falls from {} at k = 2 to {} at k = 8. On i.d. tasks Modular Regression's weight is {} at "
     "k = 2, {} at k = 4 and {} at k = 8",
     [mix("ood", 2, "modular_regression"), mix("ood", 4, "modular_regression"), mix("ood", 5, "modular_regression"),
      mix("ood", 8, "modular_regression"), mix("ood", 2, "ratio_matching"), mix("ood", 8, "ratio_matching"),
      mix("id", 2, "modular_regression"), mix("id", 4, "modular_regression"), mix("id", 8, "modular_regression")]),
    (MIXTURE, "At k = 8 the fit's log-likelihood is {} nats per cell o.o.d. against {} for its best single component "
     "(Modular Regression) and a ceiling of {}; i.d. {} against {} and a ceiling of {}",
     [neg("ood", 8, "ll_fit"), neg("ood", 8, "ll_best_single"), neg("ood", 8, "ll_ceiling"),
      neg("id", 8, "ll_fit"), neg("id", 8, "ll_best_single"), neg("id", 8, "ll_ceiling")]),
    (MIXTURE, "At k = 1 the model is almost Ratio Matching (weight {} o.o.d., {} on Bayes over the memorized tasks)",
     [mix("ood", 1, "ratio_matching"), mix("ood", 1, "bayes_memorized")]),
    (MIXTURE, "On o.o.d. tasks its weight is {} at k = 2 and {} at k = 8",
     [mix("ood", 2, "bayes_memorized"), mix("ood", 8, "bayes_memorized")]),
    *[(MIXTURE, f"| {step:,} | {{}} | {{}} | {{}} | {{}} |",
       [v2(8, "ratio_matching", step), v2(8, "modular_regression", step), v2(8, "uniform", step),
        v2(4, "modular_regression", step)]) for step in (16000, 23000, 24000, 26000, 30000, 32000, 34000, 40000)],
    (MIXTURE, "At k = 8, Ratio Matching's weight goes from {} at step 23,000 to {} at step 26,000, while Modular "
     "Regression's stays at or below {} until step 30,000; between steps 30,000 and 32,000 Modular Regression's jumps "
     "to {}, reaching {} at step 40,000, as Ratio Matching's falls back to {}",
     [v2(8, "ratio_matching", 23000), v2(8, "ratio_matching", 26000),
      v2_max(8, "modular_regression", until=30000),
      v2(8, "modular_regression", 32000), v2(8, "modular_regression", 40000), v2(8, "ratio_matching", 40000)]),
    (MIXTURE, "(Modular Regression {} at step 30,000, {} at step 40,000)",
     [v2(4, "modular_regression", 30000), v2(4, "modular_regression", 40000)]),
    (MIXTURE, "At k = 2 Modular Regression never takes more than {}; there Ratio Matching's weight peaks at {} (step "
     "{}) and ends at {}, and Bayes over the memorized tasks rises to {} at step 40,000",
     [v2_max(2, "modular_regression"), v2_max(2, "ratio_matching"), v2_argmax(2, "ratio_matching"),
      v2(2, "ratio_matching", 40000), v2(2, "bayes_memorized", 40000)]),
    (MIXTURE, "`compare mixture --ckpt d4.pt --k 1..8` took {} s in all (`total_seconds` of the manifest) and the V2 "
     "run over 24 snapshots {} s", [timing("reports/d4-mixture", "total_seconds"),
                                    timing("reports/V2-mixture", "total_seconds")]),
]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("doc, text, figures", FIGURES, ids=[f"{Path(d).stem}: {t[:40]}" for d, t, _ in FIGURES])
def test_pages_quote_the_committed_figures(doc, text, figures):
    expected = _flat(text.format(*(f() for f in figures)))
    assert expected in _flat((ROOT / doc).read_text()), f"{doc} should say: {expected!r}"


def test_the_probe_report_is_the_documented_command():
    m = _manifest("reports/d4-probe")
    assert m["argv"] == ["probe", "--ckpt", "d4.pt", "--k", "8", "--prompts", "3000", "--quiet"]
    assert m["ks"] == [8] and m["n_tasks"] == 121 and m["probe"]["prompts_per_k"] == 3000
    t = _csv(PROBE_CSV)
    assert len(t) == 216 and (t["n_test"][t["target"] == "answer"] == 750).all()
    assert np.allclose(t["selectivity"], t["accuracy"] - t["control_accuracy"], atol=1e-5)


def test_every_mixture_fit_is_at_least_its_best_single_component():
    """The bar, on the committed reports: in every group the mixture's log-likelihood is at least that of each
    single component (CSV rounding aside), and at most the ceiling."""
    for file in (D4_MIX, V2_MIX):
        t = _csv(file)
        keys = [c for c in ("step", "split", "k") if c in t.columns]
        for _, g in t.groupby(keys):
            assert g["ll_fit"].iloc[0] >= g["ll_single"].max() - 1e-5
            assert g["ll_fit"].iloc[0] <= g["ll_ceiling"].iloc[0] + 1e-5
            assert np.isclose(g["weight"].sum(skipna=True), 1.0, atol=1e-5)


def test_the_mixture_reports_are_the_documented_commands():
    d4, run = _manifest("reports/d4-mixture"), _manifest("reports/V2-mixture")
    assert d4["argv"] == ["mixture", "--ckpt", "d4.pt", "--k", "1..8", "--quiet"] and d4["n_tasks"] == 121
    assert run["argv"] == ["mixture", "--run", "checkpoints/runs/V2", "--k", "2,4,8", "--tasks", "ood", "--sequences",
                           "4", "--quiet"]
    assert len(run["snapshots"]) == 24 and run["n_tasks"] == 21 and len(run["sequences"]) == 5
    assert d4["mixture"]["epsilon"] == run["mixture"]["epsilon"] == 0.01


def test_the_transformer_lens_page_names_the_version_checked():
    from model.transformer_lens import TL_VERSION_CHECKED

    assert f"TransformerLens v{TL_VERSION_CHECKED}" in (ROOT / TL).read_text()
