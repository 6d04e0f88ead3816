"""Tables and figures over training runs: configs, wall clock and the four sets' curves.

A run folder is what ``compare train`` writes (``metrics.jsonl`` and ``last.pt`` /
``final.pt``); a checkpoint file that carries its history (every checkpoint ``compare
train`` writes, the bundled ones included) stands for its run too. Functions here read them
and build pandas tables and matplotlib axes; ``compare.storage.files`` writes the files.

The *plateau* is the stretch at the start of training where the loss sits at chance,
ln p (the model predicts the uniform distribution over Z_p). :func:`plateau_exit` names the
first evaluation where a run's training loss is a ``fraction`` (10 %) below it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from algos.errors import InputError

__all__ = ["read_run", "runs_table", "plateau_exit", "plot_ood_over_steps", "plot_plateaus", "plot_per_shot",
           "SETS", "PLATEAU_FRACTION"]

SETS = ("id_train", "id_test", "ood_train", "ood_test")
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
PLATEAU_FRACTION = 0.1
"""How far below chance (a fraction of ln p) the training loss must go to end the plateau.
In its first 1,000 steps a run's loss dips a little below ln p (in the suite's runs to
0.92–0.94 ln p at p = 7, 0.98 ln p at p = 11, 0.998 ln p at p = 29) and then waits there for
the drop that learning makes; 10 % is past every such dip."""


def read_run(folder: str | Path) -> dict:
    """History and configs of one run: a run folder, or a checkpoint file with its history
    (a path, or a bundled name such as ``d4.pt``).

    Raises :class:`InputError` for a folder with no ``metrics.jsonl`` or no checkpoint, and
    for a checkpoint that carries no history.
    """
    from model.checkpoint import load_checkpoint, resolve_checkpoint

    folder = Path(folder)
    if not folder.exists() and folder.suffix == ".pt":
        folder = resolve_checkpoint(folder)  # a bundled name (d4.pt), or one line naming what is missing
    if folder.is_file():
        ck = load_checkpoint(folder)
        if not ck.history:
            raise InputError(f"{folder}: the checkpoint carries no training history")
        return {"name": folder.stem, "folder": folder, "history": list(ck.history), "ckpt": ck,
                "finished": ck.step >= ck.train_config.steps}
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        raise InputError(f"{folder}: no metrics.jsonl (not a training run folder?)")
    history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    ckpt_path = next((folder / n for n in ("final.pt", "last.pt", "best.pt") if (folder / n).is_file()), None)
    if ckpt_path is None:
        raise InputError(f"{folder}: no checkpoint (final.pt, last.pt or best.pt)")
    ck = load_checkpoint(ckpt_path)
    return {"name": folder.name, "folder": folder, "history": history, "ckpt": ck,
            "finished": (folder / "final.pt").is_file()}


def _min_line_mates(setting) -> int:
    """The fewest pre-training tasks on the line c·(a, b) of any o.o.d. task except (0, 0).

    An o.o.d. task whose line holds pre-training tasks differs from them only by a scale of
    every answer; the least-covered line is where o.o.d. generalization is hardest
    (README, "Training at CPU scale").
    """
    from algos.tasks import same_line_counts

    ood = setting.ood_array[(setting.ood_array != 0).any(axis=1)]
    return int(same_line_counts(setting.p, ood, setting.pretrain_array).min()) if len(ood) else 0


def plateau_exit(history: list[dict], p: int, fraction: float = PLATEAU_FRACTION) -> int | None:
    """The first evaluated step whose training loss is at most (1 - ``fraction``) · ln p.

    None when the run never left the plateau (or has no training loss recorded).
    """
    chance = math.log(p)
    return next((int(h["step"]) for h in history if h.get("train_loss", chance) <= (1 - fraction) * chance), None)


def runs_table(runs: list[dict]) -> pd.DataFrame:
    """One row per run: setting, model, optimization, progress, plateau and final/best accuracies.

    ``plateau_exit_step`` is :func:`plateau_exit` (empty when the run is still on the
    plateau); ``min_train_loss`` is the lowest training loss recorded, beside ``chance_loss``
    = ln p.
    """
    rows = []
    for run in runs:
        ck, hist = run["ckpt"], run["history"]
        s, m, t = ck.setting, ck.model_config, ck.train_config
        last = hist[-1] if hist else {}
        best = max(hist, key=lambda h: h.get("ood_test", {}).get("acc", -1)) if hist else {}
        row = {
            "run": run["name"],
            "p": s.p,
            "n_tasks": len(s.pretrain_tasks),
            "n_ood": len(s.ood_tasks),
            "n_base_tasks": s.n_base_tasks,
            "n_random_tasks": s.n_random_tasks,
            "task_seed": s.task_seed,
            "ood_min_line_mates": _min_line_mates(s),
            "alpha": s.alpha,
            "d_model": m.d_model,
            "n_layer": m.n_layer,
            "n_head": m.n_head,
            "n_examples": m.n_examples,
            "batch": t.batch_size,
            "lr": t.lr,
            "wd": t.weight_decay,
            "steps_planned": t.steps,
            "step": last.get("step", 0),
            "finished": run["finished"],
            "wall_clock_min": round(last.get("wall_clock_seconds", 0.0) / 60, 1),
            "chance_loss": round(math.log(s.p), 4),
            "min_train_loss": round(min((h["train_loss"] for h in hist if "train_loss" in h), default=math.nan), 4),
            "plateau_exit_step": plateau_exit(hist, s.p),
        }
        for name in SETS:
            if name in last:
                row[f"{name}_acc"] = round(last[name]["acc"], 3)
                row[f"{name}_last"] = round(last[name]["acc_last"], 3)
        if best:
            row["best_ood_test_acc"] = round(best["ood_test"]["acc"], 3)
            row["best_ood_test_step"] = best["step"]
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["plateau_exit_step"] = table["plateau_exit_step"].astype("Int64")
    return table


def plot_ood_over_steps(runs: list[dict], ax=None, metric: str = "acc"):
    """o.o.d.-test accuracy against step for every run (the transient phase shows as a peak)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, run in enumerate(runs):
        hist = run["history"]
        ax.plot([h["step"] for h in hist], [h["ood_test"][metric] for h in hist],
                color=_COLORS[i % len(_COLORS)], label=run["name"])
    ax.axhline(1 / runs[0]["ckpt"].setting.p if runs else 0, color="grey", ls=":", lw=1)
    ax.set(xlabel="step", ylabel=f"o.o.d.-test accuracy ({'all shots' if metric == 'acc' else 'last shot'})",
           ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7)
    return ax


