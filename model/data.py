"""From a task setting to token batches and loss masks.

A sequence is one task's examples laid out as tokens ``x1 y1 z1 x2 y2 z2 ...`` (one token
per residue, no separators). The model predicts z_i from the position of y_i, so the
target at position 3i+1 is z_i and every other position is masked (-100).

Batches are a pure function of (seed, step): each step reseeds a generator, so resuming
from a checkpoint replays exactly the data an uninterrupted run would have seen. Every
data-parallel rank draws the step's random numbers (cheap) but builds only its own slice
of the global batch (the sorting that picks each sequence's inputs is most of the cost),
so a rank's work falls with the number of ranks and the slices still join into the one
global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from algos.errors import InputError
from algos.tasks import TaskSetting

__all__ = ["encode", "loss_targets", "sample_examples", "TrainBatches", "BatchPrefetcher", "eval_batches"]

IGNORE = -100


def encode(examples: torch.Tensor) -> torch.Tensor:
    """examples (B, n, 3) holding x, y, z -> tokens (B, 3n)."""
    return examples.reshape(examples.shape[0], -1)


def loss_targets(examples: torch.Tensor) -> torch.Tensor:
    """examples (B, n, 3) -> targets (B, 3n): z_i at each y_i position, -100 elsewhere."""
    B, n, _ = examples.shape
    targets = torch.full((B, n, 3), IGNORE, dtype=torch.long, device=examples.device)
    targets[:, :, 1] = examples[:, :, 2]
    return targets.reshape(B, 3 * n)


def sample_examples(
    p: int,
    tasks: torch.Tensor,
    inputs: torch.Tensor,
    per_task: int,
    n_examples: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``per_task`` sequences of ``n_examples`` inputs for every task.

    tasks (T, 2), inputs (m, 2) -> examples (T * per_task, n_examples, 3), task-major.
    Inputs of one sequence are distinct when m >= n_examples (drawn with replacement
    otherwise).
    """
    draws = _draw(tasks.shape[0] * per_task, inputs.shape[0], n_examples, generator)
    return _examples(p, tasks, inputs, per_task, n_examples, draws, torch.arange(tasks.shape[0] * per_task))


def _draw(B: int, m: int, n_examples: int, generator: torch.Generator) -> torch.Tensor:
    """The random numbers of :func:`sample_examples` for B rows, in the generator's order:
    sort keys (B, m) when inputs are drawn without replacement, else indices (B, n)."""
    if m >= n_examples:
        return torch.rand(B, m, generator=generator)
    return torch.randint(0, m, (B, n_examples), generator=generator)


def _examples(
    p: int,
    tasks: torch.Tensor,
    inputs: torch.Tensor,
    per_task: int,
    n_examples: int,
    draws: torch.Tensor,
    rows: torch.Tensor,
) -> torch.Tensor:
    """The examples (len(rows), n, 3) of task-major rows ``rows`` from their draws: only those
    rows are sorted, so a rank that keeps a slice of the batch pays for its slice only."""
    if inputs.shape[0] >= n_examples:
        pick = draws[rows].argsort(dim=1)[:, :n_examples]  # (b, n): the n smallest keys of each row
    else:
        pick = draws[rows]
    xy = inputs[pick]  # (b, n, 2)
    ab = tasks[torch.div(rows, per_task, rounding_mode="floor")]  # (b, 2): row r holds task r // per_task
    z = (xy * ab[:, None, :]).sum(-1) % p  # (b, n)
    return torch.cat([xy, z[..., None]], dim=-1)


@dataclass
class TrainBatches:
    """Fresh training batches: the same number of sequences for every pre-training task."""

    setting: TaskSetting
    n_examples: int
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        n_tasks = len(self.setting.pretrain_tasks)
        if n_tasks == 0:
            raise InputError("the task setting has no pre-training tasks")
        if self.batch_size % n_tasks:
            raise InputError(
                f"batch_size {self.batch_size} must be a multiple of the {n_tasks} pre-training tasks "
                "(each step holds the same number of sequences for every task)"
            )
        self.per_task = self.batch_size // n_tasks
        self._tasks = torch.as_tensor(self.setting.pretrain_array)
        self._inputs = torch.as_tensor(self.setting.train_inputs)

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The global batch of ``step``, sliced for ``rank``: (idx (b, 3n), targets (b, 3n))."""
        if self.batch_size % world:
            raise InputError(f"batch_size {self.batch_size} is not divisible by world size {world}")
        g = torch.Generator().manual_seed(_mix(self.seed, step))
        B = self.batch_size
        draws = _draw(B, self._inputs.shape[0], self.n_examples, g)  # every rank draws the whole stream ...
        order = torch.randperm(B, generator=g)  # ... and the same shuffle that mixes tasks within the batch
        local = B // world
        rows = order[rank * local : (rank + 1) * local]  # the task-major rows this rank keeps, in batch order
        ex = _examples(self.setting.p, self._tasks, self._inputs, self.per_task, self.n_examples, draws, rows)
        return encode(ex), loss_targets(ex)


class BatchPrefetcher:
    """This rank's batch of each step on ``device``, the next one built ahead.

    On CUDA a background thread builds step s + 1's slice into pinned memory while step s
    runs on the GPU, and the copy to the device is asynchronous; on the CPU (or with
    ``threaded=False``) each batch is built when asked. Either way ``get(step)`` returns
    exactly ``batches.batch(step, rank, world)``: a step other than the one prefetched (a
    resume, a jump) is simply built on the spot.
    """

    def __init__(
        self, batches: TrainBatches, device: torch.device, rank: int = 0, world: int = 1, threaded: bool | None = None
    ) -> None:
        self.batches, self.device, self.rank, self.world = batches, device, rank, world
        self.threaded = device.type == "cuda" if threaded is None else threaded
        self.pin = device.type == "cuda"
        self._pool = None
        self._ahead: tuple[int, object] | None = None
        if self.threaded:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches")

    def _build(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx, tgt = self.batches.batch(step, self.rank, self.world)
        if self.pin:
            idx, tgt = idx.pin_memory(), tgt.pin_memory()
        return idx, tgt

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(idx, targets) of ``step`` on the device; starts building ``step + 1``."""
        if self._pool is not None and self._ahead is not None and self._ahead[0] == step:
            idx, tgt = self._ahead[1].result()  # type: ignore[attr-defined]  # a Future
        else:
            idx, tgt = self._build(step)
        if self._pool is not None:
            self._ahead = (step + 1, self._pool.submit(self._build, step + 1))
        return idx.to(self.device, non_blocking=self.pin), tgt.to(self.device, non_blocking=self.pin)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def eval_batches(setting: TaskSetting, n_examples: int, n_sequences: int, seed: int) -> dict[str, torch.Tensor]:
    """Fixed evaluation examples for the paper's four sets: name -> examples (N, n, 3).

    Each sequence uses one task and inputs from that set's side of the split only.
    """
    out = {}
    for i, (name, (tasks, inputs)) in enumerate(setting.evaluation_sets().items()):
        if len(tasks) == 0 or len(inputs) == 0:
            continue
        per_task = max(1, n_sequences // len(tasks))
        g = torch.Generator().manual_seed(_mix(seed, 1_000_000_007 + i))
        out[name] = sample_examples(setting.p, torch.as_tensor(tasks), torch.as_tensor(inputs), per_task, n_examples, g)
    return out


def _mix(seed: int, step: int) -> int:
    """A 63-bit seed from (seed, step), stable across platforms."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1, dtype=np.uint64)[0]) >> 1
