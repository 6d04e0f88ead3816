"""Device, precision and process-group handling, all in one place.

Everything that differs between CPU, CUDA and ``torchrun`` lives here: choosing the
device, the autocast context (bf16 on CUDA by default, fp32 on CPU), optional
``torch.compile``, and the data-parallel process group (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import cast

import torch
import torch.distributed as dist

from algos.errors import InputError

__all__ = ["pick_device", "autocast", "DistInfo", "init_distributed", "shutdown_distributed"]


def pick_device(spec: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cpu'; 'cuda' or 'cuda:N' (error if absent).

    Under ``torchrun`` (LOCAL_RANK set) 'auto' and 'cuda' mean this process's own GPU,
    ``cuda:LOCAL_RANK``: one GPU per process.
    """
    if spec == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        spec = "cuda"
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: CUDA is not available on this machine")
        if spec == "cuda" and "LOCAL_RANK" in os.environ:
            return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        return torch.device(spec)
    raise InputError(f"unknown device {spec!r} (use auto, cpu or cuda)")


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA for 'auto'/'bf16', on CPU only for 'bf16'; otherwise fp32."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def maybe_compile(module: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``torch.compile`` when asked (worth it mostly on CUDA)."""
    return cast(torch.nn.Module, torch.compile(module)) if enabled else module


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_spec: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` process group when WORLD_SIZE > 1; returns (info, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), pick_device(device_spec)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_spec)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local), device


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
