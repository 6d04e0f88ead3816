"""``compare inspect``: the paper's representation figures for one checkpoint, each with its scores.

    compare inspect --ckpt d4.pt [--task a,b] [--k K] [--sequence authors|N] [--layers 0,2|all]
                    [--out DIR] [--device auto|cpu|cuda]

For one task, example sequence and shot k (``interp``): the attention maps of every layer
and head and what each head attends to; the per-head PCA of shot k's x and y positions
("circles of circles"), labelled by (x, y) and by discrete logarithms; the PCA of the
residue embeddings (even/odd planes); the Pearson maps of the residual stream and of each
head at shot k's y and z positions (the kaleidoscope). Writes ``reports/<name>-inspect/``
atomically: PNGs, ``scores.csv`` (one row per score), ``manifest.json``, ``report.md`` and
``report.html``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from compare.errors import UsageError

__all__ = ["add_parser", "run", "parse_layers"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="attention maps, per-head PCA, embedding planes and Pearson maps of a checkpoint, scored",
        description="The representation analyses of the paper for one task, example sequence and shot k, "
        "each figure with a score: attention maps and head classes, circles of circles (per-head PCA), "
        "even/odd embedding planes, kaleidoscope (Pearson) maps.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file, or a bundled name (d2.pt, d4.pt)")
    p.add_argument("--task", metavar="A,B", help="the task (a, b) (default: the first o.o.d. task with a, b != 0)")
    p.add_argument("--k", type=int, help="the shot analysed; the prompt holds k - 1 fixed examples before it "
                   "(default: 8, or the checkpoint's largest k if smaller)")
    p.add_argument("--sequence", default="authors", metavar="authors|N",
                   help="the example sequence: the authors' (default) or N >= 1, random sequence N as "
                   "`compare run --sequences N --seed S` draws it when its largest k is this --k (random "
                   "draws depend on their length; the authors' sequence does not)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sequences (default 0)")
    p.add_argument("--layers", default="all", metavar="SPEC", help='layers to analyse: "all" (default) or "0,2"')
    p.add_argument("--no-head-maps", action="store_true", help="skip the per-head Pearson maps (scores of layers only)")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<checkpoint name>-inspect/)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=256, help="prompts per forward pass (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_layers(spec: str, n_layer: int) -> list[int]:
    """"all" or "0,2" -> sorted layer indices, each checked against the model's depth."""
    if spec.strip().lower() == "all":
        return list(range(n_layer))
    try:
        layers = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise UsageError(f"--layers: expected 'all' or layer numbers like 0,2, got {spec!r}") from None
    if not layers:
        raise UsageError("--layers: no layer given")
    bad = [layer for layer in layers if not 0 <= layer < n_layer]
    if bad:
        raise UsageError(f"--layers: no layer {bad[0]} (the model has layers 0..{n_layer - 1})")
    return layers


def _task(spec: str | None, setting) -> tuple[int, int]:
    from compare.grid import parse_task_list

    p = setting.p
    if spec is None:  # an o.o.d. task with both components nonzero (the paper's figures use (6, 6) at p = 29)
        pool = sorted(map(tuple, setting.ood_tasks if len(setting.ood_tasks) else setting.pretrain_tasks))
        full = [t for t in pool if t[0] and t[1]]
        return tuple(int(v) for v in (full or pool)[0])
    tasks = parse_task_list(spec)
    if len(tasks) != 1:
        raise UsageError(f"--task: give one task a,b, got {spec!r}")
    a, b = tasks[0]
    if not (0 <= a < p and 0 <= b < p):
        raise UsageError(f"--task: ({a},{b}) is outside Z_{p}^2")
    return int(a), int(b)


