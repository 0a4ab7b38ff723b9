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
   Welch-Satterthwaite degrees of freedom of the mean-square combination, which falls to about
   `k - 1` when seed noise dominates and grows towards `n` when the example term does.
4. **Family of comparisons.** Holm's step-down over the report's comparisons (two-sided t tests
   of no difference); *better* / *worse* when the adjusted p is below `alpha`. Each comparison's
   interval is taken at the level at which Holm tested it (`1 - alpha/m` when nothing is
   rejected: Bonferroni-simultaneous), so an interval excludes 0 exactly when Holm rejects.
   *Equivalent* when a non-rejected comparison's interval lies inside `±margin`.
5. **Adaptive seeds.** Looks at `min`, midway and `max` seeds; look `l` spends `alpha_l` of
   `alpha` (a Pocock-type spending function, `sum(alpha_l) = alpha`), and at each look Holm runs
   over the whole family with the comparisons decided earlier given p = 1. Each look's claims are
   wrong with probability at most `alpha_l` whatever happened before, so by the union bound the
   whole sequence is wrong with probability at most `alpha`: peeking does not inflate it.

The simulations (error rates under identical arms, power under a 2-point difference, the
adaptive procedure) are in tests/test_decide.py and their figures in docs/statistics.md.
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
    """Arrays over the leading axes: the mean difference, its variance, the t degrees of freedom
    and the variance components (per seed, per example, seed x example residual)."""

    delta: np.ndarray
    var: np.ndarray
    df: np.ndarray
    s2_seed: np.ndarray
    s2_ex: np.ndarray
    s2_res: np.ndarray
    k: int
    n: int


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
    # Welch-Satterthwaite: var = sum_j c_j MS_j, df = var^2 / sum_j (c_j MS_j)^2 / df_j, with the
    # seed mean square floored at the residual one (its expectation when seeds add nothing):
    # one that comes out small by chance would otherwise claim many degrees of freedom exactly
    # when the variance is underestimated (simulated at k=3: 6.7% family-wise errors, floored 4.8%).
    a, b = np.maximum(ms_seed, ms_res) / (k * n), np.where(ex_on, ms_ex, 0.0) / (k * n)
    r = np.where(ex_on, ms_res, 0.0) / (k * n)
    denom = a ** 2 / (k - 1) + b ** 2 / (n - 1) + r ** 2 / ((k - 1) * (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denom > 0, (a + b - r) ** 2 / denom, np.inf)
    return Components(delta, var, df, s2_seed, s2_ex, ms_res, k, n)


def p_value(delta: np.ndarray, var: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p of the t test of no difference; a zero variance gives 1 for no difference
    and 0 for any (a deterministic run)."""
    delta, var, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (delta, var, df)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(delta) / np.sqrt(var)
        p = 2 * stats.t.sf(t, np.minimum(df, 1e6))
    return np.where(var > 0, p, np.where(np.isnan(var), np.nan, (delta == 0).astype(float)))


# ---- a family of comparisons: Holm, intervals, verdicts ------------------------------------------

def holm(p: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holm's step-down along the last axis, vectorised; nan p values are not in the family.
    Returns (adjusted p, rejected, the level each hypothesis was tested at: `alpha/(m - i)` at
    step i for a rejected one, the level where the procedure stopped for the others). The
    adjusted p equal statsmodels' `multipletests(p, method="holm")` (tested)."""
    p = np.asarray(p, dtype=float)
    m = (~np.isnan(p)).sum(-1, keepdims=True)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, -1)
    steps = np.arange(p.shape[-1])
    factor = np.maximum(m - steps, 1)
    adj_sorted = np.minimum(np.maximum.accumulate(np.nan_to_num(ps * factor, nan=np.inf), -1), 1)
    rejected_sorted = adj_sorted <= alpha
    n_rej = rejected_sorted.sum(-1, keepdims=True)
    level_sorted = np.where(rejected_sorted, alpha / factor, alpha / np.maximum(m - n_rej, 1))
    inverse = np.argsort(order, axis=-1)
    adj = np.where(np.isnan(p), np.nan, np.take_along_axis(adj_sorted, inverse, -1))
    rejected = np.take_along_axis(rejected_sorted, inverse, -1) & ~np.isnan(p)
    level = np.take_along_axis(level_sorted, inverse, -1)
    return adj, rejected, level


@dataclass(frozen=True)
class Family:
    """Decisions for the comparisons on the last axis (arrays of the same shape)."""

    delta: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    p_adj: np.ndarray
    level: np.ndarray    # two-sided error level of each interval (Holm's level for it)
    verdict: np.ndarray  # index into VERDICTS

    def names(self) -> list[str]:
        return [VERDICTS[int(v)] for v in np.ravel(self.verdict)]


def decide(delta: np.ndarray, var: np.ndarray, df: np.ndarray, margin: float | np.ndarray,
           alpha: float = ALPHA, p: np.ndarray | None = None) -> Family:
    """Verdicts for one family (module docstring, item 4). Higher metric is better. `p` may
    replace the t-test p values (the adaptive procedure passes 1 for comparisons decided at an
    earlier look). A comparison with a nan variance is undecided and outside the family."""
    delta, var, df = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (delta, var, df)))
    p = p_value(delta, var, df) if p is None else np.asarray(p, dtype=float)
    adj, rejected, level = holm(p, alpha)
    with np.errstate(invalid="ignore"):
        half = stats.t.ppf(1 - level / 2, np.minimum(df, 1e6)) * np.sqrt(var)
    low, high = delta - half, delta + half
    equivalent = ~rejected & (low > -margin) & (high < margin)
    verdict = np.select([rejected & (delta > 0), rejected & (delta < 0), equivalent],
                        [0, 1, 2], default=3)
    return Family(delta, low, high, p, adj, level, verdict)


