"""The paper's depth contrast, from committed reports: does depth 2 run Ratio Matching while
depth 4 moves towards Modular Regression?

Reads, for each (depth-2, depth-4) pair at equal p, the 17-sequence ``compare run``
reports (``reports/<name>-seq16/``), the ``compare inspect`` reports
(``reports/<name>-inspect/``) and the ``compare ablate`` reports (``reports/<name>-ablate/``),
and writes ``reports/depth-contrast/``: ``contrast.csv`` (one row per model and quantity),
``contrast.md`` (the table README quotes; a test checks README against it) and
``contrast.png`` (accuracy inside and outside Ratio Matching's coverage against k, o.o.d.).
Nothing is recomputed: every number is read from those reports.

    python analyses/depth_contrast.py [--pair d2:d4-p7] [--pair ...] [--out reports/depth-contrast]

Defaults: the p = 7 pair (``d2``, ``d4-p7``), and at p = 11 ``d4`` beside the two depth-2
attempts on its task setting (issue 17): run X (``X-d2-p11``, d_model 128,
``checkpoints/runs/X_p11_d2_w128/final.pt``), which memorized, and run Y (``Y-d2-p11``,
32 examples, ``checkpoints/runs/Y_p11_d2_n32/final.pt``); neither reached the issue's bar.
"""

from __future__ import annotations

import argparse
import os
import sys
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
DEFAULT_MODELS = ("d2", "d4-p7", "d4", "X-d2-p11", "Y-d2-p11")
K = 8
# Okabe-Ito colours (colour-blind safe), one per model in the order given.
PALETTE = ("#D55E00", "#0072B2", "#000000", "#CC79A7", "#009E73", "#E69F00", "#56B4E9", "#F0E442")


def _summary(name: str) -> pd.DataFrame:
    return pd.read_csv(REPORTS / f"{name}-seq16" / "summary.csv")


def _get(s: pd.DataFrame, predictor: str, col: str, k: int = K, split: str = "ood") -> float:
    row = s[(s["split"] == split) & (s["k"] == k) & (s["predictor"] == predictor)]
    return float(row[col].iloc[0]) if len(row) and col in row else float("nan")


def model_rows(name: str) -> list[dict]:
    """The quantities of one model (o.o.d. tasks, k = 8 unless said), with their sources."""
    s = _summary(name)
    man = pd.read_json(REPORTS / f"{name}-seq16" / "manifest.json", typ="series")
    p = int(man["p"])
    rows = []

    def add(quantity: str, value: float, lo: float = np.nan, hi: float = np.nan, source: str = "") -> None:
        rows.append({"model": name, "p": p, "quantity": quantity, "value": value, "lo": lo, "hi": hi, "source": source})

    src = f"reports/{name}-seq16/summary.csv"
    add(
        "model accuracy",
        _get(s, "model", "accuracy"),
        _get(s, "model", "accuracy_lo"),
        _get(s, "model", "accuracy_hi"),
        src,
    )
    add(
        "accuracy inside Ratio Matching's coverage",
        _get(s, "ratio_matching", "model_acc_in"),
        _get(s, "ratio_matching", "model_acc_in_lo"),
        _get(s, "ratio_matching", "model_acc_in_hi"),
        src,
    )
    add(
        "accuracy outside Ratio Matching's coverage",
        _get(s, "ratio_matching", "model_acc_out"),
        _get(s, "ratio_matching", "model_acc_out_lo"),
        _get(s, "ratio_matching", "model_acc_out_hi"),
        src,
    )
    add(
        "share of answers Ratio Matching explains",
        _get(s, "ratio_matching", "explains"),
        _get(s, "ratio_matching", "explains_lo"),
        _get(s, "ratio_matching", "explains_hi"),
        src,
    )
    for pred, label in (
        ("bayes_uniform", "KL(model ‖ Bayes over all tasks)"),
        ("bayes_memorized", "KL(model ‖ Bayes over the memorized tasks)"),
    ):
        add(label, _get(s, pred, "kl"), _get(s, pred, "kl_lo"), _get(s, pred, "kl_hi"), src)

    sc = pd.read_csv(REPORTS / f"{name}-inspect" / "scores.csv")
    src = f"reports/{name}-inspect/scores.csv"
    sim = sc[(sc["analysis"] == "similarity") & (sc["head"] == -1) & (sc["position"] == "y")].sort_values("layer")
    ratio = sim[sim["score"] == "ratio_contrast"]["value"].to_numpy()
    label = sim[sim["score"] == "label_contrast"]["value"].to_numpy()
    add("same-ratio contrast at y, layer by layer", np.nan, source=src)
    rows[-1]["text"] = " / ".join(f"{v:.2f}" for v in ratio)
    add("same-answer contrast at y after the last layer", float(label[-1]), source=src)
    circ = sc[sc["score"] == "circularity"]["value"]
    null = sc[sc["score"] == "circularity_null"]["value"]
    add("head circularity, mean (shuffled null)", float(circ.mean()), source=src)
    rows[-1]["text"] = f"{circ.mean():.2f} ({null.mean():.2f})"

    ab = pd.read_csv(REPORTS / f"{name}-ablate" / "ablation.csv")
    src = f"reports/{name}-ablate/ablation.csv"
    heads = ab[(ab["split"] == "ood") & (ab["k"] == K) & ab["component"].str.fullmatch(r"L\d+H\d+")]
    worst = heads.sort_values("delta_ratio_matching_agreement").iloc[0]
    add(
        "head whose removal lowers Ratio Matching agreement most (Δ pp)",
        float(worst["delta_ratio_matching_agreement"]),
        float(worst["delta_ratio_matching_agreement_lo"]),
        float(worst["delta_ratio_matching_agreement_hi"]),
        src,
    )
    rows[-1]["text"] = f"{worst['component']}: {100 * worst['delta_ratio_matching_agreement']:+.1f}"
    carriers = int((heads["delta_ratio_matching_agreement"] <= -0.10).sum())
    add("heads whose removal lowers it by 10 pp or more", carriers, source=src)
    rows[-1]["text"] = f"{carriers} of {len(heads)}"
    return rows


