"""Phase classification from the four sets' last-shot accuracies."""
import pytest

from compare.engine.phases import classify, phase_table


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
    assert classify(dict(zip(["id_train", "id_test", "ood_train", "ood_test"], acc, strict=True))) == phase


def test_threshold_moves_the_boundary_and_table_sorts():
    acc = {"id_train": 0.7, "id_test": 0.1, "ood_train": 0.1, "ood_test": 0.1}
    assert classify(acc, 0.75) == "not learned" and classify(acc, 0.6) == "i.d. memorization"
    rows = [{"n_tasks": n, "alpha": a, **{f"{s}_last": 0.9 for s in ["id_train", "id_test", "ood_train", "ood_test"]}}
            for n, a in [(16, 0.8), (8, 0.8), (8, 0.4)]]
    table = phase_table(rows)
    assert list(zip(table.n_tasks, table.alpha, strict=True)) == [(8, 0.4), (8, 0.8), (16, 0.8)]
    assert set(table.phase) == {"o.o.d. generalization"}


def _evaluation(step: int, acc_last: tuple[float, float, float, float], ood_acc: float) -> dict:
    sets = dict(zip(["id_train", "id_test", "ood_train", "ood_test"], acc_last, strict=True))
    record = {"step": step, "wall_clock_seconds": float(step)}
    for name, value in sets.items():
        record[name] = {"acc": ood_acc if name == "ood_test" else value, "acc_last": value}
    return record


def test_transient_run_is_classified_at_its_last_and_best_evaluation(tmp_path):
    """A run that generalizes o.o.d. and then memorizes gets both phases, and best.pt's step."""
    import json

    from compare.engine.phases import read_point
    from compare.reports.training import write_phase_report

    history = [
        _evaluation(100, (0.2, 0.2, 0.2, 0.2), 0.15),
        _evaluation(200, (0.95, 0.8, 0.85, 0.8), 0.6),  # the peak: best o.o.d.-test acc
        _evaluation(300, (0.99, 0.4, 0.7, 0.9), 0.3),  # higher last-shot, lower all-shot acc
        _evaluation(400, (1.0, 0.3, 0.3, 0.2), 0.2),
    ]
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    point = read_point(run)
    assert point["best_step"] == 200 and point["ood_test_last_best"] == 0.9
    table = phase_table([{**point, "n_tasks": 40, "alpha": 0.8}])
    assert table.loc[0, "phase"] == "i.d. memorization"
    assert table.loc[0, "phase_at_best"] == "o.o.d. generalization"
    write_phase_report(tmp_path, table, 0.75)
    assert "o.o.d. generalization" in (tmp_path / "phases.md").read_text()
    assert (tmp_path / "phases.png").stat().st_size > 0