# ---- seeds needed ----------------------------------------------------------------------------

def expected_var_df(s2_seed: float, s2_ex: float, s2_res: float, k: int, n: int
                    ) -> tuple[float, float]:
    """The variance of the mean difference with k seeds and its Satterthwaite degrees of
    freedom, from variance components (the mean squares replaced by their expectations)."""
    ms_seed, ms_ex = s2_res + n * s2_seed, s2_res + k * s2_ex
    var = (ms_seed + (ms_ex - s2_res if s2_ex > 0 else 0.0)) / (k * n)
    a, b = ms_seed / (k * n), (ms_ex / (k * n) if s2_ex > 0 else 0.0)
    r = s2_res / (k * n) if s2_ex > 0 else 0.0
    denom = a ** 2 / (k - 1) + b ** 2 / (n - 1) + r ** 2 / ((k - 1) * (n - 1))
    return var, (var ** 2 / denom if denom > 0 else math.inf)


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
    `level` (the first Holm step, alpha/m: conservative); None when no number up to
    `max_seeds` will (e.g. the example term alone, which seeds do not shrink, is too wide)."""
    comps = [float(np.asarray(x)) for x in (c.delta, c.s2_seed, c.s2_ex, c.s2_res)]
    delta, s2_seed, s2_ex, s2_res = comps
    for k in range(max(c.k + 1, 2), max_seeds + 1):
        var, df = expected_var_df(s2_seed, s2_ex, s2_res, k, c.n)
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
           "alpha_spent", "decide", "entity_f1_influence", "holm", "looks",
           "macro_f1_influence", "paired_components", "power", "seeds_needed"]


def sequential(diff: np.ndarray, psi: np.ndarray, schedule: tuple[int, ...], margin: float,
               alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """The adaptive procedure on complete data, vectorised (module docstring, item 5):
    `diff[..., m, K]`, `psi[..., m, K, n]` hold K >= schedule[-1] seeds; look l uses the first
    schedule[l] seeds of the comparisons still open, at level alpha_spent[l]. Returns the
    verdict index per comparison and the seeds each one used (its deciding look, or the last)."""
    spend = alpha_spent(schedule, alpha)
    verdict = np.full(diff.shape[:-1], VERDICTS.index("undecided"))
    used = np.full(diff.shape[:-1], schedule[-1])
    open_ = np.ones(diff.shape[:-1], dtype=bool)
    for k, a in zip(schedule, spend, strict=True):
        c = paired_components(diff[..., :k], psi[..., :k, :])
        p = np.where(open_, p_value(c.delta, c.var, c.df), 1.0)
        fam = decide(c.delta, c.var, c.df, margin, a, p)
        now = open_ & (fam.verdict != VERDICTS.index("undecided"))
        verdict = np.where(now, fam.verdict, verdict)
        used = np.where(now, k, used)
        open_ &= ~now
    return verdict, used
