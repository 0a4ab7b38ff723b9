"""The columns of a report's results table, declared once: each names the DataFrame columns it
holds (the csv/json export of `aggregate`, in declaration order) and, when it is shown in the
markdown table, its header and how its cell is written from a row (`markdown._main_table`, the
shown columns in the same order). A new column is one entry here plus its value in
`table.aggregate`, which refuses a key that is not declared."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bertft.kinds import kind_of
from bertft.report.fmt import (
    METRIC_LABELS, fmt_ci, fmt_interval, fmt_needed, fmt_num, fmt_p, fmt_verdict,
)


@dataclass(frozen=True)
class View:
    """What a cell needs beyond its row: the axis values as stored (pandas would show an int
    column holding a None as floats), the seeds an arm should have, the decision split."""

    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    expected: int = 0
    split: str = "test"


Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    keys: tuple[str, ...]                        # DataFrame (export) columns, in order
    header: str | Callable[[View], str] | None = None  # markdown header; None: export only
    cell: Callable[[Row, View], Any] | None = None


def _seeds(r: Row, v: View) -> str:
    n = str(int(r["n_seeds"]))
    return f"{n} of {v.expected} ⚠" if r["fewer_seeds"] else n


def _num(key: str, decimals: int) -> Callable[[Row, View], str]:
    return lambda r, v: fmt_num(r[key], decimals)


def columns_of(kind: str, axes: Sequence[str]) -> list[Column]:
    """Every column of the results table for a task kind and a spec's axes, in order."""
    metrics = kind_of(kind).main_metrics
    rank = METRIC_LABELS[metrics[0]]

    def axis(a: str) -> Column:
        return Column((a,), a, lambda r, v: v.values[r["arm"]][a])

    def metric(split: str, m: str) -> Column:
        label = {"val": "Val", "test": "Test"}[split]
        keys = (f"{split}_{m}_mean", f"{split}_{m}_ci")
        return Column(keys, f"{label} {METRIC_LABELS[m]}",
                      lambda r, v: fmt_ci(*(r[k] for k in keys)))

    return [
        Column(("arm",), None if axes else "arm", lambda r, v: r["arm"]),  # shown without axes
        *[axis(a) for a in axes],
        Column(("baseline", "best")),
        *[metric(s, m) for s in ("val", "test") for m in metrics],
        Column(("n_seeds", "fewer_seeds"), "Seeds", _seeds),
        Column(("seeds", "n_failed", "n_diverged")),
        Column(("best_epoch",), "Best epoch", _num("best_epoch", 1)),
        Column(("train_seconds",), "Train time (s)", _num("train_seconds", 1)),
        Column(("samples_per_s",), "Samples/s", _num("samples_per_s", 1)),
        Column(("tokens_per_s",), "Tokens/s", _num("tokens_per_s", 0)),
        Column(("peak_memory_mb",), "Peak memory (MB)", _num("peak_memory_mb", 0)),
        Column(("verdict", "note"), "Verdict", lambda r, v: fmt_verdict(r)),
        Column(("decided_on", "metric")),
        Column(("diff", "diff_low", "diff_high"),
               lambda v: f"Δ {v.split} {rank} (points) [interval]", lambda r, v: fmt_interval(r)),
        Column(("interval_level", "p_value")),
        Column(("p_adjusted",), "Adjusted p", lambda r, v: fmt_p(r["p_adjusted"])),
        Column(("n_pairs", "n_examples")),
        Column(("seeds_needed",), "Seeds needed", lambda r, v: fmt_needed(r)),
    ]


def columns(kind: str, axes: Sequence[str]) -> list[str]:
    """The aggregated table's DataFrame columns, in order (the csv/json export)."""
    return [k for c in columns_of(kind, axes) for k in c.keys]


def shown(kind: str, axes: Sequence[str], view: View) -> tuple[list[str], list[Column]]:
    """The markdown table's headers and the columns that fill them, in order."""
    cols = [c for c in columns_of(kind, axes) if c.header is not None]
    return [c.header(view) if callable(c.header) else c.header for c in cols], cols
