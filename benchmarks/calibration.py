"""Calibration of the decision procedure (bertft.report.decide) by simulation: the all-verdict
family-wise error (any false better, worse or equivalent in a report) per setting, with its 95%
Clopper-Pearson upper bound, for the shipped procedure and the alternatives docs/statistics.md
compares (issue 20).

    python -m benchmarks.calibration            # 2,000 reports per setting (minutes)
    python -m benchmarks.calibration --reports 300
    python -m benchmarks.calibration --exact    # exact size of the degrees-of-freedom rules

The generator (`simulate`): a probit model with 5 classes (bbc-news-like priors), macro-F1 and
its influence function recomputed per trial; per-example difficulty shared by all arms and
seeds, arm x example effects, a seed shift shared by all arms, arm x seed effects (normal or
t with 3 degrees of freedom), seed x example effects shared by all arms (noise correlated
within a seed). The true difference of an arm is the expected macro-F1 difference over the
population of examples and seeds, computed from the generator's probabilities (`truth`), never
from the simulated reports; "at the margin" arms get the margin set to exactly that difference.
tests/test_decide.py runs the same settings with fewer reports.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bertft.report import decide as dc

PRIORS = np.array([0.23, 0.18, 0.19, 0.17, 0.23])
PRIORS = PRIORS / PRIORS.sum()
DIFFICULTY = np.array([2.0, 1.5, 1.8, 1.4, 2.2])  # probit of being right, per class


@dataclass(frozen=True)
class Setting:
    """One simulated report design. `shifts`: each arm's probit shift against the baseline;
    `at_margin`: the arm whose true difference is the margin (None: `margin` as given)."""

    name: str
    k: int
    n: int
    shifts: tuple[float, ...]
    seed_sd: float = 0.1        # arm x seed
    shared_sd: float = 0.1      # seed shift shared by all arms
    ex_sd: float = 1.0          # example difficulty, shared
    arm_ex_sd: float = 0.2      # arm x example
    seed_ex_sd: float = 0.3     # seed x example, shared by the arms of a seed
    tails: str = "normal"       # or "t3": the seed effects
    margin: float = 0.02
    at_margin: int | None = None
    adaptive: tuple[int, int] | None = None  # (min, max) seeds
    seed_share: float = 0.69    # tails="normal-table": the seed part of the mean's variance


def _seed_effects(rng: np.random.Generator, sd: float, shape: tuple, tails: str) -> np.ndarray:
    if tails == "t3":  # unit variance: t3 has variance 3
        return sd * rng.standard_t(3, size=shape) / math.sqrt(3)
    return rng.normal(0, sd, size=shape)


def simulate(rng: np.random.Generator, s: Setting, reports: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """`diff[reports, arms, seeds]` (macro-F1, arm - baseline) and `psi[reports, arms, seeds,
    n]`, the influence differences."""
    if s.tails == "normal-table":
        return _normal_table(rng, s, reports)
    k = s.adaptive[1] if s.adaptive else s.k
    a = len(s.shifts) + 1
    label = np.repeat(np.arange(5), np.round(PRIORS * s.n).astype(int))[:s.n]
    label = np.concatenate([label, np.zeros(s.n - len(label), dtype=int)])
    shifts = np.concatenate([[0.0], s.shifts])[None, :, None, None]
    z = (DIFFICULTY[label] + shifts + rng.normal(0, s.ex_sd, (reports, 1, 1, s.n))
         + rng.normal(0, s.arm_ex_sd, (reports, a, 1, s.n))
         + _seed_effects(rng, s.shared_sd, (reports, 1, k, 1), s.tails)
         + _seed_effects(rng, s.seed_sd, (reports, a, k, 1), s.tails)
         + rng.normal(0, s.seed_ex_sd, (reports, 1, k, s.n)))
    right = rng.standard_normal((reports, a, k, s.n)) < z
    confusable = (label + rng.integers(1, 5, (reports, 1, 1, s.n))) % 5
    other = (label + rng.integers(1, 5, (reports, a, k, s.n))) % 5
    wrong = np.where(rng.random((reports, a, k, s.n)) < 0.7, confusable, other)
    value, psi = dc.macro_f1_influence(np.where(right, label, wrong), label, 5)
    return value[:, 1:] - value[:, :1], psi[:, 1:] - psi[:, :1]


def _normal_table(rng: np.random.Generator, s: Setting, reports: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """An exactly normal seeds x examples table per comparison, true difference `shifts`:
    residual sd 1, example and residual parts of the mean's variance equal, the seed part
    `seed_share` of it."""
    k, n, a = s.k, s.n, len(s.shifts)
    rest = 1 / (k * n) + (1 / k) / n  # residual sd 1, example sd sqrt(1/k)
    seed_sd = math.sqrt(k * rest * s.seed_share / (1 - s.seed_share))
    y = (rng.normal(0, seed_sd, (reports, a, k, 1)) + rng.normal(0, math.sqrt(1 / k),
                                                                  (reports, a, 1, n))
         + rng.standard_normal((reports, a, k, n)) + np.array(s.shifts)[:, None, None])
    diff = y.mean(-1)
    return diff, y - diff[..., None]


def _population_f1(shift: float, z: np.ndarray, s: Setting) -> np.ndarray:
    """Macro-F1 over the population of examples at seed effect `z` (arm x seed + shared):
    errors land on the other classes uniformly on average."""
    scale = math.sqrt(1 + s.ex_sd ** 2 + s.arm_ex_sd ** 2 + s.seed_ex_sd ** 2)
    p = stats.norm.cdf((DIFFICULTY[:, None] + shift + z[None]) / scale)
    err = PRIORS[:, None] * (1 - p)
    received = (err.sum(0, keepdims=True) - err) / 4
    f1 = 2 * PRIORS[:, None] * p / (PRIORS[:, None] + PRIORS[:, None] * p + received)
    return f1.mean(0)


@functools.cache
def truth(s: Setting) -> tuple[float, ...]:
    """Each arm's true difference: E over seeds of the population macro-F1 difference (Monte
    Carlo over 400,000 seed effects, the same draws for every arm; exactly 0 for shift 0); for
    a normal table, the shifts themselves."""
    if s.tails == "normal-table":
        return s.shifts
    rng = np.random.default_rng(12345)
    z = (_seed_effects(rng, s.shared_sd, (400_000,), s.tails)
         + _seed_effects(rng, s.seed_sd, (400_000,), s.tails))
    base = _population_f1(0.0, z, s).mean()
    return tuple(float(_population_f1(x, z, s).mean() - base) if x else 0.0 for x in s.shifts)


def margin_of(s: Setting) -> float:
    return abs(truth(s)[s.at_margin]) if s.at_margin is not None else s.margin


def false_claims(verdict: np.ndarray, delta: np.ndarray, margin: float) -> np.ndarray:
    """Per report: any false better (delta <= 0), worse (delta >= 0) or equivalent
    (|delta| >= margin) among its comparisons (last axis)."""
    wrong = (((verdict == 0) & (delta <= 0)) | ((verdict == 1) & (delta >= 0))
             | ((verdict == 2) & (np.abs(delta) >= margin)))
    return wrong.any(-1)


def upper(x: int, n: int) -> float:
    """95% Clopper-Pearson upper bound (two-sided interval) of a binomial rate."""
    return float(stats.binomtest(x, n).proportion_ci(0.95, method="exact").high)


# ---- procedures: the shipped one and the alternatives -------------------------------------------

Procedure = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]


def fixed(df_rule: str = "upper", holm: bool = False) -> Procedure:
    """A fixed-design procedure: Bonferroni intervals at alpha/m (or, `holm`, the procedure
    before issue 20: Holm, equivalence at Holm's stopping level) with degrees of freedom from
    `df_rule`: upper (shipped), observed (Satterthwaite at the observed mean squares, floored:
    before issue 20), k-1, oracle (Satterthwaite at the true mean squares)."""
    def run(diff: np.ndarray, psi: np.ndarray, margin: float, alpha: float) -> np.ndarray:
        c = dc.paired_components(diff, psi)
        m = diff.shape[-2]
        df = _df(c, df_rule, alpha / m)
        if holm:
            return _holm_verdicts(c, df, margin, alpha)
        return dc.decide(c.delta, c.var, df, margin, alpha, m).verdict
    return run


def _df(c: dc.Components, rule: str, level: float) -> np.ndarray:
    if rule == "upper":
        return c.df_at(level)
    if rule == "observed":
        return dc.satterthwaite(c.ms_seed, c.ms_ex, c.s2_res, c.k, c.n)
    if rule == "k-1":
        return np.full(c.delta.shape, c.k - 1.0)
    assert rule == "oracle"
    mean = [np.broadcast_to(x.mean(0), x.shape) for x in (c.ms_seed, c.ms_ex, c.s2_res)]
    return dc.satterthwaite(*mean, c.k, c.n)


def _holm_verdicts(c: dc.Components, df: np.ndarray, margin: float, alpha: float
                   ) -> np.ndarray:
    """The procedure before issue 20: Holm's step-down, each interval at the level Holm tested
    it, equivalence from a non-rejected comparison's interval at Holm's stopping level."""
    p = dc.p_value(c.delta, c.var, df)
    m = p.shape[-1]
    order = np.argsort(p, -1, kind="stable")
    ps = np.take_along_axis(p, order, -1)
    factor = m - np.arange(m)
    rejected_sorted = np.minimum(np.maximum.accumulate(ps * factor, -1), 1) <= alpha
    n_rej = rejected_sorted.sum(-1, keepdims=True)
    level_sorted = np.where(rejected_sorted, alpha / factor, alpha / np.maximum(m - n_rej, 1))
    inverse = np.argsort(order, -1)
    rejected = np.take_along_axis(rejected_sorted, inverse, -1)
    level = np.take_along_axis(level_sorted, inverse, -1)
    half = stats.t.ppf(1 - level / 2, np.minimum(df, 1e6)) * np.sqrt(c.var)
    equivalent = ~rejected & (c.delta - half > -margin) & (c.delta + half < margin)
    return np.select([rejected & (c.delta > 0), rejected & (c.delta < 0), equivalent],
                     [0, 1, 2], default=3)


def adaptive(diff: np.ndarray, psi: np.ndarray, margin: float, alpha: float, s: Setting
             ) -> np.ndarray:
    assert s.adaptive is not None
    return dc.sequential(diff, psi, dc.looks(*s.adaptive), margin, alpha)[0]


PROCEDURES: dict[str, Procedure] = {
    "shipped (Bonferroni, df upper bound)": fixed("upper"),
    "before issue 20 (Holm, df observed)": fixed("observed", holm=True),
    "Bonferroni, df observed": fixed("observed"),
    "Bonferroni, df k-1": fixed("k-1"),
    "Bonferroni, df oracle (true MS)": fixed("oracle"),
}


@dataclass
class Tally:
    """Reports with a false claim, reports, false claims per comparison, verdict counts."""

    false_reports: int
    reports: int
    false_comparisons: int
    counts: np.ndarray  # [arm, verdict]

    @property
    def rate(self) -> float:
        return self.false_reports / self.reports

    @property
    def upper(self) -> float:
        return upper(self.false_reports, self.reports)


def evaluate(s: Setting, reports: int, procedures: dict[str, Procedure], seed: int = 0,
             chunk: int = 100) -> dict[str, Tally]:
    """Each procedure on the same `reports` simulated reports of setting `s` (an adaptive
    setting runs `decide.sequential` whatever the procedure)."""
    rng = np.random.default_rng(seed)
    delta, margin = np.array(truth(s)), margin_of(s)
    out = {name: Tally(0, 0, 0, np.zeros((len(s.shifts), 4), int)) for name in procedures}
    for start in range(0, reports, chunk):
        diff, psi = simulate(rng, s, min(chunk, reports - start))
        for name, proc in procedures.items():
            v = adaptive(diff, psi, margin, dc.ALPHA, s) if s.adaptive else \
                proc(diff, psi, margin, dc.ALPHA)
            t = out[name]
            t.false_reports += int(false_claims(v, delta, margin).sum())
            t.false_comparisons += int(false_claims(v[..., None], delta[:, None], margin).sum())
            t.reports += len(v)
            t.counts += np.stack([(v == i).sum(0) for i in range(4)], -1)
    return out


# ---- the settings ---------------------------------------------------------------------------

SEED_DOMINATED = dict(seed_sd=0.3, shared_sd=0.3, arm_ex_sd=0.1, seed_ex_sd=0.3)
EXAMPLE_DOMINATED = dict(seed_sd=0.02, shared_sd=0.1, arm_ex_sd=1.2, seed_ex_sd=0.1)
MIXED = (0.0, -0.2, -1.0)  # identical, at the margin (about -2.9 points), clearly worse

SETTINGS = (
    Setting("identical arms, seed-dominated, k=3 (issue row 1)", 3, 668, (0.0,) * 3,
            **SEED_DOMINATED),
    Setting("exactly normal table, k=3, seed part 69% (issue row 2)", 3, 668, (0.0,) * 3,
            tails="normal-table"),
    Setting("1 identical + 2 at the margin, k=10 (issue row 3)", 10, 668, (0.0, -0.2, -0.2),
            at_margin=1),
    Setting("mixed, seed-dominated, k=3, n=100", 3, 100, MIXED, at_margin=1, **SEED_DOMINATED),
    Setting("mixed, seed-dominated, k=3, n=668", 3, 668, MIXED, at_margin=1, **SEED_DOMINATED),
    Setting("mixed, seed-dominated, k=3, n=2000", 3, 2000, MIXED, at_margin=1,
            **SEED_DOMINATED),
    Setting("mixed, default noise, k=4, n=668", 4, 668, MIXED, at_margin=1),
    Setting("mixed, t3 seed effects, k=3, n=668", 3, 668, MIXED, at_margin=1, tails="t3",
            **SEED_DOMINATED),
    Setting("mixed, t3 seed effects, k=4, n=300", 4, 300, MIXED, at_margin=1, tails="t3"),
    Setting("mixed, example-dominated, k=3, n=668", 3, 668, MIXED, at_margin=1,
            **EXAMPLE_DOMINATED),
    Setting("mixed, adaptive 3 -> 6 -> 10, n=668", 3, 668, MIXED, at_margin=1,
            adaptive=(3, 10), **SEED_DOMINATED),
)
POWER_SETTING = Setting("power: example-dominated, k=3, n=668 (identical; -5 points)", 3, 668,
                        (0.0, -0.35), **EXAMPLE_DOMINATED)


# ---- the exact size of a degrees-of-freedom rule in the seed + example normal model -----------

def _sat(a: np.ndarray, c: float, k: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, (a + c) ** 2 / (a ** 2 / (k - 1)), np.inf)


DF_RULES: dict[str, Callable[[np.ndarray, float, int, float, float], np.ndarray]] = {
    # (seed term as observed, example term (known), k, true seed term, level) -> df
    "observed": lambda a, c, k, rho, lv: _sat(a, c, k),
    "upper bound, 50%": lambda a, c, k, rho, lv: _sat(a * (k - 1) / stats.chi2.ppf(0.5, k - 1),
                                                      c, k),
    "upper bound, 75%": lambda a, c, k, rho, lv: _sat(a * (k - 1) / stats.chi2.ppf(0.25, k - 1),
                                                      c, k),
    "upper bound, 1 - 3 level (shipped)": lambda a, c, k, rho, lv: _sat(
        dc.seed_upper(a, k, lv), c, k),
    "upper bound, 1 - 5 level": lambda a, c, k, rho, lv: _sat(
        a * (k - 1) / stats.chi2.ppf(min(5 * lv, 0.5), k - 1), c, k),
    "k - 1": lambda a, c, k, rho, lv: np.full_like(a, k - 1.0),
    "true mean squares": lambda a, c, k, rho, lv: _sat(rho + 0 * a, c, k),
}


def exact_size(rule: str, k: int, level: float, rho: float, grid: int = 4000
               ) -> tuple[float, float]:
    """(Size, mean interval half width) of the t interval with `rule`'s degrees of freedom when
    the mean's variance is a seed term `rho` (k - 1 df) plus an example term `1 - rho` known
    exactly (n large): one-dimensional quadrature over the seed mean square's chi-square."""
    x = stats.chi2.ppf((np.arange(grid) + 0.5) / grid, k - 1)
    a, c = rho * x / (k - 1), 1 - rho
    q = stats.t.ppf(1 - level / 2, np.minimum(DF_RULES[rule](a, c, k, rho, level), 1e6))
    return float((2 * stats.norm.sf(q * np.sqrt(a + c))).mean()), float((q * np.sqrt(a + c)).mean())


def exact_table() -> None:
    """Maximum size / level over the seed share (0 to 1), and the half width relative to
    Satterthwaite at the true mean squares at seed shares 0.15 and 0.6 (level 0.05/3)."""
    shares = np.linspace(0, 1, 51)
    print("| Rule | k | max size / level at 0.05, 0.05/3, 0.0208/3, 0.05/30 "
          "| width vs true MS at share 0.15, 0.6 (0.05/3) |")
    print("| --- | --- | --- | --- |")
    for rule in DF_RULES:
        for k in (2, 3, 4, 6, 10):
            sizes = [max(exact_size(rule, k, lv, r)[0] for r in shares) / lv
                     for lv in (0.05, 0.05 / 3, 0.0208 / 3, 0.05 / 30)]
            widths = [exact_size(rule, k, 0.05 / 3, r)[1]
                      / exact_size("true mean squares", k, 0.05 / 3, r)[1] for r in (0.15, 0.6)]
            print(f"| {rule} | {k} | " + ", ".join(f"{x:.2f}" for x in sizes) + " | "
                  + ", ".join(f"{w:.2f}" for w in widths) + " |", flush=True)


def _row(s: Setting, name: str, t: Tally) -> list[str]:
    arms = "; ".join(
        f"{100 * d:+.1f}: " + ", ".join(f"{100 * c / t.reports:.0f}% {dc.VERDICTS[i]}"
                                       for i, c in enumerate(counts) if c)
        for d, counts in zip(truth(s), t.counts, strict=True))
    per = t.false_comparisons / (t.reports * len(s.shifts))
    return [s.name, name, f"{100 * t.rate:.2f}% [≤ {100 * t.upper:.2f}]", f"{100 * per:.2f}%",
            arms]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--exact", action="store_true",
                        help="the exact-size table of the degrees-of-freedom rules instead")
    args = parser.parse_args(argv)
    if args.exact:
        exact_table()
        return
    print("| Setting | Procedure | Any false verdict [95% upper] | False per comparison "
          "| Verdicts per arm (true Δ, points) |")
    print("| --- | --- | --- | --- | --- |")
    for s in (*SETTINGS, POWER_SETTING):
        procs = {"shipped (adaptive)": PROCEDURES["shipped (Bonferroni, df upper bound)"]} \
            if s.adaptive else PROCEDURES
        for name, t in evaluate(s, args.reports, procs).items():
            print("| " + " | ".join(_row(s, name, t)) + " |", flush=True)


if __name__ == "__main__":
    main()
