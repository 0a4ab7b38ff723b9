"""Adaptive seeds at run time: is this trial's seed still needed?

A spec with `seeds = { min = M, max = N }` (or --bertft-max-seeds) collects every seed up to N,
seed-major (all arms' seed 0, then seed 1, ...). Seeds below M always run. A later seed runs
only while its arm's comparison with the baseline (for the baseline: any comparison) is still
open after the looks already passed, replayed from the stored results exactly as the report
replays them (`decisions`: the plugin passes `bertft.report.looks.decided`, so this package
imports nothing from the report's). A seed whose earlier looks are not all stored yet (another
worker is running them, or a trial failed) runs: extra seeds never change a look's decision,
they only cost time. A run seed is stored and resumes like any trial.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bertft.ablation.spec import Spec, Trial

Decisions = Callable[[Path, int, int, int],
                     tuple[int, str, frozenset[str], dict[str, str]] | None]
"""(results folder of the spec, min seeds, max seeds, seed index) -> (the seed count of the
last look passed, the baseline arm, the arms with stored results, {decided arm: verdict}), or
None when nothing is stored or there is no baseline (`bertft.report.looks.decided`)."""


def skip_reason(spec: Spec, trial: Trial, results_root: Path, decisions: Decisions
                ) -> str | None:
    """Why this trial need not run (its comparison is decided), or None when it must run."""
    if not spec.min_seeds or trial.seed not in spec.seeds:
        return None
    index = spec.seeds.index(trial.seed)
    if index < spec.min_seeds:
        return None
    found = decisions(Path(results_root) / spec.name, spec.min_seeds, len(spec.seeds), index)
    if found is None:
        return None
    look, base, stored_arms, verdicts = found
    others = (stored_arms | {trial.arm_id}) - {base}
    if trial.arm_id == base:
        if others and others <= set(verdicts):
            return f"adaptive seeds: every comparison decided by {look} seeds"
        return None
    verdict = verdicts.get(trial.arm_id)
    if verdict is None:
        return None
    return f"adaptive seeds: {trial.arm_id} decided ({verdict}) at {look} seeds"


__all__ = ["Decisions", "skip_reason"]
