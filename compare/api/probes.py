"""Linear probes as a library call: what the residual stream holds of the algorithms' quantities.

>>> res = compare.probe("d4.pt", k=8, prompts=2000)                     # doctest: +SKIP
>>> res.selectivity("multiplier", "q_y", 8)        # by site                     # doctest: +SKIP

For each k, :func:`interp.probes.probe_prompts` draws ``prompts`` probe prompts (seeded; tasks
round-robin), one forward pass keeps the residual stream at every site (the embedding, and
each block's stream after attention and after its MLP) and position class
(:func:`interp.activations.collect`), and :func:`interp.probes.fit_probe` fits a
scikit-learn logistic regression per (site, position, target) on a seeded train split of the
prompts and scores it on the rest, beside the same probe on Hewitt & Liang's control task and
the majority baseline. Definitions: :mod:`interp.probes`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.api.inputs import CheckpointLike, load, manifest_header, package_versions
from compare.engine.grid import check_ks, parse_k, select_tasks, task_splits
from compare.errors import InputError, UsageError
from compare.storage import files
from model.checkpoint import Checkpoint

__all__ = ["ProbeResult", "probe", "PROBE_COLUMNS", "DEFINITIONS"]

#: Columns of probes.csv.
PROBE_COLUMNS = ("k", "position", "site", "layer", "stage", "hook", "target", "n_classes", "n_train", "n_test",
                 "accuracy", "control_accuracy", "selectivity", "majority", "control_majority", "accuracy_se",
                 "converged")

DEFINITIONS = {
    "prompts": "k examples with distinct nonzero inputs drawn uniformly, labelled by the task; a nonzero query, with "
               "probability on_line_share a multiple c*(x_i, y_i) of a uniformly chosen example (c uniform in 1..p-1), "
               "else uniform; tasks round-robin in a seeded order",
    "line": "index (1..k) of the first example whose line through the origin holds the query, 0 = none",
    "ratio": "the query's own line through the origin: y/x mod p, p for x = 0",
    "multiplier": "c with (x, y) = c*(x_i, y_i) for the line's example i; defined only where line > 0",
    "answer": "the true z = a*x + b*y mod p of the query",
    "answer_on_line": "answer, on the prompts whose query lies on an example's line only (line > 0: Ratio Matching "
                      "answers them)",
    "answer_off_line": "answer, on the prompts whose query lies on no example's line only (line = 0: only combining "
                       "examples answers them)",
    "task_a": "a of the task",
    "task_b": "b of the task",
    "sites": "embed = hook_embed; L{l}.mid = blocks.{l}.hook_resid_mid (after attention); L{l}.post = "
             "blocks.{l}.hook_resid_post (after the MLP)",
    "positions": "q_x = 3k (the query's x token), q_y = 3k+1 (the query's y token, where the answer is read), "
                 "ex_z = 3k-1 (the last example's z token)",
    "probe": "scikit-learn LogisticRegression (multinomial, L2, lbfgs) on standardized features, fitted on the train "
             "prompts, accuracy on the test prompts (split by prompt, seeded; the same split for every probe of a k)",
    "control": "Hewitt & Liang's control task: every input type gets one label drawn (seeded) from the target's own "
               "label distribution; the type is the position's own input: the query's x at q_x, the query (x, y) at "
               "q_y, the last example's input (x, y) at ex_z. selectivity = accuracy - control_accuracy",
    "majority": "test share of the training prompts' most frequent label (control_majority: the same for the "
                "control labels)",
    "accuracy_se": "binomial standard error of the test accuracy, sqrt(acc (1 - acc) / n_test)",
}


@dataclass
class ProbeResult:
    """``table``: one row per (k, position, site, target) (``probes.csv``); ``prompts``: one row
    per probe prompt with its tokens, task, split, targets, train flag and the model's answer
    (``prompts.csv``)."""

    table: pd.DataFrame
    prompts: pd.DataFrame
    manifest: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def row(self, target: str, position: str, site: str, k: int | None = None) -> pd.Series:
        """One row of ``table`` (k: the only or largest k when None)."""
        t = self.table
        k = int(t["k"].max()) if k is None else int(k)
        sel = t[(t["target"] == target) & (t["position"] == position) & (t["site"] == site) & (t["k"] == k)]
        if sel.empty:
            raise InputError(f"no probe of {target} at {position}, {site}, k = {k}")
        return sel.iloc[0]

    def selectivity(self, target: str, position: str, k: int | None = None) -> pd.Series:
        """Selectivity of ``target``'s probes at ``position``, indexed by site (in depth order)."""
        t = self.table
        k = int(t["k"].max()) if k is None else int(k)
        sel = t[(t["target"] == target) & (t["position"] == position) & (t["k"] == k)]
        return sel.set_index("site")["selectivity"]

    def write_report(self, folder: str | Path) -> Path:
        """Write ``probes.csv``, ``prompts.csv``, the heatmaps, manifest and pages atomically."""
        from compare.reports.probes import write_probe_report

        out, self.manifest, self.figures = files.publish_report(
            folder, self.manifest, lambda tmp, m: write_probe_report(tmp, self.table, self.prompts, m))
        return out


