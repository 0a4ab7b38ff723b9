"""Per-epoch checkpoints (`checkpoint_every_epoch`): a long trial killed mid-way resumes from its
last completed epoch instead of from scratch.

One file, `<dir>/checkpoint.pt`, replaced atomically after each epoch: model and optimizer state,
loop counters, history, best weights so far, and the RNG states that decide dropout and data
order, so a resumed CPU run gives the same metrics as an uninterrupted one. It is only used when
its settings, data and model files match the run's (`identity`), loaded with `weights_only=True`
(no pickled code), and deleted when the run completes.
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


def identity(config_hash: str, data_fingerprint: str, model_files: dict[str, str]
             ) -> dict[str, Any]:
    """What a checkpoint records of the run that wrote it, and what a resumed run must match:
    its settings (`Config.hash`), its data (`Splits.fingerprint`) and its model's files
    (`models.model_files`). Weights trained on other data or from other model files are
    never resumed."""
    return {"config_hash": config_hash, "data_fingerprint": data_fingerprint,
            "model_files": model_files}


def load(directory: str | Path, expected: str | dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint of this run, or None (absent, unreadable, or of another run: a warning
    names the file and what differs; a damaged checkpoint only costs the epochs it held).
    `expected`: the run's `identity`, or only its config hash (then only that is compared)."""
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
    want = {"config_hash": expected} if isinstance(expected, str) else expected
    why = _other_run(state, want)
    if why:
        warnings.warn(f"checkpoint {path} {why}; the run starts from the beginning and "
                      "replaces it", RuntimeWarning, stacklevel=2)
        return None
    return state


def _other_run(state: Any, want: dict[str, Any]) -> str | None:
    """How a loaded checkpoint differs from the run `want` describes, or None."""
    if not isinstance(state, dict) or state.get("config_hash") != want["config_hash"]:
        return "belongs to other settings"
    if "data_fingerprint" in want and state.get("data_fingerprint") != want["data_fingerprint"]:
        if state.get("data_fingerprint") is None:
            return "records no data fingerprint (an older bertft wrote it)"
        return (f"was trained on other data (data fingerprint {state['data_fingerprint']} -> "
                f"{want['data_fingerprint']}: a data file changed since)")
    if "model_files" in want:
        from bertft.models import changed_files

        changed = changed_files(state.get("model_files") or {}, want["model_files"])
        if changed:
            return f"was trained from other model files ({', '.join(changed)} changed since)"
    return None


def remove(directory: str | Path) -> None:
    (Path(directory) / FILE).unlink(missing_ok=True)
