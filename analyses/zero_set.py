"""Does one in-context example on the zero set of the diagonal tasks throw the model off?

The o.o.d. tasks (a, a) share the zero set x + y = 0 (mod p): every example (x, -x) has
answer 0 for all of them. ``reports/M-seq16`` shows run M (the `d4.pt` before run V)
answering the (a, a) well on the example sequences without such an example and badly on
those with one. This script tests that as an intervention, with everything else held
fixed: for each sequence of the comparison (the authors' and ``--sequences`` random ones,
as ``compare run`` draws them), it builds a twin that differs in the first ``--k``
examples only there:

- a sequence without an example on x + y = 0 gets one, (x, -x) with x drawn at random, at
  a random position;
- a sequence with such examples has each replaced by a fresh input off that line.

It then scores the model at k on the full grids of the o.o.d. diagonal tasks (a, a),
a != 0, and, as a control, of the other o.o.d. tasks except (0, 0), before and after.

Where the model errs on a diagonal task it also reports how often its wrong answer is the
answer of a *pre-training* task on the same line, c·(a, a): an example (x, -x) -> 0 says
"the task lies on the line x = y", and a model that retrieves the memorized task there
instead of solving for a gives exactly that answer. ``*_wrong_as_linemate`` is that share,
``*_wrong_as_linemate_chance`` the share a wrong answer drawn uniformly would reach.

Without any intervention it also splits every o.o.d. task's accuracy (except (0, 0)) by
whether the original prompt holds an example on *that task's own* zero set
a·x + b·y = 0 (``own_zero_set_*``): such an example pins the task's line, and how much
a model leans on it shows how far it solves for the task rather than for its line.
Prints one line per sequence, then one JSON object as the last line.

    python analyses/zero_set.py [--ckpt d4.pt] [--k 8] [--sequences 16] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from algos.tasks import line_multiples_in, task_labels


def twin(seq: np.ndarray, p: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(the twin sequence, whether the original had an example on x + y = 0); seq (k, 2)."""
    on_line = (seq.sum(axis=1) % p) == 0
    used = {tuple(v) for v in seq.tolist()}
    out = seq.copy()
    if on_line.any():
        for j in np.flatnonzero(on_line):
            while True:
                v = tuple(int(c) for c in rng.integers(0, p, 2))
                if sum(v) % p and v not in used:
                    break
            out[j] = v
            used.add(v)
    else:
        j = int(rng.integers(0, len(seq)))
        while True:
            x = int(rng.integers(1, p))
            if (x, (-x) % p) not in used:
                break
        out[j] = (x, (-x) % p)
    return out, bool(on_line.any())


def linemate_share(task: np.ndarray, z_true: np.ndarray, pred: np.ndarray, pretrain: np.ndarray,
                   p: int) -> tuple[float, float]:
    """(share of wrong predictions equal to a pre-training line-mate's answer, its chance level).

    task (n, 2), z_true (n,), pred (n,): one row per scored cell. A line-mate of (a, b) is a
    pre-training task c·(a, b) with c != 0, 1; its answer on the same input is c·z_true mod p.
    The chance level counts, per wrong cell, the line-mates' answers other than z_true among
    the p - 1 wrong values. Both are nan when there are no wrong predictions.
    """
    wrong = pred != z_true
    if not wrong.any():
        return float("nan"), float("nan")
    z, y = z_true[wrong].astype(np.int64), pred[wrong].astype(np.int64)
    mates = line_multiples_in(p, task[wrong], pretrain)[:, 1:]  # (n_wrong, p-2): scales c = 2..p-1
    scaled = (np.arange(2, p)[None, :] * z[:, None]) % p  # their answers; distinct and != z unless z == 0
    mates &= (z != 0)[:, None]
    hits = (mates & (scaled == y[:, None])).any(axis=1)
    return float(hits.mean()), float(mates.sum(axis=1).mean() / (p - 1))


