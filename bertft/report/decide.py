"""The decision procedure of a report: arm vs baseline, paired over seeds and over examples.

Pure numpy/scipy functions, vectorised over leading axes so that the calibration tests can run
thousands of simulated reports in seconds (tests/test_decide.py). docs/statistics.md explains
the method; the short version, and why it is valid:

1. **Per-example influence.** A trial's metric on the decision split (test, else validation) is
   recomputed from its stored per-example predictions. Accuracy is a mean over examples;
   macro-F1 (per class 2·TP / (2·TP + FP + FN), averaged) and entity F1 (micro over
   sentences) are ratios of sums, so they are *not* averages of per-example scores. Their
   sampling variance over examples is taken from the influence function (the delta method):
   `psi_i` is how much example `i` moves the metric to first order, and
   `var(metric) ≈ var(psi) / n`. This is what a bootstrap that resamples examples and recomputes
   the metric estimates, without the resampling (tests/test_decide.py checks the two agree).
2. **Two-level, paired variance.** For arm `a` vs baseline `b` the table
   `Y[s, i] = D_s + psi_a[s, i] - psi_b[s, i]` (seed `s`, example `i`; `D_s` the exact metric
   difference at seed `s`, so row means are exact) is a seeds x examples crossed design: both arms
   see the same seeds and the same examples. The variance of the mean difference over a
   population of seeds *and* of examples is, by the two-way random-effects ANOVA,
   `var = s2_seed/k + s2_ex/n + s2_res/(k·n)`, estimated without bias by
   `(MS_seed + MS_ex - MS_res) / (k·n)` from the mean squares (a negative example component is
   set to 0, which only widens the interval). This is the two-way cluster-robust variance
   (seeds and examples as crossed clusters).
3. **Few seeds.** With 3 seeds the seed term has 2 degrees of freedom; a normal (or seed
   bootstrap) interval would be far too narrow. The t reference distribution takes the
   Welch-Satterthwaite degrees of freedom of the mean-square combination with the seed mean
   square at its upper confidence bound, of confidence `1 - 3·level` for an interval at
   two-sided error `level` (`Components.df_at`). Satterthwaite at the *observed* mean squares
   claims many degrees of freedom exactly when MS_seed comes out small, i.e. when the variance
   is underestimated (2.6x the nominal level at k = 3, level 0.05/3); at the upper bound the
   exact size in the normal seed + example model stays at or below the level for every share
   of seed variance (k = 2..20, levels 0.05 to 0.05/30; docs/statistics.md). It falls to `k - 1`
   when seed noise dominates and grows towards `n` when the example term does.
4. **One guarantee for every verdict.** The report's `m` comparisons (all of them, testable or
   not) each get an interval at the fixed level `1 - alpha/m` (Bonferroni); *better* when it lies
   above 0, *worse* below, *equivalent* inside `(-margin, margin)`; adjusted p `min(1, m·p)`.
   Proof: each interval covers its true difference with probability `>= 1 - alpha/m`, so all
   `m` cover at once with probability `>= 1 - alpha` (union bound, whatever their dependence).
   On that event every verdict is true: `low > 0` gives `delta > 0`, `high < 0` gives
   `delta < 0`, and `-margin < low <= delta <= high < margin` gives `|delta| < margin`. So any
   false claim (better, worse or equivalent) has probability `<= alpha` under any mix of true
   differences, provided each interval holds its level (item 3 is what makes it hold at few
   seeds; the simulations check it). Holm would give better/worse more power, but its
   step-down levels are not confidence levels: an equivalence judged at Holm's stopping level
   borrows the alpha the rejections freed, and the all-verdict error exceeded alpha (issue 20).
5. **Adaptive seeds.** Looks at `min`, midway and `max` seeds; look `l` spends `alpha_l` of
   `alpha` (a Pocock-type spending function, `sum(alpha_l) = alpha`) and gives every comparison
   still open its interval at `1 - alpha_l/m`, with `m` the whole family. Define, for every
   comparison and look, the interval on that look's seeds whether or not it is used: the union
   bound over all `m` comparisons and all looks gives probability `>= 1 - sum_l alpha_l =
   1 - alpha` that every one covers, and on that event every verdict at every look is true,
   however the looks decided which seeds to run: peeking does not inflate it.

The simulations (all-verdict error rates, power, the adaptive procedure) are in
tests/test_decide.py and, with 2,000 reports per setting, `python -m benchmarks.calibration`;
their figures are in docs/statistics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bertft.results import DEFAULT_MARGIN

ALPHA = 0.05
"""Family-wise error rate of a report's verdicts (better / worse / equivalent)."""
POWER = 0.8
"""Power at which "seeds needed" is computed."""
MAX_SEEDS = 50
"""Largest seed count "seeds needed" considers; beyond it: no feasible number."""
VERDICTS = ("better", "worse", "equivalent", "undecided")


