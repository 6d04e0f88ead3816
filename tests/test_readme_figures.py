"""The figures README and docs/ quote agree with the committed reports and benchmark results.

Each entry of ``FIGURES`` names the page it lives in (``README.md`` or a page of ``docs/``),
a piece of that page's text with ``{}`` where figures go, and the sources of those figures:
a cell of a report's table (``summary.csv``, ``sequences.csv``), a key of a committed JSON
output (``reports/zero-set/*.json``, ``benchmarks/results/*.json``), each with the format
the page prints it in. The test fills the text in from the sources and looks for it in its
page, so a report rebuilt with other numbers (a new bundled checkpoint, a changed default)
fails here until the page says the new numbers. When a page quotes a new figure from a
report, add it here; when a paragraph moves to another page, move its entry. README itself
stays a door of at most ``README_MAX_LINES`` lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250


@dataclass(frozen=True)
class Fig:
    """One figure: a file, how to find the value in it, and how README writes it."""

    file: str
    where: tuple  # CSV: ((column, value), ...) row filter; JSON: key path
    column: str | None = None  # CSV column (None for JSON)
    fmt: str = ".3f"  # format spec; "%1" = per cent with one decimal
    scale: float = 1.0
    agg: str | None = None  # "mean" or "max" over the selected rows (else exactly one row)

    def value(self) -> float:
        if self.file.endswith(".csv"):
            table = _csv(self.file)
            mask = pd.Series(True, index=table.index)
            for col, val in self.where:
                mask &= table[col] == val
            rows = table.loc[mask, self.column]
            if self.agg:
                assert len(rows) > 1, f"{self.file}: {self.where} selects {len(rows)} rows"
                return float(getattr(rows, self.agg)())
            assert len(rows) == 1, f"{self.file}: {self.where} selects {len(rows)} rows"
            return float(rows.iloc[0])
        node = _json(self.file)
        for key in self.where:
            node = node[key]
        return float(node)

    def text(self) -> str:
        v = self.value() * self.scale
        if self.fmt == "%1":
            return f"{100 * v:.1f} %"
        if self.fmt == ",":
            return f"{round(v):,}"
        return format(v, self.fmt)


@cache
def _csv(file: str) -> pd.DataFrame:
    return pd.read_csv(ROOT / file)


@cache
def _json(file: str) -> dict:
    return json.loads((ROOT / file).read_text().strip().splitlines()[-1])


def summ(report: str, split: str, k: int, predictor: str, column: str, fmt: str = ".3f") -> Fig:
    return Fig(f"reports/{report}/summary.csv", (("split", split), ("k", k), ("predictor", predictor)), column, fmt)


def interval(report: str, split: str, k: int, predictor: str = "model", column: str = "accuracy") -> list[Fig]:
    return [summ(report, split, k, predictor, c) for c in (column, f"{column}_lo", f"{column}_hi")]


def seq(report: str, split: str, k: int, sequence: int, fmt: str = "%1") -> Fig:
    return Fig(f"reports/{report}/sequences.csv", (("split", split), ("k", k), ("sequence", sequence)), "accuracy", fmt)


def last_metric(run: str, *key: str, fmt: str = ".2f", scale: float = 1.0) -> Fig:
    """A figure from the last line of a finished run's ``checkpoints/runs/<run>/metrics.jsonl``."""
    return Fig(f"checkpoints/runs/{run}/metrics.jsonl", key, fmt=fmt, scale=scale)


def zs(run: str, key: str, fmt: str = ".2f") -> Fig:
    return Fig(f"reports/zero-set/{run}.json", (key,), fmt=fmt)


def bench(name: str, *path: str, fmt: str = ".2f", scale: float = 1.0) -> Fig:
    return Fig(f"benchmarks/results/{name}.json", path, fmt=fmt, scale=scale)


def insp(
    run: str,
    analysis: str,
    score: str,
    layer: int | None = -1,
    head: int | None = -1,
    position: str | None = None,
    agg: str | None = None,
) -> Fig:
    where = [("analysis", analysis), ("score", score)]
    where += [(c, v) for c, v in (("layer", layer), ("head", head), ("position", position)) if v is not None]
    return Fig(f"reports/{run}-inspect/scores.csv", tuple(where), "value", ".2f", agg=agg)