def on_own_zero_set(tasks: np.ndarray, seqs: np.ndarray, p: int) -> np.ndarray:
    """(n_tasks, n_sequences) bool: does sequence s hold an input on task t's zero set?

    tasks (n_tasks, 2), seqs (n_sequences, k, 2). For (0, 0) every input is on it.
    """
    n_seq, k = seqs.shape[:2]
    return (task_labels(p, tasks, seqs.reshape(-1, 2)).reshape(len(tasks), n_seq, k) == 0).any(axis=2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="d4.pt")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--sequences", type=int, default=16, help="random sequences beside the authors' one")
    ap.add_argument("--seed", type=int, default=0, help="draws the random sequences and the twins")
    args = ap.parse_args(argv)

    import compare
    from compare.engine.breakdowns import breakdown
    from compare.engine.grid import build_sequences  # the same draw as `compare run --sequences`

    try:
        ck = compare.load(args.ckpt)
    except (compare.InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setting, p = ck.setting, ck.setting.p
    if not 1 <= args.k <= ck.model_config.n_examples - 1:
        print(f"error: --k {args.k} is outside 1..{ck.model_config.n_examples - 1} for this checkpoint",
              file=sys.stderr)
        return 2
    diag = np.array([t for t in setting.ood_tasks if t[0] == t[1] != 0]).reshape(-1, 2)
    other = np.array([t for t in setting.ood_tasks if t[0] != t[1]]).reshape(-1, 2)
    if len(diag) == 0 or len(other) == 0:
        print("error: this setting has no o.o.d. diagonal tasks (a, a) or no other o.o.d. tasks", file=sys.stderr)
        return 2

    seqs = build_sequences(p, args.k, n_random=args.sequences, seed=args.seed)[:, : args.k]
    rng = np.random.default_rng([args.seed, 1])
    pairs = [twin(s, p, rng) for s in seqs]
    both = np.stack([x for s, (t, _) in zip(seqs, pairs, strict=True) for x in (s, t)])  # original, twin, ...
    had = np.array([h for _, h in pairs])

    result: dict[str, object] = {"analysis": "zero_set", "checkpoint": ck.path.name if ck.path else args.ckpt,
                                 "p": p, "k": args.k, "n_sequences": len(seqs),
                                 "n_with_zero_set_example": int(had.sum())}
    # one pass of the model over both task groups; each task's cells per sequence come from breakdown
    res = compare.compare_checkpoint(ck, args.k, tasks=np.concatenate([diag, other]).tolist(), examples=list(both),
                                     authors_sequence=False, solvers="ratio_matching", n_boot=0, device="cpu",
                                     batch_size=256)
    cells = res.cells()
    per = breakdown(cells, "sequence_task", references=[])
    is_diag = per["task_a"] == per["task_b"]
    for name, tasks, rows in (("diagonal", diag, per[is_diag]), ("other_ood", other, per[~is_diag])):
        # tasks have equal cell counts, so the mean over tasks is the pooled accuracy
        acc = rows.groupby("sequence")["accuracy"].mean().to_numpy()
        before, after = acc[0::2], acc[1::2]
        print(f"{name} ({len(tasks)} tasks): accuracy at k = {args.k}, original -> twin")
        for i, (b, a, h) in enumerate(zip(before, after, had, strict=False)):
            print(f"  sequence {i:3d}  {'had one, removed' if h else 'had none, added '}  {b:.3f} -> {a:.3f}")
        for key, mask in (("added", ~had), ("removed", had)):
            if mask.any():
                result[f"{name}_{key}_before"] = round(float(before[mask].mean()), 4)
                result[f"{name}_{key}_after"] = round(float(after[mask].mean()), 4)
                result[f"{name}_{key}_sequences_moved_as_predicted"] = int(
                    ((after < before) if key == "added" else (after > before))[mask].sum())
    # accuracy on the original prompts, split by an example on the task's own zero set
    originals = per[(per["sequence"] % 2 == 0).to_numpy()]
    tasks_o = originals[["task_a", "task_b"]].to_numpy()
    unique_tasks, task_index = np.unique(tasks_o, axis=0, return_inverse=True)
    own = on_own_zero_set(unique_tasks, seqs, p)[task_index.ravel(), (originals["sequence"] // 2).to_numpy()]
    accuracy_o, is_diag_o = originals["accuracy"].to_numpy(), tasks_o[:, 0] == tasks_o[:, 1]
    for name, group in (("diagonal", is_diag_o), ("other_ood", ~is_diag_o)):
        for key, mask in (("with", group & own), ("without", group & ~own)):
            if mask.any():
                result[f"{name}_own_zero_set_{key}"] = round(float(accuracy_o[mask].mean()), 4)
                result[f"{name}_own_zero_set_{key}_units"] = int(mask.sum())
    # how the model errs on the diagonal tasks: sequence 2i is original i, 2i + 1 its twin
    diag_cells = cells[(cells["task_a"] == cells["task_b"]).to_numpy()]
    for key, mask in (("added", ~had), ("removed", had)):
        for when, offset in (("before", 0), ("after", 1)):
            g = diag_cells[diag_cells["sequence"].isin(2 * np.flatnonzero(mask) + offset).to_numpy()]
            if len(g) == 0:
                continue
            share, chance = linemate_share(g[["task_a", "task_b"]].to_numpy(), g["z_true"].to_numpy(),
                                           g["pred_model"].to_numpy(), setting.pretrain_array, p)
            result[f"diagonal_{key}_{when}_wrong_as_linemate"] = round(share, 4)
            result[f"diagonal_{key}_{when}_wrong_as_linemate_chance"] = round(chance, 4)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
