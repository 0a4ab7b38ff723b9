"""The decision procedure (bertft.report.decide): library agreement, the influence-function
variance against a resample-and-recompute bootstrap, and calibration by simulation (identical
arms: family-wise error; a true 2-point difference: power as claimed; the adaptive looks).

The simulated reports have realistic structure: per-example difficulty shared by every arm and
seed (pairing over examples), a per-(arm, seed) shift (seed-to-seed variation, larger than the
example flips alone give), 4 balanced classes, macro-F1 recomputed per trial. Figures quoted in
docs/statistics.md come from these tests (fixed generator seeds, so they are reproducible).
"""

from __future__ import annotations


from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from benchmarks import calibration as cb
from bertft.report import decide as dc

UNDECIDED, EQUIVALENT = dc.VERDICTS.index("undecided"), dc.VERDICTS.index("equivalent")


def simulate(rng: np.random.Generator, reports: int, arms: int, seeds: int, n: int,
             shift: float | np.ndarray = 0.0, seed_sd: float = 0.25, classes: int = 4,
             difficulty: tuple[float, float] = (2.2, 1.5)) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed macro-F1 differences `diff[reports, arms, seeds]` to a shared baseline and the
    influence differences `psi[reports, arms, seeds, n]`. An arm's `shift` moves its logit of
    being right on every example."""
    shifts = np.concatenate([[0.0], np.broadcast_to(shift, (arms,))])
    label = np.arange(n) % classes
    easy = rng.normal(*difficulty, size=(reports, 1, 1, n))
    noise = rng.normal(0, seed_sd, size=(reports, arms + 1, seeds, 1))
    right = rng.random((reports, arms + 1, seeds, n)) < expit(easy + noise
                                                              + shifts[None, :, None, None])
    wrong = (label + rng.integers(1, classes, size=right.shape)) % classes
    value, psi = dc.macro_f1_influence(np.where(right, label, wrong), label, classes)
    return value[:, 1:] - value[:, :1], psi[:, 1:] - psi[:, :1]


def fixed_design(diff: np.ndarray, psi: np.ndarray, margin: float | np.ndarray = 0.02,
                 alpha: float = dc.ALPHA) -> dc.Family:
    """The report's procedure on `diff[..., m, k]`: m comparisons, one family."""
    c = dc.paired_components(diff, psi)
    m = diff.shape[-2]
    return dc.decide(c.delta, c.var, c.df_at(alpha / m), margin, alpha, m)


# ---- library agreement and the pieces ----------------------------------------------------------

def test_bonferroni_matches_statsmodels_and_levels_are_alpha_over_m():
    rng = np.random.default_rng(0)
    p = rng.random((20, 5)) ** 3
    adj, level = dc.bonferroni(p, 5)
    for row, a in zip(p, adj, strict=True):
        ref_reject, ref_adj, _, _ = multipletests(row, alpha=0.05, method="bonferroni")
        np.testing.assert_allclose(a, ref_adj, rtol=1e-12)
        assert ((a <= 0.05) == ref_reject).all()
    assert (level == 0.01).all()
    # the interval excludes 0 exactly when the adjusted p is below alpha
    # t_5 at 1 - 0.05/6 is 3.534: +-0.035 for a standard error of 0.01, +-0.0035 for 0.001
    fam = dc.decide(np.array([0.05, -0.05, 0.001, 0.001]), np.array([1e-4, 1e-4, 1e-4, 1e-6]),
                    np.full(4, 5.0), 0.02, 0.05, 3)
    assert fam.names() == ["better", "worse", "undecided", "equivalent"]
    assert (fam.p_adj[:2] < 0.05).all() and (fam.p_adj[2:] > 0.05).all()
    np.testing.assert_allclose(fam.p_adj, np.minimum(3 * fam.p, 1))
    assert fam.level == pytest.approx([0.05 / 3] * 4)
    assert fam.high[0] - fam.delta[0] == pytest.approx(0.01 * 3.53411, rel=1e-5)


def test_equivalence_does_not_borrow_the_alpha_of_other_verdicts():
    """Two arms clearly worse, a third with standard error 0.9 points around 0: Holm would test
    the third at 0.05 once the others are rejected (±1.76 points: inside the ±2-point margin,
    "equivalent"); the simultaneous interval is at 0.05/3 (±2.15 points): undecided."""
    fam = dc.decide(np.array([-0.10, -0.10, 0.0]), np.array([1e-4, 1e-4, 0.009 ** 2]),
                    np.full(3, 1e6), 0.02, 0.05, 3)
    assert fam.names() == ["worse", "worse", "undecided"]
    assert fam.level == pytest.approx([0.05 / 3] * 3)
    assert fam.high[2] == pytest.approx(0.009 * 2.39398, rel=1e-4)


