"""The figures docs/findings-causes.md quotes agree with the committed reports.

The page sets the lens, patching, probe and mixture reports of ``d2.pt``, ``d4-p7.pt`` and ``d4.pt``
side by side (``reports/<model>-lens/``, ``-patch-task/``, ``-patch-example-line/``, ``-probe/``,
``-mixture/``). Each entry names a piece of its text with ``{}`` where figures go, and a function per
figure that reads it from a committed file and formats it as the page prints it. The test fills the
text in and looks for it in the page (line breaks ignored), so a report rebuilt with other numbers
fails here until the page says them. Same scheme as tests/test_patching_lens_docs.py and
tests/test_probe_mixture_docs.py.
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
PAGE = "docs/findings-causes.md"
MODELS = ("d2", "d4-p7", "d4")
LAYERS = {"d2": 2, "d4-p7": 4, "d4": 4}
TOOLS = ("lens", "patch-task", "patch-example-line", "probe", "mixture")
K = 8


def num(v: float, fmt: str) -> str:
    """As the page prints a number: a true minus sign for negatives."""
    s = format(v, fmt)
    return "−" + s[1:] if s.startswith("-") else s


# --- lens.csv and dla.csv -------------------------------------------------------------------------

def lens(m: str, layer: int, split: str = "ood", predictor: str = "model", column: str = "accuracy",
         k: int = K) -> Callable[[], str]:
    return lambda: pct(_cell(f"reports/{m}-lens/lens.csv", column, layer=layer, split=split, k=k,
                             predictor=predictor))


def lens_layers(m: str) -> Callable[[], str]:
    return lambda: " · ".join(lens(m, layer)() for layer in range(LAYERS[m]))


def last(m: str) -> int:
    return LAYERS[m] - 1


def dla(m: str, component: str, split: str = "ood", k: int = K) -> Callable[[], str]:
    return lambda: num(_cell(f"reports/{m}-lens/dla.csv", "dla_vs_mean", split=split, k=k, algorithm="model",
                             component=component), ".2f")


def _dla_rows(m: str, split: str = "ood", heads: bool = False) -> pd.DataFrame:
    t = _csv(f"reports/{m}-lens/dla.csv")
    t = t[(t["k"] == K) & (t["algorithm"] == "model") & (t["split"] == split)]
    return t[t["head"].notna()] if heads else t


def dla_top(m: str, heads: bool = False) -> Callable[[], str]:
    """The component with the largest |dla_vs_mean| to the model's o.o.d. answer, and that value."""
    def get() -> str:
        t = _dla_rows(m, heads=heads)
        row = t.loc[t["dla_vs_mean"].abs().idxmax()]
        return f"{row['component']} {num(float(row['dla_vs_mean']), '.2f')}"

    return get


def dla_max_head(m: str, split: str = "ood") -> Callable[[], str]:
    return lambda: f"{_dla_rows(m, split, heads=True)['dla_vs_mean'].abs().max():.2f}"


def dla_second(m: str, split: str = "ood") -> Callable[[], str]:
    """The second-largest dla_vs_mean to the model's answer, with its component."""
    def get() -> str:
        row = _dla_rows(m, split).sort_values("dla_vs_mean", ascending=False).iloc[1]
        return f"{row['component']}, {num(float(row['dla_vs_mean']), '.2f')}"

    return get


# --- patching.csv and prompts.csv -------------------------------------------------------------------

def pt(m: str, design: str, component: str, position: str = "q_y", column: str = "follows_source",
       fmt: str = "%") -> Callable[[], str]:
    def get() -> str:
        v = _cell(f"reports/{m}-patch-{design}/patching.csv", column, component=component, position=position,
                  split="all", k=K)
        return pct(v) if fmt == "%" else str(int(v)) if fmt == "d" else num(v, fmt)

    return get


def resid_row(m: str, position: str) -> Callable[[], str]:
    return lambda: " · ".join(pt(m, "task", f"L{layer}resid", position)() for layer in range(LAYERS[m]))


def named(m: str, design: str, component: str, position: str = "q_y") -> Callable[[], str]:
    return lambda: f"{component} {pt(m, design, component, position)()}"


def best_head(m: str, design: str, position: str = "q_y") -> Callable[[], str]:
    def get() -> str:
        t = _csv(f"reports/{m}-patch-{design}/patching.csv")
        t = t[(t["split"] == "all") & (t["k"] == K) & (t["position"] == position) & (t["kind"] == "head")]
        return str(t.loc[t["follows_source"].idxmax(), "component"])

    return get


