"""The one run loop: a subject and the solvers streamed task by task into aggregates.

``compare_checkpoint``, ``ablate`` and ``trajectory`` all score a subject predictor the
same way: the engine yields one task's cells at a time, an optional hook sees them (to
write the task's file, keep a grid panel), and the :class:`~compare.engine.aggregates.Accumulator`
folds them into the small sums every summary is computed from. Memory stays bounded by
one task, whatever the grid.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from algos.solvers.base import Predictor
from compare.api.inputs import ComparisonInputs
from compare.engine.aggregates import Accumulator
from compare.engine.comparison import iter_comparison

__all__ = ["stream_aggregates", "progress_bar"]


def stream_aggregates(
    inputs: ComparisonInputs,
    subject: Predictor,
    *,
    indices: Sequence[int] | None = None,
    label_offsets: np.ndarray | None = None,
    on_task: Callable[[int, pd.DataFrame], None] | None = None,
    progress: Callable[[int], None] | None = None,
    acc: Accumulator | None = None,
) -> tuple[Accumulator, dict[str, float]]:
    """Score ``subject`` and ``inputs.references`` on the tasks ``indices`` (default all) of
    ``inputs``; returns the accumulator (keyed by task index in ``inputs.tasks``) and the
    engine's timings (seconds per predictor). ``on_task(index, cells)`` sees each task's
    cells before they are folded in; ``label_offsets`` (n_tasks, n_seq, max k) as in
    :func:`compare.engine.comparison.iter_comparison`, for all of ``inputs.tasks``."""
    acc = Accumulator() if acc is None else acc
    todo = list(range(len(inputs.tasks))) if indices is None else [int(i) for i in indices]
    if not todo:
        return acc, {}
    setting, p = inputs.ckpt.setting, inputs.ckpt.setting.p
    refs = [r.name for r in inputs.references]
    stream = iter_comparison(
        setting,
        inputs.tasks[todo],
        inputs.sequences,
        inputs.ks,
        subject,
        inputs.references,
        progress=progress,
        label_offsets=None if label_offsets is None else label_offsets[todo],
    )
    for j, cells in stream:
        index = todo[j]
        if on_task is not None:
            on_task(index, cells)
        acc.add_cells(index, cells, p, subject.name, refs, inputs.ks)
    return acc, stream.timings


@contextmanager
def progress_bar(total: int, desc: str, show: bool) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar on stderr counting prefixes, or None when ``show`` is false."""
    if not show or total <= 0:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="prefix", desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False) as bar:

        def update(n: int) -> None:
            bar.update(n)

        yield update