def test_guarantee_sentence():
    assert dc.guarantee(3) == (
        "Every verdict in this report (better, worse or equivalent) is wrong with probability "
        "at most 5% in all, whatever the true differences: each of the 3 intervals is at "
        "level 1 − 0.05/3.")
    assert dc.guarantee(1).endswith("differences: its interval is at level 1 − 0.05.")
    assert dc.guarantee(4, adaptive=True).endswith(
        "whatever the true differences and however the looks added seeds: at each look each "
        "of the 4 intervals is at level 1 − α_l/4, the looks' α_l summing to 0.05.")
    assert dc.guarantee(0) == ""


def test_macro_f1_and_entity_f1_values_are_recomputed_not_averaged():
    rng = np.random.default_rng(1)
    label = rng.integers(0, 4, 500)
    pred = np.where(rng.random(500) < 0.7, label, rng.integers(0, 4, 500))
    value, psi = dc.macro_f1_influence(pred, label, 4)
    assert value == pytest.approx(f1_score(label, pred, average="macro"), abs=1e-12)
    assert psi.mean() == pytest.approx(0.0, abs=1e-12)
    tp, fp, fn = rng.integers(0, 3, (3, 300))
    f1, psi = dc.entity_f1_influence(tp, fp, fn)
    assert f1 == pytest.approx(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()))
    assert psi.mean() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("metric", ["macro_f1", "entity_f1"])
def test_influence_variance_matches_bootstrap_that_recomputes_the_metric(metric):
    """var(psi)/n, the variance the procedure uses, against a paired bootstrap that resamples
    examples and recomputes macro-F1 / entity F1 of both arms on each resample."""
    rng = np.random.default_rng(2)
    n, b = 800, 4000
    if metric == "macro_f1":
        label = rng.integers(0, 5, n)
        pa = np.where(rng.random(n) < 0.75, label, rng.integers(0, 5, n))
        pb = np.where(rng.random(n) < 0.15, rng.integers(0, 5, n), pa)

        def score(idx):
            return dc.macro_f1_influence(pa[idx], label[idx], 5)[0] - \
                dc.macro_f1_influence(pb[idx], label[idx], 5)[0]
        psi = dc.macro_f1_influence(pa, label, 5)[1] - dc.macro_f1_influence(pb, label, 5)[1]
    else:
        gold = rng.integers(0, 3, n)
        tpa = rng.binomial(gold, 0.6)
        tpb = rng.binomial(gold, 0.5)
        fpa, fpb = rng.integers(0, 2, n), rng.integers(0, 2, n)

        def score(idx):
            return dc.entity_f1_influence(tpa[idx], fpa[idx], (gold - tpa)[idx])[0] - \
                dc.entity_f1_influence(tpb[idx], fpb[idx], (gold - tpb)[idx])[0]
        psi = dc.entity_f1_influence(tpa, fpa, gold - tpa)[1] - \
            dc.entity_f1_influence(tpb, fpb, gold - tpb)[1]
    idx = rng.integers(0, n, (b, n))
    boot = score(idx)
    assert psi.var() / n == pytest.approx(boot.var(), rel=0.08)


def test_components_recover_known_variances():
    """Additive table with known seed, example and residual variances: the estimates of the
    mean's variance average to the truth."""
    rng = np.random.default_rng(3)
    r, k, n = 4000, 4, 200
    seed = rng.normal(0, 0.02, (r, k, 1))
    ex = rng.normal(0, 0.3, (r, 1, n))
    res = rng.normal(0, 0.5, (r, k, n))
    y = 0.01 + seed + ex + res
    diff = y.mean(-1)
    c = dc.paired_components(diff, y - diff[..., None])
    truth = 0.02 ** 2 / k + 0.3 ** 2 / n + 0.5 ** 2 / (k * n)
    assert c.var.mean() == pytest.approx(truth, rel=0.03)
    assert diff.mean(-1).var() == pytest.approx(truth, rel=0.06)


# ---- calibration: the fixed design -------------------------------------------------------------

