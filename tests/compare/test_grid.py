"""k specs, task specs and example sequences (compare.engine.grid)."""
from __future__ import annotations

import numpy as np
import pytest

from algos.prompts import authors_sequence
from algos.tasks import TaskSetting
from compare.engine.grid import (
    build_sequences,
    check_ks,
    parse_example_sequence,
    parse_k,
    parse_task_list,
    select_tasks,
    task_splits,
)


@pytest.fixture(scope="module")
def setting() -> TaskSetting:
    return TaskSetting.build(7, n_base_tasks=2, alpha=0.6, max_ood_tasks=10)


@pytest.mark.parametrize(
    "spec, expected",
    [("3", (3,)), ("1..8", tuple(range(1, 9))), ("1,2,4", (1, 2, 4)), (" 4, 1..3 ", (1, 2, 3, 4)),
     ("2..2", (2,)), ("8,1,8", (1, 8))],
)
def test_parse_k_accepts(spec, expected):
    assert parse_k(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [("0", "k must be >= 1"), ("5..2", "empty range"), ("x", "not an integer"), ("", "empty"),
     ("1,,2", "empty item"), ("-1", "k must be >= 1"), ("1..x", "not an integer"), ("0..3", ">= 1"),
     ("1.5", "not an integer")],
)
def test_parse_k_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_k(spec)


def test_check_ks_names_the_limit():
    check_ks((1, 2, 8), max_k=8)
    with pytest.raises(ValueError, match="k = 9 exceeds the 8 examples"):
        check_ks((1, 9), max_k=8)
    with pytest.raises(ValueError, match="distinct inputs"):
        check_ks((30,), max_k=100, p=5)


def test_named_task_sets(setting):
    assert select_tasks(setting, "id").tolist() == [list(t) for t in setting.pretrain_tasks]
    assert select_tasks(setting, "ood").tolist() == [list(t) for t in setting.ood_tasks]
    every = select_tasks(setting, "ALL")
    assert every.shape == (len(setting.pretrain_tasks) + len(setting.ood_tasks), 2)


def test_explicit_tasks_and_splits(setting):
    pre = setting.pretrain_tasks[0]
    tasks = select_tasks(setting, f"{pre[0]},{pre[1]}; 0,0 ;6,6;0,0")
    assert tasks.tolist() == [list(pre), [0, 0], [6, 6]]
    splits = task_splits(setting, tasks)
    assert splits[0] == "id" and set(splits[1:]) == {"ood"}


@pytest.mark.parametrize(
    "spec, message",
    [("7,0", r"task \(7,0\) is outside Z_7\^2"), ("0,-1", "outside"), ("1,2,3", "cannot read task"),
     ("a,b", "not an integer"), (";", "no task")],
)
def test_explicit_tasks_rejected(setting, spec, message):
    with pytest.raises(ValueError, match=message):
        select_tasks(setting, spec)


def test_parse_task_list_keeps_order():
    assert parse_task_list("3,4;0,1;3,4") == [(3, 4), (0, 1)]


def test_sequences_authors_first_then_random():
    seqs = build_sequences(7, 5, n_random=3, seed=2)
    assert seqs.shape == (4, 5, 2)
    assert np.array_equal(seqs[0], authors_sequence(7, 5, seed=1))
    again = build_sequences(7, 5, n_random=3, seed=2)
    assert np.array_equal(seqs, again)
    other = build_sequences(7, 5, n_random=3, seed=3)
    assert not np.array_equal(seqs[1:], other[1:])
    for s in seqs:  # distinct inputs inside each sequence
        assert len({tuple(v) for v in s.tolist()}) == 5
    only_random = build_sequences(7, 5, n_random=2, seed=2, authors=False)
    assert np.array_equal(only_random, seqs[1:3])


def test_sequences_rejects_nothing():
    with pytest.raises(ValueError, match="no example sequences"):
        build_sequences(7, 3, n_random=0, authors=False)
    with pytest.raises(ValueError, match=">= 0"):
        build_sequences(7, 3, n_random=-1)


def test_parse_example_sequence():
    seq = parse_example_sequence(" 1,2; 3,4 ;0,0;", 5, 2)
    assert seq.dtype == np.int64 and seq.tolist() == [[1, 2], [3, 4]]
    assert parse_example_sequence("1,1;1,1", 5, 2).tolist() == [[1, 1], [1, 1]]  # repeats are the user's call
    for spec, message in [("1,2", "gives only 1 input"), ("1,5;0,0", r"\(1,5\) is outside Z_5\^2"),
                          ("1;2", "cannot read input '1'"), (";", "no input"), ("a,1;0,0", "not an integer")]:
        with pytest.raises(ValueError, match=message):
            parse_example_sequence(spec, 5, 2)


def test_given_sequences_sit_between_the_authors_and_the_random_ones():
    given = [np.array([[1, 1], [2, 2]]), np.array([[0, 3], [4, 0]])]
    plain = build_sequences(5, 2, n_random=2, seed=3)
    both = build_sequences(5, 2, n_random=2, seed=3, given=given)
    assert both.shape == (5, 2, 2)
    np.testing.assert_array_equal(both[0], plain[0])
    np.testing.assert_array_equal(both[1:3], np.stack(given))
    np.testing.assert_array_equal(both[3:], plain[1:])
    only = build_sequences(5, 2, authors=False, given=given[:1])
    np.testing.assert_array_equal(only, given[0][None])
