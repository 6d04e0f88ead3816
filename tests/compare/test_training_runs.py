"""compare.reports.training_runs: the plateau exit read from a run's history."""
import math

from hypothesis import given
from hypothesis import strategies as st

from compare.reports.training_runs import PLATEAU_MARGIN, plateau_exit


def _history(losses):
    return [{"step": 250 * (i + 1), "train_loss": loss} for i, loss in enumerate(losses)]


def test_a_run_on_the_plateau_has_no_exit():
    chance = math.log(29)
    assert plateau_exit(_history([chance, chance - 0.01, chance - PLATEAU_MARGIN / 2]), 29) is None
    assert plateau_exit([], 29) is None


def test_the_exit_is_the_first_evaluation_below_the_margin():
    chance = math.log(11)
    hist = _history([chance, chance - 0.05, chance - 0.2, chance - 0.05, chance - 1.0])
    assert plateau_exit(hist, 11) == 750
    assert plateau_exit(hist, 11, margin=0.5) == 1250


@given(p=st.sampled_from([5, 7, 11, 29]), drops=st.lists(st.floats(-0.5, 2.0), max_size=30),
       margin=st.floats(0.01, 1.0))
def test_exit_against_a_scan(p, drops, margin):
    hist = _history([math.log(p) - d for d in drops])
    got = plateau_exit(hist, p, margin)
    below = [h["step"] for h in hist if h["train_loss"] <= math.log(p) - margin]
    assert got == (below[0] if below else None)
    # every evaluation before the exit is still on the plateau
    assert all(h["train_loss"] > math.log(p) - margin for h in hist if got is None or h["step"] < got)
