"""PNG plots beside a report: the ranking metric against the main axis, learning curves, and
throughput against batch size. Drawn on plain `Figure`s (Agg), with no pyplot global state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bertft.results import SpecInfo
from bertft.report.stats import mean_ci
from bertft.report.arms import Arm, metric_by_seed, sort_key


def _label(value: Any) -> str:
    return str(value)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    # no "Software" entry: the file depends on the results only, not on the matplotlib version
    fig.savefig(path, dpi=100, metadata={"Software": None})
    return path


def _against_axis(arms: Sequence[Arm], spec: SpecInfo, axis: str, values_of, ylabel: str,
                  title: str, path: Path) -> Path | None:
    """One line per combination of the other axes: mean and t interval of `values_of(arm)`
    (a list over seeds) against `axis`."""
    others = [a for a in spec.axes if a != axis]
    points = [(arm, mean_ci(values_of(arm))) for arm in arms]
    points = [(arm, m, ci) for arm, (m, ci) in points if not math.isnan(m)]
    if not points:
        return None
    xs_all = [arm.values.get(axis) for arm, _, _ in points]
    numeric = _numeric(xs_all)
    categories = list(dict.fromkeys(_label(x) for x in sorted(xs_all, key=sort_key))) \
        if not numeric else []
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    groups: dict[str, list[tuple[Any, float, float]]] = {}
    for arm, m, ci in points:
        key = ",".join(f"{o}={_label(arm.values.get(o))}" for o in others)
        groups.setdefault(key, []).append((arm.values.get(axis), m, ci))
    for key, pts in groups.items():
        pts.sort(key=lambda p: float(p[0]) if numeric else categories.index(_label(p[0])))
        x = [float(p[0]) if numeric else categories.index(_label(p[0])) for p in pts]
        y = [p[1] for p in pts]
        err = [p[2] if math.isfinite(p[2]) else 0.0 for p in pts]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, label=key or None)
    if numeric:
        xs = [float(x) for x in xs_all]
        if min(xs) > 0 and max(xs) / min(xs) >= 100:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(axis)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_metric(arms: Sequence[Arm], spec: SpecInfo, metric: str, path: Path) -> Path | None:
    """Validation `metric` (mean ± 95% CI over seeds) against the main axis, spec.axes[0]."""
    if not spec.axes:
        return None
    return _against_axis(arms, spec, spec.axes[0],
                         lambda arm: list(metric_by_seed(arm, "validation", metric).values()),
                         f"validation {metric}", f"{spec.name}: validation {metric} "
                         "(mean ± 95% CI)", path)


def plot_throughput(arms: Sequence[Arm], spec: SpecInfo, path: Path) -> Path | None:
    """Training samples/s (mean ± 95% CI over seeds) against batch size."""
    if "batch_size" not in spec.axes:
        return None

    def samples(arm: Arm) -> list[float]:
        return [float(t.timing["samples_per_s"]) for t in arm.passed
                if isinstance(t.timing.get("samples_per_s"), int | float)]

    return _against_axis(arms, spec, "batch_size", samples, "training samples/s",
                         f"{spec.name}: throughput (mean ± 95% CI)", path)


def learning_curve(arm: Arm, metric: str) -> dict[int, float]:
    """{epoch: mean over seeds of the validation metric at the epoch's last evaluation}."""
    per_epoch: dict[int, list[float]] = {}
    for t in arm.passed:
        last: dict[int, float] = {}
        for row in t.history:  # rows are in training order; a later row of an epoch wins
            value, epoch = row.get(f"val_{metric}"), row.get("epoch")
            if isinstance(value, int | float) and isinstance(epoch, int):
                last[epoch] = float(value)
        for epoch, value in last.items():
            per_epoch.setdefault(epoch, []).append(value)
    return {e: sum(v) / len(v) for e, v in sorted(per_epoch.items())}


def plot_curves(arms: Sequence[Arm], spec: SpecInfo, metric: str, path: Path) -> Path | None:
    """Validation metric per epoch, mean over seeds, one line per arm."""
    curves = [(arm.arm_id, learning_curve(arm, metric)) for arm in arms]
    curves = [(name, c) for name, c in curves if c]
    if not curves:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, curve in curves:
        ax.plot(list(curve), list(curve.values()), marker="o", label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"{spec.name}: learning curves (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)
