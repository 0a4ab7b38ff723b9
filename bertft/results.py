"""The trial result record: plain data with to/from JSON, the contract between the runner,
the results store, the reports and the regression gate.

One file per trial: `results/<spec name>/<trial id>.json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bertft.kinds import DEFAULT

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no per-example predictions (read as `predictions={}`)
Status = Literal["passed", "failed", "diverged"]
Role = Literal["confirmation", "pilot"]
"""A trial's seed role: a `pilot` seed sizes the confirmation (docs/statistics.md), a
`confirmation` seed decides. Records written before roles existed read as `confirmation`: their
spec had no pilot seeds, so every seed it ran was one its verdicts were decided on."""
DEFAULT_MARGIN = 0.01
"""Equivalence margin of a spec that sets none: 1 point of the decision metric."""
CURRENT = Path(".current") / "trials.json"
"""Below a spec's results folder: {trial id: config hash} of the spec's trials as last
collected (the store writes it, reports keep only the results that match it)."""


@dataclass(frozen=True, kw_only=True)
class SpecInfo:
    """What a report needs to know about the spec a trial came from."""

    name: str
    description: str
    file: str
    axes: tuple[str, ...]          # varied settings in spec order (seed excluded); axes[0] is
    #                                the main axis of the report's plots
    baseline: dict[str, Any]       # the reference arm's axis values, e.g. {"freeze_layers": 0}
    seeds: tuple[int, ...]         # all seeds the spec may run (adaptive: up to max)
    equivalence_margin: float = DEFAULT_MARGIN  # |difference| below which arms are equivalent
    min_seeds: int = 0             # adaptive specs: seeds every arm runs; 0: a fixed design
    pilot_seeds: tuple[int, ...] = ()  # the pilot's seeds, disjoint from `seeds` (which are
    #                                    the confirmation's); () in specs without a pilot


@dataclass(frozen=True)
class TrialResult:
    """Everything about one trial (one grid point and one seed)."""

    spec: SpecInfo
    trial_id: str                  # e.g. "freeze_layers=2,seed=1"
    arm_id: str                    # the trial id without the seed, e.g. "freeze_layers=2"
    overrides: dict[str, Any]      # this trial's grid values, seed included
    seed: int
    config: dict[str, Any]         # the full resolved bertft Config
    config_hash: str
    status: Status
    error: str | None = None       # reason for failed / diverged
    kind: str = DEFAULT.name       # a TaskKind's name (bertft.kinds.KINDS)
    label_names: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)   # task, source, train/validation/test
    history: tuple[dict[str, Any], ...] = ()             # one row per evaluation
    best: dict[str, Any] = field(default_factory=dict)   # metric, value, epoch, step
    validation: dict[str, Any] = field(default_factory=dict)  # full metrics of the final model
    test: dict[str, Any] = field(default_factory=dict)
    errors: tuple[dict[str, Any], ...] = ()  # most confident wrong validation predictions:
    #                                          {"text", "gold", "pred", "confidence"}
    timing: dict[str, Any] = field(default_factory=dict)  # train_seconds, wall_seconds,
    #                       samples_per_s, tokens_per_s, peak_memory_mb, optimizer_steps
    environment: dict[str, Any] = field(default_factory=dict)  # versions, device, dtype, commit
    created: str = ""              # ISO 8601 UTC
    schema_version: int = SCHEMA_VERSION
    predictions: dict[str, dict[str, list]] = field(default_factory=dict)
    # per split ("validation", "test") of a passed trial, parallel lists in example order:
    # classification {"pred", "label": class ids, "confidence": probability of pred, 3 decimals};
    # NER, per sentence {"tp", "fp", "fn": entity counts as the split's metric scores them}.
    # Empty in version-1 records (reports say which results lack them).
    role: Role = "confirmation"    # the seed's role in its spec (older records: confirmation)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialResult:
        """Strict: a record that is not a JSON object or has another schema version raises
        ValueError; one with missing or unknown keys raises KeyError or TypeError."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("schema_version") not in READABLE_VERSIONS:
            raise ValueError(f"schema_version {data.get('schema_version')!r}, expected one of "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
        spec = data["spec"]
        result = cls(**{
            **data,
            "spec": SpecInfo(**{**spec, "axes": tuple(spec["axes"]),
                                "seeds": tuple(spec["seeds"]),
                                "pilot_seeds": tuple(spec.get("pilot_seeds", ()))}),
            "label_names": tuple(data.get("label_names", ())),
            "history": tuple(data.get("history", ())),
            "errors": tuple(data.get("errors", ())),
        })
        if problems := record_problems(data):
            raise ValueError("; ".join(problems[:3]))
        return result

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @property
    def has_predictions(self) -> bool:
        return bool(self.predictions)


def record_problems(data: dict[str, Any]) -> list[str]:
    """What makes a parsed record unfit to stand for its trial: a field whose JSON type differs
    from its annotation (checked for every field of TrialResult and SpecInfo, so fields added
    later are checked too), or a `passed` trial without finite final metrics (NaN is stored as
    null)."""
    hints = typing.get_type_hints(TrialResult)
    problems = [p for key, value in data.items() if key in hints
                for p in _type_problems(value, hints[key], key)]
    if not problems and data.get("status") == "passed":
        for split in ("validation", "test"):
            bad = [k for k, v in data.get(split, {}).items()
                   if v is None or (isinstance(v, float) and not math.isfinite(v))]
            if bad:
                problems.append(f"passed trial with non-finite {split} metrics "
                                f"({', '.join(bad)})")
        if not data.get("validation"):
            problems.append("passed trial without validation metrics")
    return problems


def _type_problems(value: Any, hint: Any, where: str) -> list[str]:
    """Where `value` (parsed JSON) does not fit the type `hint`; tuples are JSON lists."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return []
    if origin is Literal:
        return [] if value in args else [f"{where} = {value!r}: expected one of "
                                         f"{', '.join(map(repr, args))}"]
    if origin in (typing.Union, types.UnionType):
        if any(not _type_problems(value, a, where) for a in args):
            return []
        return [f"{where}: expected {' or '.join(_name(a) for a in args)}, found "
                f"{type(value).__name__}"]
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, found {type(value).__name__}"]
        sub = typing.get_type_hints(hint)
        return [p for k, v in value.items() if k in sub
                for p in _type_problems(v, sub[k], f"{where}.{k}")]
    base = origin or hint
    if not _is_instance(value, base):
        return [f"{where}: expected {_name(hint)}, found {type(value).__name__}"]
    if base in (tuple, list) and args:
        item = args[0]
        return [p for i, v in enumerate(value) for p in _type_problems(v, item, f"{where}[{i}]")]
    if base is dict and args:
        return [p for k, v in value.items() for p in _type_problems(v, args[1], f"{where}.{k}")]
    return []


def _is_instance(value: Any, base: Any) -> bool:
    if base is type(None):
        return value is None
    if base in (tuple, list):
        return isinstance(value, list | tuple)
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def _name(hint: Any) -> str:
    origin = typing.get_origin(hint) or hint
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false",
            dict: "an object", tuple: "a list", list: "a list",
            type(None): "null"}.get(origin, str(hint))
