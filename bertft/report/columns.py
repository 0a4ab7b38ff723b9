"""The columns of a report's results table, declared once: each names the DataFrame columns it
holds (the csv/json export of `table.aggregate`, in declaration order), where their values come
from (its `source`, from one arm and the facts about its spec), and, when it is shown in the
markdown table, its header and how its cell is written from a row (`markdown._main_table`, the
shown columns in the same order). A new column is one entry here."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bertft.kinds import kind_of
from bertft.report.arms import Arm, metric_by_seed
from bertft.report.compare import Comparison
from bertft.report.fmt import (
    METRIC_LABELS, finite, finite_mean, fmt_ci, fmt_interval, fmt_needed, fmt_num, fmt_p,
    fmt_verdict,
)
from bertft.report.stats import mean_ci


@dataclass(frozen=True)
class View:
    """What a cell needs beyond its row: the axis values as stored (pandas would show an int
    column holding a None as floats), the seeds an arm should have, the decision split."""

    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    expected: int = 0
    split: str = "test"


@dataclass(frozen=True)
class Facts:
    """What a source needs beyond its arm: the baseline arm, the seeds an arm should have and
    each arm's comparison with the baseline (`bertft.report.compare`; none for the baseline)."""

    base: Arm | None
    expected: int
    decided: Mapping[str, Comparison]


Row = Mapping[str, Any]
Source = Callable[[Arm, Facts], Sequence[Any]]


@dataclass(frozen=True)
class Column:
    keys: tuple[str, ...]                        # DataFrame (export) columns, in order
    source: Source                               # their values for one arm, in order
    header: str | Callable[[View], str] | None = None  # markdown header; None: export only
    cell: Callable[[Row, View], Any] | None = None


def _seeds(r: Row, v: View) -> str:
    n = str(int(r["n_seeds"]))
    return f"{n} of {v.expected} ⚠" if r["fewer_seeds"] else n


def _num(key: str, decimals: int) -> Callable[[Row, View], str]:
    return lambda r, v: fmt_num(r[key], decimals)


def _timing(key: str, how: Callable[[list], float] = finite_mean) -> Source:
    return lambda a, f: (how([t.timing.get(key) for t in a.passed]),)


def _largest(values: list) -> float:
    xs = [float(v) for v in values if finite(v)]
    return max(xs) if xs else math.nan


def _decided(read: Callable[[Comparison], tuple], alone: Callable[[bool], tuple]) -> Source:
    """A comparison column's source: `read` of the arm's comparison, or `alone(is_baseline)`
    for an arm without one (the baseline, or an arm that could not be compared)."""
    def source(a: Arm, f: Facts) -> tuple:
        c = f.decided.get(a.arm_id)
        return read(c) if c is not None else alone(a is f.base)
    return source


def _needed(c: Comparison) -> tuple:
    """Seeds needed for an undecided comparison that was tested (-1: no feasible number)."""
    if c.verdict != "undecided" or c.note:
        return (None,)
    return (-1 if c.seeds_needed is None else c.seeds_needed,)


NAN2 = (math.nan, math.nan)


def columns_of(kind: str, axes: Sequence[str]) -> list[Column]:
    """Every column of the results table for a task kind and a spec's axes, in order."""
    metrics = kind_of(kind).main_metrics
    rank = METRIC_LABELS[metrics[0]]

    def axis(a: str) -> Column:
        return Column((a,), lambda arm, f: (arm.values.get(a),), a,
                      lambda r, v: v.values[r["arm"]][a])

    def metric(split: str, m: str) -> Column:
        label, stored = {"val": ("Val", "validation"), "test": ("Test", "test")}[split]
        keys = (f"{split}_{m}_mean", f"{split}_{m}_ci")
        return Column(keys, lambda a, f: mean_ci(list(metric_by_seed(a, stored, m).values())),
                      f"{label} {METRIC_LABELS[m]}", lambda r, v: fmt_ci(*(r[k] for k in keys)))

    return [
        Column(("arm",), lambda a, f: (a.arm_id,),
               None if axes else "arm", lambda r, v: r["arm"]),  # shown when there are no axes
        *[axis(a) for a in axes],
        Column(("baseline", "best"), lambda a, f: (a is f.base, False)),  # best: set after
        *[metric(s, m) for s in ("val", "test") for m in metrics],
        Column(("n_seeds", "fewer_seeds"),
               lambda a, f: (len(a.passed), len(a.passed) < f.expected), "Seeds", _seeds),
        Column(("seeds", "n_failed", "n_diverged"),
               lambda a, f: (",".join(str(t.seed) for t in a.passed),
                             sum(t.status == "failed" for t in a.trials),
                             sum(t.status == "diverged" for t in a.trials))),
        Column(("best_epoch",),
               lambda a, f: (finite_mean([t.best.get("epoch") for t in a.passed]),),
               "Best epoch", _num("best_epoch", 1)),
        Column(("train_seconds",), _timing("train_seconds"), "Train time (s)",
               _num("train_seconds", 1)),
        Column(("samples_per_s",), _timing("samples_per_s"), "Samples/s",
               _num("samples_per_s", 1)),
        Column(("tokens_per_s",), _timing("tokens_per_s"), "Tokens/s", _num("tokens_per_s", 0)),
        Column(("peak_memory_mb",), _timing("peak_memory_mb", _largest), "Peak memory (MB)",
               _num("peak_memory_mb", 0)),
        Column(("verdict", "note"),
               _decided(lambda c: (c.verdict, c.note or None),
                        lambda base: ("baseline" if base else None, None)),
               "Verdict", lambda r, v: fmt_verdict(r)),
        Column(("decided_on", "metric"),
               _decided(lambda c: (c.split, c.metric), lambda base: (None, None))),
        Column(("diff", "diff_low", "diff_high"),
               _decided(lambda c: (c.delta, c.low, c.high), lambda base: (math.nan,) * 3),
               lambda v: f"Δ {v.split} {rank} (points) [interval]", lambda r, v: fmt_interval(r)),
        Column(("interval_level", "p_value"),
               _decided(lambda c: (1 - c.level, c.p), lambda base: NAN2)),
        Column(("p_adjusted",), _decided(lambda c: (c.p_adj,), lambda base: (math.nan,)),
               "Adjusted p", lambda r, v: fmt_p(r["p_adjusted"])),
        Column(("n_pairs", "n_examples"),
               _decided(lambda c: (c.n_seeds, c.n_examples), lambda base: (0, 0))),
        Column(("seeds_needed",), _decided(_needed, lambda base: (None,)), "Seeds needed",
               lambda r, v: fmt_needed(r)),
    ]


def row(cols: Sequence[Column], arm: Arm, facts: Facts) -> dict[str, Any]:
    """One arm's row: every column's values under its keys."""
    out: dict[str, Any] = {}
    for c in cols:
        values = tuple(c.source(arm, facts))
        if len(values) != len(c.keys):
            raise ValueError(f"column {c.keys} gave {len(values)} values for {len(c.keys)} keys")
        out.update(zip(c.keys, values, strict=True))
    return out


def columns(kind: str, axes: Sequence[str]) -> list[str]:
    """The aggregated table's DataFrame columns, in order (the csv/json export)."""
    return [k for c in columns_of(kind, axes) for k in c.keys]


def shown(kind: str, axes: Sequence[str], view: View) -> tuple[list[str], list[Column]]:
    """The markdown table's headers and the columns that fill them, in order."""
    cols = [c for c in columns_of(kind, axes) if c.header is not None]
    return [c.header(view) if callable(c.header) else c.header for c in cols], cols
