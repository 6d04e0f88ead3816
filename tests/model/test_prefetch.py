"""The prefetching batch source gives exactly the batches of TrainBatches, in order or not."""

from __future__ import annotations

import torch

from algos.tasks import TaskSetting
from model.data import BatchPrefetcher, TrainBatches


def test_prefetched_batches_equal_built_ones():
    setting = TaskSetting.build(7, n_base_tasks=2, alpha=0.6, task_seed=1, split_seed=0)
    tb = TrainBatches(setting, n_examples=6, batch_size=4 * len(setting.pretrain_tasks), seed=5)
    pf = BatchPrefetcher(tb, torch.device("cpu"), rank=1, world=2, threaded=True)
    try:
        for step in (0, 1, 2, 7, 8, 3):  # in order (prefetched) and jumps (built on the spot)
            got, want = pf.get(step), tb.batch(step, 1, 2)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    finally:
        pf.close()
