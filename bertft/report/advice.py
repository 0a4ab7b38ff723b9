"""What a report tells a user to do: which seeds decided it (pilot or confirmation), the plan a
pilot gives, and the arm to pick.

The recommendation: among the arms *better* than the baseline or *equivalent* to it, the
cheapest to train, by the measured train time (`timing.train_seconds`, mean over the seeds the
arm shares with the baseline) as a ratio to the baseline's, with the range of the per-seed ratio
over those seeds; "the baseline" when no arm qualifies. An equivalent arm is a candidate only
when it trained faster than the baseline on average (ratio below 1): the same metric for the
same or more time is no reason to leave the baseline. A cost difference is within
run-to-run timing noise when the seed range of the ratio includes 1.0 (some seed trained it no
faster, or no slower, than the baseline), and the recommendation says so. A trial copied from
another spec's result of the same settings (`environment.reused_from`) carries the time of the
run that trained it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from bertft.report import decide as dc
from bertft.report.fmt import METRIC_LABELS, finite, fmt_num, md_table, points
from bertft.report.plan import CAUTIOUS, plan
from bertft.report.arms import Arm, baseline_arm, by_role, group_arms, results_kind, spec_of
from bertft.results import TrialResult


def _seeds(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds) or "none"


def role_lines(results: Sequence[TrialResult]) -> list[str]:
    """The header lines on seed roles: the spec's confirmation and pilot seeds, and one line
    when the results mix roles (the table and verdicts then use the confirmation only) or are
    the pilot's alone (no verdicts; the plan)."""
    spec = spec_of(results)
    confirmation, pilot = by_role(results)
    lines = [f"- **Seeds:** confirmation {_seeds(spec.seeds)} (the verdicts); pilot "
             f"{_seeds(spec.pilot_seeds)} (the plan)" if spec.pilot_seeds else
             f"- **Seeds:** {_seeds(spec.seeds)} (confirmation: the verdicts; no pilot)"]
    pilot_seeds = _seeds(sorted({r.seed for r in pilot}))
    if confirmation and pilot:
        lines.append(f"- **Mixed roles:** {len(pilot)} pilot results (seeds {pilot_seeds}) are "
                     "left out of the table and the verdicts, which use the confirmation's "
                     f"{len(confirmation)} results only")
    elif pilot:
        lines.append(f"- **Pilot report:** all {len(pilot)} results are the pilot's (seeds "
                     f"{pilot_seeds}): no verdicts; the plan below sizes the confirmation")
    return lines


def plan_section(results: Sequence[TrialResult]) -> list[str]:
    """`## Plan for the confirmation`, from the pilot's results (none without them)."""
    rows = plan(results)
    if not rows:
        return []
    spec = spec_of(results)
    rank = METRIC_LABELS[results_kind(results).ranking_metric]
    table = [[f"`{r.arm_id}`", r.n_seeds, r.note or points(r.delta),
              *[fmt_num(100 * x, 2) for x in (r.se, r.seed_part, r.example_part,
                                              r.residual_part)], fmt_num(r.df, 1),
              _needed(r.seeds) if not r.note else "–",
              _needed(r.seeds_cautious) if not r.note else "–",
              _needed(r.examples) if r.seeds is None and not r.note else "–"] for r in rows]
    feasible = [r.seeds for r in rows if r.seeds is not None]
    cautious = max((r.seeds_cautious for r in rows if r.seeds_cautious is not None),
                   default="none")
    return ["## Plan for the confirmation (from the pilot)", "",
            f"Planning figures from the pilot's observed differences (seeds "
            f"{_seeds(spec.pilot_seeds)}), in points of {rank}: each comparison's standard "
            "error and its seed, example and seed × example parts, and the seeds at which a "
            f"confirmation would decide it with {dc.POWER:.0%} probability at level "
            f"{dc.ALPHA}/{len(rows)} if the true difference were the one the pilot observed "
            "(post-hoc: they size the confirmation and decide nothing); when no seed count up "
            f"to {dc.MAX_SEEDS} does, the test examples that would at the confirmation's "
            f"{len(spec.seeds)} seeds. A pilot of a few seeds often under-draws the seed "
            f"variance, so the cautious count plans with the seed component at its "
            f"{CAUTIOUS:.0%} upper confidence bound.", "",
            md_table(table, ["Arm", "Pilot seeds", "Δ (points)", "SE", "Seed part",
                             "Example part", "Residual part", "df", "Seeds needed",
                             f"Seeds needed ({CAUTIOUS:.0%} bound)",
                             "Test examples needed"]), "",
            f"The confirmation runs the spec's `seeds` ({_seeds(spec.seeds)}: "
            f"{len(spec.seeds)} seeds); the largest feasible need above is "
            f"{max(feasible) if feasible else 'none'} ({cautious} with the bound).", ""]


