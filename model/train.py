"""Training: AdamW with warm-up + cosine, periodic evaluation on the four sets, checkpoints.

One run writes to one folder:

    last.pt         newest state, with optimizer and progress (resume continues from it)
    best.pt         best o.o.d.-test accuracy so far (early stopping for the transient phase)
    metrics.jsonl   one JSON object per evaluation
    curves.png      learning curves of the four sets

Resuming replays exactly what an uninterrupted run would do: batches are a pure
function of (seed, step), and the optimizer state and schedule position come from
``last.pt``. Resuming with another configuration is refused, naming the fields that differ
(only ``--stop-at`` and the thread count may change between invocations). Under
``torchrun`` every rank builds the same global batch and trains on its slice; gradients are
averaged, so the result matches one process.

Safety: one run at a time per folder (an advisory lock); a folder that is not empty and
holds no training run is refused; the loss and gradient norm are checked for finiteness and
the weights before every save, so a run that diverges stops with one line naming the step
(:class:`TrainingDiverged`) and never writes a non-finite ``last.pt``/``best.pt``/``final.pt``
or snapshot; stale temporaries of killed writers are removed when a run starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from algos.errors import InputError
from model.checkpoint import (
    Checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    temp_path,
)
from model.config import ModelConfig, SettingConfig, TrainConfig, to_dict
from model.data import BatchPrefetcher, TrainBatches, encode, eval_batches
from model.device import DistInfo, autocast, init_distributed, maybe_compile, shutdown_distributed
from model.gpt import GPT

__all__ = [
    "lr_at",
    "evaluate",
    "RunSpec",
    "train",
    "data_parallel",
    "accumulate_step_gradients",
    "TrainingDiverged",
    "config_differences",
    "RUN_FILES",
    "RESUMABLE_CHANGES",
]

EVAL_SETS = ("id_train", "id_test", "ood_train", "ood_test")
SNAPSHOT_DIR = "snapshots"  # run folder subdirectory of the weight-only snapshots
#: What a training run writes in its folder (anything else there is the user's and left alone).
RUN_FILES = frozenset({"last.pt", "best.pt", "final.pt", "metrics.jsonl", "curves.png", SNAPSHOT_DIR})
#: Training fields that may differ when a run resumes: they change neither the weights nor the record.
RESUMABLE_CHANGES = frozenset({"threads"})


class TrainingDiverged(InputError):
    """The loss or the gradients became NaN or infinite: training stops, nothing non-finite is saved."""


def config_differences(saved: Any, wanted: Any, ignore: frozenset[str] = frozenset()) -> list[str]:
    """``"lr 0.001 -> 0.5"`` for each field of two configs of one dataclass that differs."""
    a, b = to_dict(saved), to_dict(wanted)
    return [
        f"{f.name} {a.get(f.name)!r} -> {b.get(f.name)!r}"
        for f in fields(wanted)
        if f.name not in ignore and a.get(f.name) != b.get(f.name)
    ]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step``: linear warm-up from warmup_start*lr, then cosine to final_lr_frac*lr."""
    lr = cfg.lr
    if step < cfg.warmup_steps:
        frac = step / max(1, cfg.warmup_steps)
        return lr * (cfg.warmup_start + (1.0 - cfg.warmup_start) * frac)
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * (cfg.final_lr_frac + (1.0 - cfg.final_lr_frac) * cosine)


@torch.no_grad()
def evaluate(
    net: torch.nn.Module,
    sets: dict[str, torch.Tensor],
    p: int,
    device: torch.device,
    precision: str = "auto",
    chunk: int = 512,
) -> dict[str, Any]:
    """Loss and accuracy (all shots, last shot, per shot) on each set of examples (N, n, 3).

    Accuracy is the arg-max over the p residue tokens at each y position.
    """
    net.eval()
    out: dict[str, Any] = {}
    for name, examples in sets.items():
        losses, correct = [], []
        for start in range(0, examples.shape[0], chunk):
            ex = examples[start : start + chunk].to(device)
            idx = encode(ex)
            with autocast(device, precision):
                logits, _ = net(idx)
            logits = logits.float()[:, 1::3, :p]  # (b, n, p) at the y positions
            z = ex[:, :, 2]
            losses.append(F.cross_entropy(logits.flatten(0, 1), z.flatten(), reduction="none").view_as(z).cpu())
            correct.append((logits.argmax(-1) == z).float().cpu())
        loss, acc = torch.cat(losses), torch.cat(correct)  # (N, n)
        per_shot = acc.mean(0)
        out[name] = {
            "loss": float(loss.mean()),
            "acc": float(acc.mean()),
            "acc_last": float(per_shot[-1]),
            "per_shot": [round(float(a), 4) for a in per_shot],
        }
    net.train()
    return out