def clean_share(m: str, design: str, side: str) -> Callable[[], str]:
    def get() -> str:
        p = _csv(f"reports/{m}-patch-{design}/prompts.csv")
        return pct(float((p[f"model_{side}"] == p[f"z_{side}"]).mean()))

    return get


# --- probes.csv -----------------------------------------------------------------------------------

def pr(m: str, site: str, target: str, column: str = "accuracy", position: str = "q_y",
       fmt: str = "%") -> Callable[[], str]:
    def get() -> str:
        v = _cell(f"reports/{m}-probe/probes.csv", column, k=K, position=position, site=site, target=target)
        return pct(v) if fmt == "%" else str(int(v)) if fmt == "d" else num(v, fmt)

    return get


def _probes(m: str, target: str, position: str | None = "q_y") -> pd.DataFrame:
    t = _csv(f"reports/{m}-probe/probes.csv")
    t = t[(t["k"] == K) & (t["target"] == target)]
    return t if position is None else t[t["position"] == position]


def pr_max(m: str, target: str) -> Callable[[], str]:
    """The largest held-out accuracy of a target's probe at any site and position."""
    return lambda: pct(float(_probes(m, target, None)["accuracy"].max()))


def pr_majority(m: str, target: str) -> Callable[[], str]:
    def get() -> str:
        values = _probes(m, target, None)["majority"].unique()
        assert len(values) == 1
        return pct(float(values[0]))

    return get


def first_full(m: str, target: str = "ratio") -> str:
    """The first site, in the model's order, at which the probe reads 100.0 % at q_y."""
    t = _probes(m, target)
    return str(t[t["accuracy"].map(pct) == "100.0"].iloc[0]["site"])


def ratio_first(m: str) -> Callable[[], str]:
    return lambda: f"`{first_full(m)}` ({pr(m, first_full(m), 'ratio', 'control_accuracy')()})"


def best_sel(m: str, target: str = "ratio") -> str:
    t = _probes(m, target)
    return str(t.loc[t["selectivity"].idxmax(), "site"])


def ratio_best_sel(m: str) -> Callable[[], str]:
    return lambda: f"{pr(m, best_sel(m), 'ratio', 'selectivity', fmt='.3f')()} (`{best_sel(m)}`)"


def across_last_mlp(m: str, target: str) -> Callable[[], str]:
    return lambda: f"{pr(m, f'L{last(m)}.mid', target)()} → {pr(m, f'L{last(m)}.post', target)()}"


# --- mixture.csv ----------------------------------------------------------------------------------

def mix(m: str, component: str, split: str = "ood", k: int = K) -> Callable[[], str]:
    return lambda: f"{_cell(f'reports/{m}-mixture/mixture.csv', 'weight', split=split, k=k, component=component):.3f}"


def weights(m: str) -> Callable[[], str]:
    return lambda: " / ".join(mix(m, c)() for c in ("ratio_matching", "modular_regression", "bayes_memorized",
                                                      "uniform"))


def ll(m: str, column: str, split: str = "ood", k: int = K) -> Callable[[], str]:
    return lambda: num(_cell(f"reports/{m}-mixture/mixture.csv", column, split=split, k=k, component="uniform"),
                       ".3f")


def best_single(m: str, split: str = "ood", k: int = K) -> str:
    t = _csv(f"reports/{m}-mixture/mixture.csv")
    return str(t[(t["split"] == split) & (t["k"] == k)]["best_single"].iloc[0])


NAMES = {"ratio_matching": "Ratio Matching", "modular_regression": "Modular Regression", "uniform": "uniform",
         "bayes_memorized": "Bayes over the memorized tasks"}


def ll_pair(m: str) -> Callable[[], str]:
    return lambda: f"{ll(m, 'll_fit')()} against {ll(m, 'll_best_single')()} ({NAMES[best_single(m)]})"


# --- more helpers for the prose -------------------------------------------------------------------

def dla_rank(m: str, n: int, part: str) -> Callable[[], str]:
    """The n-th largest dla_vs_mean to the model's o.o.d. answer (0: the largest): its name or its value."""
    def get() -> str:
        r = _dla_rows(m).sort_values("dla_vs_mean", ascending=False).iloc[n]
        return f"`{r['component']}`" if part == "name" else num(float(r["dla_vs_mean"]), ".2f")

    return get


def second_is(m: str, component: str) -> Callable[[], str]:
    """The value of the second-largest dla_vs_mean, checking that it is `component`'s."""
    def get() -> str:
        r = _dla_rows(m).sort_values("dla_vs_mean", ascending=False).iloc[1]
        assert r["component"] == component, (m, r["component"])
        return num(float(r["dla_vs_mean"]), ".2f")

    return get


