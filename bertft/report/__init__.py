"""Comparison reports from stored ablation results (`bertft report`).

A report is a pure function of the stored `TrialResult`s: one markdown file per spec with
seed statistics (mean ± 95% t interval), a verdict per arm against the baseline arm (better /
worse / equivalent / undecided, from per-example predictions paired over seeds and examples,
intervals simultaneous at 1 - 0.05/m: `compare`, `decide`, docs/statistics.md), plots beside
it, and an index `README.md`. Unreadable result files are listed, never fatal.
"""

from bertft.report.compare import compare
from bertft.report.load import load_results
from bertft.report.markdown import finding, render_index, render_markdown, render_report
from bertft.report.render import render_all
from bertft.report.stats import mean_ci, paired_test
from bertft.report.table import aggregate

__all__ = ["aggregate", "compare", "finding", "load_results", "mean_ci", "paired_test",
           "render_all", "render_index", "render_markdown", "render_report"]
