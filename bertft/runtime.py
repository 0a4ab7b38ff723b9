"""Device, precision, seeding and environment facts: the few things that touch the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bertft import auto
from bertft.errors import BertftError
from bertft.sections import MASTER

if TYPE_CHECKING:
    from bertft.config import Config


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not (name in ("cpu", "cuda", "mps") or (name.startswith("cuda:") and name[5:].isdigit())):
        raise BertftError(f"device = {name!r}: expected one of 'auto', 'cpu', 'cuda', "
                          "'cuda:N', 'mps'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BertftError(f"device = {name!r}: CUDA is not available here; use 'auto' or 'cpu'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise BertftError("device = 'mps': MPS is not available here; use 'auto' or 'cpu'")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Whether "auto" may pick bf16 on `device` (a CUDA device that supports it; the CPU's
    column says fp32 anyway)."""
    return device.type != "cuda" or torch.cuda.is_bf16_supported()


def resolve_settings(cfg: Config, device: torch.device) -> dict[str, Any]:
    """Every device-aware setting of `cfg` resolved for `device` (`bertft.auto.resolve`)."""
    flat = cfg.to_dict()
    return auto.resolve({k: flat[k] for k in auto.SETTINGS}, device.type,
                        bf16_supported(device))


def resolved_config(cfg: Config, device: torch.device) -> Config:
    """`cfg` with no "auto" left in its device-aware settings (resolving twice changes
    nothing). Its hash is the requested config's only where both resolve alike."""
    settings, flat = resolve_settings(cfg, device), cfg.to_dict()
    changed = {k: settings[k] for k in auto.SETTINGS if settings[k] != flat[k]}
    return cfg.replace(**changed) if changed else cfg


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 autocast on a GPU that supports it, else fp32 (`bertft.auto`). Returns the
    dtype the math runs in: the autocast dtype, or bf16 for `bf16-master`, whose weights are
    held in bf16 and run without autocast (`bertft.master`; a model saved by such a run is fp32,
    which `bertft eval` then runs under bf16 autocast)."""
    if name == auto.AUTO:
        name = auto.resolve({k: auto.AUTO for k in auto.SETTINGS}, device.type,
                            bf16_supported(device))["precision"]
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
             MASTER: torch.bfloat16}[name]
    if dtype == torch.float16 and device.type == "cpu":
        raise BertftError("precision = 'fp16': not supported on cpu; use 'fp32' or 'bf16'")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed-precision context; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): head init, dropout and data order follow."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_threads(num_threads: int) -> None:
    if num_threads > 0 and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)


def configure_determinism(enabled: bool) -> None:
    """Deterministic algorithms on GPU; CPU kernels used here are deterministic already.

    Process-wide torch flags: set on every call, so a `deterministic = true` run does not leave
    them on for later runs in the same process (ablation trials share one)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.backends.cudnn.benchmark = False  # autotuning may pick different kernels
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return platform.processor() or platform.machine()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except ImportError:  # pragma: no cover - Windows
        return float("nan")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings are honest (a CPU-GPU sync point)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        yield


def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        with _quiet():
            out = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                text=True, timeout=5, check=False,
            )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: torch.device) -> dict[str, object]:
    """Library versions and hardware, stored beside every result."""
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device.type,
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
    }