# ---- metrics and their per-example influence ----------------------------------------------------

def accuracy_influence(pred: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy over the last axis and each example's influence (correct - accuracy)."""
    correct = (pred == label).astype(float)
    value = correct.mean(-1)
    return value, correct - value[..., None]


def macro_f1_influence(pred: np.ndarray, label: np.ndarray, n_classes: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 over the last axis, as `bertft.metrics` computes it (the mean over the classes
    present in gold or predictions, zero_division=0), and its influence function. Per class
    `F1 = 2·tp / (p + g)` with tp, p, g the fractions of examples that are true positives,
    predicted c, gold c; to first order example i moves it by `(2·tp_i - F1·(p_i + g_i)) /
    (p + g)`."""
    value = np.zeros(pred.shape[:-1])
    psi = np.zeros(pred.shape)
    present = np.zeros(pred.shape[:-1])
    for c in range(n_classes):
        p, g = (pred == c).astype(float), (label == c).astype(float)
        tp = p * g
        denom = p.mean(-1) + g.mean(-1)
        safe = np.where(denom > 0, denom, 1.0)
        f1 = np.where(denom > 0, 2 * tp.mean(-1) / safe, 0.0)
        value += f1
        present += denom > 0
        psi += np.where((denom > 0)[..., None],
                        (2 * tp - f1[..., None] * (p + g)) / safe[..., None], 0.0)
    present = np.maximum(present, 1)
    return value / present, psi / present[..., None]


def entity_f1_influence(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Micro entity F1 from per-sentence counts, `2·TP / (2·TP + FP + FN)`, and its influence:
    sentence i moves it by `(2·tp_i - F1·(2·tp_i + fp_i + fn_i)) / mean(2·tp + fp + fn)`."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    size = 2 * tp + fp + fn
    denom = size.mean(-1)
    safe = np.where(denom > 0, denom, 1.0)
    f1 = np.where(denom > 0, 2 * tp.mean(-1) / safe, 0.0)
    psi = np.where((denom > 0)[..., None], (2 * tp - f1[..., None] * size) / safe[..., None], 0.0)
    return f1, psi


# ---- one comparison: the paired two-level variance -----------------------------------------------

@dataclass(frozen=True)
class Components:
    """Arrays over the leading axes: the mean difference, its variance, the mean squares of the
    two-way ANOVA and the variance components (per seed, per example, seed x example residual).
    The t degrees of freedom depend on the interval's level: `df_at(level)`."""

    delta: np.ndarray
    var: np.ndarray
    ms_seed: np.ndarray
    ms_ex: np.ndarray
    s2_seed: np.ndarray
    s2_ex: np.ndarray
    s2_res: np.ndarray
    k: int
    n: int

    def df_at(self, level: float | np.ndarray) -> np.ndarray:
        """Degrees of freedom of an interval at two-sided error `level` (module docstring,
        item 3): Satterthwaite with the seed mean square at its upper confidence bound."""
        return satterthwaite(seed_upper(self.ms_seed, self.k, level), self.ms_ex, self.s2_res,
                             self.k, self.n)


DF_GAMMA = 3.0
"""The seed mean square enters the degrees of freedom at its upper confidence bound of
confidence `1 - DF_GAMMA·level` (level: the interval's two-sided error). 3 is the largest
integer for which the exact size in the seed + example normal model stays at or below the level
for every share of seed variance, k = 2..20, levels 0.05 to 0.05/30 (docs/statistics.md)."""


def ms_upper(ms: np.ndarray, k: int, gamma: float | np.ndarray) -> np.ndarray:
    """Upper confidence bound, at confidence `1 - gamma`, of the expectation of a seed mean
    square with k - 1 degrees of freedom (chi-square)."""
    return np.asarray(ms, dtype=float) * (k - 1) / stats.chi2.ppf(gamma, k - 1)


def seed_upper(ms_seed: np.ndarray, k: int, level: float | np.ndarray) -> np.ndarray:
    """Upper confidence bound of E[MS_seed] (k - 1 degrees of freedom) at confidence
    `1 - DF_GAMMA·level`."""
    return ms_upper(ms_seed, k, np.minimum(DF_GAMMA * np.asarray(level, dtype=float), 0.5))


def satterthwaite(ms_seed: np.ndarray, ms_ex: np.ndarray, ms_res: np.ndarray, k: int, n: int
                  ) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom of `(MS_seed + MS_ex - MS_res)/(kn)` (the example
    term left out when MS_ex <= MS_res, as the variance leaves it out), with the seed mean
    square floored at the residual one, its expectation when seeds add nothing."""
    ms_seed, ms_ex, ms_res = (np.asarray(x, dtype=float) for x in (ms_seed, ms_ex, ms_res))
    ex_on = ms_ex > ms_res
    a, b = np.maximum(ms_seed, ms_res) / (k * n), np.where(ex_on, ms_ex, 0.0) / (k * n)
    r = np.where(ex_on, ms_res, 0.0) / (k * n)
    denom = a ** 2 / (k - 1) + b ** 2 / (n - 1) + r ** 2 / ((k - 1) * (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, (a + b - r) ** 2 / denom, np.inf)


def paired_components(diff: np.ndarray, psi: np.ndarray) -> Components:
    """`diff[..., k]`: metric difference arm - baseline per shared seed; `psi[..., k, n]`: the
    difference of the two trials' per-example influences (each row has mean 0). Two-way
    random-effects ANOVA of `Y = diff + psi` (module docstring, items 2-3). Needs k >= 2, n >= 2."""
    diff, psi = np.asarray(diff, dtype=float), np.asarray(psi, dtype=float)
    k, n = psi.shape[-2], psi.shape[-1]
    delta = diff.mean(-1)
    ms_seed = n * ((diff - delta[..., None]) ** 2).sum(-1) / (k - 1)
    col = psi.mean(-2)
    ms_ex = k * (col ** 2).sum(-1) / (n - 1)
    ms_res = ((psi - col[..., None, :]) ** 2).sum((-2, -1)) / ((k - 1) * (n - 1))
    # var = MS_seed/(kn) + (MS_ex - MS_res)/(kn): expectation s2_seed/k + s2_ex/n + s2_res/(kn).
    # The seed mean square is always kept whole: with 3 seeds it cannot tell a zero seed
    # component from a small one, and dropping it when it comes out small (a pre-test) gives
    # intervals that are too narrow (simulated: 9.8% family-wise errors at k=3 instead of 5%).
    ex_on = ms_ex > ms_res
    s2_seed = np.maximum(ms_seed - ms_res, 0.0) / n
    s2_ex = np.where(ex_on, (ms_ex - ms_res) / k, 0.0)
    var = (ms_seed + np.where(ex_on, ms_ex - ms_res, 0.0)) / (k * n)
    return Components(delta, var, ms_seed, ms_ex, s2_seed, s2_ex, ms_res, k, n)


def p_value(delta: np.ndarray, var: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p of the t test of no difference; a zero variance gives 1 for no difference
    and 0 for any (a deterministic run)."""
    delta, var, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (delta, var, df)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(delta) / np.sqrt(var)
        p = 2 * stats.t.sf(t, np.minimum(df, 1e6))
    return np.where(var > 0, p, np.where(np.isnan(var), np.nan, (delta == 0).astype(float)))


# ---- a family of comparisons: simultaneous intervals, verdicts ----------------------------------

def bonferroni(p: np.ndarray, m: int | np.ndarray, alpha: float = ALPHA
               ) -> tuple[np.ndarray, np.ndarray]:
    """Bonferroni over a family of `m` comparisons: (adjusted p `min(1, m·p)`, each
    comparison's two-sided level `alpha/m`). The adjusted p equal statsmodels'
    `multipletests(p, method="bonferroni")` (tested)."""
    p = np.asarray(p, dtype=float)
    m = np.asarray(m)
    return np.minimum(m * p, 1.0), np.broadcast_to(alpha / np.maximum(m, 1), p.shape)


@dataclass(frozen=True)
class Family:
    """Decisions for the comparisons on the last axis (arrays of the same shape)."""

    delta: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    p_adj: np.ndarray
    level: np.ndarray    # two-sided error level of each interval: alpha/m
    verdict: np.ndarray  # index into VERDICTS

    def names(self) -> list[str]:
        return [VERDICTS[int(v)] for v in np.ravel(self.verdict)]


def decide(delta: np.ndarray, var: np.ndarray, df: np.ndarray, margin: float | np.ndarray,
           alpha: float, m: int | np.ndarray) -> Family:
    """Verdicts for one family of `m` comparisons (module docstring, item 4): each interval at
    level `1 - alpha/m`; *better* when it lies above 0, *worse* below, *equivalent* inside
    `(-margin, margin)`. Higher metric is better. `df` must be the degrees of freedom at that
    level (`Components.df_at(alpha/m)`). A comparison with a nan variance is undecided."""
    delta, var, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (delta, var, df)))
    p = p_value(delta, var, df)
    adj, level = bonferroni(p, m, alpha)
    with np.errstate(invalid="ignore"):
        half = stats.t.ppf(1 - level / 2, np.minimum(df, 1e6)) * np.sqrt(var)
    low, high = delta - half, delta + half
    with np.errstate(invalid="ignore"):
        verdict = np.select([low > 0, high < 0, (low > -margin) & (high < margin)],
                            [0, 1, 2], default=3)
    return Family(delta, low, high, p, adj, level, verdict)


