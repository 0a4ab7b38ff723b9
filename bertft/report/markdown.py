"""Markdown for one spec's report and for the index. Every number comes from the stored results,
so the same results always give the same text (the golden-file tests rely on it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from bertft.results import TrialResult
from bertft.data import portable_sources
from bertft.metrics import truncation_note
from bertft.report import plots
from bertft.report.advice import plan_section, recommendation, role_lines
from bertft.report.decide import ALPHA, guarantee
from bertft.report.missing import Missing, missing_suffix
from bertft.report.best_arm import best_arm_sections
from bertft.report.columns import View, shown
from bertft.report.fmt import (
    DASH, METRIC_LABELS, cell, fmt_duration, fmt_interval, fmt_needed, fmt_verdict, points,
    truncate,
)
from bertft.report.fmt import md_table as _table
from bertft.report.arms import by_role, group_arms, newest, reported, results_kind
from bertft.report.table import aggregate, finite, ran_here, time_shares

REASON_CHARS = 300


def _distinct(values: Sequence[Any]) -> str:
    seen = sorted({str(v) for v in values if v not in (None, "")})
    return ", ".join(seen) if seen else "unknown"


# ---- sections ---------------------------------------------------------------------------------

def _counts(results: Sequence[TrialResult], unreadable: Sequence[Any]) -> str:
    parts = [f"{sum(r.status == s for r in results)} {s}" for s in ("passed", "failed", "diverged")]
    return ", ".join(parts + [f"{len(unreadable)} unreadable"])


def _header(results: Sequence[TrialResult], unreadable: Sequence[Any], name: str) -> list[str]:
    spec = newest(results).spec
    env = [r.environment for r in results]
    data = [r.data for r in results if r.data]
    device = _distinct([f"{e.get('device')} ({e.get('device_name')})" if e.get("device_name")
                        else e.get("device") for e in env])
    versions = ", ".join(f"{k} {_distinct([e.get(k) for e in env])}"
                         for k in ("python", "torch", "transformers"))
    sizes = " / ".join(f"{split} {_distinct([d.get(split) for d in data])}"
                       for split in ("train", "validation", "test"))
    trained = ran_here(results)  # the rest: copies
    walls = [r.timing.get("wall_seconds", r.timing.get("train_seconds")) for r in trained]
    wall = sum(w for w in walls if finite(w))
    copied = len(results) - len(trained)
    shares = time_shares(results)
    created = [r.created for r in results if isinstance(r.created, str) and r.created]
    lines = [f"# {spec.name}", ""]
    if spec.description:
        lines += [str(spec.description).strip(), ""]
    lines += [
        f"- **Spec file:** `{spec.file}`",
        f"- **Model:** {_distinct([r.config.get('model') for r in results])}",
        f"- **Task:** {_distinct([d.get('task') for d in data])} ("
        f"{results_kind(results).name}; source "
        f"{_distinct([portable_sources(d.get('source')) for d in data])})",
        f"- **Data sizes:** {sizes}{truncation_note(r.test for r in results)}",
        f"- **Device:** {device}; **dtype:** {_distinct([e.get('dtype') for e in env])}",
        f"- **Versions:** {versions}",
        f"- **Git commit:** {_distinct([e.get('git_commit') for e in env])}",
        f"- **Date:** {max(created) if created else 'unknown'} (newest result)",
        f"- **Total wall time:** {fmt_duration(wall)} over {len(results)} trials"
        + (f" ({copied} copied from trials of the same settings in other specs: their time is "
           f"counted where they ran)" if copied else ""),
        *([f"- **Time shares:** {', '.join(f'{k} {v:.0%}' for k, v in shares.items())} (test: "
           "the split the verdicts are decided on)"] if shares else []),
        f"- **Trials:** {_counts(results, unreadable)}",
        f"- **Axes:** {', '.join(f'`{a}`' for a in spec.axes) or 'none'}",
        "",
    ]
    if name != spec.name:
        lines[-1:] = [f"- **Results folder:** `{name}`", ""]
    return lines


def _main_table(df: pd.DataFrame, results: Sequence[TrialResult]) -> list[str]:
    spec = newest(results).spec
    metrics = results_kind(results).main_metrics
    rank = METRIC_LABELS[metrics[0]]
    split = _decision_split(df)
    view = View({a.arm_id: a.values for a in group_arms(results)},
                max([len(spec.seeds)] + df["n_seeds"].astype(int).tolist()), split)
    headers, cols = shown(results_kind(results).name, spec.axes, view)
    rows = []
    for _, r in df.iterrows():
        row = [cell(c.cell(r, view)) for c in cols]
        rows.append([f"**{c}**" for c in row] if r["best"] else row)
    lines = ["## Results", "", _table(rows, headers), "",
             f"Metrics are the mean ± the half width of the 95% confidence interval "
             f"(t distribution) over the passed seeds; `n=1` means a single seed, so no interval. "
             f"**Bold**: the best arm by mean validation {rank}. Cost figures are means over "
             f"seeds (peak memory: the maximum).", "",
             *(_decision_note(df, results, rank, split) if by_role(results)[0] else [])]
    if not df["baseline"].any():
        lines += ["No arm matches the spec's baseline "
                  f"`{newest(results).spec.baseline}`, so no differences are tested.", ""]
    short = df[df["fewer_seeds"]]
    for _, r in short.iterrows():
        lost = [f"seed {t.seed} {t.status}" for t in results
                if t.arm_id == r["arm"] and t.status != "passed"]
        why = f"; {', '.join(lost)}" if lost else ""
        lines.append(f"- ⚠ Fewer seeds than the other arms: `{r['arm']}` has "
                     f"{int(r['n_seeds'])} of {view.expected} passed seeds{why}.")
    if len(short):
        lines.append("")
    return lines


def _decision_split(df: pd.DataFrame) -> str:
    splits = [x for x in df.get("decided_on", []) if isinstance(x, str)]
    return "val" if splits and splits[0] == "validation" else "test"


def _decision_note(df: pd.DataFrame, results: Sequence[TrialResult], rank: str, split: str
                   ) -> list[str]:
    """How the verdicts were reached, in words (docs/statistics.md has the details)."""
    spec = newest(results).spec
    margin, m = float(getattr(spec, "equivalence_margin", 0.01)), _n_compared(df)
    adaptive = bool(int(getattr(spec, "min_seeds", 0) or 0))
    where = ("the **test** split (the validation split picked each trial's best epoch, so "
             "its figures, kept in the table, are optimistic)" if split == "test" else
             "the **validation** split (the task has no test split; it also picked each "
             "trial's best epoch)")
    lines = [f"**Verdicts** compare each arm with the baseline on {where}: the difference in "
             f"{rank}, recomputed from every example's stored prediction, paired over seeds "
             "and over examples (its interval counts both seed-to-seed and example-to-example "
             f"variation). Each interval is at level 1 − α/{m}, simultaneous over the {m} "
             f"comparison(s) (α = {ALPHA}{', split over the looks' if adaptive else ''}); "
             f"*better* / *worse*: above / below 0 (adjusted p = min(1, {m}·p)); *equivalent*: "
             f"within ±{points(margin).lstrip('+')} points (the spec's `equivalence_margin`); "
             "otherwise *undecided*, with the seeds needed (post-hoc power at the observed "
             "difference: a planning figure, not a promise).", "",
             f"**Guarantee.** {guarantee(m, ALPHA, adaptive)}", ""]
    if adaptive:
        lines += [f"Adaptive seeds: {spec.min_seeds} to {len(spec.seeds)} per arm; the "
                  "error rate is spent over the looks (docs/statistics.md), so adding seeds "
                  "to undecided arms does not inflate it.", ""]
    lacking = sorted({r.trial_id for r in results if r.status == "passed" and not r.predictions})
    if lacking:
        shown = ", ".join(f"`{t}`" for t in lacking[:8]) + (" …" if len(lacking) > 8 else "")
        lines += [f"- ⚠ {len(lacking)} passed result(s) lack per-example predictions (written "
                  f"before schema version 2), so comparisons using them are undecided: "
                  f"{shown}", ""]
    return lines


def _n_compared(df: pd.DataFrame) -> int:
    return int(sum(isinstance(v, str) and v != "baseline" for v in df["verdict"]))


def _first_line(error: Any) -> str:
    """The reason without the traceback the runner appends to a failure."""
    lines = [line for line in str(error or "").splitlines() if line.strip()]
    return lines[0] if lines else "no reason recorded"


def _failures(results: Sequence[TrialResult]) -> list[str]:
    bad = [r for r in results if r.status != "passed"]
    lines = ["## Failed or diverged trials", ""]
    if not bad:
        return lines + ["None.", ""]
    rows = [[f"`{r.trial_id}`", r.status, truncate(_first_line(r.error), REASON_CHARS)]
            for r in sorted(bad, key=lambda r: r.trial_id)]
    return lines + ["These trials are not in the table above.", "",
                    _table(rows, ["Trial", "Status", "Reason"]), ""]


def _unreadable(unreadable: Sequence[tuple[Path, str]]) -> list[str]:
    lines = ["## Unreadable results", ""]
    if not unreadable:
        return lines + ["None.", ""]
    rows = [[f"`{Path(p).parent.name}/{Path(p).name}`", truncate(reason, REASON_CHARS)]
            for p, reason in unreadable]
    return lines + ["These files were skipped.", "", _table(rows, ["File", "Reason"]), ""]


# ---- reports ----------------------------------------------------------------------------------

def render_report(results: Sequence[TrialResult], unreadable: Sequence[tuple[Path, str]],
                  out_dir: Path, name: str | None = None) -> tuple[str, list[Path]]:
    """The markdown of one spec's report and the PNGs written for it into `out_dir`
    (`<name>_metric.png`, `<name>_curves.png`, `<name>_throughput.png`, when they apply)."""
    results = sorted(results, key=lambda r: r.trial_id)
    if not results:
        title = name or "unnamed spec"
        return "\n".join([f"# {title}", "", "No readable results.", "",
                          *_unreadable(unreadable)]).rstrip() + "\n", []
    spec = newest(results).spec
    name = name or spec.name
    roles, planned, df = role_lines(results), plan_section(results), aggregate(results)
    text = recommendation(results, df).replace("Recommendation:", "**Recommendation:**", 1)
    advice = [text, ""] if text else []
    results = reported(results)  # the confirmation's, or a pilot's alone
    kind = results_kind(results)
    rank = kind.ranking_metric
    arms = group_arms(results)
    lines = _header(results, unreadable, name)
    lines[-1:-1] = roles
    lines += _main_table(df, results) + advice + planned

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = [(title, plot(out_dir / f"{name}_{suffix}.png")) for title, suffix, plot in (
        (f"Validation {METRIC_LABELS[rank]} against `{spec.axes[0] if spec.axes else ''}`",
         "metric", lambda p: plots.plot_metric(arms, spec, rank, p)),
        (f"Learning curves (validation {METRIC_LABELS[rank]})", "curves",
         lambda p: plots.plot_curves(arms, spec, rank, p)),
        ("Throughput against batch size", "throughput",
         lambda p: plots.plot_throughput(arms, spec, p)),
    )]
    drawn = [(title, path) for title, path in drawn if path is not None]
    if drawn:
        lines += ["## Plots", ""]
        for title, path in drawn:
            lines += [f"### {title}", "", f"![{title}]({quote(path.name)})", ""]

    best_rows = df[df["best"]]
    if len(best_rows):
        best_id = best_rows.iloc[0]["arm"]
        lines += best_arm_sections(next(a for a in arms if a.arm_id == best_id), kind)
    lines += _failures(results) + _unreadable(unreadable)
    return "\n".join(lines).rstrip() + "\n", [p for _, p in drawn]


def render_markdown(results: Sequence[TrialResult], unreadable: Sequence[tuple[Path, str]],
                    out_dir: Path, name: str | None = None) -> str:
    """One spec's report as markdown; its plots are written into `out_dir`, linked relatively."""
    return render_report(results, unreadable, out_dir, name)[0]