@pytest.mark.parametrize("seeds", [3, 5])
def test_identical_arms_family_wise_error_at_most_alpha(seeds):
    """1,000 simulated reports of 3 arms identical to the baseline: the share with any
    better/worse verdict stays <= 0.05 (figures: docs/statistics.md)."""
    diff, psi = simulate(np.random.default_rng(10 + seeds), 1000, 3, seeds, 300)
    fam = fixed_design(diff, psi)
    fwer = (fam.verdict <= 1).any(-1).mean()
    assert fwer <= 0.05
    assert fwer >= 0.01  # not vacuous: the test is not simply never rejecting


EASY = (3.0, 1.2)  # ~92% accuracy: fewer seed-to-seed flips than the default ~83%


def test_true_two_point_difference_detected_at_the_claimed_power():
    """One arm 2 points of macro-F1 better (the others identical), 6 seeds: the share of
    reports that call it better is what `decide.power` claims from the variance components
    (the claim takes the degrees of freedom at the expected mean squares)."""
    rng = np.random.default_rng(20)
    seeds, n = 6, 1500
    diff, psi = simulate(rng, 400, 3, seeds, n, shift=np.array([0.35, 0.0, 0.0]),
                         seed_sd=0.1, difficulty=EASY)
    true_delta = diff[:, 0].mean()
    assert true_delta == pytest.approx(0.02, abs=0.002)
    c = dc.paired_components(diff[:, 0], psi[:, 0])
    var, df = dc.expected_var_df(float(c.s2_seed.mean()), float(c.s2_ex.mean()),
                                 float(c.s2_res.mean()), seeds, n, 0.05 / 3)
    claimed = dc.power(true_delta, var, df, margin=1e-9, level=0.05 / 3)
    detected = (fixed_design(diff, psi).verdict[:, 0] == 0).mean()
    assert 0.3 < claimed < 0.95  # a regime where the check means something
    assert claimed - 0.05 <= detected <= claimed + 0.1


def test_seeds_needed_delivers_its_power():
    """Reports with 3 seeds state the seeds needed for an undecided 2-point difference; with
    that many seeds (the median claim) the difference is detected about 80% of the time."""
    rng = np.random.default_rng(30)
    shift, n = 0.35, 1500
    diff, psi = simulate(rng, 200, 1, 3, n, shift=shift, seed_sd=0.1, difficulty=EASY)
    claims = []
    for d, p in zip(diff[:, 0], psi[:, 0], strict=True):
        c = dc.paired_components(d, p)
        fam = dc.decide(c.delta[None], c.var[None], c.df_at(0.05)[None], 0.005, 0.05, 1)
        if fam.verdict[0] == UNDECIDED:
            claims.append(dc.seeds_needed(c, 0.005, 0.05) or dc.MAX_SEEDS)
    k = int(np.median(claims))
    assert 3 < k < dc.MAX_SEEDS
    diff, psi = simulate(rng, 300, 1, k, n, shift=shift, seed_sd=0.1, difficulty=EASY)
    detected = (fixed_design(diff, psi, margin=0.005).verdict[:, 0] <= 1).mean()
    print(f"median seeds needed {k}, detected {detected}")
    assert detected >= 0.7


def test_equivalence_is_not_claimed_for_a_difference_at_the_margin():
    """Three arms exactly one margin worse (the generator's true difference, about 2.9
    points), little seed noise: 'equivalent' in at most 5% of reports."""
    s = cb.Setting("at the margin", 5, 300, (-0.2,) * 3, seed_sd=0.05, at_margin=0)
    diff, psi = cb.simulate(np.random.default_rng(40), s, 600)
    fam = fixed_design(diff, psi, margin=cb.margin_of(s))
    assert cb.margin_of(s) == pytest.approx(0.0286, abs=0.0005)
    assert (fam.verdict == EQUIVALENT).any(-1).mean() <= 0.05


def test_identical_arms_are_called_equivalent_with_enough_examples():
    rng = np.random.default_rng(50)
    diff, psi = simulate(rng, 100, 3, 6, 3000, seed_sd=0.05, difficulty=EASY)
    fam = fixed_design(diff, psi, margin=0.02)
    print("equivalent", (fam.verdict == EQUIVALENT).mean())
    assert (fam.verdict == EQUIVALENT).mean() >= 0.8


# ---- calibration: adaptive seeds ---------------------------------------------------------------