def max_head_is(m: str, design: str, component: str, column: str = "follows_source") -> Callable[[], str]:
    """A head's rate at q_y, checking that it is the largest of any head's."""
    def get() -> str:
        assert best_head(m, design)() == component
        return pt(m, design, component, column=column)()

    return get


def probe_accuracy(m: str) -> Callable[[], str]:
    return lambda: pct(float(_manifest(f"reports/{m}-probe")["probe"]["model_accuracy"][str(K)]))


def ll_single_best(m: str, expect: str, split: str = "ood") -> Callable[[], str]:
    def get() -> str:
        assert best_single(m, split) == expect, (m, best_single(m, split))
        return ll(m, "ll_best_single", split)()

    return get


def mix_max(m: str, component: str, split: str = "ood") -> Callable[[], str]:
    def get() -> str:
        t = _csv(f"reports/{m}-mixture/mixture.csv")
        return f"{t[(t['split'] == split) & (t['component'] == component)]['weight'].max():.3f}"

    return get


def task_max(m: str) -> Callable[[], str]:
    return lambda: max((pr_max(m, "task_a")(), pr_max(m, "task_b")()), key=float)


def max_total_seconds() -> Callable[[], str]:
    return lambda: f"{max(_manifest(f'reports/{m}-{t}')['timings']['total_seconds'] for m in ('d2', 'd4-p7') for t in TOOLS):.0f}"  # noqa: E501


def min_max_k() -> Callable[[], str]:
    return lambda: str(min(_manifest(f"reports/{m}-{t}")["checkpoint"]["max_k"] for m in MODELS for t in TOOLS))


def lens_out(m: str) -> Callable[[], str]:
    return lens(m, last(m), predictor="ratio_matching", column="model_acc_out")


def lens_rm(m: str) -> Callable[[], str]:
    return lens(m, last(m), predictor="ratio_matching", column="agreement")


def first_control(m: str) -> Callable[[], str]:
    return lambda: pr(m, first_full(m), "ratio", "control_accuracy")()


def ex(m: str, component: str, column: str = "follows_source", fmt: str = "%") -> Callable[[], str]:
    return pt(m, "example-line", component, column=column, fmt=fmt)


def tk(m: str, component: str, position: str = "q_y", column: str = "follows_source",
       fmt: str = "%") -> Callable[[], str]:
    return pt(m, "task", component, position, column, fmt)


def given(check: Callable[[], bool], figure: Callable[[], str]) -> Callable[[], str]:
    """A figure whose naming on the page rests on a fact of the reports: that fact is asserted first."""
    def get() -> str:
        assert check(), "the page names the wrong component or site for this figure"
        return figure()

    return get


def step(m: str) -> Callable[[], str]:
    return lambda: f"{_manifest(f'reports/{m}-lens')['checkpoint']['step']:,}"


MR, RM = "iia_modular_regression", "iia_ratio_matching"


# --- the page -------------------------------------------------------------------------------------

def row(label: str, per_model: Callable[[str], Callable[[], str]]) -> tuple[str, str, list]:
    return (PAGE, f"| {label} | {{}} | {{}} | {{}} |", [per_model(m) for m in MODELS])


ATTN = {"d2": "L1attn", "d4-p7": "L3attn", "d4": "L2attn"}
HEAD = {"d2": "L1H0", "d4-p7": "L3H1", "d4": "L2H0"}

TABLE = [
    row("lens accuracy after each block, %", lens_layers),
    (PAGE, "| last layer: agreement with Ratio Matching where it answers / accuracy where it does not, % | {} / {} | "
     "{} / {} | {} / {} |",
     [f for m in MODELS for f in (lens(m, last(m), predictor="ratio_matching", column="agreement"),
                                  lens(m, last(m), predictor="ratio_matching", column="model_acc_out"))]),
    row("largest direct logit attribution to the model's answer", lambda m: dla_top(m)),
    row("largest by a head", lambda m: dla_top(m, heads=True)),
    row("`task` patching: residual stream at `ex_z` entering each block, % follows source",
        lambda m: resid_row(m, "ex_z")),
    row("the same at `q_y`", lambda m: resid_row(m, "q_y")),
    row("the attention layer that moves the labels to `q_y`", lambda m: named(m, "task", ATTN[m])),
    row("its best single head at `q_y`", lambda m: named(m, "task", HEAD[m])),
    row("the last MLP's output at `q_y`", lambda m: named(m, "task", f"L{last(m)}mlp")),
    row("`example-line` patching: best head at `q_y`, % follows source (changed pairs)",
        lambda m: lambda: f"{best_head(m, 'example-line')()} {pt(m, 'example-line', best_head(m, 'example-line')())()} "
                          f"({pt(m, 'example-line', 'L0resid', column='n_follows', fmt='d')()})"),
    row("probe: the query's ratio first at 100 % (site, control %)", ratio_first),
    row("probe: the ratio's largest selectivity (site)", ratio_best_sel),
    row("probe: the answer across the last MLP, %", lambda m: across_last_mlp(m, "answer")),
    row("probe: the answer off the examples' lines, across the last MLP, %",
        lambda m: across_last_mlp(m, "answer_off_line")),
    row("mixture weights: Ratio Matching / Modular Regression / Bayes over the memorized tasks / uniform", weights),
    row("mixture log-likelihood: fit against its best single component", ll_pair),
]