# ---- index ------------------------------------------------------------------------------------

def finding(results: Sequence[TrialResult], missing: Missing | None = None) -> str:
    """One decided sentence: the verdict counts and the most telling comparison (the largest
    better/worse difference, else the tightest equivalence), e.g.
    "`freeze_layers=all`: worse, −15.0 points [−19.1, −10.9]"; none while trials are missing."""
    if missing:
        return f"no finding: {missing.text}"
    if not any(r.status == "passed" for r in results):
        return "no passed trials"
    if not by_role(results)[0]:
        return "pilot only: no verdicts (its report plans the confirmation)"
    df = aggregate(results)
    if not df["baseline"].any():
        return f"no baseline arm (none matches {newest(results).spec.baseline})"
    rows = [r for _, r in df.iterrows() if isinstance(r["verdict"], str)
            and r["verdict"] != "baseline"]
    if not rows:
        return "only the baseline arm"
    counts = ", ".join(f"{sum(r['verdict'] == v for r in rows)} {v}"
                       for v in ("better", "worse", "equivalent", "undecided"))
    moved = [r for r in rows if r["verdict"] in ("better", "worse")]
    same = [r for r in rows if r["verdict"] == "equivalent"]
    if moved:
        top = max(moved, key=lambda r: abs(r["diff"]))
    elif same:
        top = min(same, key=lambda r: r["diff_high"] - r["diff_low"])
    else:
        top = max(rows, key=lambda r: abs(r["diff"]) if finite(r["diff"]) else -1)
    if not finite(top["diff"]):
        text = f"`{top['arm']}`: {fmt_verdict(top)}"
    else:
        text = f"`{top['arm']}`: {top['verdict']}, {fmt_interval(top)} points"
        if isinstance(top["note"], str):
            text += f" ({top['note']})"
    if top["verdict"] == "undecided" and fmt_needed(top) != DASH:
        text += f" (seeds needed: {fmt_needed(top)})"
    return f"{text} ({counts} vs `{df[df['baseline']].iloc[0]['arm']}`)"


