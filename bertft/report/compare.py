"""Arm-vs-baseline decisions from stored trial results (the numbers come from `decide`).

The decision split is the test split when every compared trial stored test predictions (the
validation split chose each trial's best epoch, so its figures are optimistic), else the
validation split; the metric is the report's ranking metric (macro-F1, or entity F1 for NER),
recomputed from the stored per-example predictions. Results written before schema version 2
have none: their comparisons say so and stay undecided. Only the confirmation's results decide:
a pilot's (`TrialResult.role`) are left out, and a pilot alone gives no comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertft.kinds import kind_of
from bertft.results import TrialResult
from bertft.report import decide as dc
from bertft.report.arms import Arm, baseline_arm, by_role, group_arms, results_kind, spec_of


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One arm against the baseline."""

    arm_id: str
    split: str                      # "test" or "validation"
    metric: str
    verdict: str                    # better / worse / equivalent / undecided
    n_seeds: int = 0                # shared seeds the decision used
    n_examples: int = 0
    delta: float = math.nan         # arm - baseline, in metric units
    low: float = math.nan           # interval at level 1 - alpha/m (alpha: its look's share)
    high: float = math.nan
    p: float = math.nan
    p_adj: float = math.nan         # Bonferroni-adjusted, min(1, m·p)
    seeds_needed: int | None = None  # undecided only; None: no feasible number
    note: str = ""                  # why it could not be tested, when it could not
    level: float = math.nan         # the interval's two-sided error level


def trial_influence(trial: TrialResult, split: str, metric: str
                    ) -> tuple[float, np.ndarray, tuple] | None:
    """(metric value, per-example influence, a key naming the examples) of one trial's stored
    predictions, or None when it has none for `split`."""
    preds = trial.predictions.get(split) if isinstance(trial.predictions, dict) else None
    if not preds:
        return None
    return INFLUENCE[kind_of(trial.kind).predictions](preds, metric, len(trial.label_names))


def _entity_influence(preds: dict, metric: str, n_labels: int
                      ) -> tuple[float, np.ndarray, tuple]:
    """Entity F1 (whatever `metric`: NER ranks on it) from per-sentence TP / FP / FN."""
    tp, fp, fn = (np.asarray(preds[k], dtype=float) for k in ("tp", "fp", "fn"))
    value, psi = dc.entity_f1_influence(tp, fp, fn)
    return float(value), psi, tuple((tp + fn).astype(int).tolist())  # gold entity counts


def _label_influence(preds: dict, metric: str, n_labels: int
                     ) -> tuple[float, np.ndarray, tuple]:
    """Accuracy, or else macro F1, from per-example predicted and gold ids."""
    pred, label = np.asarray(preds["pred"]), np.asarray(preds["label"])
    if metric == "accuracy":
        value, psi = dc.accuracy_influence(pred, label)
    else:
        value, psi = dc.macro_f1_influence(pred, label, n_labels)
    return float(value), psi, tuple(label.tolist())


INFLUENCE = {"labels": _label_influence, "entity_counts": _entity_influence}
"""The influence function of each form of stored predictions (`TaskKind.predictions`)."""


def decision_split(results: Sequence[TrialResult]) -> str:
    passed = [r for r in results if r.status == "passed" and r.predictions]
    if passed and all(r.predictions.get("test") for r in passed):
        return "test"
    return "validation"


@dataclass(frozen=True)
class Setting:
    """What a family of arm-vs-baseline comparisons is computed on: the spec, the arms of the
    results at hand, the baseline arm, the ranking metric, the decision split and the margin."""

    spec: Any
    arms: list[Arm]
    base: Arm
    metric: str
    split: str
    margin: float


def against_baseline(results: Sequence[TrialResult], spec: Any) -> Setting | None:
    """The setting of `results`' comparisons (the confirmation's for a report, the pilot's for
    a plan); None when no arm matches the spec's baseline."""
    arms = group_arms(results)
    base = baseline_arm(arms, spec)
    if base is None:
        return None
    return Setting(spec, arms, base, results_kind(results).ranking_metric,
                   decision_split(results),
                   float(getattr(spec, "equivalence_margin", dc.DEFAULT_MARGIN)))


