"""Self-describing checkpoints: one ``.pt`` file that rebuilds the model and its task setting.

The file is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)`` and never runs code from the file:

    kind            "icl-modgrok-checkpoint"
    format_version  int (this module writes FORMAT_VERSION)
    model_config    ModelConfig as a dict
    train_config    TrainConfig as a dict
    setting_config  SettingConfig as a dict (how the setting was drawn)
    task_setting    TaskSetting.to_dict() (the setting itself, with its fingerprint)
    step            int
    history         list of metric dicts (one per evaluation)
    meta            dict: command, wall-clock seconds, versions, final accuracies, ...
    state_dict      model weights
    trainer         (optional) optimizer and progress state for exact resumption
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from algos import tempfiles
from algos.errors import InputError
from algos.tasks import TaskSetting
from model.config import ModelConfig, SettingConfig, TrainConfig, config_from_dict, to_dict

__all__ = [
    "FORMAT_VERSION",
    "KIND",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "bundled_dir",
    "atomic_torch_save",
    "read_torch_file",
    "check_finite",
    "check_output_path",
    "temp_path",
    "remove_stale_temporaries",
    "LEASE_S",
]

FORMAT_VERSION = 1
KIND = "icl-modgrok-checkpoint"


class CheckpointError(InputError):
    """A checkpoint file that is missing, unreadable, foreign or unsafe."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: configs, task setting, weights and provenance."""

    path: Path | None
    model_config: ModelConfig
    train_config: TrainConfig
    setting: TaskSetting
    state_dict: dict[str, torch.Tensor]
    step: int = 0
    history: list[dict] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    setting_config: SettingConfig | None = None
    trainer: dict[str, Any] | None = None
    sha256: str = ""

    @property
    def max_k(self) -> int:
        """Largest number of in-context examples before a query the model was trained on."""
        return self.model_config.n_examples - 1

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else "checkpoint"

    def build_model(self, device: str | torch.device = "cpu"):
        """The GPT with these weights, in eval mode."""
        from model.gpt import GPT

        net = GPT(self.model_config)
        try:
            net.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{self.path}: weights do not fit the stored model config ({first})") from None
        return net.to(device).eval()


def bundled_dir() -> Path:
    """Folder of the checkpoints shipped with the package (``d2.pt``, ``d4.pt``)."""
    return Path(__file__).resolve().parent / "bundled"


def resolve_checkpoint(spec: str | os.PathLike) -> Path:
    """A path to an existing file, or a bundled checkpoint of that name (``d4.pt``)."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: not a file")
    bundled = bundled_dir() / path.name
    if path.parent == Path(".") and bundled.is_file():
        return bundled
    known = sorted(p.name for p in bundled_dir().glob("*.pt"))
    hint = f" (bundled: {', '.join(known)})" if known else ""
    raise CheckpointError(f"{path}: checkpoint not found{hint}")


def save_checkpoint(
    path: str | os.PathLike,
    model_config: ModelConfig,
    train_config: TrainConfig,
    setting: TaskSetting,
    state_dict: dict[str, torch.Tensor],
    step: int = 0,
    history: list[dict] | None = None,
    meta: dict[str, Any] | None = None,
    setting_config: SettingConfig | None = None,
    trainer: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename)."""
    blob = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "model_config": to_dict(model_config),
        "train_config": to_dict(train_config),
        "setting_config": to_dict(setting_config) if setting_config is not None else None,
        "task_setting": setting.to_dict(),
        "step": int(step),
        "history": _plain(list(history or [])),
        "meta": _plain(dict(meta or {})),
        "state_dict": _detached(state_dict),
    }
    if trainer is not None:
        blob["trainer"] = trainer
    return atomic_torch_save(blob, path)