def render_index(entries: Sequence[tuple[str, Sequence[TrialResult],
                                         Sequence[tuple[Path, str]]]],
                 missing: dict[str, Missing] | None = None) -> str:
    """`README.md` of the reports folder: one row per spec (name, results, unreadable files)."""
    rows = []
    for name, results, unreadable in sorted(entries, key=lambda e: e[0]):
        kind = results_kind(results).name if results else DASH
        gap = (missing or {}).get(name)  # declared trials not stored
        advice = recommendation(results, aggregate(results)) if results and not gap else ""
        rows.append([f"[{name}]({quote(name)}.md)", kind,
                     _counts(reported(results), unreadable) + missing_suffix(gap),
                     finding(results, gap), advice.removeprefix("Recommendation: ") or DASH])
    return "\n".join([
        "# Ablation reports", "",
        "One report per spec. Finding: the most telling arm-vs-baseline verdict (difference in "
        "points of the decision metric, on the test split, with its interval, simultaneous over "
        f"the report's m comparisons at 1 − {ALPHA}/m), then the count of each verdict.",
        "", "Recommendation: the cheapest arm to train among those better than or equivalent to "
        "the baseline, with its measured train time against the baseline's.", "",
        _table(rows, ["Spec", "Kind", "Trials", "Finding", "Recommendation"]), ""])