def paired(arm: Arm, base: Arm, split: str, metric: str, order: Sequence[int]
            ) -> tuple[list[int], np.ndarray, np.ndarray] | str:
    """Shared seeds (spec order), per-seed differences and influence differences, or why not."""
    a = {t.seed: t for t in arm.passed}
    b = {t.seed: t for t in base.passed}
    shared = [s for s in order if s in a and s in b] + sorted(set(a) & set(b) - set(order))
    if not shared:
        return "no seed shared with the baseline"
    rows = {s: (trial_influence(a[s], split, metric), trial_influence(b[s], split, metric))
            for s in shared}
    usable = [s for s in shared if None not in rows[s]]
    if not usable:
        return "no per-example predictions (results written before schema version 2)"
    shared = usable
    rows_a, rows_b = [rows[s][0] for s in shared], [rows[s][1] for s in shared]
    keys = {r[2] for r in rows_a + rows_b}
    if len(keys) != 1:
        return f"the arms were scored on different {split} examples"
    assert all(r is not None for r in rows_a + rows_b)
    diff = np.array([ra[0] - rb[0] for ra, rb in zip(rows_a, rows_b, strict=True)])
    psi = np.stack([ra[1] - rb[1] for ra, rb in zip(rows_a, rows_b, strict=True)])
    return shared, diff, psi


def compare(results: Sequence[TrialResult], alpha: float = dc.ALPHA, upto: int | None = None
            ) -> list[Comparison]:
    """Every non-baseline arm against the baseline, as one family: a fixed design, or the
    sequential looks of an adaptive one (`spec.min_seeds`). `upto`: replay only the looks at
    up to that many seeds, leaving out the comparisons still open (what an adaptive run
    knows when it decides whether to run more seeds). Pilot results are left out."""
    results = by_role(results)[0]
    if not any(r.status == "passed" for r in results):
        return []
    setting = against_baseline(results, spec_of(results))
    if setting is None:
        return []
    spec, arms, base = setting.spec, setting.arms, setting.base
    metric, split, margin = setting.metric, setting.split, setting.margin
    data = {arm.arm_id: paired(arm, base, split, metric, spec.seeds)
            for arm in arms if arm is not base}
    out: dict[str, Comparison] = {}
    for arm_id, d in data.items():
        if isinstance(d, str):
            out[arm_id] = Comparison(arm_id=arm_id, split=split, metric=metric,
                                     verdict="undecided", note=d)
        elif len(d[0]) < 2:
            out[arm_id] = Comparison(arm_id=arm_id, split=split, metric=metric,
                                     verdict="undecided", n_seeds=1,
                                     n_examples=d[2].shape[-1], delta=float(d[1][0]),
                                     note="one shared seed: no interval")
    ready = {a: d for a, d in data.items() if a not in out}
    m = len(data)
    min_seeds = int(getattr(spec, "min_seeds", 0) or 0)
    schedule = dc.looks(min_seeds, len(spec.seeds)) if 0 < min_seeds < len(spec.seeds) \
        else (max([len(d[0]) for d in ready.values()] or [0]),)
    spend = dc.alpha_spent(schedule, alpha) if len(schedule) > 1 else (alpha,)
    for k_look, a_look in zip(schedule, spend, strict=True):
        if upto is not None and k_look > upto:
            break
        last = k_look == schedule[-1] and upto is None
        _look(ready, out, k_look, a_look, m, margin, split, metric, final=last)
    return [out[a] for a in data if a in out]


def _look(ready: dict, out: dict[str, Comparison], k_look: int, alpha: float, m: int,
          margin: float, split: str, metric: str, final: bool) -> None:
    """One look: every comparison with the seeds of this look gets its interval at level
    `1 - alpha/m` (m: the whole family, the untestable and the decided included); those still
    open record their decisions, and at the final look every comparison still open is recorded
    as undecided with the seeds it would need."""
    if not ready:
        return
    level = alpha / m
    for a, (seeds, diff, psi) in ready.items():
        if a in out or not (final or len(seeds) >= k_look):
            continue
        k = len(seeds) if final else k_look
        c = dc.paired_components(diff[:k], psi[:k])
        fam = dc.decide(c.delta, c.var, c.df_at(level), margin, alpha, m)
        verdict = dc.VERDICTS[int(fam.verdict)]
        if verdict == "undecided" and not final:
            continue
        needed = dc.seeds_needed(c, margin, level) if verdict == "undecided" else None
        out[a] = Comparison(arm_id=a, split=split, metric=metric, verdict=verdict, n_seeds=c.k,
                            n_examples=c.n, delta=float(c.delta), low=float(fam.low),
                            high=float(fam.high), p=float(fam.p), p_adj=float(fam.p_adj),
                            seeds_needed=needed, level=float(fam.level))


__all__ = ["Comparison", "compare", "decision_split", "paired", "trial_influence"]
