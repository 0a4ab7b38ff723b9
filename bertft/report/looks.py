"""Adaptive seeds: what a spec's stored results decided by a look, replayed exactly as the
report replays it (`compare`, docs/statistics.md). The pytest plugin hands `decided` to
`bertft.ablation.adaptive.skip_reason`, so the ablation package needs nothing from this one."""

from __future__ import annotations

from pathlib import Path

from bertft.report.arms import baseline_arm, group_arms, spec_of
from bertft.report.compare import compare
from bertft.report.decide import looks
from bertft.report.load import current_trials, load_results, only_current

Decided = tuple[int, str, frozenset[str], dict[str, str]]
"""(the seed count of the last look passed, the baseline arm, the arms with stored results,
{arm: verdict} of the arms decided by that look)."""


def decided(folder: Path, min_seeds: int, n_seeds: int, index: int) -> Decided | None:
    """The decisions at the last look at or below seed `index` (0-based, >= `min_seeds`) of
    an adaptive design with seeds `min_seeds`..`n_seeds`, from the current results stored in
    `folder`; None without stored results or a baseline arm."""
    passed = [k for k in looks(min_seeds, n_seeds) if k <= index]
    results, _ = load_results(folder)
    results, _ = only_current(results, current_trials(folder))
    if not results:
        return None
    base = baseline_arm(group_arms(results), spec_of(results))
    if base is None:
        return None
    verdicts = {c.arm_id: c.verdict for c in compare(results, upto=passed[-1])}
    return passed[-1], base.arm_id, frozenset(r.arm_id for r in results), verdicts


__all__ = ["Decided", "decided"]