def guarantee(m: int, alpha: float = ALPHA, adaptive: bool = False) -> str:
    """The one sentence a report states as its guarantee (module docstring, items 4-5)."""
    if m < 1:
        return ""
    each = (f"each of the {m} intervals is" if m > 1 else "its interval is")
    level = f"1 − {alpha:g}/{m}" if m > 1 else f"1 − {alpha:g}"
    if adaptive:
        return (f"Every verdict in this report (better, worse or equivalent) is wrong with "
                f"probability at most {100 * alpha:g}% in all, whatever the true differences "
                f"and however the looks added seeds: at each look {each} at level "
                f"1 − α_l/{m}, the looks' α_l summing to {alpha:g}.")
    return (f"Every verdict in this report (better, worse or equivalent) is wrong with "
            f"probability at most {100 * alpha:g}% in all, whatever the true differences: "
            f"{each} at level {level}.")


# ---- seeds needed ----------------------------------------------------------------------------

def expected_var_df(s2_seed: float, s2_ex: float, s2_res: float, k: int, n: int, level: float
                    ) -> tuple[float, float]:
    """The variance of the mean difference with k seeds and the degrees of freedom an interval
    at `level` would get (`Components.df_at`) if the mean squares came out at their
    expectations."""
    ms_seed, ms_ex = s2_res + n * s2_seed, s2_res + k * s2_ex
    var = (ms_seed + (ms_ex - s2_res if s2_ex > 0 else 0.0)) / (k * n)
    df = satterthwaite(seed_upper(ms_seed, k, level), ms_ex if s2_ex > 0 else 0.0, s2_res, k, n)
    return var, float(df)


