"""Formatting shared by the report's sections: table cells, numbers and differences in points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from tabulate import tabulate


METRIC_LABELS = {"f1_macro": "F1 (macro)", "accuracy": "accuracy", "f1": "entity F1"}
DASH = "–"


def finite(value: Any) -> bool:
    """A real number (not a bool, NaN or infinity): what tables and sums may use."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def finite_mean(values: Sequence[Any]) -> float:
    """The mean of the finite numbers among `values` (NaN when there are none)."""
    xs = [float(v) for v in values if finite(v)]
    return sum(xs) / len(xs) if xs else math.nan


def cell(value: Any) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def fmt_num(x: Any, decimals: int) -> str:
    return f"{x:,.{decimals}f}" if finite(x) else DASH


def points(x: float) -> str:
    """A metric difference in points (hundredths), signed: `+1.2`, `−15.0`."""
    return f"{100 * x:+.1f}".replace("-", "−")


def md_table(rows: list[list[Any]], headers: list[str]) -> str:
    # disable_numparse: tabulate would otherwise reformat "0.8100" as "0.81"
    return tabulate([[cell(c) for c in r] for r in rows], headers=[cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def truncate(text: Any, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def fmt_ci(mean: float, half: float) -> str:
    """`0.8123 ± 0.0123`; one seed gives `0.8123 (n=1)`; no seed gives a dash."""
    if not finite(mean):
        return DASH
    if not finite(half):
        return f"{mean:.4f} (n=1)"
    return f"{mean:.4f} ± {half:.4f}"


def fmt_p(p: Any) -> str:
    if not finite(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_duration(seconds: float) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    human = f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"
    return f"{seconds:,.1f} s ({human})"


def fmt_interval(row: pd.Series | dict) -> str:
    """`−15.0 [−19.1, −10.9]` (points), or a dash."""
    if not finite(row["diff"]):
        return DASH
    if not finite(row["diff_low"]):
        return points(row["diff"])
    return f"{points(row['diff'])} [{points(row['diff_low'])}, {points(row['diff_high'])}]"


def fmt_needed(row: pd.Series | dict) -> str:
    needed = row["seeds_needed"]
    if needed is None or (isinstance(needed, float) and math.isnan(needed)):
        return DASH
    return "no feasible number" if int(needed) < 0 else str(int(needed))


def fmt_verdict(row: pd.Series | dict) -> str:
    verdict = row["verdict"]
    if verdict is None or (isinstance(verdict, float) and math.isnan(verdict)):
        return DASH
    return f"{verdict} ({row['note']})" if isinstance(row.get("note"), str) else str(verdict)
