"""Phase classification from the four sets' last-shot accuracies."""
import pytest

from compare.phases import classify, phase_table


@pytest.mark.parametrize(
    "acc, phase",
    [
        ((0.3, 0.2, 0.2, 0.2), "not learned"),
        ((0.9, 0.2, 0.2, 0.2), "i.d. memorization"),
        ((0.9, 0.8, 0.2, 0.2), "i.d. generalization"),
        ((0.9, 0.2, 0.8, 0.2), "o.o.d. memorization"),
        ((0.9, 0.8, 0.8, 0.3), "o.o.d. memorization"),
        ((0.9, 0.8, 0.8, 0.8), "o.o.d. generalization"),
        ((0.2, 0.9, 0.9, 0.9), "not learned"),
    ],
)
def test_classify(acc, phase):
    assert classify(dict(zip(["id_train", "id_test", "ood_train", "ood_test"], acc))) == phase


def test_threshold_moves_the_boundary_and_table_sorts():
    acc = {"id_train": 0.7, "id_test": 0.1, "ood_train": 0.1, "ood_test": 0.1}
    assert classify(acc, 0.75) == "not learned" and classify(acc, 0.6) == "i.d. memorization"
    rows = [{"n_tasks": n, "alpha": a, **{f"{s}_last": 0.9 for s in ["id_train", "id_test", "ood_train", "ood_test"]}}
            for n, a in [(16, 0.8), (8, 0.8), (8, 0.4)]]
    table = phase_table(rows)
    assert list(zip(table.n_tasks, table.alpha)) == [(8, 0.4), (8, 0.8), (16, 0.8)]
    assert set(table.phase) == {"o.o.d. generalization"}
