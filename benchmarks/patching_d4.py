"""Time activation patching of every component of the bundled d4 (and the logit lens against one forward).

Patching: ``compare.patch("d4.pt", k=8, design=..., prompts=121)`` — the 121 tasks of d4
(p = 11) each once as a base prompt, every component (per layer the residual stream, 4
heads, the attention layer, the MLP: 28) at the five position classes, one thread; wall
time of the library call and of writing its report. Target (issue 24): at most 5 minutes
on one CPU core.

Lens: on the full k = 8 grid of the 121 tasks (authors' sequence, 121 queries each), the
time of each layer's :class:`model.lens.LensPredictor` ``predict_grid`` against one plain
``ModelPredictor.predict_grid``, and of the direct logit attribution; best of 3.

Prints one JSON object as the last line.

    python benchmarks/patching_d4.py [--design task] [--save benchmarks/results/patching_d4.json]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import emit

TARGET_SECONDS = 300.0


def _best(fn, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="d4.pt")
    ap.add_argument("--design", default="task")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--save", metavar="PATH", help="also write the JSON line there")
    args = ap.parse_args()
    torch.set_num_threads(1)

    import compare
    from algos.prompts import authors_sequence, make_examples, query_grid
    from model.lens import DirectLogitAttribution, LensPredictor
    from model.predictor import ModelPredictor

    ck = compare.load(args.ckpt)
    s = ck.setting
    n_tasks = len(s.pretrain_tasks) + len(s.ood_tasks)
    t0 = time.perf_counter()
    res = compare.patch(ck, k=args.k, design=args.design, prompts=n_tasks, tasks="all", seed=0)
    t_patch = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="patch-bench-") as tmp:
        t0 = time.perf_counter()
        res.write_report(Path(tmp) / "out")
        t_report = time.perf_counter() - t0
    counts = res.manifest["counts"]
    n_comp = len(res.manifest["patching"]["components"])
    n_pos = len(res.manifest["patching"]["positions"])
    print(f"patching: {counts['prompts']} prompt pairs x {n_comp} components x {n_pos} positions, "
          f"{counts['forward_passes']} forward passes in {t_patch:.1f} s (+ report {t_report:.1f} s; "
          f"target <= {TARGET_SECONDS:.0f} s)")

    p = s.p
    tasks = np.concatenate([s.pretrain_array, s.ood_array])
    ex = make_examples(p, tasks, authors_sequence(p, ck.max_k), args.k)
    queries = query_grid(p)
    base = ModelPredictor(ck, device="cpu", batch_prefixes=None)
    model_s = _best(lambda: base.predict_grid(ex, queries))
    lens_s = {}
    for layer in range(ck.model_config.n_layer):
        lens = LensPredictor(ck, layer, device="cpu", batch_prefixes=None, net=base.net)
        lens_s[f"L{layer}"] = round(_best(lambda lens=lens: lens.predict_grid(ex, queries)), 4)
    dla = DirectLogitAttribution(ck, device="cpu", batch_prefixes=None, net=base.net)
    dla_s = _best(lambda: dla.attribute(ex, queries))
    all_layers = sum(lens_s.values())
    print(f"lens on the k = {args.k} grid ({len(ex)} prefixes x {len(queries)} queries): one forward {model_s:.3f} s; "
          f"every layer's lens {all_layers:.3f} s ({all_layers / model_s:.2f} forwards); DLA {dla_s:.3f} s")
    emit({
        "benchmark": "patching_d4", "checkpoint": args.ckpt, "design": args.design, "k": args.k,
        "seconds": round(t_patch, 2), "report_seconds": round(t_report, 2),
        "prompts": counts["prompts"], "components": n_comp, "positions": n_pos,
        "patches": n_comp * n_pos, "forward_passes": counts["forward_passes"],
        "seconds_per_patch": round(t_patch / (n_comp * n_pos), 4), "target_seconds": TARGET_SECONDS,
        "lens": {"grid_prompts": int(len(ex) * len(queries)), "model_forward_seconds": round(model_s, 4),
                 "layer_seconds": lens_s, "all_layers_seconds": round(all_layers, 4),
                 "all_layers_in_forwards": round(all_layers / model_s, 3), "dla_seconds": round(dla_s, 4)},
        "threads": 1,
    }, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