def _names(spec: str | Sequence[str], known: Sequence[str], flag: str) -> list[str]:
    if isinstance(spec, str):
        items = [s.strip() for s in spec.split(",")]
        if [s.lower() for s in items] == ["all"]:
            return list(known)
    else:
        items = [str(s).strip() for s in spec]
    if not items or any(not s for s in items):
        raise UsageError(f"{flag}: empty item in {spec!r}")
    for s in items:
        if s not in known:
            raise UsageError(f"{flag}: unknown {flag.lstrip('-').rstrip('s')} {s!r} (known: all, {', '.join(known)})")
    return [s for s in known if s in items]


def probe(
    ckpt: CheckpointLike,
    k: int | str | Iterable[int] = 8,
    *,
    prompts: int = 2000,
    tasks: str | Iterable[Sequence[int]] = "all",
    positions: str | Sequence[str] = "all",
    sites: str | Sequence[str] = "all",
    targets: str | Sequence[str] = "all",
    test_share: float = 0.25,
    on_line_share: float = 0.5,
    C: float = 1.0,
    max_iter: int = 500,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 256,
    progress: bool = False,
    argv: Sequence[str] | None = None,
) -> ProbeResult:
    """Probe the residual stream of ``ckpt`` for every one of ``targets`` (``line``, ``ratio``,
    ``multiplier``, ``answer``, ``answer_on_line``, ``answer_off_line``, ``task_a``, ``task_b``) at
    every one of ``sites`` (``all``: the embedding and each block after attention and after its
    MLP; ``post``; or e.g.
    ``"L0.mid,L3.post"``) and ``positions`` (``q_x``, ``q_y``, ``ex_z``), on ``prompts`` probe
    prompts per k over ``tasks``. Same seed, same tables."""
    from interp.probes import POSITIONS, TARGETS, probe_sites

    t_start = time.perf_counter()
    pos_names = _names(positions, POSITIONS, "--positions")
    target_names = _names(targets, TARGETS, "--targets")
    n = int(prompts)
    if n < 20:
        raise UsageError(f"--prompts must be >= 20, got {prompts}")
    if not 0.05 <= float(test_share) <= 0.9:
        raise UsageError(f"--test-share must be in [0.05, 0.9], got {test_share}")
    if not 0.0 <= float(on_line_share) <= 1.0:
        raise UsageError(f"--on-line-share must be in [0, 1], got {on_line_share}")
    if not float(C) > 0:
        raise UsageError(f"--C must be > 0, got {C}")
    if int(batch_size) < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    ks = _ks(k)
    spec = ckpt.name if isinstance(ckpt, Checkpoint) else str(ckpt)
    ck = load(ckpt)
    setting, cfg = ck.setting, ck.model_config
    p = setting.p
    check_ks(ks, ck.max_k, p)
    try:
        site_list = probe_sites(cfg.n_layer, sites)
    except ValueError as exc:
        raise UsageError(f"--sites: {exc}") from None
    tasks_spec = tasks if isinstance(tasks, str) else ";".join(f"{int(a)},{int(b)}" for a, b in tasks)
    task_array = select_tasks(setting, tasks_spec)

    from interp.activations import collect
    from interp.probes import (
        control_labels,
        control_types,
        fit_probe,
        position_of,
        probe_prompts,
        probe_targets,
        split_prompts,
    )
    from model.device import pick_device
    from model.predictor import ModelPredictor

    dev = pick_device(device)
    net = ck.build_model(dev)
    model = ModelPredictor(ck, device=str(dev), net=net)
    rows: list[dict[str, Any]] = []
    prompt_parts = []
    t_model = t_fit = 0.0
    total = len(ks) * len(site_list) * len(pos_names) * len(target_names)
    from compare.api.stream import progress_bar

    with progress_bar(total, "compare probe", progress) as bar:
        for kk in ks:
            pp = probe_prompts(p, task_array, kk, n, seed=seed, on_line_share=on_line_share)
            labels = probe_targets(pp)
            train = split_prompts(n, test_share, seed + kk)
            t0 = time.perf_counter()
            where = {pos: position_of(pos, kk) for pos in pos_names}
            acts = collect(net, pp.tokens, {hook: sorted(where.values()) for _, hook in site_list},
                           batch=int(batch_size))
            answers = model.predict(pp.examples, pp.queries).pred
            t_model += time.perf_counter() - t0
            split = task_splits(setting, pp.tasks).astype(str)
            part = pd.DataFrame({"k": kk, "prompt": np.arange(n), "split": split, "task_a": pp.tasks[:, 0],
                                 "task_b": pp.tasks[:, 1],
                                 "tokens": [" ".join(map(str, r)) for r in pp.tokens.tolist()],
                                 "train": train})
            for name in TARGETS:
                part[name] = labels[name]
            part["model"] = answers
            prompt_parts.append(part)
            t0 = time.perf_counter()
            for pi, pos in enumerate(pos_names):
                types = control_types(pp, pos)
                for site, hook in site_list:
                    X = acts.at(hook, [where[pos]])[:, 0, :]  # (n, d_model)
                    for ti, target in enumerate(target_names):
                        control = control_labels(types, labels[target], seed=(seed * 1000 + kk) * 100 + 10 * pi + ti)
                        s = fit_probe(X, labels[target], control, train, C=C, max_iter=max_iter, seed=seed)
                        rows.append({
                            "k": kk, "position": pos, "site": site, "layer": _layer(site), "stage": _stage(site),
                            "hook": hook, "target": target, "n_classes": s.n_classes, "n_train": s.n_train,
                            "n_test": s.n_test, "accuracy": s.accuracy, "control_accuracy": s.control_accuracy,
                            "selectivity": s.selectivity, "majority": s.majority,
                            "control_majority": s.control_majority,
                            "accuracy_se": float(np.sqrt(s.accuracy * (1 - s.accuracy) / s.n_test))
                            if s.n_test else float("nan"),
                            "converged": s.converged,
                        })
                        if bar is not None:
                            bar(1)
            t_fit += time.perf_counter() - t0
    table = pd.DataFrame(rows, columns=list(PROBE_COLUMNS))
    prompts_df = pd.concat(prompt_parts, ignore_index=True)
    model_acc = {str(kk): float((g["model"] == g["answer"]).mean()) for kk, g in prompts_df.groupby("k")}
    manifest = {
        **manifest_header("compare probe", spec, ck.path, ck, argv,
                          {**package_versions(), "scikit-learn": _sklearn_version()}),
        "ks": list(ks),
        "tasks_spec": tasks_spec,
        "n_tasks": int(len(task_array)),
        "seed": int(seed),
        "device": str(dev),
        "probe": {
            "prompts_per_k": n,
            "test_share": float(test_share),
            "on_line_share": float(on_line_share),
            "C": float(C),
            "max_iter": int(max_iter),
            "sites": [s for s, _ in site_list],
            "hooks": dict(site_list),
            "positions": pos_names,
            "position_index": {pos: {str(kk): position_of(pos, kk) for kk in ks} for pos in pos_names},
            "targets": target_names,
            "definitions": DEFINITIONS,
            "model_accuracy": model_acc,
        },
        "counts": {"prompts": int(len(prompts_df)), "probes": int(len(table)), "fits": 2 * int(len(table))},
        "timings": {
            "model_seconds": round(t_model, 3),
            "fit_seconds": round(t_fit, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
        },
    }
    return ProbeResult(table, prompts_df, manifest)


def _ks(k: int | str | Iterable[int]) -> tuple[int, ...]:
    if isinstance(k, str):
        return parse_k(k)
    if isinstance(k, (int, np.integer)):
        return parse_k(str(int(k)))
    return parse_k(",".join(str(int(v)) for v in k) or " ")


def _layer(site: str) -> int:
    return -1 if site == "embed" else int(site[1:].split(".")[0])


def _stage(site: str) -> str:
    return "embed" if site == "embed" else site.split(".")[1]


def _sklearn_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return "not installed"