def plot_plateaus(runs: list[dict], ax=None, fraction: float = PLATEAU_FRACTION):
    """Training loss over chance (loss / ln p) against step, one line per run, with each exit marked.

    A run on the plateau stays near 1; the dotted line is the exit threshold, 1 - ``fraction``,
    and a dot marks where each run crossed it.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    for i, run in enumerate(runs):
        p = run["ckpt"].setting.p
        hist = [h for h in run["history"] if "train_loss" in h]
        color = _COLORS[i % len(_COLORS)]
        ax.plot([h["step"] for h in hist], [h["train_loss"] / math.log(p) for h in hist], color=color, lw=1.5,
                label=f"{run['name']} (p = {p})")
        exit_step = plateau_exit(hist, p, fraction)
        if exit_step is not None:
            h = next(h for h in hist if h["step"] == exit_step)
            ax.plot([exit_step], [h["train_loss"] / math.log(p)], "o", color=color, ms=5)
    ax.axhline(1 - fraction, color="grey", ls=":", lw=1)
    ax.set(xlabel="step (log scale)", ylabel="training loss / ln p (1 = chance)", ylim=(0, 1.05), xscale="log")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_per_shot(run: dict, ax=None):
    """Accuracy against the number of in-context examples before the query, four sets, final evaluation."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    last = run["history"][-1]
    for i, name in enumerate(SETS):
        curve = last[name]["per_shot"]
        ax.plot(range(len(curve)), curve, color=_COLORS[i], label=name.replace("_", " "), marker=".")
    ax.axhline(1 / run["ckpt"].setting.p, color="grey", ls=":", lw=1)
    ax.set(xlabel="in-context examples before the query (k)", ylabel="accuracy", ylim=(0, 1.02),
           title=f"{run['name']} (step {last['step']})")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7)
    return ax
