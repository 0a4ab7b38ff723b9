"""The best arm's detail sections of a report: per-class (or per-entity-type) F1, the confusion
matrix and the most confident errors, from its validation results over seeds."""

from __future__ import annotations

import math

from bertft.kinds import TaskKind
from bertft.report.fmt import DASH, finite, finite_mean, fmt_num, truncate
from bertft.report.fmt import md_table as _table
from bertft.report.arms import Arm

TOP_ERRORS = 10
TEXT_CHARS = 120


def best_arm_sections(best: Arm, kind: TaskKind) -> list[str]:
    """The `## Best arm` section: per-label F1, the confusion matrix (classification) and the
    most confident errors."""
    lines = [f"## Best arm: `{best.arm_id}`", "", *_per_label(best, kind)]
    if kind.confusion_matrix:
        lines += _confusion(best)
    return lines + _errors(best)


def _per_label(best: Arm, kind: TaskKind) -> list[str]:
    key, what = kind.per_label, kind.label_noun
    stats: dict[str, dict[str, list[float]]] = {}
    for t in best.passed:
        for label, figures in (t.validation.get(key) or {}).items():
            if isinstance(figures, dict):
                for k in ("precision", "recall", "f1", "support"):
                    if finite(figures.get(k)):
                        stats.setdefault(str(label), {}).setdefault(k, []).append(
                            float(figures[k]))
    if not stats:
        return []
    names = [str(n) for n in best.passed[0].label_names] if kind.per_label_names else []
    order = [n for n in names if n in stats] + sorted(n for n in stats if n not in names)

    def mean(label: str, k: str) -> float:
        return finite_mean(stats[label].get(k, []))

    rows = [[label, fmt_num(mean(label, "precision"), 4), fmt_num(mean(label, "recall"), 4),
             fmt_num(mean(label, "f1"), 4), fmt_num(mean(label, "support"), 0)]
            for label in order]
    return [f"### Per-{what} F1 (validation, mean over {len(best.passed)} seeds)", "",
            _table(rows, [what.capitalize(), "Precision", "Recall", "F1", "Support"]), ""]


def _confusion(best: Arm) -> list[str]:
    mats = [t.validation.get("confusion_matrix") for t in best.passed]
    mats = [m for m in mats if isinstance(m, list) and m and all(isinstance(r, list) for r in m)]
    if not mats:
        return []
    shape = (len(mats[0]), len(mats[0][0]))
    same = [m for m in mats if len(m) == shape[0] and all(len(r) == shape[1] for r in m)]
    total = [[sum(int(m[i][j]) for m in same) for j in range(shape[1])] for i in range(shape[0])]
    names = [str(n) for n in best.passed[0].label_names]
    if len(names) != max(shape):
        names = [str(i) for i in range(max(shape))]
    rows = [[f"**{names[i]}**", *row] for i, row in enumerate(total)]
    lines = [f"### Confusion matrix (validation, summed over {len(same)} seeds)", "",
             "Rows: gold label; columns: predicted label.", "",
             _table(rows, ["gold \\ predicted", *names[:shape[1]]]), ""]
    if len(same) < len(mats):
        lines += [f"{len(mats) - len(same)} matrices of another shape were left out.", ""]
    return lines


def _errors(best: Arm) -> list[str]:
    """The most confident wrong validation predictions over the arm's seeds; an example that
    several seeds get wrong is one row, with its highest probability and the seeds."""
    lines = ["### Most confident errors (validation)", ""]
    merged: dict[tuple[str, str, str], tuple[float, list[int]]] = {}
    for t in best.passed:
        for e in t.errors:
            key = (" ".join(str(e.get("text", "")).split()), str(e.get("gold", DASH)),
                   str(e.get("pred", DASH)))
            c = e.get("confidence")
            conf = float(c) if finite(c) else math.nan
            old, seeds = merged.get(key, (math.nan, []))
            merged[key] = (conf if math.isnan(old) or conf > old else old, seeds + [t.seed])
    if not merged:
        return lines + ["No wrong predictions were stored for this arm.", ""]
    top = sorted(merged.items(),
                 key=lambda kv: (-kv[1][0] if finite(kv[1][0]) else math.inf, kv[0]))
    rows = [[truncate(text, TEXT_CHARS), gold, pred, fmt_num(conf, 4),
             ", ".join(str(s) for s in sorted(set(seeds)))]
            for (text, gold, pred), (conf, seeds) in top[:TOP_ERRORS]]
    return lines + [f"The {len(rows)} most confident wrong predictions; probability: the "
                    "highest over the seeds that made the error.", "",
                    _table(rows, ["Text", "Gold", "Predicted", "Probability", "Seeds"]), ""]