@dataclass
class RunSpec:
    """Everything a run needs: the three configs, where to write, how to report."""

    model: ModelConfig
    train: TrainConfig
    setting: SettingConfig
    out_dir: Path
    device: str = "auto"
    resume: bool = True
    progress: bool = True
    command: str = ""
    preset: str = ""
    stop_at: int | None = None  # end this invocation at that step (last.pt kept for resuming)


def train(spec: RunSpec) -> Checkpoint | None:
    """Run (or resume) training; returns the final checkpoint on the main rank."""
    dist_info, device = init_distributed(spec.device)
    try:
        return _train(spec, dist_info, device)
    finally:
        shutdown_distributed()


def _prepare_out(out: Path) -> None:
    """The run folder exists, is writable and is a training run's (or empty); one line otherwise."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder (a training run writes a folder)")
    if out.is_dir():
        remove_stale_temporaries(out)
        remove_stale_temporaries(out / SNAPSHOT_DIR)
        present = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if present and not RUN_FILES & set(present):
            shown = ", ".join(sorted(present)[:3]) + (", …" if len(present) > 3 else "")
            raise InputError(
                f"refusing to train into {out}: it is not empty and holds no training run ({shown}); "
                "choose another --out"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = temp_path(out / "write-test")
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write the run folder {out}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _run_lock(out: Path, held: bool) -> Iterator[None]:
    """An advisory lock on the run folder: a second ``compare train`` on it is refused."""
    if not held:
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another `compare train` is writing {out}; wait for it or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _train(spec: RunSpec, info: DistInfo, device: torch.device) -> Checkpoint | None:
    out = Path(spec.out_dir)
    created = info.is_main and not out.exists()
    if info.is_main:
        _prepare_out(out)
    try:
        with _run_lock(out, info.is_main):
            return _train_locked(spec, info, device)
    except BaseException:
        if created:  # a run that wrote nothing leaves no empty folder behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _train_locked(spec: RunSpec, info: DistInfo, device: torch.device) -> Checkpoint | None:
    cfg, mcfg = spec.train, spec.model
    out = Path(spec.out_dir)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    setting = spec.setting.build()
    if mcfg.p != setting.p:
        raise ValueError(f"model p={mcfg.p} differs from the task setting's p={setting.p}")

    torch.manual_seed(cfg.seed)
    net = GPT(mcfg).to(device)
    opt = torch.optim.AdamW(
        net.param_groups(cfg.weight_decay),
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        fused=device.type == "cuda",
    )
    step, history, wall, best = 0, [], 0.0, -1.0
    last = out / "last.pt"
    if spec.resume and last.exists():
        ck = load_checkpoint(last)
        differ = []
        if ck.setting.fingerprint() != setting.fingerprint():
            saved = ck.setting_config
            differ += config_differences(saved, spec.setting) if saved is not None else ["task setting"]
            differ = differ or ["task setting"]
        differ += config_differences(ck.model_config, mcfg)
        differ += config_differences(ck.train_config, cfg, RESUMABLE_CHANGES)
        if differ:
            raise InputError(
                f"{last} was written with another configuration ({'; '.join(differ)}); rerun with the flags it "
                "was started with (only --stop-at and --threads may change), pass --no-resume to start over, "
                "or choose another --out"
            )
        net.load_state_dict(ck.state_dict)
        if ck.trainer is None:
            raise InputError(f"{last}: no trainer state to resume from (a release copy?); pass --no-resume")
        opt.load_state_dict(ck.trainer["optimizer"])
        step, history = ck.step, ck.history
        wall = float(ck.meta.get("wall_clock_seconds", 0.0))
        best = float(ck.trainer.get("best_ood_test", -1.0))
        if info.is_main:
            print(f"resuming {last} at step {step}", file=sys.stderr)

    model = maybe_compile(data_parallel(net, info, device), cfg.compile)
    batches = TrainBatches(setting, mcfg.n_examples, cfg.batch_size, cfg.seed)
    prefetch = BatchPrefetcher(batches, device, info.rank, info.world)  # CUDA: next batch built while this one runs
    evals = eval_batches(setting, mcfg.n_examples, cfg.eval_sequences, cfg.seed)

    meta_base = {
        "command": spec.command,
        "preset": spec.preset,
        "seed": cfg.seed,
        "torch": str(torch.__version__),
        "device": str(device),
        "world_size": info.world,
    }

    def snapshot(path: Path, with_trainer: bool, extra_meta: dict | None = None) -> None:
        meta = {**meta_base, "wall_clock_seconds": round(wall, 1), **(extra_meta or {})}
        if history:
            meta["final_accuracy"] = {k: history[-1][k]["acc"] for k in EVAL_SETS if k in history[-1]}
        trainer = {"optimizer": opt.state_dict(), "best_ood_test": best} if with_trainer else None
        save_checkpoint(
            path,
            mcfg,
            cfg,
            setting,
            net.state_dict(),
            step=step,
            history=history,
            meta=meta,
            setting_config=spec.setting,
            trainer=trainer,
        )

    snapshot_at = set(cfg.snapshots)
    if snapshot_at and info.is_main:
        (out / SNAPSHOT_DIR).mkdir(exist_ok=True)

    def save_snapshot(at: int) -> None:
        """Weights only, no history (metrics.jsonl has it): small files for ``compare trajectory``."""
        meta = {**meta_base, "wall_clock_seconds": round(wall + time.perf_counter() - t0, 1), "snapshot": True}
        save_checkpoint(
            out / SNAPSHOT_DIR / f"step-{at:07d}.pt",
            mcfg,
            cfg,
            setting,
            net.state_dict(),
            step=at,
            history=[],
            meta=meta,
            setting_config=spec.setting,
        )

    bar = None
    if info.is_main and spec.progress:
        from tqdm import tqdm

        bar = tqdm(
            total=cfg.steps,
            initial=step,
            desc="train",
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
    net.train()
    t0 = time.perf_counter()
    end = cfg.steps if spec.stop_at is None else min(cfg.steps, spec.stop_at)
    pending: list[tuple[int, torch.Tensor]] = []  # (step, loss or gradient not finite), checked in batches
    every_step = device.type == "cpu" and not info.active  # no device sync to avoid: check each step
    checked = {"step": step, "saved": step if last.exists() and spec.resume else None}

    def ensure_finite() -> None:
        """Stop (one line) when a loss, gradient norm or weight since the last check is not finite."""
        first = None
        if pending:
            flags = torch.stack([f for _, f in pending]).nonzero()
            if flags.numel():
                first = pending[int(flags[0, 0])][0]
            pending.clear()
        weights_ok = bool(torch.stack([torch.isfinite(w).all() for w in net.parameters()]).all())
        bad = first is not None or not weights_ok
        if info.active:  # every rank stops at the same step
            flag = torch.tensor([1.0 if bad else 0.0], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            bad = bool(flag.item() > 0)
        if bad:
            if bar is not None:
                bar.close()
            if first is not None:
                where = f"the loss became non-finite at step {first}"
            elif checked["step"] == step - 1:
                where = f"the weights became non-finite at step {step}"
            else:
                where = f"the weights became non-finite between steps {checked['step']} and {step}"
            if checked["saved"] is not None:
                kept = f"{last} keeps step {checked['saved']}, the last finite state"
            elif last.exists():
                kept = f"{last} is left as it was"
            else:
                kept = "no checkpoint was written"
            raise TrainingDiverged(
                f"training diverged: {where} (lr {cfg.lr:g}); {kept}; lower --lr or raise --warmup-steps and "
                "start again with --no-resume or another --out"
            )
        checked["step"] = step

    while step < end:
        lr = lr_at(step, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = accumulate_step_gradients(model, prefetch, step, info, device, cfg.precision)
        flag = ~torch.isfinite(loss.detach())
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            flag = flag | ~torch.isfinite(norm)
        pending.append((step + 1, flag.reshape(())))
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if bar is not None:
            bar.update(1)
        do_eval = step % cfg.eval_every == 0 or step == cfg.steps
        saving = do_eval or step % cfg.save_every == 0 or step in snapshot_at or step == end
        if every_step or saving:
            ensure_finite()  # before any evaluation or save: nothing non-finite is ever written
        if do_eval or step % cfg.save_every == 0:
            wall += time.perf_counter() - t0
            t0 = time.perf_counter()
        if do_eval:
            if info.is_main:
                metrics = evaluate(net, evals, setting.p, device, cfg.precision)
                record = {
                    "step": step,
                    "lr": lr,
                    "train_loss": float(loss.detach()),
                    "wall_clock_seconds": round(wall, 1),
                    **metrics,
                }
                history.append(record)
                _write_metrics(out, history)
                if bar is not None:
                    post = {"loss": f"{float(loss.detach()):.3f}"}
                    post.update({k.replace("_", ""): f"{metrics[k]['acc']:.2f}" for k in EVAL_SETS if k in metrics})
                    bar.set_postfix(post)
                ood = metrics.get("ood_test", {}).get("acc", -1.0)
                if ood > best:
                    best = ood
                    snapshot(out / "best.pt", with_trainer=False, extra_meta={"selected_by": "best ood_test acc"})
            _barrier(info)
        if (do_eval or step % cfg.save_every == 0) and info.is_main:
            snapshot(last, with_trainer=True)
            checked["saved"] = step
        if step in snapshot_at and info.is_main:
            save_snapshot(step)
    prefetch.close()
    if bar is not None:
        bar.close()
    _barrier(info)
    if info.is_main and step < cfg.steps:
        snapshot(last, with_trainer=True)
        return load_checkpoint(last)
    if info.is_main:
        final = out / "final.pt"
        snapshot(final, with_trainer=False)
        return load_checkpoint(final)
    return None


def data_parallel(net: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``net`` wrapped for data parallelism when the process group has several ranks."""
    if not info.active:
        return net
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)


