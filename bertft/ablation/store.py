"""The results store: one JSON file per trial, written atomically, locked per trial.

    results/<spec>/<trial id>.json
    results/<spec>/superseded/<trial id>.<old config hash[:8]>.json
    results/<spec>/.current/trials.json       # the spec's trials and hashes as last collected
    results/.settings/<config hash>.json      # where a passed result of those settings is stored

A trial whose settings (config hash, the seed included) match a passed result stored for another
spec in the same results folder reuses a copy of it instead of training again: the shipped
specs share their baseline arm, and a trial's outcome depends on its settings, not on the spec
that names it (`--bertft-rerun` trains it anyway). The copy names its source in
`environment.reused_from`.

A result is reused only if it parses, has the current schema version and the same config hash
(which covers every result-changing setting and the training code's version); anything else
(missing, stale, corrupted) means the trial runs again. Nothing stored is lost: a corrupted file
is moved aside to `<trial id>.json.corrupt`, and a stale result (stored under other settings,
e.g. before a `--bertft-set` override, or by an older version of the training code) is moved
into `superseded/` before the new result is written. Reports read neither, and skip results
the spec's current trials do not match (`.current/trials.json`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock

from bertft.results import TrialResult
from bertft.rundir import write_json_atomic

State = Literal["missing", "complete", "stale", "corrupt"]
_UNSAFE = re.compile(r"[^A-Za-z0-9=,._+-]")
SUPERSEDED = "superseded"
CURRENT = Path(".current") / "trials.json"
SETTINGS = ".settings"


MAX_STEM = 160  # leaves room for the suffixes the store adds (.json.corrupt, superseded
#                 .<hash>.<n>.json, the temporary .<name>.XXXXXXXX.tmp) under a 255-byte name


def file_stem(trial_id: str) -> str:
    """The results file name of a trial, without `.json`: characters other than letters,
    digits and `=,._+-` become `_`. An id longer than MAX_STEM keeps its first 143 characters
    (readable) and ends in `-` and 16 hex digits of its SHA-256, so that any axis value fits
    in a file name and distinct ids keep distinct files."""
    stem = _UNSAFE.sub("_", trial_id)
    if len(stem) <= MAX_STEM:
        return stem
    digest = hashlib.sha256(trial_id.encode()).hexdigest()[:16]
    return f"{stem[:MAX_STEM - 17]}-{digest}"


@dataclass(frozen=True)
class Lookup:
    state: State
    result: TrialResult | None = None
    reason: str = ""


def _same_settings(result: TrialResult, config_hash: str) -> bool:
    """Whether a result stored under another hash was made with the settings that now give
    `config_hash`: then only the training code's version (`TRAINING_CODE_VERSION`) differs."""
    from bertft.config import Config
    from bertft.errors import ConfigError

    try:
        return Config.from_dict(result.config).hash() == config_hash
    except ConfigError:  # settings of an older bertft: the spec changed, as far as we can tell
        return False


def _same_data(result: TrialResult, data_fingerprint: Callable[[], str] | None) -> bool:
    """False only when the result recorded a data fingerprint and the data now has another."""
    stored = result.data.get("fingerprint")
    return not (stored and data_fingerprint is not None and stored != data_fingerprint())


class ResultStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, spec: str, trial_id: str) -> Path:
        return self.root / spec / f"{file_stem(trial_id)}.json"

    def lookup(self, spec: str, trial_id: str, config_hash: str,
               data_fingerprint: Callable[[], str] | None = None) -> Lookup:
        """The stored result and whether it can stand for this trial. `data_fingerprint` gives
        the fingerprint of the data the trial would load now; it is called only for a result
        that recorded one (`data.fingerprint`), which must then match (an edited data file or
        an upgraded data package makes the result stale)."""
        path = self.path(spec, trial_id)
        if not path.exists():
            return Lookup("missing")
        try:  # from_json raises ValueError for valid JSON that is not an object, e.g. []
            result = TrialResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Lookup("corrupt", reason=f"{path}: unreadable result ({exc})")
        if result.config_hash != config_hash:
            why = ("the training code changed" if _same_settings(result, config_hash)
                   else "the spec changed")
            return Lookup("stale", result, f"{why} since this result was stored")
        if not _same_data(result, data_fingerprint):
            return Lookup("stale", result, "the data changed since this result was stored")
        return Lookup("complete", result)

    def same_settings(self, config_hash: str,
                      data_fingerprint: Callable[[], str] | None = None) -> TrialResult | None:
        """A passed result stored (for any spec) under these settings, found through the
        `.settings/` index; None when there is none, or the file it points to no longer holds
        a passed result of these settings on the same data."""
        index = self.root / SETTINGS / f"{file_stem(config_hash)}.json"
        try:
            where = self.root / json.loads(index.read_text(encoding="utf-8"))["path"]
            result = TrialResult.from_json(json.loads(where.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if result.config_hash != config_hash or result.status != "passed":
            return None
        return result if _same_data(result, data_fingerprint) else None

    @contextmanager
    def settings_lock(self, config_hash: str) -> Iterator[None]:
        """Exclusive right to train one set of settings: a trial of another spec with the same
        settings waits here, then copies the result (`same_settings`)."""
        lock = self.root / SETTINGS / ".locks" / f"{file_stem(config_hash)}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)):
            yield

    def checkpoint_dir(self, spec: str, trial_id: str) -> Path:
        """Per-epoch checkpoints of a trial in progress (`checkpoint_every_epoch`)."""
        return self.root / spec / ".checkpoints" / self.path(spec, trial_id).stem

    def write(self, result: TrialResult) -> Path:
        """Store a result; a passed one becomes the `.settings/` entry of its config hash."""
        path = self.path(result.spec.name, result.trial_id)
        write_json_atomic(path, result.to_json())
        if result.status == "passed":
            write_json_atomic(self.root / SETTINGS / f"{file_stem(result.config_hash)}.json",
                              {"path": path.relative_to(self.root).as_posix()})
        return path

    def supersede(self, spec: str, trial_id: str, old_hash: str) -> Path | None:
        """Move a result stored under other settings into `superseded/`, named with its config
        hash (and a number if that name is taken), so that a rerun never overwrites it."""
        path = self.path(spec, trial_id)
        if not path.exists():
            return None
        folder = path.parent / SUPERSEDED
        folder.mkdir(exist_ok=True)
        name = f"{path.stem}.{file_stem(str(old_hash))[:8]}"
        target, n = folder / f"{name}.json", 1
        while target.exists():
            target, n = folder / f"{name}.{n}.json", n + 1
        os.replace(path, target)
        return target

    def write_current(self, spec: str, hashes: dict[str, str]) -> Path:
        """Record the spec's trials as now collected ({trial id: config hash}); reports skip
        stored results that are not among them."""
        path = self.root / spec / CURRENT
        write_json_atomic(path, hashes)
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
    def lock(self, spec: str, trial_id: str) -> Iterator[None]:
        """Exclusive right to run and write one trial, across processes and machines sharing
        the directory. A second run of the same spec waits here, then finds the result."""
        path = self.path(spec, trial_id)
        lock = path.parent / ".locks" / f"{path.stem}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)):
            yield


__all__ = ["CURRENT", "SUPERSEDED", "Lookup", "ResultStore", "file_stem"]
