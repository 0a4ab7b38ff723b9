"""Aggregating arms (`bertft.report.arms`) over seeds: one row per arm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bertft.kinds import kind_of
from bertft.results import TrialResult
from bertft.report.arms import (
    baseline_arm, group_arms, metric_by_seed, reported, results_kind, spec_of,
)
from bertft.report.columns import columns
from bertft.report.compare import compare
from bertft.report.fmt import finite, finite_mean
from bertft.report.stats import mean_ci


def _max(values: Sequence[Any]) -> float:
    xs = [float(v) for v in values if finite(v)]
    return max(xs) if xs else math.nan


COMPARISON_COLUMNS = ("verdict", "note", "decided_on", "metric", "diff", "diff_low", "diff_high",
                      "interval_level", "p_value", "p_adjusted", "n_pairs", "n_examples",
                      "seeds_needed")
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
    declared = columns(kind, spec.axes)
    for row in rows:  # DataFrame(columns=...) would drop an undeclared key without a word
        undeclared = sorted(set(row) - set(declared))
        if undeclared:
            raise ValueError(f"aggregate built columns not in report.columns: {undeclared}")
    df = pd.DataFrame(rows, columns=declared)
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
