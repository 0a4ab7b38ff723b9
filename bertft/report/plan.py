"""The plan a pilot gives its confirmation: per comparison, the variance components the pilot
observed and the seeds (or, when seeds alone cannot, the test examples) at which a confirmation
decides it with `decide.POWER` probability.

Planning figures: they plug in the pilot's *observed* difference as if it were the true one
(post-hoc power), so they size the confirmation and decide nothing. A pilot of 3-5 seeds often
draws a seed variance well below the true one (a seed part of 0.00 is common), so the plan also
gives the seeds needed with the seed component at its `CAUTIOUS` upper confidence bound (Browne,
"On the use of a pilot sample for sample size determination", Stat. Med. 1995: sizing from the
pilot's point estimate reaches the target power less than half the time). The shipped suite is
sized from that column (docs/statistics.md). The confirmation runs fresh
seeds (the spec's `seeds`, disjoint from its `pilot_seeds`), and only its results give verdicts
(docs/statistics.md, "Pilot, plan, confirm").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass


from bertft.report import decide as dc
from bertft.report.compare import against_baseline, paired
from bertft.results import TrialResult
from bertft.report.arms import by_role, spec_of

CAUTIOUS = 0.8
"""Confidence of the upper bound on the seed variance component that `PlanRow.seeds_cautious`
plans with (chi-square bound on the seed mean square, k - 1 degrees of freedom)."""

MAX_EXAMPLES_FACTOR = 20
"""Most test examples the plan considers, as a multiple of the pilot's; beyond: no feasible
number (the seed part alone is too wide)."""


@dataclass(frozen=True)
class PlanRow:
    """One arm-vs-baseline comparison of the pilot, in metric units."""

    arm_id: str
    n_seeds: int                    # pilot seeds shared with the baseline
    n_examples: int
    delta: float                    # the pilot's observed difference (arm - baseline)
    se: float                       # its standard error, and the parts:
    seed_part: float                # sqrt(s2_seed / k)
    example_part: float             # sqrt(s2_ex / n)
    residual_part: float            # sqrt(s2_res / (k n)): SE^2 is about the sum of the squares
    df: float                       # t degrees of freedom at level alpha/m (Components.df_at)
    seeds: int | None               # confirmation seeds needed; None: no number up to MAX_SEEDS
    seeds_cautious: int | None      # the same with the seed component at its CAUTIOUS bound
    examples: int | None            # test examples needed at the confirmation's seed count,
    #                                 when seeds alone cannot; None: not needed, or not feasible
    note: str = ""                  # why the comparison cannot be planned, when it cannot


def plan(results: Sequence[TrialResult], alpha: float = dc.ALPHA) -> list[PlanRow]:
    """The pilot's plan: one row per non-baseline arm, from the pilot's results only (none
    when there are none). Seeds needed are for a test at level alpha/m (m comparisons)."""
    pilot = [r for r in by_role(results)[1] if r.status == "passed"]
    if not pilot:
        return []
    setting = against_baseline(pilot, spec_of(results))
    if setting is None:
        return []
    spec, base, metric, split = setting.spec, setting.base, setting.metric, setting.split
    margin = setting.margin
    others = [a for a in setting.arms if a is not base]
    level = alpha / max(len(others), 1)
    rows = []
    for arm in others:
        data = paired(arm, base, split, metric, spec.pilot_seeds)
        if isinstance(data, str) or len(data[0]) < 2:
            why = data if isinstance(data, str) else "one shared seed: no variance components"
            rows.append(PlanRow(arm.arm_id, 0, 0, *[math.nan] * 6, None, None, None, why))
            continue
        c = dc.paired_components(data[1], data[2])
        # seeds_needed searches above the seeds at hand; a fresh confirmation may need fewer
        seeds = dc.seeds_needed(dataclasses.replace(c, k=1), margin, level)
        cautious = dc.seeds_needed(dataclasses.replace(c, k=1, s2_seed=seed_bound(c)), margin,
                                   level)
        examples = None if seeds is not None else examples_needed(
            c, margin, level, max(len(spec.seeds), 2))
        rows.append(PlanRow(arm.arm_id, c.k, c.n, float(c.delta), math.sqrt(float(c.var)),
                            math.sqrt(float(c.s2_seed) / c.k), math.sqrt(float(c.s2_ex) / c.n),
                            math.sqrt(float(c.s2_res) / (c.k * c.n)), float(c.df_at(level)), seeds,
                            cautious, examples))
    return rows


def seed_bound(c: dc.Components, confidence: float = CAUTIOUS) -> float:
    """Upper confidence bound of the seed variance component: the seed mean square's chi-square
    bound (k - 1 degrees of freedom) less the residual mean square, per example."""
    return max(float(dc.ms_upper(c.ms_seed, c.k, 1 - confidence)) - float(c.s2_res), 0.0) / c.n


def examples_needed(c: dc.Components, margin: float, level: float, k: int) -> int | None:
    """The fewest test examples (a multiple of the pilot's, up to MAX_EXAMPLES_FACTOR) at
    which k seeds decide the comparison with POWER probability, if the true difference is the
    observed one; None when none does."""
    s2 = [float(x) for x in (c.s2_seed, c.s2_ex, c.s2_res)]
    for factor in range(2, MAX_EXAMPLES_FACTOR + 1):
        var, df = dc.expected_var_df(*s2, k, c.n * factor, level)
        if dc.power(float(c.delta), var, df, margin, level) >= dc.POWER:
            return c.n * factor
    return None


__all__ = ["CAUTIOUS", "PlanRow", "examples_needed", "plan", "seed_bound"]