def _cell(r: pd.Series) -> str:
    if isinstance(r.get("text"), str):
        return r["text"]
    if np.isnan(r["value"]):
        return "–"
    if not np.isnan(r["lo"]):
        return f"{r['value']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
    return f"{r['value']:.2f}"


def contrast_markdown(table: pd.DataFrame) -> str:
    models = list(dict.fromkeys(table["model"]))
    head = ["o.o.d., k = 8 (17 sequences)"]
    head += [f"{m} (p = {int(table[table['model'] == m]['p'].iloc[0])})" for m in models]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for q in dict.fromkeys(table["quantity"]):
        cells = [_cell(table[(table["model"] == m) & (table["quantity"] == q)].iloc[0]) for m in models]
        lines.append("| " + " | ".join([q, *cells]) + " |")
    return "\n".join(lines) + "\n"


def draw(models: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained", sharey=True)
    titles = ("inside Ratio Matching's coverage", "outside it (needs combining examples)")
    for ax, col, title in zip(axes, ("model_acc_in", "model_acc_out"), titles, strict=True):
        for m, colour in zip(models, cycle(PALETTE)):
            s = _summary(m)
            r = s[(s["split"] == "ood") & (s["predictor"] == "ratio_matching")].sort_values("k")
            ax.plot(r["k"], r[col], marker="o", ms=3, color=colour, label=m)
            ax.fill_between(
                r["k"].to_numpy(float),
                r[f"{col}_lo"].to_numpy(float),
                r[f"{col}_hi"].to_numpy(float),
                color=colour,
                alpha=0.15,
                lw=0,
            )
        ax.set_title(f"o.o.d. accuracy {title}", fontsize=9)
        ax.set_xlabel("k")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("model accuracy")
    axes[0].legend(fontsize=8)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="report names, comma-separated")
    ap.add_argument("--out", default=str(REPORTS / "depth-contrast"))
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        for suffix in ("-seq16", "-inspect", "-ablate"):
            if not (REPORTS / f"{m}{suffix}").is_dir():
                print(
                    f"error: reports/{m}{suffix}/ is missing (run compare run --sequences 16 / inspect / ablate "
                    f"on {m}.pt first)",
                    file=sys.stderr,
                )
                return 2
    table = pd.DataFrame([r for m in models for r in model_rows(m)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".contrast.csv.tmp"
    table.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, out / "contrast.csv")
    md = contrast_markdown(table)
    tmp = out / ".contrast.md.tmp"
    tmp.write_text(md)
    os.replace(tmp, out / "contrast.md")
    draw(models, out / "contrast.png")
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
