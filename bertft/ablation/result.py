"""The trial result record: plain data with to/from JSON, the contract between the runner,
the results store, the reports and the regression gate.

One file per trial: `results/<spec name>/<trial id>.json`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no per-example predictions (read as `predictions={}`)
Status = Literal["passed", "failed", "diverged"]
DEFAULT_MARGIN = 0.01
"""Equivalence margin of a spec that sets none: 1 point of the decision metric."""


@dataclass(frozen=True)
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
    kind: str = "classification"   # or "ner"
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
        return cls(**{
            **data,
            "spec": SpecInfo(**{**spec, "axes": tuple(spec["axes"]),
                                "seeds": tuple(spec["seeds"])}),
            "label_names": tuple(data.get("label_names", ())),
            "history": tuple(data.get("history", ())),
            "errors": tuple(data.get("errors", ())),
        })

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @property
    def has_predictions(self) -> bool:
        return bool(self.predictions)
