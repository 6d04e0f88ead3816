"""The zero-set intervention script (analyses/zero_set.py)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

_PATH = Path(__file__).resolve().parents[2] / "analyses" / "zero_set.py"
_spec = importlib.util.spec_from_file_location("zero_set", _PATH)
zero_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zero_set)


@given(st.sampled_from([5, 7, 11]), st.integers(1, 8), st.integers(0, 2**16))
def test_twin_flips_the_zero_set_and_nothing_else(p, k, seed):
    rng = np.random.default_rng(seed)
    seq = np.array([divmod(int(i), p) for i in rng.choice(p * p, size=k, replace=False)])
    out, had = zero_set.twin(seq, p, np.random.default_rng(seed + 1))
    on = (seq.sum(1) % p) == 0
    on_twin = (out.sum(1) % p) == 0
    assert had == bool(on.any())
    assert on_twin.any() != on.any()  # added where there was none, all removed where there were
    changed = (out != seq).any(1)
    assert changed.sum() == (on.sum() if had else 1)
    assert len({tuple(v) for v in out.tolist()}) == k  # inputs stay distinct
    assert out.min() >= 0 and out.max() < p


def test_runs_on_a_bundled_checkpoint(capsys):
    assert zero_set.main(["--ckpt", "d4-p7.pt", "--k", "4", "--sequences", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["p"] == 7 and result["n_sequences"] == 4
    n_with = result["n_with_zero_set_example"]
    for name in ("diagonal", "other_ood"):
        for key, present in (("added", n_with < 4), ("removed", n_with > 0)):
            assert (f"{name}_{key}_before" in result) == present
            if present:
                assert 0.0 <= result[f"{name}_{key}_after"] <= 1.0
        units = [result.get(f"{name}_own_zero_set_{w}_units", 0) for w in ("with", "without")]
        assert sum(units) > 0 and all(0.0 <= result.get(f"{name}_own_zero_set_{w}", 0.0) <= 1.0
                                      for w in ("with", "without"))


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert zero_set.main(["--ckpt", str(tmp_path / "missing.pt")]) == 2
    assert zero_set.main(["--ckpt", "d4.pt", "--k", "99"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


@given(st.sampled_from([5, 7, 11]), st.integers(0, 2**16))
def test_linemate_share_against_brute_force(p, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    task = rng.integers(0, p, (n, 2))
    x, y = rng.integers(0, p, n), rng.integers(0, p, n)
    z = (task[:, 0] * x + task[:, 1] * y) % p
    pred = np.where(rng.random(n) < 0.5, z, rng.integers(0, p, n))
    all_tasks = [(a, b) for a in range(p) for b in range(p)]
    pretrain = np.array([all_tasks[i] for i in rng.choice(p * p, size=p * p // 2, replace=False)])
    share, chance = zero_set.linemate_share(task, z, pred, pretrain, p)
    pre = {tuple(t) for t in pretrain.tolist()}
    hits, levels = [], []
    for (a, b), xi, yi, zi, yp in zip(task.tolist(), x, y, z, pred, strict=True):
        if yp == zi:
            continue
        # every pre-training task c·(a, b), c != 0, other than (a, b) itself, evaluated at (x, y)
        mates = {(c * a % p, c * b % p) for c in range(1, p)} & pre - {(a, b)}
        answers = {(u * xi + v * yi) % p for u, v in mates} - {zi}
        hits.append(yp in answers)
        levels.append(len(answers) / (p - 1))
    if not hits:
        assert np.isnan(share) and np.isnan(chance)
    else:
        assert share == np.mean(hits) and np.isclose(chance, np.mean(levels))


@given(st.sampled_from([5, 7, 11]), st.integers(1, 6), st.integers(0, 2**16))
def test_on_own_zero_set_against_brute_force(p, k, seed):
    rng = np.random.default_rng(seed)
    tasks = rng.integers(0, p, (int(rng.integers(1, 6)), 2))
    seqs = rng.integers(0, p, (int(rng.integers(1, 5)), k, 2))
    got = zero_set.on_own_zero_set(tasks, seqs, p)
    for i, (a, b) in enumerate(tasks.tolist()):
        for s, seq in enumerate(seqs.tolist()):
            assert got[i, s] == any((a * x + b * y) % p == 0 for x, y in seq)