def accumulate_step_gradients(
    model: torch.nn.Module,
    batches: TrainBatches | BatchPrefetcher,
    step: int,
    info: DistInfo,
    device: torch.device,
    precision: str,
) -> torch.Tensor:
    """Forward and backward of this rank's slice of ``step``'s global batch; returns the local loss.

    Every rank's slice has the same number of sequences and loss tokens, so the mean of
    the ranks' losses is the loss of the whole batch; DDP averages the gradients during
    ``backward``, which makes each rank's ``.grad`` the single-process gradient of the
    whole batch (what ``tests/model/test_distributed.py`` checks).
    """
    if isinstance(batches, BatchPrefetcher):
        idx, tgt = batches.get(step)
    else:
        idx, tgt = batches.batch(step, info.rank, info.world)
        idx, tgt = idx.to(device), tgt.to(device)
    with autocast(device, precision):
        _, loss = model(idx, tgt)
    loss.backward()
    return loss


def _barrier(info: DistInfo) -> None:
    if info.active:
        torch.distributed.barrier()


def _write_metrics(out: Path, history: list[dict]) -> None:
    """Rewrite metrics.jsonl and curves.png from the full history (atomic)."""
    tmp = temp_path(out / "metrics.jsonl")
    tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
    os.replace(tmp, out / "metrics.jsonl")
    try:
        from model.curves import save_learning_curves

        save_learning_curves(history, out / "curves.png")
    except Exception as exc:  # a figure must never stop training
        print(f"warning: could not draw learning curves: {exc}", file=sys.stderr)
