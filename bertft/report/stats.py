"""Seed statistics: a t-interval for one arm and a paired t-test between two arms.

Seed-to-seed variance in BERT fine-tuning is large, so every number in a report comes with its
interval, and every difference to the baseline with a test over the seeds both arms share.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half width of the two-sided t confidence interval over seeds.

    n=0 gives (nan, nan); n=1 gives (value, nan): one seed says nothing about the spread.
    """
    x = np.asarray(list(values), dtype=float)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan
    t = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return mean, t * float(x.std(ddof=1)) / math.sqrt(n)


def paired_test(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float, float, int]:
    """Paired t-test of arm `a` against arm `b` on the seeds both have.

    Returns (mean of a - b, two-sided p value, number of pairs). Fewer than two pairs gives a nan
    p value. Differences with zero spread (a deterministic run) have an infinite t statistic:
    p is 0 for a non-zero difference and 1 for none, where scipy would answer nan.
    """
    seeds = sorted(set(a) & set(b))
    n = len(seeds)
    if n == 0:
        return math.nan, math.nan, 0
    xa = np.array([a[s] for s in seeds], dtype=float)
    xb = np.array([b[s] for s in seeds], dtype=float)
    diff = float((xa - xb).mean())
    if n < 2:
        return diff, math.nan, n
    with warnings.catch_warnings():  # scipy warns on (nearly) constant differences
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_rel(xa, xb).pvalue)
    if math.isnan(p) and np.all(np.isfinite(xa - xb)):
        p = 1.0 if diff == 0 else 0.0
    return diff, p, n
