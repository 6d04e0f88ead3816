"""The bundled checkpoints load safely, say how they were made, and have learned in context."""
import numpy as np
import pytest

from algos.prompts import make_examples, query_grid, random_sequences
from algos.tasks import task_labels
from model.checkpoint import bundled_dir, load_checkpoint
from model.predictor import ModelPredictor

BUNDLED = sorted(bundled_dir().glob("*.pt"))


def test_the_two_named_checkpoints_are_bundled():
    assert {"d2.pt", "d4.pt"} <= {path.name for path in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_bundled_checkpoint_is_self_describing(path):
    ck = load_checkpoint(path)
    assert ck.meta["reproduce"].startswith("compare train ")
    assert f"--stop-at {ck.step}" in ck.meta["reproduce"] or f"--steps {ck.step}" in ck.meta["reproduce"]
    assert ck.history and ck.history[-1]["step"] == ck.step
    assert ck.trainer is None  # release copy: no optimizer state
    assert path.stat().st_size < 5_000_000


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: path.name)
def test_bundled_checkpoint_learned_in_context_out_of_distribution(path):
    """With 8 examples, o.o.d. accuracy is far above chance (1/p) on 4 random sequences."""
    ck = load_checkpoint(path)
    p, tasks = ck.setting.p, np.asarray(ck.setting.ood_tasks)
    model = ModelPredictor(ck, device="cpu")
    grid = query_grid(p)
    correct = []
    for sequence in random_sequences(p, 4, 8, seed=123):
        pred = model.predict_grid(make_examples(p, tasks, sequence, 8), grid).pred  # (n_tasks, p^2)
        correct.append(pred == task_labels(p, tasks, grid))
    accuracy = float(np.mean(correct))
    assert accuracy > 2.5 / p, f"{path.name}: o.o.d. accuracy {accuracy:.3f} at k=8"


def test_d4_is_the_last_snapshot_of_its_committed_training_history():
    """``checkpoints/runs/V2`` retrained d4's recipe with snapshots; README's trajectory of
    the bundled model rests on its last snapshot being d4.pt, tensor for tensor."""
    from pathlib import Path

    import torch

    root = Path(__file__).resolve().parents[2]
    bundled = load_checkpoint(bundled_dir() / "d4.pt")
    last = load_checkpoint(root / "checkpoints/runs/V2/snapshots/step-0040000.pt")
    assert last.step == bundled.step == 40_000
    assert last.state_dict.keys() == bundled.state_dict.keys()
    assert all(torch.equal(last.state_dict[n], bundled.state_dict[n]) for n in bundled.state_dict)