PROSE = [
    (PAGE, "Every model takes k up to {} or more (the manifests' `max_k`)", [min_max_k()]),
    (PAGE, "no manifest's `total_seconds` exceeds {} s", [max_total_seconds()]),
    # d2
    (PAGE, "The stream after block 0 is at chance ({} % o.o.d.); after block 1 — the model — it is {} % o.o.d. and "
     "{} % i.d. It agrees with Ratio Matching on {} % of the o.o.d. cells Ratio Matching answers and is right on {} "
     "% of the others", [lens("d2", 0), lens("d2", 1), lens("d2", 1, "id"), lens_rm("d2"), lens_out("d2")]),
    (PAGE, "i.d. {} % at k = 4, {} % at k = 5, {} % at k = 6 (`lens.csv`, layer 1, predictor model)",
     [lens("d2", 1, "id", k=k) for k in (4, 5, 6)]),
    (PAGE, "The last MLP, L1mlp, writes the answer: {} i.d. and {} o.o.d.; the next component is the token embedding "
     "({} o.o.d.), and the largest head, L1H0, gives {}. L1mlp's share grows with k: {} at k = 1, {} at k = 8 "
     "(o.o.d.)",
     [dla("d2", "L1mlp", "id"), dla("d2", "L1mlp"), second_is("d2", "embed"),
      given(lambda: dla_top("d2", heads=True)().split()[0] == "L1H0", dla("d2", "L1H0")),
      dla("d2", "L1mlp", k=1), dla("d2", "L1mlp")]),
    (PAGE, "(the model's clean answers differ on {} of 300 pairs)", [tk("d2", "L0resid", "ex_z", "n_follows", "d")]),
    (PAGE, "the residual stream at `ex_z` entering block 1 gives the source's answer on {} % of pairs, at `q_y` on "
     "{} %",
     [tk("d2", "L1resid", "ex_z"), tk("d2", "L1resid")]),
    (PAGE, "Block 1's attention output at `q_y` gives {} % (`L1attn`; interchange-intervention accuracy for Modular "
     "Regression {} % against a control of {} %), its MLP output {} %",
     [tk("d2", "L1attn"), tk("d2", "L1attn", column=MR), tk("d2", "L1attn", column=MR + "_clean"), tk("d2", "L1mlp")]),
    (PAGE, "Its heads give {} % (L1H0), {} % (L1H1), {} % (L1H2) and {} % (L1H3); on the {} pairs where the source "
     "query lies on an example's line (`n_cf_ratio_matching`), L1H0 alone gives Ratio Matching's counterfactual "
     "answer on {} %",
     [*(tk("d2", f"L1H{h}") for h in range(4)), tk("d2", "L1H0", column="n_cf_ratio_matching", fmt="d"),
      tk("d2", "L1H0", column=RM)]),
    (PAGE, "The clean model is right on {} % of base prompts and {} % of source prompts (one example moved onto the "
     "query's line); its answer changes on {} of 300 pairs",
     [clean_share("d2", "example-line", "base"), clean_share("d2", "example-line", "source"),
      ex("d2", "L0resid", "n_follows", "d")]),
    (PAGE, "L1H0 at `q_y` gives the source's answer on {} % of those pairs, recovers {} of the logit difference "
     "(`ld_recovered`) and raises Ratio Matching's interchange-intervention accuracy to {} % from the control's {} "
     "%. The whole attention layer gives {} % ({}), the MLP output {} % ({})",
     [max_head_is("d2", "example-line", "L1H0"), ex("d2", "L1H0", "ld_recovered", ".2f"), ex("d2", "L1H0", RM),
      ex("d2", "L1H0", RM + "_clean"), ex("d2", "L1attn"), ex("d2", "L1attn", "ld_recovered", ".2f"),
      ex("d2", "L1mlp"), ex("d2", "L1mlp", "ld_recovered", ".2f")]),
    (PAGE, "(3,000 prompts, 750 held out; the model answers {} % of them)", [probe_accuracy("d2")]),
    (PAGE, "The query's ratio reads {} % after block 0's attention (`L0.mid`) and {} % after its MLP (`L0.post`) — "
     "but there the control reads {} % (selectivity {})",
     [pr("d2", "L0.mid", "ratio"), pr("d2", "L0.post", "ratio"), pr("d2", "L0.post", "ratio", "control_accuracy"),
      pr("d2", "L0.post", "ratio", "selectivity", fmt=".3f")]),
    (PAGE, "The ratio is most selective after the last MLP ({} %, control {} %, selectivity {} at `L1.post`)",
     [pr("d2", "L1.post", "ratio"), pr("d2", "L1.post", "ratio", "control_accuracy"),
      given(lambda: best_sel("d2") == "L1.post", pr("d2", "L1.post", "ratio", "selectivity", fmt=".3f"))]),
    (PAGE, "(at most {} % and {} % at any site and position; majority {} % and {} %)",
     [pr_max("d2", "line"), pr_max("d2", "multiplier"), pr_majority("d2", "line"), pr_majority("d2", "multiplier")]),
    (PAGE, "The answer appears across the last MLP: {} % → {} % (`L1.mid` → `L1.post`); on the prompts Ratio "
     "Matching answers {} % → {} %, on the others ({} held out) {} % → {} %",
     [pr("d2", "L1.mid", "answer"), pr("d2", "L1.post", "answer"), pr("d2", "L1.mid", "answer_on_line"),
      pr("d2", "L1.post", "answer_on_line"), pr("d2", "L1.post", "answer_off_line", "n_test", fmt="d"),
      pr("d2", "L1.mid", "answer_off_line"), pr("d2", "L1.post", "answer_off_line")]),
    (PAGE, "`task_a` and `task_b` read {} % and {} % at `L1.mid` (majority {} % and {} %). Their control reads more "
     "({} % and {} %)",
     [pr("d2", "L1.mid", "task_a"), pr("d2", "L1.mid", "task_b"), pr_majority("d2", "task_a"),
      pr_majority("d2", "task_b"), pr("d2", "L1.mid", "task_a", "control_accuracy"),
      pr("d2", "L1.mid", "task_b", "control_accuracy")]),
    (PAGE, "O.o.d.: Ratio Matching {}, uniform {}, Modular Regression {}, Bayes over the memorized tasks {}; "
     "log-likelihood {} against {} for uniform alone, ceiling {}. I.d.: Modular Regression {} (which there is also "
     "Bayes over the memorized tasks, `same_as`), Ratio Matching {}, uniform {}. The weights swing with k, as the "
     "accuracy does: at k = 7 Bayes over the memorized tasks takes {} o.o.d.",
     [mix("d2", "ratio_matching"), mix("d2", "uniform"), mix("d2", "modular_regression"), mix("d2", "bayes_memorized"),
      ll("d2", "ll_fit"), ll_single_best("d2", "uniform"), ll("d2", "ll_ceiling"),
      mix("d2", "modular_regression", "id"), mix("d2", "ratio_matching", "id"), mix("d2", "uniform", "id"),
      mix("d2", "bayes_memorized", k=7)]),
    (PAGE, "(Modular Regression weight {}, accuracy off Ratio Matching's coverage {} %)",
     [mix("d2", "modular_regression"), lens_out("d2")]),
    # d4-p7
    (PAGE, "after block 3 the stream is {} % o.o.d. and {} % i.d. It agrees with Ratio Matching on {} % of the "
     "o.o.d. cells it answers and is right on {} % of the others (chance 14.3 %)",
     [lens("d4-p7", 3), lens("d4-p7", 3, "id"), lens_rm("d4-p7"), lens_out("d4-p7")]),
    (PAGE, "L3mlp writes the answer: {} i.d. and {} o.o.d., {} at k = 1 (o.o.d.). One head also writes directly: the "
     "next component o.o.d. is {} ({}), then {} ({}) and {} ({})",
     [dla("d4-p7", "L3mlp", "id"), dla("d4-p7", "L3mlp"), dla("d4-p7", "L3mlp", k=1),
      *(dla_rank("d4-p7", n, part) for n in (1, 2, 3) for part in ("name", "value"))]),
    (PAGE, "({} of 300 pairs differ)", [tk("d4-p7", "L0resid", "ex_z", "n_follows", "d")]),
    (PAGE, "the stream there gives the source's answer on {} % entering block 1, {} % entering block 2 and still {} "
     "% entering block 3; at `q_y`, entering block 3, {} %",
     [tk("d4-p7", f"L{v}resid", "ex_z") for v in (1, 2, 3)] + [tk("d4-p7", "L3resid")]),
    (PAGE, "`L3attn` at `q_y` gives {} % (Modular Regression's interchange-intervention accuracy {} % against {} %), "
     "block 2's attention {} %, the last MLP's output {} %. Block 3's heads give {} % (L3H0), {} % (L3H1), {} % "
     "(L3H2) and {} % (L3H3); L3H1 gives Ratio Matching's counterfactual answer on {} % of the {} pairs that have one",
     [tk("d4-p7", "L3attn"), tk("d4-p7", "L3attn", column=MR), tk("d4-p7", "L3attn", column=MR + "_clean"),
      tk("d4-p7", "L2attn"), tk("d4-p7", "L3mlp"), *(tk("d4-p7", f"L3H{h}") for h in range(4)),
      tk("d4-p7", "L3H1", column=RM), tk("d4-p7", "L3H1", column="n_cf_ratio_matching", fmt="d")]),
    (PAGE, "Clean right on {} % of base and {} % of source prompts; {} of 300 pairs change. L3H1 at `q_y` gives the "
     "source's answer on {} %, recovers {} of the logit difference, and raises Ratio Matching's "
     "interchange-intervention accuracy to {} % from {} %. Block 3's attention gives {} % ({}), its MLP {} % ({}). "
     "L3H0 breaks rather than transfers: it changes {} % of predictions and lowers that accuracy to {} %",
     [clean_share("d4-p7", "example-line", "base"), clean_share("d4-p7", "example-line", "source"),
      ex("d4-p7", "L0resid", "n_follows", "d"), max_head_is("d4-p7", "example-line", "L3H1"),
      ex("d4-p7", "L3H1", "ld_recovered", ".2f"), ex("d4-p7", "L3H1", RM), ex("d4-p7", "L3H1", RM + "_clean"),
      ex("d4-p7", "L3attn"), ex("d4-p7", "L3attn", "ld_recovered", ".2f"), ex("d4-p7", "L3mlp"),
      ex("d4-p7", "L3mlp", "ld_recovered", ".2f"), ex("d4-p7", "L3H0", "changed"), ex("d4-p7", "L3H0", RM)]),
    (PAGE, "(the model answers {} %)", [probe_accuracy("d4-p7")]),
    (PAGE, "The ratio reads {} % at `L0.mid`, {} % at `L1.mid` and {} % after block 1's MLP (`L1.post`, control {} "
     "%, selectivity {}); most selective after the last MLP ({} %, control {} %, selectivity {}). Line and "
     "multiplier: at most {} % and {} %. The answer: {} % → {} % across the last MLP; on the lines {} % → {} %, off "
     "them {} % → {} %",
     [pr("d4-p7", "L0.mid", "ratio"), pr("d4-p7", "L1.mid", "ratio"), pr("d4-p7", "L1.post", "ratio"),
      pr("d4-p7", "L1.post", "ratio", "control_accuracy"), pr("d4-p7", "L1.post", "ratio", "selectivity", fmt=".3f"),
      pr("d4-p7", "L3.post", "ratio"), pr("d4-p7", "L3.post", "ratio", "control_accuracy"),
      given(lambda: best_sel("d4-p7") == "L3.post", pr("d4-p7", "L3.post", "ratio", "selectivity", fmt=".3f")),
      pr_max("d4-p7", "line"), pr_max("d4-p7", "multiplier"),
      *(pr("d4-p7", f"L3.{stage}", target) for target in ("answer", "answer_on_line", "answer_off_line")
        for stage in ("mid", "post"))]),
    (PAGE, "`task_b` reads {} % at `L2.post`, then {} %, and `task_a` {} %, at `L3.mid` (majority {} % and {} %)",
     [pr("d4-p7", "L2.post", "task_b"), pr("d4-p7", "L3.mid", "task_b"), pr("d4-p7", "L3.mid", "task_a"),
      pr_majority("d4-p7", "task_b"), pr_majority("d4-p7", "task_a")]),
    (PAGE, "O.o.d.: Ratio Matching {}, Bayes over the memorized tasks {}, Modular Regression {}, uniform {}; "
     "log-likelihood {} against {} for Ratio Matching alone, ceiling {}; Modular Regression's o.o.d. weight is at "
     "most {} at any k. I.d.: Modular Regression {}, Ratio Matching {}",
     [mix("d4-p7", "ratio_matching"), mix("d4-p7", "bayes_memorized"), mix("d4-p7", "modular_regression"),
      mix("d4-p7", "uniform"), ll("d4-p7", "ll_fit"), ll_single_best("d4-p7", "ratio_matching"),
      ll("d4-p7", "ll_ceiling"), mix_max("d4-p7", "modular_regression"), mix("d4-p7", "modular_regression", "id"),
      mix("d4-p7", "ratio_matching", "id")]),
    (PAGE, "Modular Regression takes {} of the o.o.d. mass", [mix("d4-p7", "modular_regression")]),
    # d4
    (PAGE, "Chance until the last block ({} % o.o.d. after block 2), then {} %; it agrees with Ratio Matching on {} "
     "% of the o.o.d. cells it answers and is right on {} % of the others. L3mlp gives {} to the model's o.o.d. "
     "answer; no head more than {} in absolute value",
     [lens("d4", 2), lens("d4", 3), lens_rm("d4"), lens_out("d4"), dla("d4", "L3mlp"), dla_max_head("d4")]),
    (PAGE, "The labels leave `ex_z` in block 2 ({} % entering block 2, {} % entering block 3) and reach `q_y` "
     "through block 2's attention ({} %), spread over heads: L2H0 {} %, L2H3 {} %; L2H0 gives Ratio Matching's "
     "counterfactual on {} % of {} pairs. The last block's attention adds little ({} %)",
     [tk("d4", "L2resid", "ex_z"), tk("d4", "L3resid", "ex_z"), tk("d4", "L2attn"), tk("d4", "L2H0"), tk("d4", "L2H3"),
      tk("d4", "L2H0", column=RM), tk("d4", "L2H0", column="n_cf_ratio_matching", fmt="d"), tk("d4", "L3attn")]),
    (PAGE, "No head passes {} %; the last MLP carries the move ({} %, {} of the logit difference)",
     [max_head_is("d4", "example-line", "L2H3"), ex("d4", "L3mlp"), ex("d4", "L3mlp", "ld_recovered", ".2f")]),
    (PAGE, "The ratio is readable after block 0's attention ({} %, control {} %, selectivity {}); the line reaches "
     "{} % at best, the multiplier {} %; the answer appears across the last MLP, on the lines ({} % → {} %) and off "
     "them ({} % → {} %); the task never passes {} %",
     [pr("d4", "L0.mid", "ratio"), pr("d4", "L0.mid", "ratio", "control_accuracy"),
      pr("d4", "L0.mid", "ratio", "selectivity", fmt=".3f"), pr_max("d4", "line"), pr_max("d4", "multiplier"),
      pr("d4", "L3.mid", "answer_on_line"), pr("d4", "L3.post", "answer_on_line"),
      pr("d4", "L3.mid", "answer_off_line"),
      pr("d4", "L3.post", "answer_off_line"), task_max("d4")]),
    (PAGE, "(k = 8, o.o.d.): Modular Regression {}, Ratio Matching {}",
     [mix("d4", "modular_regression"), mix("d4", "ratio_matching")]),
    # across
    (PAGE, "its direct contribution is {}, {} and {} against {}, {} and {} for the largest head in absolute value "
     "(d2, d4-p7, d4, o.o.d.)", [dla(m, f"L{last(m)}mlp") for m in MODELS] + [dla_max_head(m) for m in MODELS]),
    (PAGE, "at depth 2 and depth 4 alike ({} % and {} %)", [tk("d2", "L1attn"), tk("d4-p7", "L3attn")]),
    (PAGE, "the p = 7 models are checkpoints of step {} and {}, d4 of step {} (the lens manifests' `checkpoint`)",
     [step(m) for m in MODELS]),
    (PAGE, "({} % and {} % of the changed pairs); in d4 no head passes {} %",
     [ex("d2", "L1H0"), ex("d4-p7", "L3H1"), max_head_is("d4", "example-line", "L2H3")]),
    (PAGE, "(controls {} % and {} % where the ratio first reads 100 %)", [first_control("d2"), first_control("d4-p7")]),
    (PAGE, "the control stays at {} % where the ratio reads 100 % after an attention layer",
     [given(lambda: first_full("d4") == "L0.mid", first_control("d4"))]),
    (PAGE, "Modular Regression's o.o.d. weight at k = 8 is {} (d2), {} (d4-p7) and {} (d4), the last layer's "
     "accuracy off Ratio Matching's coverage {} %, {} % and {} %",
     [mix(m, "modular_regression") for m in MODELS] + [lens_out(m) for m in MODELS]),
]

