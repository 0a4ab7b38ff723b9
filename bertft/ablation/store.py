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

A result is reused only if it parses, has the current schema version, the same config hash
(which covers every result-changing setting and the training code's version), and the data and
model files it recorded are unchanged (its reuse key: settings, training code, data, model
files); anything else (missing, stale, corrupted) means the trial runs again, and a stale
result's reason names what differs (`stale_reason`). Nothing stored is lost: a corrupted file
is moved aside to `<trial id>.json.corrupt`, and a stale result (stored under other settings,
e.g. before a `--bertft-set` override, or by an older version of the training code) is moved
into `superseded/` before the new result is written. Reports read neither, and skip results
the spec's current trials do not match (`.current/trials.json`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from filelock import FileLock

from bertft.names import file_stem
from bertft.results import CURRENT, TrialResult
from bertft.rundir import write_json_atomic

if TYPE_CHECKING:
    from bertft.config import Config

State = Literal["missing", "complete", "stale", "corrupt"]
SUPERSEDED = "superseded"
SETTINGS = ".settings"


@dataclass(frozen=True)
class Lookup:
    state: State
    result: TrialResult | None = None
    reason: str = ""


def code_version(result: TrialResult) -> int | None:
    """The TRAINING_CODE_VERSION a result was trained under (`config.code_version_of`)."""
    from bertft.config import code_version_of

    return code_version_of(result.config, result.config_hash,
                           result.environment.get("training_code_version"))


def _settings(result: TrialResult) -> Config | None:
    """A stored result's settings (a key added since reads as its default); None when they no
    longer load (a setting since removed or restricted)."""
    from bertft.config import Config
    from bertft.errors import ConfigError

    try:
        return Config.from_dict(result.config)
    except ConfigError:
        return None


def stale_reason(result: TrialResult, config_hash: str, config: Config | None = None) -> str:
    """Why a result stored under another config hash cannot stand for the trial whose hash is
    `config_hash` (settings `config`, when known): the settings that differ, with their stored
    and current values, and the training code's versions when they differ."""
    from bertft.config import TRAINING_CODE_VERSION

    stored = _settings(result)
    if stored is None:
        return ("the settings changed since this result was stored (its settings no longer "
                "load in this bertft)")
    what = []
    if config is not None:
        if changes := stored.changes(config):
            what.append(f"the settings ({', '.join(changes)})")
    elif stored.hash() != config_hash:
        what.append("the settings")
    version = code_version(result)
    if version != TRAINING_CODE_VERSION:
        what.append(f"the training code (version {version or 'unrecorded'} -> "
                    f"{TRAINING_CODE_VERSION})")
    if not what:  # a hash an older bertft computed over other settings
        what.append("the settings hash")
    return f"{' and '.join(what)} changed since this result was stored"


def _data_change(result: TrialResult, data_fingerprint: Callable[[], str] | None) -> str:
    """Why the data no longer matches the result, or '' (also when the result recorded no
    fingerprint, or the current one is not asked for)."""
    stored = result.data.get("fingerprint")
    if not stored or data_fingerprint is None or stored == (now := data_fingerprint()):
        return ""
    return f"the data changed since this result was stored (fingerprint {stored} -> {now})"


def _model_change(result: TrialResult) -> str:
    """Why the model's files no longer match the result, or '' (also when the result recorded
    none, or they are not on this machine)."""
    from bertft.errors import BertftError
    from bertft.models import changed_files, model_files

    stored = result.environment.get("model_files")
    name = result.config.get("model")
    if not isinstance(stored, dict) or not stored or not isinstance(name, str):
        return ""
    try:
        changed = changed_files(stored, model_files(name))
    except (BertftError, OSError):  # not here: the trial itself will say so
        return ""
    if not changed:
        return ""
    return (f"the model files changed since this result was stored ({', '.join(changed)} of "
            f"model {name})")


class ResultStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, spec: str, trial_id: str) -> Path:
        return self.root / spec / f"{file_stem(trial_id)}.json"

    def lookup(self, spec: str, trial_id: str, config: Config | str,
               data_fingerprint: Callable[[], str] | None = None, role: str | None = None
               ) -> Lookup:
        """The stored result and whether it can stand for this trial: `config` the trial's
        settings (or only their hash: a stale reason then names no setting), `data_fingerprint`
        gives the fingerprint of the data the trial would load now. A stored result stands for
        the trial when its config hash is the trial's and the data and model files it recorded
        (`data.fingerprint`, `environment.model_files`) are still the same, and (given `role`)
        it was stored under that seed role; otherwise it is stale, with a reason naming what
        differs (a seed the spec moved between pilot and confirmation: its role)."""
        config_hash = config if isinstance(config, str) else config.hash()
        path = self.path(spec, trial_id)
        if not path.exists():
            return Lookup("missing")
        try:  # from_json raises ValueError for valid JSON that is not an object, e.g. []
            result = TrialResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Lookup("corrupt", reason=f"{path}: unreadable result ({exc})")
        if result.config_hash != config_hash:
            known = None if isinstance(config, str) else config
            return Lookup("stale", result, stale_reason(result, config_hash, known))
        why = _data_change(result, data_fingerprint) or _model_change(result)
        if not why and role is not None and result.role != role:
            why = f"stored as a {result.role} result; this trial is a {role} one"
        return Lookup("stale", result, why) if why else Lookup("complete", result)

    def same_settings(self, config_hash: str,
                      data_fingerprint: Callable[[], str] | None = None, role: str | None = None
                      ) -> TrialResult | None:
        """A passed result stored (for any spec) under these settings, found through the
        `.settings/` index; None when there is none, or the file it points to no longer holds
        a passed result of these settings on the same data and model files (and, given `role`, of
        that seed role: a pilot's trial never stands for a confirmation's)."""
        index = self.root / SETTINGS / f"{file_stem(config_hash)}.json"
        try:
            where = self.root / json.loads(index.read_text(encoding="utf-8"))["path"]
            result = TrialResult.from_json(json.loads(where.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if result.config_hash != config_hash or result.status != "passed" \
                or (role is not None and result.role != role):
            return None
        if _data_change(result, data_fingerprint) or _model_change(result):
            return None
        return result

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


__all__ = ["SUPERSEDED", "Lookup", "ResultStore", "code_version", "file_stem", "stale_reason"]
