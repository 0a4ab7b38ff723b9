"""Reading stored trial results. A file that cannot be used is reported, never fatal."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bertft.results import CURRENT, TrialResult
from bertft.config import code_version_of
from bertft.kinds import KINDS

STATUSES = ("passed", "failed", "diverged")


def _problem(result: TrialResult) -> str | None:
    """What makes a parsed record unusable for a report, or None."""
    for name in ("overrides", "config", "data", "best", "validation", "test", "timing",
                 "environment", "spec.baseline"):
        value = result.spec.baseline if name == "spec.baseline" else getattr(result, name)
        if not isinstance(value, dict):
            return f"{name} is {type(value).__name__}, expected an object"
    for name in ("history", "errors"):
        if not all(isinstance(row, dict) for row in getattr(result, name)):
            return f"{name} holds a row that is not an object"
    if not all(isinstance(axis, str) for axis in result.spec.axes):
        return "spec.axes holds a name that is not a string"
    if not isinstance(result.trial_id, str) or not isinstance(result.arm_id, str):
        return "trial_id and arm_id must be strings"
    if result.status not in STATUSES:
        return f"status {result.status!r}, expected one of {', '.join(STATUSES)}"
    if result.kind not in KINDS:
        return f"kind {result.kind!r}, expected one of {', '.join(KINDS)}"
    if not isinstance(result.seed, int) or isinstance(result.seed, bool):
        return f"seed {result.seed!r} is not an integer"
    if result.status == "passed":
        for metric in KINDS[result.kind].main_metrics:
            value = result.validation.get(metric)
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value)):
                return f"passed trial without a finite validation {metric} (got {value!r})"
    return None


def load_one(path: Path) -> TrialResult:
    """Parse one result file; every problem is a ValueError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"unreadable file: {e}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        result = TrialResult.from_json(data)
    except KeyError as e:
        raise ValueError(f"wrong schema: missing key {e}") from e
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"wrong schema: {e}") from e
    problem = _problem(result)
    if problem:
        raise ValueError(f"wrong schema: {problem}")
    return result


QUARANTINED = ".json.corrupt"
"""Suffix the results store gives a corrupted result file it moved aside (bertft.ablation.store)."""


def result_files(spec_dir: Path) -> list[Path]:
    """`*.json` results and quarantined `*.json.corrupt` files, sorted; hidden files (the store's
    `.<name>.tmp` files being written) are not results, and sub-folders (`superseded/` results
    stored under older settings, `.current/`, `.locks/`, `.checkpoints/`) are not read."""
    return sorted(p for p in Path(spec_dir).iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and (p.name.endswith(".json") or p.name.endswith(QUARANTINED)))


def load_results(spec_dir: Path) -> tuple[list[TrialResult], list[tuple[Path, str]]]:
    """All `*.json` trial results of one spec folder, sorted by trial id, and the files skipped
    with their reason (bad JSON, wrong schema, a second file for a trial already read, or a file
    the results store quarantined as corrupted)."""
    results: dict[str, TrialResult] = {}
    unreadable: list[tuple[Path, str]] = []
    if not Path(spec_dir).is_dir():
        return [], []
    for path in result_files(spec_dir):
        if path.name.endswith(QUARANTINED):
            unreadable.append((path, "corrupted; moved aside by the results store, which runs "
                                     "the trial again"))
            continue
        try:
            result = load_one(path)
        except ValueError as e:
            unreadable.append((path, " ".join(str(e).split())))
            continue
        if result.trial_id in results:
            unreadable.append((path, f"duplicate of trial {result.trial_id!r}, skipped"))
            continue
        results[result.trial_id] = result
    return [results[k] for k in sorted(results)], unreadable


def current_trials(spec_dir: Path) -> dict[str, str] | None:
    """The spec's trials as last collected, {trial id: config hash} (`.current/trials.json`,
    written by the results store); None when not recorded (older stores) or unreadable."""
    try:
        data = json.loads((Path(spec_dir) / CURRENT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return data


def only_current(results: list[TrialResult], current: dict[str, str] | None
                 ) -> tuple[list[TrialResult], int]:
    """The results of the spec's current trials, and how many others were left out: those whose
    trial id is not among them (an arm or seed since removed from the spec), whose config hash
    differs (stored under other settings), or whose seed role is not the one the spec (as the
    newest result records it) now gives that seed: e.g. a result written before roles existed,
    read as a confirmation, for a seed the spec now lists in `pilot_seeds` must not decide.
    `current` None keeps every result."""
    if current is None or not results:
        return list(results), 0
    newest = max(results, key=lambda r: (str(r.created or ""), r.trial_id))
    pilot = set(newest.spec.pilot_seeds)
    kept = [r for r in results if current.get(r.trial_id) == r.config_hash
            and (r.role == "pilot") == (r.seed in pilot)]
    return kept, len(results) - len(kept)


def newest_code_version(results: list[TrialResult]) -> tuple[list[TrialResult], str]:
    """The results of the newest training-code version among them (`config.code_version_of`; a
    result whose version nothing tells counts as the oldest), and a note naming the versions
    left out ('' when all are of one version). Results of different training-code versions
    are never compared with each other: a store without `.current/trials.json`, or results
    copied in by hand, may hold several."""
    versions = {id(r): code_version_of(r.config, r.config_hash,
                                       r.environment.get("training_code_version")) or 0
                for r in results}
    if len(set(versions.values())) <= 1:
        return list(results), ""
    newest = max(versions.values())
    kept = [r for r in results if versions[id(r)] == newest]
    old = sorted({v for v in versions.values() if v != newest})
    shown = ", ".join(str(v) if v else "unrecorded" for v in old)
    n = len(results) - len(kept)
    noun = "result" if n == 1 else "results"
    return kept, (f"{n} stored {noun} of training-code version {shown} left out: results of "
                  f"training-code versions {shown} and {newest} are not compared; this report "
                  f"shows version {newest} (the newest) only: run the spec again to replace "
                  "them")