FIGURES: list = [*TABLE, *PROSE]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("doc, text, figures", FIGURES, ids=[f"{i}: {t[:40]}" for i, (_, t, _) in enumerate(FIGURES)])
def test_the_page_quotes_the_committed_figures(doc, text, figures):
    expected = _flat(text.format(*(f() for f in figures)))
    assert expected in _flat((ROOT / doc).read_text()), f"{doc} should say: {expected!r}"


@pytest.mark.parametrize("m", MODELS)
def test_the_reports_are_the_documented_commands(m):
    ckpt = f"{m}.pt"
    expected = {
        "lens": ["lens", "--ckpt", ckpt, "--k", "1..8", "--quiet"],
        "patch-task": ["patch", "--ckpt", ckpt, "--k", "8", "--design", "task", "--quiet"],
        "patch-example-line": ["patch", "--ckpt", ckpt, "--k", "8", "--design", "example-line", "--quiet"],
        "probe": ["probe", "--ckpt", ckpt, "--k", "8", "--prompts", "3000", "--quiet"],
        "mixture": ["mixture", "--ckpt", ckpt, "--k", "1..8", "--quiet"],
    }
    for tool in TOOLS:
        man = _manifest(f"reports/{m}-{tool}")
        assert man["argv"] == expected[tool], (m, tool, man["argv"])
        assert man["checkpoint"]["max_k"] >= K
        assert man["n_tasks"] == (121 if m == "d4" else 49)
    assert len(_csv(f"reports/{m}-patch-task/prompts.csv")) == 300
    assert (_probes(m, "answer", None)["n_test"] == 750).all()