def abl(report: str, component: str, split: str, k: int, column: str, fmt: str = "+.1f", scale: float = 100.0) -> Fig:
    """A cell of an ablation table, by default as a change in percentage points (``-74.6``)."""
    return Fig(
        f"reports/{report}/ablation.csv", (("component", component), ("split", split), ("k", k)), column, fmt, scale
    )


def abl_ci(report: str, component: str, split: str, k: int, column: str) -> list[Fig]:
    return [abl(report, component, split, k, c) for c in (column, f"{column}_lo", f"{column}_hi")]


def traj(step: int, split: str, k: int, predictor: str, column: str) -> Fig:
    """A cell of ``reports/V2-trajectory/trajectory.csv``."""
    return Fig(
        "reports/V2-trajectory/trajectory.csv",
        (("step", step), ("split", split), ("k", k), ("predictor", predictor)),
        column,
    )


def _models_table_row(column: str, fmt: str = ".2f") -> list[Fig]:
    return [
        summ(r, s, 8, "ratio_matching", column, fmt)
        for r in ("d4-seq16", "d4-p7-seq16", "d2-seq16")
        for s in ("ood", "id")
    ]


# Each quote lives in one page: README.md (the door) or a page of docs/. A quote is looked for in its own
# page only, so moving a paragraph to another page without moving its entry here fails too.
README_MD = "README.md"
CPU = "docs/findings-cpu-scale.md"
ZERO = "docs/findings-zero-set.md"
DEPTH = "docs/findings-depth-contrast.md"
DYN = "docs/findings-dynamics.md"
NOISE = "docs/label-noise.md"
INSPECT = "docs/inspect.md"
ABLATE = "docs/ablate.md"
BENCH = "docs/benchmarks.md"


def _in(doc: str, entries: list[tuple[str, list[Fig]]]) -> list[tuple[str, str, list[Fig]]]:
    return [(doc, text, figures) for text, figures in entries]