def _needed(n: int | None) -> str:
    return "no feasible number" if n is None else str(n)


def time_ratio(arm: Arm, base: Arm) -> tuple[float, float, float, int]:
    """(mean train time of `arm` / the baseline's, lowest and highest per-seed ratio, shared
    seeds) over the seeds both passed with a recorded train time; nans when there are none."""
    a, b = ({t.seed: t.timing.get("train_seconds") for t in x.passed} for x in (arm, base))
    shared = [s for s in a if s in b and finite(a[s]) and finite(b[s]) and b[s] > 0]
    if not shared:
        return math.nan, math.nan, math.nan, 0
    per_seed = [a[s] / b[s] for s in shared]
    ratio = sum(a[s] for s in shared) / sum(b[s] for s in shared)
    return ratio, min(per_seed), max(per_seed), len(shared)


def cost_text(ratio: float, low: float, high: float, n: int) -> str:
    """`1.20× faster to train (1.10–1.30× over seeds)`, and whether that is timing noise."""
    if not finite(ratio):
        return "train time not recorded"
    faster = ratio <= 1
    factor, lo, hi = (1 / ratio, 1 / high, 1 / low) if faster else (ratio, low, high)
    text = f"{factor:.2f}× {'faster' if faster else 'slower'} to train" \
        if f"{factor:.2f}" != "1.00" else "the baseline's train time"
    if n < 2:
        return text + " (one seed: no range, so timing noise cannot be told apart)"
    text += f" ({lo:.2f}–{hi:.2f}× over {n} seeds"
    if low <= 1 <= high:
        return text + ": within run-to-run timing noise, the seed range includes 1.00×)"
    return text + ")"


def recommendation(results: Sequence[TrialResult], df: pd.DataFrame) -> str:
    """The arm to pick (module docstring), as one sentence; "" without a baseline or
    verdicts. `df`: the report's `aggregate` table."""
    confirmation = by_role(results)[0]
    if not len(df) or not df["baseline"].any() or not confirmation:
        return ""
    arms = {a.arm_id: a for a in group_arms(confirmation)}
    base = baseline_arm(list(arms.values()), spec_of(confirmation))
    base_id = df[df["baseline"]].iloc[0]["arm"]
    rank = METRIC_LABELS[results_kind(confirmation).ranking_metric]
    split = "test" if (df["decided_on"] == "test").any() else "validation"
    candidates, slower = [], []
    for _, row in df.iterrows():
        if row["verdict"] not in ("better", "equivalent") or base is None:
            continue
        cost = time_ratio(arms[row["arm"]], base)
        if row["verdict"] == "equivalent" and cost[3] and not cost[0] < 1:
            # the same metric for the same or more time: the baseline wins
            slower.append(f"`{row['arm']}` ({cost[0]:.2f}× the baseline's train time)")
            continue
        candidates.append((cost[0] if finite(cost[0]) else math.inf, row, cost))
    if not candidates:
        why = (f"{', '.join(slower)} {'is' if len(slower) == 1 else 'are'} equivalent but "
               "not faster to train on average" if slower
               else "no arm is better than it or equivalent to it")
        return f"Recommendation: the baseline (`{base_id}`): {why}."
    _, row, cost = min(candidates, key=lambda c: (c[0], c[1]["arm"]))
    return (f"Recommendation: `{row['arm']}`: {row['verdict']} {split} {rank} "
            f"({points(row['diff'])} points), {cost_text(*cost)}.")


__all__ = ["cost_text", "plan_section", "recommendation", "role_lines", "time_ratio"]