@pytest.mark.parametrize("m", ("d2", "d4-p7"))
def test_the_new_report_folders_stay_small(m):
    for tool in TOOLS:
        folder = ROOT / "reports" / f"{m}-{tool}"
        assert sum(f.stat().st_size for f in folder.iterdir()) < 1_000_000, folder


@pytest.mark.parametrize("m", ("d2", "d4-p7"))
def test_every_new_mixture_fit_is_at_least_its_best_single_component(m):
    t = _csv(f"reports/{m}-mixture/mixture.csv")
    for _, g in t.groupby(["split", "k"]):
        assert g["ll_fit"].iloc[0] >= g["ll_single"].max() - 1e-5
        assert g["ll_fit"].iloc[0] <= g["ll_ceiling"].iloc[0] + 1e-5
        assert np.isclose(g["weight"].sum(skipna=True), 1.0, atol=1e-5)


def test_the_models_are_as_the_page_says():
    """'all three have d_model 64 and 4 heads a layer', depth 2 / 4 / 4, p = 7 / 7 / 11 (the committed -inspect
    manifests and the lens manifests), and 48 / 120 nonzero queries: p² − 1."""
    for m, depth, p in (("d2", 2, 7), ("d4-p7", 4, 7), ("d4", 4, 11)):
        model = _manifest(f"reports/{m}-inspect")["model"]
        assert (model["d_model"], model["n_head"], model["n_layer"]) == (64, 4, depth)
        assert _manifest(f"reports/{m}-lens")["p"] == p
    text = _flat((ROOT / PAGE).read_text())
    assert "all three have d_model 64 and 4 heads a layer" in text
    assert f"the {7 ** 2 - 1} nonzero queries" in text and f"at p = 11 ({11 ** 2 - 1} queries)" in text
    assert f"with {7 ** 2 - 1} nonzero queries and d_model 64" in text


