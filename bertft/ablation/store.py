"""The results store: one JSON file per trial, written atomically, locked per trial.

    results/<spec>/<trial id>.json

A result is reused only if it parses, has the current schema version and the same config hash;
anything else (missing, stale, corrupted) means the trial runs again. A corrupted file is moved
aside to `<trial id>.json.corrupt` (never deleted) so nothing is lost.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from bertft.ablation.result import TrialResult
from bertft.rundir import write_json_atomic

State = Literal["missing", "complete", "stale", "corrupt"]
_UNSAFE = re.compile(r"[^A-Za-z0-9=,._+-]")


@dataclass(frozen=True)
class Lookup:
    state: State
    result: TrialResult | None = None
    reason: str = ""


class ResultStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, spec: str, trial_id: str) -> Path:
        return self.root / spec / f"{_UNSAFE.sub('_', trial_id)}.json"

    def lookup(self, spec: str, trial_id: str, config_hash: str) -> Lookup:
        path = self.path(spec, trial_id)
        if not path.exists():
            return Lookup("missing")
        try:
            result = TrialResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Lookup("corrupt", reason=f"{path}: unreadable result ({exc})")
        if result.config_hash != config_hash:
            return Lookup("stale", result, "the spec changed since this result was stored")
        return Lookup("complete", result)

    def checkpoint_dir(self, spec: str, trial_id: str) -> Path:
        """Per-epoch checkpoints of a trial in progress (`checkpoint_every_epoch`)."""
        return self.root / spec / ".checkpoints" / self.path(spec, trial_id).stem

    def write(self, result: TrialResult) -> Path:
        path = self.path(result.spec.name, result.trial_id)
        write_json_atomic(path, result.to_json())
        return path

    def quarantine(self, spec: str, trial_id: str) -> Path | None:
        """Move a corrupted file aside so that it is kept but never read as a result."""
        path = self.path(spec, trial_id)
        if not path.exists():
            return None
        target = path.with_name(path.name + ".corrupt")
        os.replace(path, target)
        return target

    @contextmanager
    def lock(self, spec: str, trial_id: str, timeout: float = -1) -> Iterator[None]:
        """Exclusive right to run and write one trial, across processes and machines sharing
        the directory. A second run of the same spec waits here, then finds the result."""
        path = self.path(spec, trial_id)
        lock = path.parent / ".locks" / f"{path.stem}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock), timeout=timeout):
            yield


__all__ = ["Lookup", "ResultStore", "Timeout"]
