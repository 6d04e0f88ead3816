"""Each rank builds only its slice of the global batch, and the slices are today's batch."""

from __future__ import annotations

import pytest
import torch

from algos.tasks import TaskSetting
from model.data import TrainBatches, _mix, encode, loss_targets


def _reference(tb: TrainBatches, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch as it was built before ranks built slices (the whole batch, then a shuffle)."""
    g = torch.Generator().manual_seed(_mix(tb.seed, step))
    tasks, inputs, n, p = tb._tasks, tb._inputs, tb.n_examples, tb.setting.p
    B, m = tasks.shape[0] * tb.per_task, inputs.shape[0]
    if m >= n:
        pick = torch.rand(B, m, generator=g).argsort(dim=1)[:, :n]
    else:
        pick = torch.randint(0, m, (B, n), generator=g)
    xy = inputs[pick]
    ab = tasks.repeat_interleave(tb.per_task, dim=0)
    ex = torch.cat([xy, ((xy * ab[:, None, :]).sum(-1) % p)[..., None]], dim=-1)
    ex = ex[torch.randperm(B, generator=g)]
    return encode(ex), loss_targets(ex)


@pytest.mark.parametrize("n_examples", [6, 40])  # inputs without replacement (6 <= m) and with (40 > m)
@pytest.mark.parametrize("world", [1, 2, 4])
def test_rank_slices_join_into_the_global_batch(n_examples, world):
    setting = TaskSetting.build(7, n_base_tasks=2, alpha=0.6, task_seed=1, split_seed=0)
    tb = TrainBatches(setting, n_examples=n_examples, batch_size=8 * len(setting.pretrain_tasks), seed=3)
    for step in (0, 1, 17):
        idx, tgt = _reference(tb, step)
        parts = [tb.batch(step, rank, world) for rank in range(world)]
        assert torch.equal(torch.cat([p[0] for p in parts]), idx)
        assert torch.equal(torch.cat([p[1] for p in parts]), tgt)
