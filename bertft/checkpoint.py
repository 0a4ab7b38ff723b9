"""Per-epoch checkpoints (`checkpoint_every_epoch`): a long trial killed mid-way resumes from its
last completed epoch instead of from scratch.

One file, `<dir>/checkpoint.pt`, replaced atomically after each epoch: model and optimizer state,
loop counters, history, best weights so far, and the RNG states that decide dropout and data
order, so a resumed CPU run gives the same metrics as an uninterrupted one. It is only used when
its config hash matches, loaded with `weights_only=True` (no pickled code), and deleted when the
run completes.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch

FILE = "checkpoint.pt"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` to a temporary file beside `path`, then rename over it: a reader never sees
    a half-written file. On any failure (a full disk raises RuntimeError from torch.save) the
    temporary file is removed and the error re-raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def save(directory: str | Path, state: dict[str, Any]) -> Path:
    path = Path(directory) / FILE
    atomic_torch_save(state, path)
    return path


def load(directory: str | Path, config_hash: str) -> dict[str, Any] | None:
    """The checkpoint of this config, or None (absent, from another config, or unreadable:
    a warning names the file; a damaged checkpoint only costs the epochs it held)."""
    path = Path(directory) / FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        warnings.warn(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); the run starts "
                      "from the beginning", RuntimeWarning, stacklevel=2)
        return None
    if not isinstance(state, dict) or state.get("config_hash") != config_hash:
        warnings.warn(f"checkpoint {path} belongs to other settings; the run starts from the "
                      "beginning and replaces it", RuntimeWarning, stacklevel=2)
        return None
    return state


def remove(directory: str | Path) -> None:
    (Path(directory) / FILE).unlink(missing_ok=True)
