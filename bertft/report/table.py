"""Grouping trials into arms and aggregating them over seeds: one row per arm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bertft.kinds import DEFAULT, TaskKind, kind_of
from bertft.results import SpecInfo, TrialResult
from bertft.report.stats import mean_ci


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


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (0 == False in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def baseline_arm(arms: Sequence[Arm], spec: SpecInfo) -> Arm | None:
    """The first arm whose axis values match every key of `spec.baseline`; None if none does."""
    if not spec.baseline:
        return None
    for arm in arms:
        if all(k in arm.trials[0].overrides and _same(arm.trials[0].overrides[k], v)
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


def finite(value: Any) -> bool:
    """A real number (not a bool, NaN or infinity): what tables and sums may use."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def finite_mean(values: Sequence[Any]) -> float:
    """The mean of the finite numbers among `values` (NaN when there are none)."""
    xs = [float(v) for v in values if finite(v)]
    return sum(xs) / len(xs) if xs else math.nan


def _max(values: Sequence[Any]) -> float:
    xs = [float(v) for v in values if finite(v)]
    return max(xs) if xs else math.nan


def columns(kind: str, axes: Sequence[str]) -> list[str]:
    """The aggregated table's columns, in order (the csv/json export)."""
    metric_cols = [f"{split}_{m}_{stat}" for split in ("val", "test")
                   for m in kind_of(kind).main_metrics
                   for stat in ("mean", "ci")]
    return ["arm", *axes, "baseline", "best", "n_seeds", "seeds", "n_failed", "n_diverged",
            "fewer_seeds", *metric_cols, "best_epoch", "train_seconds", "samples_per_s",
            "tokens_per_s", "peak_memory_mb", *COMPARISON_COLUMNS]


COMPARISON_COLUMNS = ("verdict", "decided_on", "metric", "diff", "diff_low", "diff_high",
                      "interval_level", "p_value", "p_adjusted", "n_pairs", "n_examples",
                      "seeds_needed", "note")
"""The arm-vs-baseline decision (bertft.report.compare): the difference arm - baseline in the
decision split's metric with its interval, Bonferroni-adjusted p, verdict, and for an undecided one
the seeds needed (-1: no feasible number)."""


def _comparison_row(c: Any, is_base: bool) -> dict[str, Any]:
    if c is None:
        return {k: (math.nan if k.startswith(("diff", "p_", "interval")) else None)
                for k in COMPARISON_COLUMNS} | {"verdict": "baseline" if is_base else None,
                                                 "n_pairs": 0, "n_examples": 0}
    needed = None if c.verdict != "undecided" or c.note else (
        -1 if c.seeds_needed is None else c.seeds_needed)
    return {"verdict": c.verdict, "decided_on": c.split, "metric": c.metric, "diff": c.delta,
            "diff_low": c.low, "diff_high": c.high, "interval_level": 1 - c.level,
            "p_value": c.p, "p_adjusted": c.p_adj, "n_pairs": c.n_seeds,
            "n_examples": c.n_examples, "seeds_needed": needed, "note": c.note or None}


def aggregate(results: Sequence[TrialResult]) -> pd.DataFrame:
    """One row per arm: metrics as mean and 95% t half width over passed seeds, cost figures as
    means (peak memory: the maximum), and the decision against the baseline arm
    (`bertft.report.compare`: the ranking metric, f1_macro or f1 for NER, on the test split
    when every trial has one, from per-example predictions). `best` marks the arm with the highest
    mean ranking metric; `fewer_seeds` arms with fewer passed seeds than the spec asks for or
    another arm has. Arms whose every trial failed keep their row, with nan figures. Over the
    confirmation's results when there are any, else the pilot's (`reported`)."""
    results = reported(results)
    kind = results_kind(results).name
    metrics = kind_of(kind).main_metrics
    if not results:
        return pd.DataFrame(columns=columns(kind, ()))
    spec = spec_of(results)
    arms = group_arms(results)
    base = baseline_arm(arms, spec)
    rank = metrics[0]
    expected = max([len(spec.seeds)] + [len(a.passed) for a in arms])
    from bertft.report.compare import compare  # compare builds on this module's arms

    decided = {c.arm_id: c for c in compare(results)}
    rows = []
    for arm in arms:
        passed = arm.passed
        row: dict[str, Any] = {"arm": arm.arm_id, **arm.values,
                               "baseline": arm is base, "best": False,
                               "n_seeds": len(passed),
                               "seeds": ",".join(str(t.seed) for t in passed),
                               "n_failed": sum(t.status == "failed" for t in arm.trials),
                               "n_diverged": sum(t.status == "diverged" for t in arm.trials),
                               "fewer_seeds": len(passed) < expected}
        for split, key in (("val", "validation"), ("test", "test")):
            for m in metrics:
                mean, ci = mean_ci(list(metric_by_seed(arm, key, m).values()))
                row[f"{split}_{m}_mean"], row[f"{split}_{m}_ci"] = mean, ci
        row["best_epoch"] = finite_mean([t.best.get("epoch") for t in passed])
        for k in ("train_seconds", "samples_per_s", "tokens_per_s"):
            row[k] = finite_mean([t.timing.get(k) for t in passed])
        row["peak_memory_mb"] = _max([t.timing.get("peak_memory_mb") for t in passed])
        row.update(_comparison_row(decided.get(arm.arm_id), arm is base))
        rows.append(row)
    df = pd.DataFrame(rows, columns=columns(kind, spec.axes))
    scores = df[f"val_{rank}_mean"]
    if scores.notna().any():
        df.loc[int(scores.astype(float).idxmax()), "best"] = True  # first arm wins a tie
    return df


SHARES = (("train_seconds", "training"), ("validation_seconds", "validation"),
          ("test_seconds", "test"), ("setup_seconds", "setup"))


def ran_here(results: Sequence[TrialResult]) -> list[TrialResult]:
    """The trials that trained for this results folder: not copies of a trial with the same
    settings in another spec (`environment.reused_from`), whose time counts where they ran."""
    return [r for r in results if not r.environment.get("reused_from")]


def time_shares(results: Sequence[TrialResult]) -> dict[str, float] | None:
    """Where the summed time of the trials that ran here went, as fractions of their total:
    training, validation (choosing the epoch), test (the decision split) and setup. Only
    trials that recorded all four count (copies of another spec's trial and records older than
    the split are left out); None when there are none."""
    timed = [r.timing for r in ran_here(results)
             if all(finite(r.timing.get(k)) for k, _ in SHARES)]
    total = sum(sum(t[k] for k, _ in SHARES) for t in timed)
    if not timed or total <= 0:
        return None
    return {label: sum(t[k] for t in timed) / total for k, label in SHARES}
