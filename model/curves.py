"""Learning-curve figure for a training run (accuracy and loss of the four sets)."""

from __future__ import annotations

import os
from pathlib import Path

from algos.tempfiles import atomic_write

__all__ = ["plot_learning_curves", "save_learning_curves"]

# Okabe-Ito, colour-blind safe
COLORS = {"id_train": "#0072B2", "id_test": "#56B4E9", "ood_train": "#D55E00", "ood_test": "#E69F00"}


def plot_learning_curves(history: list[dict], axes=None):
    """Accuracy (left) and loss (right) against step; returns the two axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [h["step"] for h in history]
    for name, color in COLORS.items():
        if not any(name in h for h in history):
            continue
        axes[0].plot(steps, [h[name]["acc"] for h in history], color=color, label=name.replace("_", " "))
        axes[1].plot(steps, [h[name]["loss"] for h in history], color=color, label=name.replace("_", " "))
    axes[0].set(xlabel="step", ylabel="accuracy (all shots)", ylim=(0, 1.02))
    axes[1].set(xlabel="step", ylabel="loss", yscale="log")
    axes[0].legend(frameon=False, fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes


def save_learning_curves(history: list[dict], path: str | os.PathLike) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_learning_curves(history, axes)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)
