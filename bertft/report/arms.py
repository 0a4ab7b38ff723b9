"""Grouping trials into arms: one grid point without the seed, its baseline, its values by
seed, the results of each seed role. Both the decisions (`compare`) and the tables (`table`)
build on these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bertft.kinds import DEFAULT, TaskKind, kind_of
from bertft.results import SpecInfo, TrialResult
from bertft.values import same_value


@dataclass(frozen=True)
class Arm:
    """One grid point without the seed, with every trial of it (passed or not)."""

    arm_id: str
    values: dict[str, Any]             # axis -> value, in spec axis order
    trials: tuple[TrialResult, ...]    # sorted by seed

    @property
    def passed(self) -> tuple[TrialResult, ...]:
        return tuple(t for t in self.trials if t.status == "passed")


def newest(results: Sequence[TrialResult]) -> TrialResult:
    """The most recently created record (ties: the last trial id); its spec info is used."""
    return max(results, key=lambda r: (str(r.created or ""), r.trial_id))


def spec_of(results: Sequence[TrialResult]) -> SpecInfo:
    return newest(results).spec


def results_kind(results: Sequence[TrialResult]) -> TaskKind:
    """The task kind, from the passed trials when there are any: records written before the
    runners stored the kind of failed trials carry the default (classification)."""
    passed = [r for r in results if r.status == "passed"]
    return kind_of(newest(passed or results).kind) if results else DEFAULT


def by_role(results: Sequence[TrialResult]) -> tuple[list[TrialResult], list[TrialResult]]:
    """(confirmation, pilot) results. Verdicts come from the confirmation only; the pilot's
    results size it (`bertft.report.plan`)."""
    return ([r for r in results if r.role != "pilot"], [r for r in results if r.role == "pilot"])


def reported(results: Sequence[TrialResult]) -> list[TrialResult]:
    """What a report's table shows: the confirmation's results, or the pilot's when there are
    none (a pilot report: figures and a plan, no verdicts)."""
    confirmation, pilot = by_role(results)
    return confirmation or pilot


def sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def group_arms(results: Sequence[TrialResult]) -> list[Arm]:
    """Arms sorted by their axis values (numbers numerically), trials by seed."""
    if not results:
        return []
    axes = spec_of(results).axes
    by_arm: dict[str, list[TrialResult]] = {}
    for r in results:
        by_arm.setdefault(r.arm_id, []).append(r)
    arms = [Arm(arm_id, {a: trials[0].overrides.get(a) for a in axes},
                tuple(sorted(trials, key=lambda t: (t.seed, t.trial_id))))
            for arm_id, trials in by_arm.items()]
    return sorted(arms, key=lambda arm: ([sort_key(arm.values[a]) for a in axes], arm.arm_id))


def baseline_arm(arms: Sequence[Arm], spec: SpecInfo) -> Arm | None:
    """The first arm whose axis values match every key of `spec.baseline`; None if none does."""
    if not spec.baseline:
        return None
    for arm in arms:
        if all(k in arm.trials[0].overrides and same_value(arm.trials[0].overrides[k], v)
               for k, v in spec.baseline.items()):
            return arm
    return None


def metric_by_seed(arm: Arm, split: str, metric: str) -> dict[int, float]:
    """{seed: value} over the arm's passed trials that report the metric."""
    out: dict[int, float] = {}
    for t in arm.passed:
        value = getattr(t, split).get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[t.seed] = float(value)
    return out
