"""Spec keys of the decision procedure (equivalence_margin, seeds = {min, max},
--bertft-max-seeds), adaptive seeds in the pytest plugin, and the A/A check on real training."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from bertft.ablation.spec import SpecError, parse_spec
from bertft.report.compare import compare

pytest_plugins = ["pytester"]

BASE = {"base": {"model": "tiny-bert", "task": "bbc-news"}, "grid": {"head_lr": [1e-3, 1e-2]},
        "baseline": {"head_lr": 1e-3}}
ALLOWED_SEEDS = ("allowed: a list of distinct integers, or { min = M, max = N } with integers "
                 "2 <= M <= N <= 100")


def _parse(max_seeds=None, **data):
    return parse_spec({**BASE, **data}, "t.toml", {}, max_seeds)


@pytest.mark.parametrize("data, message", [
    ({"seeds": {"min": 5, "max": 3}},
     f"seeds = {{ min = 5, max = 3 }}: min must not exceed max (seeds.max); {ALLOWED_SEEDS}"),
    ({"seeds": {"min": 3.5, "max": 6}}, f"seeds.min = 3.5: {ALLOWED_SEEDS}"),
    ({"seeds": {"min": 3}}, f"seeds.max missing: {ALLOWED_SEEDS}"),
    ({"seeds": {"min": 3, "max": 6, "step": 1}}, "seeds.step: unknown key; allowed: min, max"),
    ({"seeds": [0, "1"]}, f"seeds = [0, '1']: {ALLOWED_SEEDS}"),
    ({"equivalence_margin": -0.01},
     "equivalence_margin = -0.01: allowed: a number in (0, 0.1] in units of the metric "
     "(0.01 = 1 point; shipped specs use at most 0.02)"),
    ({"equivalence_margin": 5}, "equivalence_margin = 5: allowed: a number in (0, 0.1]"),
    ({"equivalence_margin": True}, "equivalence_margin = True: allowed"),
    ({"equivalence": 0.01}, "unknown top-level key 'equivalence'; allowed: name, description, "
                            "seeds, pilot_seeds, baseline, equivalence_margin, base"),
    ({"pilot_seeds": [0, 0], "seeds": [1]}, "pilot_seeds = [0, 0]: allowed: a list of distinct "
     "integers (the pilot's seeds), or no pilot_seeds key"),
    ({"pilot_seeds": [], "seeds": [1]}, "pilot_seeds = []: allowed: a list of distinct"),
])
def test_bad_decision_keys_get_one_clear_message(data, message):
    with pytest.raises(SpecError) as err:
        _parse(**data)
    assert message in str(err.value) and "t.toml" in str(err.value)


def test_seed_forms_and_max_seeds_option():
    fixed = _parse(seeds=[0, 1, 2])
    assert fixed.seeds == (0, 1, 2) and fixed.min_seeds == 0
    assert fixed.equivalence_margin == 0.01  # the documented default
    adaptive = _parse(seeds={"min": 3, "max": 6}, equivalence_margin=0.02)
    assert adaptive.seeds == (0, 1, 2, 3, 4, 5) and adaptive.min_seeds == 3
    assert adaptive.equivalence_margin == 0.02
    assert _parse(max_seeds=8, seeds={"min": 3, "max": 6}).seeds == tuple(range(8))
    grown = _parse(max_seeds=5, seeds=[4, 7, 9])  # a list becomes the minimum
    assert grown.seeds == (4, 7, 9, 10, 11) and grown.min_seeds == 3
    assert _parse(max_seeds=3, seeds=[0, 1, 2]).min_seeds == 0  # nothing to add
    with pytest.raises(SpecError, match=r"min must not exceed max \(--bertft-max-seeds\)"):
        _parse(max_seeds=2, seeds={"min": 3, "max": 6})


def test_max_seeds_option_is_validated(pytester):
    pytester.makefile(".toml", spec='seeds = [0, 1]\n[base]\nmodel = "tiny-bert"\n')
    result = pytester.runpytest("spec.toml", "--bertft-max-seeds", "1")
    result.stderr.fnmatch_lines(["*--bertft-max-seeds 1: allowed: an integer from 2 to 100*"])


# ---- adaptive seeds in the plugin (trials faked: no training) -----------------------------------

ADAPTIVE = """
name = "adaptive"
seeds = { min = 3, max = 6 }
baseline = { head_lr = 0.001 }
equivalence_margin = 0.02
[base]
model = "tiny-bert"
task = "bbc-news"
[grid]
head_lr = [0.001, 0.01, 0.1]
"""


def _fake_predictions(monkeypatch) -> list[str]:
    """A passed result with 400 test predictions: head_lr=0.1 is wrong far more often (decided
    at the first look); head_lr=0.01 behaves like the baseline, coin flips (stays open)."""
    import bertft.ablation.executors as executors
    from bertft.results import TrialResult
    from bertft.ablation.runner import spec_info

    ran: list[str] = []

    def run_trial(trial, spec, measure=None, checkpoint_dir=None, tracking_root=None,
                  cache=None):
        ran.append(trial.trial_id)
        rng = np.random.default_rng(zlib.crc32(trial.trial_id.encode()))
        label = np.arange(400) % 2
        right = rng.random(400) < (0.2 if trial.overrides["head_lr"] == 0.1 else 0.5)
        pred = np.where(right, label, 1 - label)
        preds = {"pred": pred.tolist(), "label": label.tolist(), "confidence": [0.9] * 400}
        return TrialResult(spec=spec_info(spec), trial_id=trial.trial_id, arm_id=trial.arm_id,
                           overrides=trial.overrides, seed=trial.seed,
                           config=trial.config.to_dict(), config_hash=trial.config.hash(),
                           status="passed", label_names=("a", "b"),
                           validation={"f1_macro": 0.5, "accuracy": 0.5},
                           test={"f1_macro": 0.5}, predictions={"test": preds},
                           created="2025-01-01T00:00:00+00:00")
    monkeypatch.setattr(executors, "run_trial", run_trial)
    return ran


def test_adaptive_seeds_run_only_for_undecided_arms_and_resume(pytester, monkeypatch):
    ran = _fake_predictions(monkeypatch)
    pytester.makefile(".toml", adaptive=ADAPTIVE)
    results = pytester.path / "results"
    args = ["adaptive.toml", "--bertft-results", str(results), "-p", "no:cacheprovider",
            "--benchmark-disable", "-q", "-rs"]
    first = pytester.runpytest_inprocess(*args)
    first.assert_outcomes(passed=15, skipped=3)
    assert [t for t in ran if t.startswith("head_lr=0.1,")] == [
        f"head_lr=0.1,seed={s}" for s in (0, 1, 2)]  # decided (worse) at 3 seeds
    assert {t for t in ran if "seed=5" in t} == {"head_lr=0.001,seed=5", "head_lr=0.01,seed=5"}
    first.stdout.fnmatch_lines(["*adaptive seeds: head_lr=0.1 decided (worse) at 3 seeds*"])
    assert ran[:3] == ["head_lr=0.001,seed=0", "head_lr=0.01,seed=0", "head_lr=0.1,seed=0"]
    ran.clear()
    again = pytester.runpytest_inprocess(*args)  # resumes: nothing runs twice
    again.assert_outcomes(skipped=18)
    assert ran == []
    from bertft.report import load_results

    stored, _ = load_results(results / "adaptive")
    verdicts = {c.arm_id: (c.verdict, c.n_seeds) for c in compare(stored)}
    assert verdicts["head_lr=0.1"] == ("worse", 3)
    assert verdicts["head_lr=0.01"][0] != "worse" and verdicts["head_lr=0.01"][1] == 6


# ---- A/A on real training ----------------------------------------------------------------------

def aa_results(tmp: Path, model: str, seeds: int, **settings) -> list:
    """Two arms that differ only in an independent seed stream: arm `a` trains with seeds
    0..k-1, arm `b` with seeds 100..100+k-1 (relabelled 0..k-1 to pair them)."""
    import dataclasses

    from bertft.results import SpecInfo
    from bertft.ablation.runner import run_trial
    from bertft.ablation.spec import expand

    spec = parse_spec({"name": "aa", "seeds": list(range(seeds)) + list(range(100, 100 + seeds)),
                       "base": {"model": model, "task": "bbc-news", "progress": False,
                                "save_model": False, **settings},
                       "grid": {"weight_decay": [0.01]}}, str(tmp / "aa.toml"), {})
    info = SpecInfo(name="aa", description="A/A", file="aa.toml", axes=("stream",),
                    baseline={"stream": "a"}, seeds=tuple(range(seeds)))
    out = []
    for trial in expand(spec):
        arm = "a" if trial.seed < 100 else "b"
        seed = trial.seed % 100
        r = run_trial(trial, spec)
        assert r.status == "passed", r.error
        out.append(dataclasses.replace(r, spec=info, arm_id=f"stream={arm}", seed=seed,
                                       trial_id=f"stream={arm},seed={seed}",
                                       overrides={"stream": arm, "seed": seed}))
    return out


def test_aa_tiny_bert_arms_differing_only_in_seed_stream_are_not_called_different(tmp_path):
    results = aa_results(tmp_path, "tiny-bert", 3, max_train_samples=60, max_length=32,
                         epochs=1, batch_size=16, test_ratio=0.3)
    [c] = compare(results)
    assert c.split == "test" and c.n_seeds == 3 and c.n_examples > 600
    assert c.verdict in ("equivalent", "undecided"), c
    assert c.low < c.delta < c.high
