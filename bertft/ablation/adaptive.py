"""Adaptive seeds at run time: is this trial's seed still needed?

A spec with `seeds = { min = M, max = N }` (or --bertft-max-seeds) collects every seed up to N,
seed-major (all arms' seed 0, then seed 1, ...). Seeds below M always run. A later seed runs
only while its arm's comparison with the baseline (for the baseline: any comparison) is still
open after the looks already passed, replayed from the stored results exactly as the report
replays them (`bertft.report.compare`, docs/statistics.md). A seed whose earlier looks are not
all stored yet (another worker is running them, or a trial failed) runs: extra seeds never
change a look's decision, they only cost time. A run seed is stored and resumes like any trial.
"""

from __future__ import annotations

from pathlib import Path

from bertft.ablation.spec import Spec, Trial


def skip_reason(spec: Spec, trial: Trial, results_root: Path) -> str | None:
    """Why this trial need not run (its comparison is decided), or None when it must run."""
    if not spec.min_seeds or trial.seed not in spec.seeds:
        return None
    index = spec.seeds.index(trial.seed)
    if index < spec.min_seeds:
        return None
    from bertft.report.compare import compare
    from bertft.report.decide import looks
    from bertft.report.load import current_trials, load_results, only_current
    from bertft.report.table import baseline_arm, group_arms, spec_of

    passed = [k for k in looks(spec.min_seeds, len(spec.seeds)) if k <= index]
    folder = Path(results_root) / spec.name
    results, _ = load_results(folder)
    results, _ = only_current(results, current_trials(folder))
    if not results:
        return None
    decided = {c.arm_id: c for c in compare(results, upto=passed[-1])}
    base = baseline_arm(group_arms(results), spec_of(results))
    if base is None:
        return None
    arms = {r.arm_id for r in results} | {trial.arm_id}
    others = arms - {base.arm_id}
    if trial.arm_id == base.arm_id:
        if others and others <= set(decided):
            return f"adaptive seeds: every comparison decided by {passed[-1]} seeds"
        return None
    found = decided.get(trial.arm_id)
    if found is None:
        return None
    return (f"adaptive seeds: {trial.arm_id} decided ({found.verdict}) at {passed[-1]} seeds")


__all__ = ["skip_reason"]
