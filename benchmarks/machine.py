"""What machine a benchmark ran on: its figures depend on the CPU, so each JSON line says.

``machine_info()`` gives the CPU model, whether it has AVX-512 and AMX (they change which
matmul kernels torch picks), the core count, versions, and the fp32 matmul peak measured
on the spot with one thread — the yardstick against which ratios such as MFU are taken.
``emit(result)`` prints a benchmark's result as its last line with that block added, and
writes it to ``--save PATH`` when the benchmark was given one.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

__all__ = ["cpu_flags", "cpu_model", "emit", "machine_info", "matmul_peak"]


def cpu_model() -> str:
    """The 'model name' line of /proc/cpuinfo, or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")) -> list[str]:
    """Which of the flags that change torch's kernels this CPU has."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def matmul_peak(n: int = 1024, reps: int = 5) -> tuple[float, float]:
    """Best FLOP/s of an fp32 n x n ``torch.mm`` over ``reps`` repetitions: (by wall, by CPU time)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up
    best_wall = best_cpu = float("inf")
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        torch.mm(a, b, out=out)
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    flops = 2.0 * n**3
    return flops / best_wall, flops / max(1e-9, best_cpu)


def machine_info(peak_gflops: float | None = None) -> dict:
    """CPU, versions and the one-thread fp32 matmul peak (measured unless given)."""
    info = {"cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}
    try:
        import torch
    except ImportError:
        return info
    info["torch"] = torch.__version__
    if peak_gflops is None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            peak_gflops = max(matmul_peak(n)[1] for n in (512, 1024)) / 1e9
        finally:
            torch.set_num_threads(threads)
    info["fp32_peak_gflops_one_thread"] = round(peak_gflops, 1)
    return info


def emit(result: dict, save: str | None = None, peak_gflops: float | None = None) -> None:
    """Print ``result`` plus the machine block as one JSON line (the benchmark's last line)."""
    out = {**result, "machine": machine_info(peak_gflops)}
    line = json.dumps(out)
    if save:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(line + "\n")
        os.replace(tmp, path)
    print(line)