def _detached(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU copies of the weights; tensors that share storage (the tied embedding) stay shared."""
    copies: dict[int, torch.Tensor] = {}
    out = {}
    for k, v in state_dict.items():
        key = v.untyped_storage().data_ptr() if v.numel() else id(v)
        if key not in copies:
            copies[key] = v.detach().cpu().clone()
        out[k] = copies[key] if copies[key].shape == v.shape else v.detach().cpu().clone()
    return out


def _plain(obj: Any) -> Any:
    """JSON round trip: only plain types go into a file that must load with weights_only."""
    return json.loads(json.dumps(obj, default=str))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    The temporary carries this host's and process's identity (:func:`temp_path`); an OS
    error is one :class:`InputError` naming ``path``, never the temporary."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder (give the path of the .pt file to write)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfiles.atomic_write(path, lambda tmp: torch.save(obj, tmp))
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------- temporaries
#: A temporary of any host older than this (seconds since its last write) is abandoned.
LEASE_S = tempfiles.LEASE_S
_LEGACY_AGE_S = tempfiles.LEGACY_AGE_S
#: names an earlier version gave its temporaries in a training folder (no writer identity)
_LEGACY_TMP = re.compile(r"^\.(?P<name>.+?\.(?:pt|jsonl|png))\.(?:[A-Za-z0-9_]{8}\.tmp|tmp)$|^\.write-test$")


def temp_path(path: str | os.PathLike) -> Path:
    """``.<name>.tmp-h<host>-p<pid>-<random>`` beside ``path``: the naming of every temporary the
    suite writes (:mod:`algos.tempfiles`), so the next command on the folder knows whose it is."""
    path = Path(path)
    return path.with_name(tempfiles.temp_name(path.name))


def remove_stale_temporaries(folder: str | os.PathLike, lease_s: float = LEASE_S) -> list[Path]:
    """Remove the temporaries in ``folder`` that a killed or long-gone writer left: this host's
    whose process is gone, any host's older than ``lease_s``, and those of earlier versions
    (no identity) older than an hour. A live writer on another host is never touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done = []
    now = time.time()
    for path in sorted(folder.iterdir()):
        info = tempfiles.parse(path.name)
        if info is not None and info["host"] is not None:
            stale = tempfiles.is_stale(path, info, now=now, lease_s=lease_s)
        elif _LEGACY_TMP.match(path.name):
            try:
                stale = now - path.lstat().st_mtime > _LEGACY_AGE_S
            except FileNotFoundError:
                continue
        else:
            continue
        if stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            done.append(path)
    return done


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint", map_location: str = "cpu") -> tuple[Any, str]:
    """Load a torch file safely (``weights_only``); returns the object and the file's SHA-256.

    Every failure is a :class:`CheckpointError` naming the file and the problem: missing,
    not a file, empty, a Git LFS pointer, truncated or not a torch file, or a pickle that
    would run code (refused without running it). ``what`` names the file in messages.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: {what} not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"{path}: file is empty")
    if data.startswith(b"version https://git-lfs"):
        raise CheckpointError(
            f"{path}: a Git LFS pointer, not the weights (fetch the file itself, e.g. `git lfs pull`)"
        )
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files it did not write itself (an unsafe
            # pickle among them) before refusing them; our own one-line error is what users see
            warnings.simplefilter("ignore", UserWarning)
            blob = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # a pickle stream (protocol >= 2 opens with 0x80) that the safe unpickler will not run
        raw_pickle = data[:1] == b"\x80" and "Weights only load failed" in str(exc)
        if raw_pickle or any(sign in str(exc) for sign in ("Unsupported global", "GLOBAL")):
            raise CheckpointError(
                f"{path}: refused to load: the file contains code, objects or pickle instructions that a "
                "safe (weights_only) load does not allow"
            ) from None
        reason = (str(exc).strip().splitlines() or ["unpickling failed"])[0]
        raise CheckpointError(f"{path}: not a readable {what} ({reason[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError, KeyError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{path}: not a readable {what} (truncated or not a torch file: {reason[:160]})"
        ) from None
    return blob, hashlib.sha256(data).hexdigest()


def check_output_path(path: str | os.PathLike, flag: str = "--out") -> Path:
    """A checkpoint path a command may write: not a folder, and when a file is there, one this
    suite wrote (a checkpoint of its format); one line (:class:`InputError`) otherwise."""
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{flag} {path} is a folder; give the path of the .pt file to write (e.g. {path / 'model.pt'})"
        )
    if path.exists() or path.is_symlink():
        try:
            blob, _ = read_torch_file(path)
            ours = isinstance(blob, dict) and blob.get("kind") == KIND
        except CheckpointError:
            ours = False
        if not ours:
            raise InputError(
                f"{flag} {path} exists and is not an icl-modgrok checkpoint; choose another path "
                "(no command writes over a file the suite did not write)"
            )
    return path


def check_finite(state_dict: dict[str, Any], path: Path | str | None = None) -> None:
    """Refuse weights holding NaN or infinity (a run that diverged): one
    :class:`CheckpointError` naming the first such tensor."""
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
            if not bool(torch.isfinite(value).all()):
                bad = int((~torch.isfinite(value)).sum())
                where = f"{path}: " if path is not None else ""
                raise CheckpointError(
                    f"{where}weights hold non-finite values ({bad} NaN or infinite in {name}): the run that "
                    "wrote it diverged; use an earlier checkpoint"
                )


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; every failure is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    blob, sha = read_torch_file(path, "checkpoint", map_location)
    return _from_blob(blob, path, sha)


def _from_blob(blob: Any, path: Path, sha: str) -> Checkpoint:
    if not isinstance(blob, dict) or blob.get("kind") != KIND:
        if isinstance(blob, dict) and blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
            raise CheckpointError(
                f"{path}: a bare state dict, not an icl-modgrok checkpoint "
                "(for the paper's released .pth files use `compare import-authors`)"
            )
        raise CheckpointError(f"{path}: not an icl-modgrok checkpoint")
    version = blob.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: checkpoint has no format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this version supports ({FORMAT_VERSION}); "
            "upgrade icl-modgrok"
        )
    try:
        model_config = config_from_dict(ModelConfig, blob["model_config"])
        train_config = config_from_dict(TrainConfig, blob["train_config"])
        setting = TaskSetting.from_dict(blob["task_setting"])
        sc = blob.get("setting_config")
        setting_config = config_from_dict(SettingConfig, sc) if sc else None
        state_dict = blob["state_dict"]
        if not isinstance(state_dict, dict):
            raise ValueError("state_dict is not a dict")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint ({exc})") from None
    if model_config.p != setting.p:
        raise CheckpointError(f"{path}: model p={model_config.p} but task setting p={setting.p}")
    check_finite(state_dict, path)
    return Checkpoint(
        path=path,
        model_config=model_config,
        train_config=train_config,
        setting=setting,
        state_dict=state_dict,
        step=int(blob.get("step", 0)),
        history=list(blob.get("history", [])),
        meta=dict(blob.get("meta", {})),
        setting_config=setting_config,
        trainer=blob.get("trainer"),
        sha256=sha,
    )