def test_the_task_counts_and_chance_levels_are_as_the_page_says():
    """'49 at p = 7: 40 pre-training and 9 o.o.d.; 121 at p = 11', patching with seed 0, and the chance levels."""
    for m, n_pre, n_ood in (("d2", 40, 9), ("d4-p7", 40, 9)):
        lens_manifest = _manifest(f"reports/{m}-lens")
        assert (len(lens_manifest["pretrain_tasks"]), len(lens_manifest["ood_tasks"])) == (n_pre, n_ood)
        assert _manifest(f"reports/{m}-patch-task")["seed"] == _manifest(f"reports/{m}-patch-example-line")["seed"] == 0
    assert _manifest("reports/d4-lens")["n_tasks"] == 121
    text = _flat((ROOT / PAGE).read_text())
    assert "(49 at p = 7: 40 pre-training and 9 o.o.d.; 121 at p = 11)" in text
    assert f"Chance is 1/7 = {pct(1 / 7)} % at p = 7 and 1/11 = {pct(1 / 11)} % at p = 11" in text
    assert f"(chance {pct(1 / 7)} %)" in text


def test_modular_regression_answers_every_cell_at_k8():
    """The page reads `model_acc_out` at k = 8 as agreement with Modular Regression: it answers every cell there."""
    for m in MODELS:
        t = _csv(f"reports/{m}-lens/lens.csv")
        assert (t[(t["k"] == K) & (t["predictor"] == "modular_regression")]["coverage"] == 1.0).all()
    assert "at k = 8 Modular Regression answers every cell" in _flat((ROOT / PAGE).read_text())