def power(delta: float, var: float, df: float, margin: float, level: float) -> float:
    """Probability of a decision (better/worse, or equivalent) at one comparison tested at
    `level`, when the true difference is `delta`: the t test's power from the noncentral t, and
    the equivalence interval's from the normal approximation of the estimate; the larger."""
    if not var > 0:
        return 1.0
    df = min(df, 1e6)
    crit = float(stats.t.ppf(1 - level / 2, df))
    ncp = delta / math.sqrt(var)
    diff = float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))
    se = math.sqrt(var)
    equiv = stats.norm.cdf((margin - delta) / se - crit) + stats.norm.cdf(
        (margin + delta) / se - crit) - 1
    return max(diff, float(equiv), 0.0)


def seeds_needed(c: Components, margin: float, level: float, target: float = POWER,
                 max_seeds: int = MAX_SEEDS) -> int | None:
    """The fewest seeds (more than the k at hand, at most `max_seeds`) at which a comparison
    whose true difference is the observed one is decided with probability `target`, tested at
    `level` (alpha/m). A planning figure: it plugs in the observed difference and variance
    components (post-hoc power), so it is no promise. None when no number up to `max_seeds`
    will (e.g. the example term alone, which seeds do not shrink, is too wide)."""
    comps = [float(np.asarray(x)) for x in (c.delta, c.s2_seed, c.s2_ex, c.s2_res)]
    delta, s2_seed, s2_ex, s2_res = comps
    for k in range(max(c.k + 1, 2), max_seeds + 1):
        var, df = expected_var_df(s2_seed, s2_ex, s2_res, k, c.n, level)
        if power(delta, var, df, margin, level) >= target:
            return k
    return None


