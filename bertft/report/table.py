"""Aggregating arms (`bertft.report.arms`) over seeds: one row per arm."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bertft.kinds import kind_of
from bertft.results import TrialResult
from bertft.report.arms import baseline_arm, group_arms, reported, results_kind, spec_of
from bertft.report.columns import Facts, columns, columns_of, row
from bertft.report.compare import compare
from bertft.report.fmt import finite


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
    facts = Facts(base, expected, {c.arm_id: c for c in compare(results)})
    cols = columns_of(kind, spec.axes)
    df = pd.DataFrame([row(cols, arm, facts) for arm in arms], columns=columns(kind, spec.axes))
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
