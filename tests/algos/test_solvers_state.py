"""Adding examples one at a time: Modular Regression's coverage never shrinks."""
from __future__ import annotations

import numpy as np
from algos_testing import SMALL_PRIMES, all_tasks, mismatches
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from algos.prompts import query_grid
from algos.solvers import ModularRegression, RatioMatching


class AddingExamples(RuleBasedStateMachine):
    """One prompt of a hidden task grows; sometimes a label is corrupted."""

    @initialize(p=st.sampled_from(SMALL_PRIMES), a=st.integers(0, 10**6), b=st.integers(0, 10**6))
    def start(self, p, a, b):
        self.p = p
        self.task = np.array([a % p, b % p])
        self.examples: list[list[int]] = []
        self.noisy = False
        self.coverage = np.zeros(p * p, dtype=bool)
        self.consistent = np.ones(p * p, dtype=bool)  # over all_tasks(p)
        self.grid = query_grid(p)

    @rule(x=st.integers(0, 10**6), y=st.integers(0, 10**6))
    def add_example(self, x, y):
        x, y = x % self.p, y % self.p
        self.examples.append([x, y, int(self.task @ [x, y]) % self.p])
        self._check_step()

    @rule(x=st.integers(0, 10**6), y=st.integers(0, 10**6), z=st.integers(0, 10**6))
    def add_noisy_example(self, x, y, z):
        self.examples.append([x % self.p, y % self.p, z % self.p])
        self.noisy = True
        self._check_step()

    def _check_step(self):
        ex = np.array([self.examples])
        pred = ModularRegression(self.p).predict_grid(ex, self.grid).pred[0]
        coverage = pred != -1
        assert not (self.coverage & ~coverage).any(), "coverage shrank"
        consistent = mismatches(self.p, all_tasks(self.p), ex[0]) == 0
        assert not (consistent & ~self.consistent).any(), "the consistent task set grew"
        self.coverage, self.consistent = coverage, consistent
        self.pred = pred

    @invariant()
    def clean_answers_are_true(self):
        if not self.examples or self.noisy:
            return
        true = (self.grid @ self.task) % self.p
        np.testing.assert_array_equal(self.pred[self.coverage], true[self.coverage])
        assert self.consistent[self.task[0] * self.p + self.task[1]]

    @invariant()
    def ratio_matching_stays_inside(self):
        if not self.examples:
            return
        rm = RatioMatching(self.p).predict_grid(np.array([self.examples]), self.grid).pred[0]
        assert not ((rm != -1) & ~self.coverage).any()


TestAddingExamples = AddingExamples.TestCase