def _sequence(spec: str, p: int, k: int, seed: int) -> tuple[np.ndarray, str]:
    from compare.grid import build_sequences

    spec = spec.strip().lower()
    if spec in ("authors", "0"):
        return build_sequences(p, k)[0], "the authors' sequence (sequence 0 of `compare run`)"
    try:
        n = int(spec)
    except ValueError:
        raise UsageError(f"--sequence: expected 'authors' or a number N >= 1, got {spec!r}") from None
    if n < 1:
        raise UsageError(f"--sequence: N must be >= 1, got {n}")
    return build_sequences(p, k, n_random=n, seed=seed)[n], f"random sequence {n} (seed {seed})"


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    from model.checkpoint import load_checkpoint, resolve_checkpoint
    from model.device import pick_device

    path = resolve_checkpoint(args.ckpt)
    ckpt = load_checkpoint(path)
    setting, mcfg = ckpt.setting, ckpt.model_config
    p = setting.p
    k = args.k if args.k is not None else min(8, ckpt.max_k)
    if not 2 <= k <= ckpt.max_k:
        raise UsageError(f"--k: k = {k} is outside 2..{ckpt.max_k} (the checkpoint's context allows at most "
                         f"{ckpt.max_k}; the attention shares need an earlier shot)")
    layers = parse_layers(args.layers, mcfg.n_layer)
    task = _task(args.task, setting)
    sequence, sequence_note = _sequence(args.sequence, p, k, args.seed)
    device = pick_device(args.device)
    net = ckpt.build_model(device).eval()
    out = Path(args.out) if args.out else Path("reports") / f"{ckpt.name}-inspect"

    from tqdm import tqdm

    from algos.prompts import make_examples
    from interp.activations import collect, merge_sites
    from interp.attention import attention_maps, share_sites, shares_from
    from interp.pca import embedding_pca, head_pca_from, head_pca_sites
    from interp.prompts import shot_prompts
    from interp.similarity import similarity_from, similarity_sites

    prompts = shot_prompts(p, task, sequence, k)
    one = make_examples(p, np.asarray([task]), sequence, k).reshape(-1)  # (3k,) the k-shot prompt itself
    T = prompts.tokens.shape[1]
    head_maps = not args.no_head_maps
    sites = merge_sites(share_sites(layers, T), head_pca_sites(prompts, layers),
                        similarity_sites(prompts, layers, head_maps))
    with tqdm(total=len(prompts.tokens), unit="prompt", desc="compare inspect", file=sys.stderr,
              disable=args.quiet, dynamic_ncols=True, leave=False) as bar:
        cache = collect(net, prompts.tokens, sites, batch=args.batch_size, progress=bar.update)  # one forward pass
    maps = attention_maps(net, one, layers)
    shares = shares_from(cache, layers, T)
    heads = head_pca_from(cache, prompts, layers)
    sims = similarity_from(cache, prompts, layers, head_maps)
    del cache
    emb = embedding_pca(net, p)

    from compare import report
    from compare.cmd_run import checkpoint_block, package_versions
    from compare.inspect_report import score_table, write_inspect_report

    scores = score_table(shares, heads, emb, sims)
    manifest = {
        "tool": "compare inspect",
        "format": 1,
        "argv": list(getattr(args, "argv", sys.argv[1:])),
        "versions": package_versions(),
        "checkpoint": checkpoint_block(args.ckpt, path, ckpt),
        "setting_fingerprint": setting.fingerprint(),
        "p": p,
        "model": {"d_model": mcfg.d_model, "n_layer": mcfg.n_layer, "n_head": mcfg.n_head},
        "task": list(task),
        "task_split": "ood" if tuple(task) in {tuple(t) for t in setting.ood_tasks} else
                      ("id" if tuple(task) in {tuple(t) for t in setting.pretrain_tasks} else "neither"),
        "k": k,
        "sequence": sequence.tolist(),
        "sequence_note": sequence_note,
        "fixed_examples": [[int(v) for v in row] for row in make_examples(p, np.asarray([task]), sequence, k - 1)[0]]
        if k > 1 else [],
        "layers": layers,
        "generator": heads.generator,
        "device": str(device),
    }
    with report.atomic_output_dir(out) as tmp:
        figures = write_inspect_report(tmp, manifest, maps, shares, heads, emb, sims, prompts, scores)
        manifest["timings"] = {"total_seconds": round(time.perf_counter() - t_start, 3)}
        report.write_manifest(tmp, manifest)
    final = out.expanduser().absolute()
    print(f"wrote {final}: task ({task[0]},{task[1]}), shot {k}, layers {','.join(map(str, layers))}, "
          f"{len(scores)} scores, {len(figures)} figures ({time.perf_counter() - t_start:.1f} s)")
    print(f"  open {final / 'report.html'}")
    return 0