FIGURES: list[tuple[str, str, list[Fig]]] = [
    # README: the headline findings table
    *_in(
        README_MD,
        [
            (
                "o.o.d. accuracy at k = 8: **{} [{}, {}]** on the authors' example sequence, {} [{}, {}] over 17 sequences",
                interval("d4", "ood", 8) + interval("d4-seq16", "ood", 8),
            ),
            (
                "never left the chance plateau in {} steps | o.o.d. accuracy at k = 15 over 17 sequences "
                "**{} [{}, {}]** (chance 0.034); with `d4.pt`'s recipe the plateau ends at step {} at p = 5, {} at "
                "p = 7, {} at p = 11",
                [last_metric("p29-d4", "step", fmt=",")]
                + [summ("p29-d4-seq16", "ood", 15, "model", c, ".4f") for c in ("accuracy", "accuracy_lo", "accuracy_hi")]
                + [Fig("reports/plateaus/runs.csv", (("run", r),), "plateau_exit_step", ",")
                   for r in ("p5-d4-b200", "p7-d4-b200", "d4")],
            ),
            (
                "o.o.d. accuracy where Ratio Matching has no answer: {} at k = 1, {} at k = 8",
                [summ("d4-seq16", "ood", k, "ratio_matching", "model_acc_out", ".2f") for k in (1, 8)],
            ),
            (
                "o.o.d. agreement with Ratio Matching {} → {} over steps 22,000–26,000; accuracy outside its coverage "
                "{} → {} only over steps 30,000–32,000 (k = 8)",
                [
                    traj(22000, "ood", 8, "ratio_matching", "agreement"),
                    traj(26000, "ood", 8, "ratio_matching", "agreement"),
                    traj(30000, "ood", 8, "ratio_matching", "model_acc_out"),
                    traj(32000, "ood", 8, "ratio_matching", "model_acc_out"),
                ],
            ),
            (
                "removing L2H3 changes o.o.d. Ratio Matching agreement by {} pp at k = 1; removing L2H1 or L2H2 changes the "
                "accuracy outside its coverage by {} or {} pp at k = 8",
                [
                    abl("d4-ablate", "L2H3", "ood", 1, "delta_ratio_matching_agreement"),
                    abl("d4-ablate", "L2H1", "ood", 8, "delta_ratio_matching_model_acc_out"),
                    abl("d4-ablate", "L2H2", "ood", 8, "delta_ratio_matching_model_acc_out"),
                ],
            ),
            (
                "o.o.d. logit-lens accuracy at k = 8 after blocks 0, 1, 2, 3: {}, {}, {}, {}; the last MLP's direct logit "
                "attribution to the answer {}",
                [
                    Fig(
                        "reports/d4-lens/lens.csv",
                        (("layer", layer), ("split", "ood"), ("k", 8), ("predictor", "model")),
                        "accuracy",
                        "%1",
                    )
                    for layer in range(4)
                ]
                + [
                    Fig(
                        "reports/d4-lens/dla.csv",
                        (("split", "ood"), ("k", 8), ("algorithm", "model"), ("component", "L3mlp")),
                        "dla_vs_mean",
                        ".2f",
                    )
                ],
            ),
            (
                "depth 2 against depth 4 at p = 7, {} against {}; at p = 11 the depth-2 runs X and Y reach {} and {}, "
                "`d4.pt` {}",
                [
                    summ(r, "ood", 8, "model", "accuracy", ".2f")
                    for r in ("d2-seq16", "d4-p7-seq16", "X-d2-p11-seq16", "Y-d2-p11-seq16", "d4-seq16")
                ],
            ),
            (
                "d4's same-ratio contrast at y is {} after layer 2, its same-answer contrast {} after layer 3; head "
                "circularity {}, below its shuffled null {}",
                [
                    insp("d4", "similarity", "ratio_contrast", 2, -1, "y"),
                    insp("d4", "similarity", "label_contrast", 3, -1, "y"),
                    insp("d4", "head_pca", "circularity", None, None, agg="mean"),
                    insp("d4", "head_pca", "circularity_null", None, None, agg="mean"),
                ],
            ),
            (
                "takes M's nine (a, a) from {} to {}; `d4.pt`'s from {} to {}",
                [
                    zs("M", "diagonal_added_before"),
                    zs("M", "diagonal_added_after"),
                    zs("d4", "diagonal_added_before"),
                    zs("d4", "diagonal_added_after"),
                ],
            ),
            (
                "0, 1, 2 wrong labels of 8: the model {}, {}, {}; Modular Regression's majority variant {}, {}, {}",
                [
                    Fig(
                        "reports/d4-noise1/noise_levels.csv",
                        (("split", "ood"), ("n_wrong", n), ("predictor", pred)),
                        "accuracy",
                    )
                    for pred in ("model", "modular_regression_majority")
                    for n in range(3)
                ],
            ),
        ],
    ),
    # findings at CPU scale: where the bar stands
    *_in(
        CPU,
        [
            ("reaches **{} [{}, {}]** o.o.d. accuracy at k = 8", interval("d4", "ood", 8)),
            ("`reports/d4/`) and **{} [{}, {}]**", interval("d4-seq16", "ood", 8)),
            ("it gave 0.902 on the authors' sequence but\n{} [{}, {}] over 17", interval("M-seq16", "ood", 8)),
            ("`d2.pt` (p = 7) reaches {} [{}, {}] o.o.d. at k = 8", interval("d2-seq16", "ood", 8)),
            ("and `d4-p7.pt`\n{} [{}, {}]", interval("d4-p7-seq16", "ood", 8)),
        ],
    ),
    # the --examples intervention, for V and for M
    *_in(
        ZERO,
        [
            (
                "from\n{} to {} (`reports/d4-examples/`)",
                [seq("d4-examples", "ood", 8, 0), seq("d4-examples", "ood", 8, 1)],
            ),
            ("from {} to {} (`reports/M-examples/`", [seq("M-examples", "ood", 8, 0), seq("M-examples", "ood", 8, 1)]),
            # the zero-set intervention: M has the effect, the bundled d4 (V) does not
            (
                "drops the nine (a, a)\nfrom {} to {} (all {} drop)",
                [
                    zs("M", "diagonal_added_before"),
                    zs("M", "diagonal_added_after"),
                    zs("M", "diagonal_added_sequences_moved_as_predicted", ".0f"),
                ],
            ),
            (
                "lifts them from\n{} to {} (all {} rise)",
                [
                    zs("M", "diagonal_removed_before"),
                    zs("M", "diagonal_removed_after"),
                    zs("M", "diagonal_removed_sequences_moved_as_predicted", ".0f"),
                ],
            ),
            (
                "added {} → {} ({} of 8 sequences drop) and removed\n{} → {} ({} of 9 rise)",
                [
                    zs("d4", "diagonal_added_before"),
                    zs("d4", "diagonal_added_after"),
                    zs("d4", "diagonal_added_sequences_moved_as_predicted", ".0f"),
                    zs("d4", "diagonal_removed_before"),
                    zs("d4", "diagonal_removed_after"),
                    zs("d4", "diagonal_removed_sequences_moved_as_predicted", ".0f"),
                ],
            ),
            *[
                (
                    f"| {label} | {{}} / {{}} | {{}} / {{}} |",
                    [
                        zs(run, "other_ood_own_zero_set_with"),
                        zs(run, "other_ood_own_zero_set_without"),
                        zs(run, "diagonal_own_zero_set_with"),
                        zs(run, "diagonal_own_zero_set_without"),
                    ],
                )
                for run, label in [
                    ("Q", "Q at step 37,000 (60k schedule, still rising)"),
                    ("U", "U at step 12,500 (task seed 3, 40k schedule, still rising)"),
                    ("R", "R at step 29,000 (memorizing inputs)"),
                    ("M", "M final (`d4.pt` before V)"),
                ]
            ],
            (
                "| **d4** (V final, model seed 2) | **{} / {}** | **{} / {}** |",
                [
                    zs("d4", "other_ood_own_zero_set_with"),
                    zs("d4", "other_ood_own_zero_set_without"),
                    zs("d4", "diagonal_own_zero_set_with"),
                    zs("d4", "diagonal_own_zero_set_without"),
                ],
            ),
        ],
    ),
    # what the models do: the table of the three 17-sequence reports
    *_in(
        CPU,
        [
            (
                "| model accuracy, k = 4 / k = 8 | {} / **{}** | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} |",
                [
                    summ(r, s, k, "model", "accuracy")
                    for r in ("d4-seq16", "d4-p7-seq16", "d2-seq16")
                    for s in ("ood", "id")
                    for k in (4, 8)
                ],
            ),
            ("| Ratio Matching's coverage | {} | {} | {} | {} | {} | {} |", _models_table_row("coverage")),
            (
                "| share of model answers Ratio Matching explains | {} | {} | {} | {} | {} | {} |",
                _models_table_row("explains"),
            ),
            (
                "o.o.d. accuracy rises with k:\n  {}, {}, {}, {}, {}, {}, {}, {} for k = 1..8",
                [summ("d4-seq16", "ood", k, "ratio_matching", "model_acc_out", ".2f") for k in range(1, 9)],
            ),
            # p = 29 out of reach: the training-step benchmark
            (
                "64 sequences takes {} s (`benchmarks/train_step.py`)",
                [bench("train_step", "step_seconds_median_cpu", fmt=".2f")],
            ),
            (
                "would take about {} days at that size",
                [bench("train_step", "step_seconds_median_cpu", fmt=".0f", scale=24 * 200_000 / 86_400)],
            ),
        ],
    ),
    # label noise: accuracy at k = 8 against the number of wrong labels
    *_in(
        NOISE,
        [
            (
                f"{label} {{}}, {{}}, {{}}, {{}}, {{}}",
                [
                    Fig(
                        "reports/d4-noise1/noise_levels.csv",
                        (("split", "ood"), ("n_wrong", n), ("predictor", pred)),
                        "accuracy",
                    )
                    for n in range(5)
                ],
            )
            for label, pred in [
                ("the model", "model"),
                ("Modular Regression's majority variant", "modular_regression_majority"),
                ("plain Modular Regression", "modular_regression"),
                ("Ratio Matching", "ratio_matching"),
                ("and its majority variant\n", "ratio_matching_majority"),
            ]
        ],
    ),
    # compare inspect: the kaleidoscope, circles and planes
    *_in(
        INSPECT,
        [
            (
                "is {} after layer 0, {} after layer 1\nand {} after layer 2, then {} after layer 3, whose same-answer "
                "contrast jumps from\n{} to {}",
                [insp("d4", "similarity", "ratio_contrast", layer, -1, "y") for layer in range(4)]
                + [insp("d4", "similarity", "label_contrast", layer, -1, "y") for layer in (2, 3)],
            ),
            (
                "in both its layers ({}, {}) and never by the\nanswer ({} after its last layer)",
                [
                    insp("d2", "similarity", "ratio_contrast", 0, -1, "y"),
                    insp("d2", "similarity", "ratio_contrast", 1, -1, "y"),
                    insp("d2", "similarity", "label_contrast", 1, -1, "y"),
                ],
            ),
            (
                "forms\nratios more slowly ({}, {}, {} after layers 1–3) and the answer only partly\n({})",
                [insp("d4-p7", "similarity", "ratio_contrast", layer, -1, "y") for layer in (1, 2, 3)]
                + [insp("d4-p7", "similarity", "label_contrast", 3, -1, "y")],
            ),
            (
                "d4's circularity averages {} over its\n16 heads (max {}), below its shuffled-label null {}",
                [
                    insp("d4", "head_pca", "circularity", None, None, agg="mean"),
                    insp("d4", "head_pca", "circularity", None, None, agg="max"),
                    insp("d4", "head_pca", "circularity_null", None, None, agg="mean"),
                ],
            ),
            (
                "d4's parity explains {} of its embedding's top-3 variance, less than a\nrandom split of the residues ({})",
                [insp("d4", "embedding", "parity_r2"), insp("d4", "embedding", "parity_r2_null")],
            ),
            (
                "the whole command takes {} s with a peak of {} MB",
                [bench("inspect_p29", "total_seconds", fmt=".1f"), bench("inspect_p29", "peak_rss_mb", fmt=",")],
            ),
        ],
    ),
    # compare ablate on d4: zero (reports/d4-ablate/) and mean (reports/d4-ablate-mean/) ablation
    *_in(
        ABLATE,
        [
            (
                "agrees with Ratio Matching on {} of its answers o.o.d. at k = 8 and is right on {} of the cells outside "
                "its coverage",
                [
                    abl("d4-ablate", "none", "ood", 8, "ratio_matching_agreement", "%1", 1.0),
                    abl("d4-ablate", "none", "ood", 8, "ratio_matching_model_acc_out", "%1", 1.0),
                ],
            ),
            (
                "from {} to between {} (L0H3) and {} (L0H0)",
                [
                    abl("d4-ablate", "none", "ood", 8, "model_accuracy", "%1", 1.0),
                    abl("d4-ablate", "L0H3", "ood", 8, "model_accuracy", "%1", 1.0),
                    abl("d4-ablate", "L0H0", "ood", 8, "model_accuracy", "%1", 1.0),
                ],
            ),
            (
                "changes o.o.d. Ratio Matching agreement by {} [{}, {}] pp at k = 1",
                abl_ci("d4-ablate", "L2H3", "ood", 1, "delta_ratio_matching_agreement"),
            ),
            (
                "and by {} at k = 8; removing L2H0, by {} [{}, {}] at k = 2 and {} at k = 8",
                [
                    abl("d4-ablate", "L2H3", "ood", 8, "delta_ratio_matching_agreement"),
                    *abl_ci("d4-ablate", "L2H0", "ood", 2, "delta_ratio_matching_agreement"),
                    abl("d4-ablate", "L2H0", "ood", 8, "delta_ratio_matching_agreement"),
                ],
            ),
            (
                "Mean ablation agrees ({} for L2H3, {} for L2H0 at k = 8)",
                [
                    abl("d4-ablate-mean", "L2H3", "ood", 8, "delta_ratio_matching_agreement"),
                    abl("d4-ablate-mean", "L2H0", "ood", 8, "delta_ratio_matching_agreement"),
                ],
            ),
            (
                "(o.o.d. {} [{}, {}] and {} [{}, {}] pp)",
                [
                    *abl_ci("d4-ablate", "L2H1", "ood", 8, "delta_ratio_matching_agreement"),
                    *abl_ci("d4-ablate", "L2H2", "ood", 8, "delta_ratio_matching_agreement"),
                ],
            ),
            (
                "outside Ratio Matching's coverage by {} [{}, {}] and {} [{}, {}] pp (mean ablation: {} and {})",
                [
                    *abl_ci("d4-ablate", "L2H1", "ood", 8, "delta_ratio_matching_model_acc_out"),
                    *abl_ci("d4-ablate", "L2H2", "ood", 8, "delta_ratio_matching_model_acc_out"),
                    abl("d4-ablate-mean", "L2H1", "ood", 8, "delta_ratio_matching_model_acc_out"),
                    abl("d4-ablate-mean", "L2H2", "ood", 8, "delta_ratio_matching_model_acc_out"),
                ],
            ),
            (
                "and the overall accuracy by {} and {} pp",
                [
                    abl("d4-ablate", "L2H1", "ood", 8, "delta_model_accuracy"),
                    abl("d4-ablate", "L2H2", "ood", 8, "delta_model_accuracy"),
                ],
            ),
            (
                "(Ratio Matching agreement {} [{}, {}] pp o.o.d. at k = 8, accuracy {} pp)",
                [
                    *abl_ci("d4-ablate", "L1H2", "ood", 8, "delta_ratio_matching_agreement"),
                    abl("d4-ablate", "L1H2", "ood", 8, "delta_model_accuracy"),
                ],
            ),
            (
                "but mean-ablating it costs {} pp accuracy and {} pp Ratio Matching agreement",
                [
                    abl("d4-ablate-mean", "L1H2", "ood", 8, "delta_model_accuracy"),
                    abl("d4-ablate-mean", "L1H2", "ood", 8, "delta_ratio_matching_agreement"),
                ],
            ),
            (
                "takes {} s wall with a peak of {} MB\n(`python benchmarks/ablate_d4.py`: {} s a comparison",
                [
                    bench("ablate_d4", "total_seconds"),
                    bench("ablate_d4", "peak_rss_mb", fmt=","),
                    bench("ablate_d4", "seconds_per_comparison", fmt=".3f"),
                ],
            ),
        ],
    ),
    # the depth-2 runs at p = 11 (issue 17): their committed metrics.jsonl, last line
    *_in(
        DEPTH,
        [
            (
                "its row and curves in `reports/training-p11-d2/`) ran its {} steps ({} minutes on one",
                [
                    last_metric("X_p11_d2_w128", "step", fmt=","),
                    last_metric("X_p11_d2_w128", "wall_clock_seconds", fmt=".0f", scale=1 / 60),
                ],
            ),
            (
                "train loss {} (chance ln 11 = 2.398), last-shot\naccuracy {} i.d.-train and {} i.d.-test, and o.o.d.-test {}",
                [
                    last_metric("X_p11_d2_w128", "train_loss", fmt=".3f"),
                    last_metric("X_p11_d2_w128", "id_train", "acc_last"),
                    last_metric("X_p11_d2_w128", "id_test", "acc_last"),
                    last_metric("X_p11_d2_w128", "ood_test", "acc_last"),
                ],
            ),
            (
                "`checkpoints/runs/Y_p11_d2_n32/`) ran its {} steps in\n{} minutes",
                [
                    last_metric("Y_p11_d2_n32", "step", fmt=","),
                    last_metric("Y_p11_d2_n32", "wall_clock_seconds", fmt=".0f", scale=1 / 60),
                ],
            ),
            (
                "at the end train loss {}, last-shot accuracy {} i.d.-train, {} i.d.-test and\n{} o.o.d.-test",
                [
                    last_metric("Y_p11_d2_n32", "train_loss", fmt=".3f"),
                    last_metric("Y_p11_d2_n32", "id_train", "acc_last"),
                    last_metric("Y_p11_d2_n32", "id_test", "acc_last"),
                    last_metric("Y_p11_d2_n32", "ood_test", "acc_last"),
                ],
            ),
            (
                "(o.o.d. at k = 8 over\n17 sequences {}, against 0.5 asked)",
                [summ("Y-d2-p11-seq16", "ood", 8, "model", "accuracy", ".2f")],
            ),
            (
                "Y's best o.o.d.-test accuracy came at step {} of 40,000",
                [Fig("reports/training-p11-d2/runs.csv", (("run", "Y_p11_d2_n32"),), "best_ood_test_step", ",")],
            ),
        ],
    ),
    # the retrained d4 (V2) over training: reports/V2-trajectory
    *_in(
        DYN,
        [
            (
                "(Ratio Matching answers {} of these cells",
                [
                    Fig(
                        "reports/V2-trajectory/trajectory.csv",
                        (("step", 40000), ("split", "ood"), ("k", 8), ("predictor", "ratio_matching")),
                        "coverage",
                        "%1",
                    )
                ],
            ),
            *[
                (
                    f"| {step:,} | {{}} | {{}} | {{}} |",
                    [
                        traj(step, "ood", 8, "model", "accuracy"),
                        traj(step, "ood", 8, "ratio_matching", "agreement"),
                        traj(step, "ood", 8, "ratio_matching", "model_acc_out"),
                    ],
                )
                for step in (22000, 23000, 24000, 26000, 30000, 32000, 36000, 40000)
            ],
            (
                "Ratio Matching rises from {} to {} while its accuracy where Ratio Matching has no answer\nstays at chance "
                "({} at step 26,000)",
                [
                    traj(22000, "ood", 8, "ratio_matching", "agreement"),
                    traj(26000, "ood", 8, "ratio_matching", "agreement"),
                    traj(26000, "ood", 8, "ratio_matching", "model_acc_out"),
                ],
            ),
            (
                "stays between {} (step 26,000) and {} (step\n30,000)",
                [traj(26000, "ood", 8, "model", "accuracy"), traj(30000, "ood", 8, "model", "accuracy")],
            ),
            (
                "from {} to {}, reaching {} at step 40,000",
                [traj(s, "ood", 8, "ratio_matching", "model_acc_out") for s in (30000, 32000, 40000)],
            ),
            (
                "Agreement with Ratio Matching reaches 0.5 by\nstep {} for every k and both splits",
                [
                    Fig(
                        "reports/V2-trajectory/crossings.csv",
                        (("predictor", "ratio_matching"), ("metric", "agreement"), ("threshold", 0.5)),
                        "step",
                        ",",
                        agg="max",
                    )
                ],
            ),
            (
                "o.o.d. accuracy at\nk = 8 reaches 0.5 at step {}",
                [
                    Fig(
                        "reports/V2-trajectory/crossings.csv",
                        (("split", "ood"), ("k", 8), ("predictor", "model"), ("threshold", 0.5)),
                        "step",
                        ",",
                    )
                ],
            ),
            (
                "coverage goes from {} to {} between steps 30,000 and 32,000",
                [traj(s, "id", 8, "ratio_matching", "model_acc_out") for s in (30000, 32000)],
            ),
            (
                "dips by about a point twice ({} → {} at step\n28,000, {} → {} at step 40,000)",
                [traj(s, "ood", 8, "model", "accuracy") for s in (27000, 28000, 38000, 40000)],
            ),
        ],
    ),
    # benchmarks (benchmarks/results/*.json, rebuilt with --save)
    *_in(
        BENCH,
        [
            ("`full_grid_seconds` **{}**", [bench("solvers", "full_grid_seconds", fmt=".2f")]),
            ("`speedup_vs_sympy` **{}×**", [bench("solvers", "speedup_vs_sympy", fmt=",")]),
            ("`prefix_reuse_speedup` **{}×**", [bench("grid_inference", "prefix_reuse_speedup", fmt=".1f")]),
            ("{} s per step", [bench("train_step", "step_seconds_median_cpu", fmt=".2f")]),
            ("`mfu` **{}**", [bench("train_step", "mfu", fmt=".2f")]),
            (
                "measured fp32 peak of {} GFLOP/s",
                [bench("train_step", "machine", "fp32_peak_gflops_one_thread", fmt=".0f")],
            ),
            (
                "`total_seconds` **{}**, `peak_rss_mb` **{}**",
                [bench("inspect_p29", "total_seconds", fmt=".2f"), bench("inspect_p29", "peak_rss_mb", fmt=",")],
            ),
            (
                "`total_seconds` **{}** ({} s a comparison), `peak_rss_mb` **{}**",
                [
                    bench("ablate_d4", "total_seconds"),
                    bench("ablate_d4", "seconds_per_comparison", fmt=".3f"),
                    bench("ablate_d4", "peak_rss_mb", fmt=","),
                ],
            ),
            ("`total_seconds` **{}**", [bench("compare_run", "total_seconds", fmt=".2f")]),
            (
                "median of 3 **{} s** against {} s for 47410f7: ratio **{}**",
                [
                    bench("compare_run", "median_seconds"),
                    bench("compare_run", "baseline_median_seconds"),
                    bench("compare_run", "ratio_vs_baseline", fmt=".3f"),
                ],
            ),
            (
                "(`cells_per_s` **{}**, {} prefixes/s), `peak_rss_mb_841` **{}** against `peak_rss_mb_1` **{}**: ratio **{}**",
                [
                    bench("compare_scale", "cells_per_s", fmt=","),
                    bench("compare_scale", "prefixes_per_s", fmt=".1f"),
                    bench("compare_scale", "peak_rss_mb_841", fmt=","),
                    bench("compare_scale", "peak_rss_mb_1", fmt=","),
                    bench("compare_scale", "peak_rss_ratio"),
                ],
            ),
            (
                "`report_seconds_841` **{}**, peak {} MB",
                [
                    bench("compare_scale", "report_seconds_841"),
                    bench("compare_scale", "report_peak_rss_mb_841", fmt=","),
                ],
            ),
        ],
    ),
]


