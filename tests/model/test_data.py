"""Token batches: layout, loss mask, balance over tasks, determinism."""
import numpy as np
import pytest
import torch

from algos.tasks import TaskSetting
from model.data import TrainBatches, eval_batches, loss_targets, sample_examples


@pytest.fixture(scope="module")
def setting():
    return TaskSetting.build(p=7, n_base_tasks=3, alpha=0.6, task_seed=3)


def test_batches_are_balanced_labelled_and_use_train_inputs_only(setting):
    tb = TrainBatches(setting, n_examples=6, batch_size=24, seed=5)
    idx, tgt = tb.batch(0)
    assert idx.shape == tgt.shape == (24, 18)
    ex = idx.view(24, 6, 3).numpy()
    train = {tuple(v) for v in setting.train_inputs.tolist()}
    assert all(tuple(v) in train for v in ex[..., :2].reshape(-1, 2).tolist())
    # each sequence is labelled by exactly one pre-training task, and every task has 2 sequences
    counts = {}
    for seq in ex:
        fits = [t for t in setting.pretrain_tasks if np.all((seq[:, 0] * t[0] + seq[:, 1] * t[1]) % 7 == seq[:, 2])]
        assert fits
        counts[fits[0]] = counts.get(fits[0], 0) + 1
    assert len(counts) >= len(setting.pretrain_tasks) - 2  # ambiguous sequences may fit several tasks
    assert (tgt[:, 1::3] == idx[:, 2::3]).all() and (tgt[:, 0::3] == -100).all() and (tgt[:, 2::3] == -100).all()


def test_batches_are_a_pure_function_of_seed_and_step(setting):
    a = TrainBatches(setting, 6, 24, seed=5)
    b = TrainBatches(setting, 6, 24, seed=5)
    assert torch.equal(a.batch(7)[0], b.batch(7)[0])
    assert not torch.equal(a.batch(7)[0], a.batch(8)[0])
    assert not torch.equal(a.batch(7)[0], TrainBatches(setting, 6, 24, seed=6).batch(7)[0])


def test_rank_slices_concatenate_to_the_global_batch(setting):
    tb = TrainBatches(setting, 6, 24, seed=1)
    full = tb.batch(3)[0]
    parts = torch.cat([tb.batch(3, rank=r, world=2)[0] for r in range(2)])
    assert torch.equal(full, parts)


def test_batch_size_must_balance_tasks(setting):
    with pytest.raises(ValueError, match="multiple of the 12 pre-training tasks"):
        TrainBatches(setting, 6, 25, seed=1)


def test_examples_within_a_sequence_are_distinct():
    g = torch.Generator().manual_seed(0)
    inputs = torch.tensor([[x, y] for x in range(5) for y in range(5)])
    ex = sample_examples(5, torch.tensor([[1, 2], [3, 4]]), inputs, 3, 10, g)
    assert ex.shape == (6, 10, 3)
    for seq in ex:
        assert len({tuple(v) for v in seq[:, :2].tolist()}) == 10


def test_eval_sets_use_their_side_of_the_split(setting):
    sets = eval_batches(setting, 5, 40, seed=0)
    assert set(sets) == {"id_train", "id_test", "ood_train", "ood_test"}
    test_inputs = {tuple(v) for v in setting.test_inputs.tolist()}
    assert all(tuple(v) in test_inputs for v in sets["ood_test"][..., :2].reshape(-1, 2).tolist())
    assert loss_targets(sets["id_train"]).shape == (sets["id_train"].shape[0], 15)
