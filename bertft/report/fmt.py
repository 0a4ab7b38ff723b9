"""Formatting shared by the report's sections: table cells, numbers and differences in points."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from bertft.report.table import finite

METRIC_LABELS = {"f1_macro": "F1 (macro)", "accuracy": "accuracy", "f1": "entity F1"}
DASH = "–"


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