def test_adaptive_looks_keep_family_wise_error_at_most_alpha():
    """Seeds 3 -> 6 -> 10 for undecided comparisons only: peeking at every look does not push
    the family-wise error of identical arms over 0.05; naive peeking at alpha would."""
    diff, psi = simulate(np.random.default_rng(60), 1000, 3, 10, 200)
    schedule = dc.looks(3, 10)
    assert schedule == (3, 6, 10) and sum(dc.alpha_spent(schedule)) == pytest.approx(0.05)
    verdict, used = dc.sequential(diff, psi, schedule, margin=0.02)
    assert (verdict <= 1).any(-1).mean() <= 0.05
    naive = np.zeros(verdict.shape, dtype=bool)
    for k in schedule:
        naive |= fixed_design(diff[..., :k], psi[..., :k, :]).verdict <= 1
    assert naive.any(-1).mean() > 0.06  # what the spending protects against


def test_adaptive_stops_decided_arms_early_and_detects_a_real_difference():
    rng = np.random.default_rng(70)
    diff, psi = simulate(rng, 300, 2, 10, 1500, shift=np.array([0.35, 2.0]), seed_sd=0.1,
                         difficulty=EASY)
    verdict, used = dc.sequential(diff, psi, dc.looks(3, 10), margin=0.02)
    print("adaptive power", (verdict[:, 0] == 0).mean(), "mean seeds", used[:, 0].mean())
    # 0.7: at 3 seeds the seed term has 2 degrees of freedom, kept near 2 at level 0.0104
    # (decide.DF_GAMMA); the old, too generous degrees of freedom stopped 0.75 here
    assert (verdict[:, 1] == 0).mean() >= 0.99 and (used[:, 1] == 3).mean() >= 0.7
    assert (verdict[:, 0] == 0).mean() >= 0.8  # the 2-point arm, given up to 10 seeds


# ---- calibration: every verdict, under the generator of benchmarks/calibration.py ------------

def shipped_fixed(diff: np.ndarray, psi: np.ndarray, margin: float, alpha: float) -> np.ndarray:
    return fixed_design(diff, psi, margin, alpha).verdict


FIXED = shipped_fixed      # the procedures the calibration tests check (swappable, to show
SEQUENTIAL = dc.sequential  # that the tests fail on the procedure before issue 20)

CALIBRATION = {  # setting, reports: benchmarks/calibration.py runs each with 2,000 and more
    "identical, seed-dominated, k=3": (cb.SETTINGS[0], 1000),
    "normal table, k=3, seed part 69%": (cb.SETTINGS[1], 1000),
    "identical + 2 at a 5-point margin, k=4": (
        cb.Setting("margin", 4, 300, (0.0, -0.35, -0.35), at_margin=1), 1000),
    "mixed, t3 seed effects, k=3, n=100": (replace(cb.SETTINGS[7], n=100), 1000),
    "mixed, example-dominated, k=3, n=1000": (replace(cb.SETTINGS[9], n=1000), 400),
    "mixed, adaptive 3 -> 6 -> 10": (replace(cb.SETTINGS[10], n=150), 300),
}


@pytest.mark.parametrize("name", list(CALIBRATION))
def test_any_false_verdict_at_most_alpha_with_its_upper_bound(name):
    """Any false better / worse / equivalent in a report, against the true differences the
    generator implies (identical arms: 0; at-margin arms: exactly the margin): the rate's 95%
    Clopper-Pearson upper bound stays <= 0.055."""
    s, reports = CALIBRATION[name]
    delta, margin = np.array(cb.truth(s)), cb.margin_of(s)
    diff, psi = cb.simulate(np.random.default_rng(100), s, reports)
    if s.adaptive:
        verdict = SEQUENTIAL(diff, psi, dc.looks(*s.adaptive), margin, dc.ALPHA)[0]
    else:
        verdict = FIXED(diff, psi, margin, dc.ALPHA)
    wrong = int(cb.false_claims(verdict, delta, margin).sum())
    print(f"{name}: {wrong}/{reports} = {wrong / reports:.4f}, upper {cb.upper(wrong, reports)}")
    assert cb.upper(wrong, reports) <= 0.055


def test_truth_is_the_generators_expected_difference():
    """The at-margin arm's true difference (population, from the generator's probabilities)
    matches the mean of many simulated reports' differences: the margin is the truth, not an
    estimate from the same data."""
    s = replace(cb.SETTINGS[4], n=1000, shifts=(-0.2,), at_margin=0)
    diff, _ = cb.simulate(np.random.default_rng(200), s, 300)
    assert cb.truth(s)[0] == pytest.approx(-0.0286, abs=0.0005)
    assert diff.mean() == pytest.approx(cb.truth(s)[0], abs=3 * diff.mean((1, 2)).std() / 20)
    assert cb.margin_of(s) == -cb.truth(s)[0]