def _page(doc: str) -> str:
    return (ROOT / doc).read_text()


def _flat(text: str) -> str:
    return " ".join(text.split())  # line breaks in the pages do not matter


def _readme() -> str:
    return _page(README_MD)


def _pages() -> list[str]:
    """README and every page of docs/, as paths relative to the repository."""
    return [README_MD] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))


def _id(doc: str, text: str) -> str:
    return f"{Path(doc).name}: {text.split('{}')[0].strip()[:40]}"


@pytest.mark.parametrize("doc, text, figures", FIGURES, ids=[_id(d, t) for d, t, _ in FIGURES])
def test_docs_quote_the_committed_figures(doc, text, figures):
    expected = _flat(text.format(*(f.text() for f in figures)))
    if expected not in _flat(_page(doc)):
        elsewhere = [p for p in _pages() if p != doc and expected in _flat(_page(p))]
        moved = f" (it is in {', '.join(elsewhere)}: move its entry in FIGURES too)" if elsewhere else ""
        pytest.fail(f"{doc} should say: {expected!r}{moved}")


def test_every_quoting_page_exists():
    assert {doc for doc, _, _ in FIGURES} <= set(_pages())


def test_readme_stays_a_door():
    """README is the way in (at most 250 lines); the detail lives in docs/."""
    n = len(_readme().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move detail into docs/ (at most {README_MAX_LINES})"


@pytest.mark.parametrize("doc", [README_MD, CPU])
def test_the_check_sees_a_stale_figure(doc):
    """A figure one unit off in its last digit is not found: the check is not vacuous."""
    fig = summ("d4", "ood", 8, "model", "accuracy")
    stale = format(fig.value() + 0.001, ".3f")
    page = _page(doc)
    assert f"**{stale} [" not in page and f"**{fig.text()} [" in page


def test_the_depth_contrast_table_is_the_committed_one():
    """The depth-contrast table is `python analyses/depth_contrast.py`'s contrast.md, line for line."""
    table = (ROOT / "reports" / "depth-contrast" / "contrast.md").read_text().strip().splitlines()
    lines = set(_page(DEPTH).splitlines())
    missing = [row for row in table if row not in lines]
    assert not missing, f"{DEPTH} lacks these rows of reports/depth-contrast/contrast.md: {missing}"


def _depth2_run_row(runs_csv: str, run: str) -> str:
    """A row of the table of depth-2 runs at p = 11, built from a committed `compare runs` table."""
    r = _csv(runs_csv).set_index("run").loc[run]
    steps = f"{int(r.step):,}" + ("" if r.finished else f" of {int(r.steps_planned):,}")
    return (
        f"| {run} | {int(r.d_model)} | {int(r.n_examples)} | {int(r.batch)} | {steps} | {r.wall_clock_min:.0f} | "
        f"{r.id_train_last:.2f} | {r.id_test_last:.2f} | {r.ood_test_last:.2f} | "
        f"{r.best_ood_test_acc:.2f} ({int(r.best_ood_test_step):,}) |"
    )


DEPTH2_RUNS_P11 = [
    ("reports/training/runs.csv", "P_p11_d2_t100"),
    ("reports/training-p11-d2/runs.csv", "X_p11_d2_w128"),
    ("reports/training-p11-d2/runs.csv", "Y_p11_d2_n32"),
]


@pytest.mark.parametrize("runs_csv, run", DEPTH2_RUNS_P11)
def test_every_depth2_run_at_p11_is_listed(runs_csv, run):
    """Every depth-2 attempt at p = 11 (issue 17) is in the depth contrast's table, with the committed figures."""
    row = _depth2_run_row(runs_csv, run)
    assert row in _page(DEPTH).splitlines(), f"{DEPTH} should have the row: {row}"


def test_the_depth2_budget_spent():
    """The CPU-hours issue 17's runs used are the sum of their committed wall clocks."""
    hours = sum(_csv(f).set_index("run").loc[r, "wall_clock_min"] for f, r in DEPTH2_RUNS_P11) / 60
    expected = f"P, X and Y used {hours:.1f} of the 8 CPU-hours"
    assert expected in _flat(_page(DEPTH)), f"{DEPTH} should say: {expected!r}"
