"""compare.reports.training_runs: the plateau exit read from a run's history."""
import math

from hypothesis import given
from hypothesis import strategies as st

from compare.reports.training_runs import PLATEAU_FRACTION, plateau_exit


def _history(ratios, p):
    """Training losses given as fractions of chance, ln p."""
    return [{"step": 250 * (i + 1), "train_loss": r * math.log(p)} for i, r in enumerate(ratios)]


def test_a_run_on_the_plateau_has_no_exit():
    # the early dip below chance (to 0.92 ln p at p = 7 in the suite's runs) is not an exit
    assert plateau_exit(_history([1.0, 0.99, 0.92, 1 - PLATEAU_FRACTION / 2], 7), 7) is None
    assert plateau_exit([], 29) is None


def test_the_exit_is_the_first_evaluation_below_the_threshold():
    hist = _history([1.0, 0.95, 0.85, 0.95, 0.3], 11)
    assert plateau_exit(hist, 11) == 750
    assert plateau_exit(hist, 11, fraction=0.5) == 1250


@given(p=st.sampled_from([5, 7, 11, 29]), ratios=st.lists(st.floats(0.0, 1.2), max_size=30),
       fraction=st.floats(0.01, 0.9))
def test_exit_against_a_scan(p, ratios, fraction):
    hist = _history(ratios, p)
    got = plateau_exit(hist, p, fraction)
    below = [h["step"] for h in hist if h["train_loss"] <= (1 - fraction) * math.log(p)]
    assert got == (below[0] if below else None)
    # every evaluation before the exit is still on the plateau
    assert all(h["train_loss"] > (1 - fraction) * math.log(p) for h in hist if got is None or h["step"] < got)
