"""Trials a spec declares that the results folder does not hold: a report counts them, so that
"1 passed, 0 failed" never reads as a complete spec after a run was interrupted mid-grid (or ran
with -k, or not yet).

The declared trials are the spec's trials as last collected (`.current/trials.json`, written by
the results store before any trial runs), so `bertft report` counts them without the spec file.
An adaptive spec declares the trials of its first `min_seeds` seeds: the seeds above run only
while a comparison is undecided, so their absence is a decision, not a gap. A store without
`.current` (written before it existed) declares nothing: its missing trials are unknown.

A spec with a missing trial states no finding: its verdicts are decided as one family
over every arm and over each arm's declared seeds, so a missing trial can change any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bertft.report.arms import by_role, newest
from bertft.results import SpecInfo, TrialResult


@dataclass(frozen=True)
class Missing:
    """The declared trials without a stored result of the current settings."""

    declared: int                  # trials the spec declares (adaptive: its first min_seeds)
    trials: tuple[str, ...]        # their ids, sorted

    def __bool__(self) -> bool:
        return bool(self.trials)

    @property
    def text(self) -> str:
        """`2 of 3 trials missing`."""
        noun = "trial" if self.declared == 1 else "trials"
        return f"{len(self.trials)} of {self.declared} {noun} missing"


def seed_of(trial_id: str, seeds: Sequence[int]) -> int | None:
    """The seed of a trial id (`seed` is always its last key: `a=1,seed=2`, or `seed=2`)."""
    for seed in seeds:
        if trial_id == f"seed={seed}" or trial_id.endswith(f",seed={seed}"):
            return seed
    return None


def declared_trials(current: dict[str, str], spec: SpecInfo, role: str = "confirmation"
                    ) -> list[str]:
    """The ids of the trials a spec's report needs (adaptive specs: the first min_seeds): the
    confirmation's, or for a pilot's report (`role` "pilot") the pilot's. `current` holds both
    roles' trials, and the other role's are not this report's to miss."""
    needed = spec.pilot_seeds if role == "pilot" else (
        spec.seeds[:spec.min_seeds] if spec.min_seeds else spec.seeds)
    every = (*spec.seeds, *spec.pilot_seeds)
    return sorted(t for t in current if seed_of(t, every) in needed or seed_of(t, every) is None)


def missing_trials(results: Sequence[TrialResult], current: dict[str, str] | None) -> Missing:
    """What of the spec as last collected (`current`, {trial id: config hash}) is not among
    `results` (the stored results of those trials, `only_current`)."""
    if not current or not results:
        return Missing(len(current or {}), ())
    spec = newest(results).spec
    declared = declared_trials(current, spec, "confirmation" if by_role(results)[0] else "pilot")
    stored = {r.trial_id for r in results}
    return Missing(len(declared), tuple(t for t in declared if t not in stored))


def missing_suffix(missing: Missing | None) -> str:
    """What the trial counts of a report and of the index end with: `; 2 of 3 trials missing`."""
    return f"; {missing.text}" if missing else ""


def note_missing(text: str, missing: Missing) -> str:
    """A spec's report with its missing trials counted on the header's trial line and named in
    a warning under the header (the first blank line after that line)."""
    if not missing:
        return text
    lines = text.split("\n")
    at = next((i for i, row in enumerate(lines) if row.startswith("- **Trials:**")), None)
    if at is None:
        return text
    lines[at] += missing_suffix(missing)
    end = next((i for i in range(at, len(lines)) if not lines[i]), len(lines))
    shown = ", ".join(f"`{t}`" for t in missing.trials[:8]) + (
        " …" if len(missing.trials) > 8 else "")
    lines[end:end] = ["", f"⚠ **Incomplete: {missing.text}.** Declared by the spec and not "
                      f"stored (interrupted, deselected with -k, or not run yet): {shown}. The "
                      "verdicts below are provisional and the index states no finding: they "
                      "are decided over every arm and every declared seed together. Run the "
                      "spec again to complete it (stored trials are reused)."]
    return "\n".join(lines)


__all__ = ["Missing", "declared_trials", "missing_suffix", "missing_trials", "note_missing",
           "seed_of"]