# ---- adaptive seeds ---------------------------------------------------------------------------

def looks(min_seeds: int, max_seeds: int) -> tuple[int, ...]:
    """Seed counts at which an adaptive run decides: min, midway and max."""
    return tuple(sorted({min_seeds, (min_seeds + max_seeds) // 2, max_seeds}))


def alpha_spent(schedule: tuple[int, ...], alpha: float = ALPHA) -> tuple[float, ...]:
    """The share of `alpha` each look spends: Pocock-type spending
    `alpha·ln(1 + (e - 1)·t)` at information fraction t = k / max, differenced; sums to alpha."""
    t = np.asarray(schedule, dtype=float) / schedule[-1]
    spent = alpha * np.log1p((math.e - 1) * t)
    return tuple(float(x) for x in np.diff(spent, prepend=0.0))


__all__ = ["ALPHA", "DEFAULT_MARGIN", "VERDICTS", "Components", "Family", "accuracy_influence",
           "alpha_spent", "bonferroni", "decide", "entity_f1_influence", "guarantee", "looks",
           "macro_f1_influence", "ms_upper", "paired_components", "power", "satterthwaite",
           "seed_upper", "seeds_needed", "sequential"]


def sequential(diff: np.ndarray, psi: np.ndarray, schedule: tuple[int, ...], margin: float,
               alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """The adaptive procedure on complete data, vectorised (module docstring, item 5):
    `diff[..., m, K]`, `psi[..., m, K, n]` hold K >= schedule[-1] seeds; look l uses the first
    schedule[l] seeds of the comparisons still open, each at level alpha_spent[l]/m (m: all
    comparisons, open or not). Returns the verdict index per comparison and the seeds each one
    used (its deciding look, or the last)."""
    spend = alpha_spent(schedule, alpha)
    m = diff.shape[-2]
    verdict = np.full(diff.shape[:-1], VERDICTS.index("undecided"))
    used = np.full(diff.shape[:-1], schedule[-1])
    open_ = np.ones(diff.shape[:-1], dtype=bool)
    for k, a in zip(schedule, spend, strict=True):
        c = paired_components(diff[..., :k], psi[..., :k, :])
        fam = decide(c.delta, c.var, c.df_at(a / m), margin, a, m)
        now = open_ & (fam.verdict != VERDICTS.index("undecided"))
        verdict = np.where(now, fam.verdict, verdict)
        used = np.where(now, k, used)
        open_ &= ~now
    return verdict, used
