"""Files of an inspect report: the figures of ``interp.plots``, ``scores.csv`` and the pages.

``scores.csv`` has one row per score: ``analysis`` (attention, head_pca, embedding,
similarity), ``layer`` and ``head`` (-1 where the score is not about one), ``position``
(y or z for the similarity maps), ``score``, ``value`` and ``note`` (a head's attention
kind, which input labels its rings).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from interp.attention import SHARES
from interp.prompts import ShotPrompts, token_labels
from interp.similarity import POSITIONS

__all__ = ["score_table", "write_inspect_report"]


def score_table(shares: pd.DataFrame, heads, emb, sims) -> pd.DataFrame:
    """Every score of the analyses as one long table (see the module docstring)."""
    rows = []
    for r in shares.itertuples():
        rows += [("attention", r.layer, r.head, "", s, getattr(r, s), r.kind) for s in SHARES]
    for r in heads.scores.itertuples():
        rows += [("head_pca", r.layer, r.head, "", s, getattr(r, s), r.rings_by if s == "circularity" else "")
                 for s in ("circularity", "circularity_null", "pc1_share", "pc2_share", "top2_share")]
    rows += [("embedding", -1, -1, "", s, v, "") for s, v in emb.scores.items()]
    rows += [("embedding", -1, -1, "", f"pc{i + 1}_share", float(v), "") for i, v in enumerate(emb.variance)]
    for r in sims.scores.itertuples():
        rows += [("similarity", r.layer, r.head, r.position, s, getattr(r, s), "")
                 for s in ("ratio_contrast", "label_contrast")]
    return pd.DataFrame(rows, columns=["analysis", "layer", "head", "position", "score", "value", "note"])


def write_inspect_report(folder: Path, manifest: dict, maps: np.ndarray, shares: pd.DataFrame, heads, emb, sims,
                         prompts: ShotPrompts, scores: pd.DataFrame) -> list[str]:
    """Figures, scores.csv, report.md and report.html into ``folder``; returns the figure names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compare.storage.files import write_pages
    from interp import plots

    p, k, layers = prompts.p, prompts.k, list(heads.layers)
    H = heads.coords.shape[1]
    task = tuple(manifest["task"])
    figures: list[tuple[str, str]] = []

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        figures.append((name, caption))

    def grid(rows: int, cols: int, size: float = 2.4):
        fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False, layout="constrained")
        return fig, axes

    scores.to_csv(folder / "scores.csv", index=False, float_format="%.6g")

    labels = token_labels(k)
    fig, axes = grid(len(layers), H)
    for i, layer in enumerate(layers):
        for h in range(H):
            plots.plot_attention(maps[i, h], labels, axes[i, h], title=f"L{layer}H{h}")
    save(fig, "attention.png", f"Attention patterns of every layer and head for the {k}-shot prompt of task {task} "
         "(queries down, keys across)")

    fig, ax = plt.subplots(figsize=(5.5, 0.9 + 0.28 * len(shares)), layout="constrained")
    plots.plot_head_shares(shares, SHARES, ax, title="Share of attention, averaged over the prompts and positions")
    save(fig, "attention_shares.png", "What each head attends to: previous token, same-role tokens of earlier shots, "
         "answer tokens, itself; its kind where one holds half or more")

    text = [f"{a},{b}" for a, b in zip(prompts.x, prompts.y, strict=True)] if p <= 13 else None
    g = heads.generator
    from interp.pca import discrete_logs

    _, log = discrete_logs(p)
    for name, colour, label, caption in (
        ("pca_heads.png", prompts.x, "colour: x", "labelled (x, y), coloured by x"),
        ("pca_heads_dlog.png", log[prompts.x], f"colour: i, x = {g}^i", f"coloured by i with x = {g}^i and "
         f"labelled j with y = {g}^j (discrete logarithms to the generator {g}; x or y = 0 shown as -1)"),
    ):
        fig, axes = grid(len(layers), H)
        for i, layer in enumerate(layers):
            for h in range(H):
                row = heads.scores[(heads.scores["layer"] == layer) & (heads.scores["head"] == h)].iloc[0]
                t = text if name == "pca_heads.png" else (
                    [str(j) for j in log[prompts.y]] if p <= 13 else None)
                plots.plot_head_pca(heads.coords[i, h], colour, axes[i, h], text=None if t is None else np.array(t),
                                    colour_label=label,
                                    title=f"L{layer}H{h} circ {row.circularity:.2f} ({row.rings_by}), "
                                    f"top-2 {row.top2_share:.0%}")
        save(fig, name, f"Per-head PCA of shot {k}'s x and y positions over the p² queries, {caption}; "
             "circ = circularity, top-2 = variance share of the two components")

    fig = plt.figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    plots.plot_embedding_pca(emb.coords, ax, title=f"planarity {emb.scores['planarity']:.2f} "
                             f"(random {emb.scores['planarity_null']:.2f}), parity R² {emb.scores['parity_r2']:.2f} "
                             f"(random {emb.scores['parity_r2_null']:.2f})")
    save(fig, "embedding.png", "Residue embeddings on their top three principal components, even and odd marked")

    for where in POSITIONS:
        fig, axes = grid(1, len(layers), size=3.2)
        scores = sims.scores[sims.scores["position"] == where]
        for i, layer in enumerate(layers):
            row = scores[(scores["layer"] == layer) & (scores["head"] == -1)].iloc[0]
            plots.plot_similarity(sims.maps[(layer, where)], p, axes[0, i],
                                  title=f"after layer {layer}: ratio {row.ratio_contrast:+.2f}, "
                                        f"label {row.label_contrast:+.2f}")
        save(fig, f"similarity_{where}.png", f"Pearson maps of the residual stream after each layer at shot {k}'s "
             f"{where} position, prompts ordered x·p + y; ratio/label = same-line / same-answer contrast")
        if sims.head_maps:
            fig, axes = grid(len(layers), H, size=2.6)
            for i, layer in enumerate(layers):
                for h in range(H):
                    row = scores[(scores["layer"] == layer) & (scores["head"] == h)].iloc[0]
                    plots.plot_similarity(sims.head_maps[(layer, h, where)], p, axes[i, h],
                                          title=f"L{layer}H{h}: ratio {row.ratio_contrast:+.2f}, "
                                                f"label {row.label_contrast:+.2f}")
            save(fig, f"similarity_heads_{where}.png",
                 f"Pearson maps of each head's result at shot {k}'s {where} position")

    about = [("checkpoint", f"{manifest['checkpoint']['name']} (step {manifest['checkpoint']['step']}, "
              f"sha256 {manifest['checkpoint']['sha256'][:12]}…)"),
             ("model", f"p = {p}, d_model {manifest['model']['d_model']}, {manifest['model']['n_layer']} layers × "
              f"{manifest['model']['n_head']} heads"),
             ("prompts", f"task {task} ({manifest['task_split']}), shot k = {k} over all {p * p} queries, after the "
              f"fixed examples {manifest['fixed_examples']} ({manifest['sequence_note']})"),
             ("discrete logarithms", f"to the generator g = {g} of GF({p})*")]
    fmt = "{:.2f}".format
    sections = [
        ("Attention: what each head attends to", ["head", *SHARES, "kind"],
         [[f"L{r.layer}H{r.head}", *[fmt(getattr(r, s)) for s in SHARES], r.kind] for r in shares.itertuples()],
         "Shares of attention averaged over the p² prompts and the query positions from the second shot on. "
         "All scores: [scores.csv](scores.csv)."),
        ("Per-head PCA: circles of circles", ["head", "circularity", "(shuffled)", "rings by", "PC1", "PC2", "top-2"],
         [[f"L{r.layer}H{r.head}", fmt(r.circularity), fmt(r.circularity_null), r.rings_by, fmt(r.pc1_share),
           fmt(r.pc2_share), fmt(r.top2_share)] for r in heads.scores.itertuples()],
         "Circularity: mean ring score of the points grouped by one input (1 = every group on a circle, "
         "about 0 = a structureless blob), maximised over which input groups; beside it the same with the "
         "(x, y) labels shuffled, what chance grouping reaches with p points a group."),
        ("Embedding", ["planarity", "(random split)", "parity R²", "(random split)", "PC1", "PC2", "PC3"],
         [[fmt(emb.scores["planarity"]), fmt(emb.scores["planarity_null"]), fmt(emb.scores["parity_r2"]),
           fmt(emb.scores["parity_r2_null"]), *[fmt(v) for v in emb.variance]]],
         "Planarity: share of each parity class's variance in its own top-2 directions of the top-3 "
         "components; parity R²: share of the variance explained by even/odd; each beside its mean over "
         "random splits of the residues into classes of the same sizes."),
        ("Pearson maps: where ratios and answers appear",
         ["layer", *[f"{s} at {w}" for w in POSITIONS for s in ("ratio", "label")]],
         [[str(layer), *[fmt(float(sims.scores[(sims.scores["layer"] == layer) & (sims.scores["head"] == -1)
                                                & (sims.scores["position"] == w)][f"{s}_contrast"].iloc[0]))
                         for w in POSITIONS for s in ("ratio", "label")]] for layer in layers],
         "Ratio: mean correlation of prompts whose queries share y/x minus that of other pairs; label: the same "
         "for prompts with the same answer z."),
    ]
    write_pages(folder, f"Representations: {manifest['checkpoint']['name']}", about, sections, figures)
    return [f for f, _ in figures]
