"""Reports state what is missing (issue 22): trials the spec declares (`.current/trials.json`)
that the results folder does not hold are counted, and an incomplete spec states no finding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bertft.ablation.store import ResultStore
from bertft.report import load_results, render_all
from bertft.report.missing import declared_trials, missing_trials, seed_of

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "tests" / "fixtures" / "report" / "results"
NER = "ner_freeze"  # 2 arms x seeds 1, 2: 4 trials, all passed
SMOKE = ROOT / "tests" / "fixtures" / "specs" / "smoke.toml"
pytest_plugins = ["pytester"]


def _store(tmp_path: Path, current: dict[str, str] | None, drop: tuple[str, ...] = ()) -> Path:
    results = tmp_path / "results"
    shutil.copytree(RESULTS / NER, results / NER)
    for trial in drop:
        (results / NER / f"{trial}.json").unlink()
    if current is not None:
        ResultStore(results).write_current(NER, current)
    return results


def _hashes() -> dict[str, str]:
    return {r.trial_id: r.config_hash for r in load_results(RESULTS / NER)[0]}


def _index_row(out: Path) -> str:
    return next(line for line in (out / "README.md").read_text().splitlines()
                if line.startswith(f"| [{NER}]"))


def test_a_spec_interrupted_mid_grid_says_which_trials_are_missing_and_states_no_finding(
        tmp_path: Path) -> None:
    results = _store(tmp_path, _hashes(), drop=("freeze_layers=4,seed=1",
                                                "freeze_layers=4,seed=2"))
    render_all(results, tmp_path / "out")
    md = (tmp_path / "out" / f"{NER}.md").read_text()
    assert "- **Trials:** 2 passed, 0 failed, 0 diverged, 0 unreadable; 2 of 4 trials missing\n" \
        in md
    assert "⚠ **Incomplete: 2 of 4 trials missing.** Declared by the spec and not stored " \
           "(interrupted, deselected with -k, or not run yet): `freeze_layers=4,seed=1`, " \
           "`freeze_layers=4,seed=2`. The verdicts below are provisional" in md
    row = [c.strip() for c in _index_row(tmp_path / "out").split("|")[1:-1]]
    assert row[2:] == ["2 passed, 0 failed, 0 diverged, 0 unreadable; 2 of 4 trials missing",
                       "no finding: 2 of 4 trials missing", "–"]  # no recommendation either


def test_a_complete_spec_reads_as_before(tmp_path: Path) -> None:
    """Every declared trial stored: the same report and index as without `.current`."""
    plain = _store(tmp_path / "a", None)
    complete = _store(tmp_path / "b", _hashes())
    render_all(plain, tmp_path / "a" / "out")
    render_all(complete, tmp_path / "b" / "out")
    for name in (f"{NER}.md", "README.md"):
        assert (tmp_path / "a" / "out" / name).read_text() == \
            (tmp_path / "b" / "out" / name).read_text()
    assert "missing" not in _index_row(tmp_path / "b" / "out")
    assert "no finding" not in _index_row(tmp_path / "b" / "out")


def test_a_result_stored_under_other_settings_is_missing_not_complete(tmp_path: Path) -> None:
    current = {**_hashes(), "freeze_layers=0,seed=2": "another hash"}
    results = _store(tmp_path, current)
    render_all(results, tmp_path / "out")
    assert "; 1 of 4 trials missing" in _index_row(tmp_path / "out")


def test_seed_of_reads_the_last_key_and_adaptive_specs_declare_their_minimum() -> None:
    assert seed_of("a=x,seed=3,seed=1", (1, 3)) == 1
    assert seed_of("seed=11", (1, 11)) == 11 and seed_of("a=1,seed=21", (1, 2)) is None
    loaded = load_results(RESULTS / NER)[0]
    spec = loaded[0].spec
    adaptive = type(spec)(**{**spec.__dict__, "seeds": (1, 2, 3), "min_seeds": 2})
    current = {f"freeze_layers={f},seed={s}": "h" for f in (0, 4) for s in (1, 2, 3)}
    assert declared_trials(current, adaptive) == [
        "freeze_layers=0,seed=1", "freeze_layers=0,seed=2", "freeze_layers=4,seed=1",
        "freeze_layers=4,seed=2"]
    assert missing_trials(loaded, None).declared == 0  # an older store: nothing is claimed


def test_a_suite_run_of_one_trial_reports_the_others_as_missing(
        pytester: pytest.Pytester) -> None:
    """The whole path: the plugin records the declared trials, `bertft report` counts them."""
    spec = pytester.path / "smoke.toml"
    spec.write_text(SMOKE.read_text(encoding="utf-8"), encoding="utf-8")
    result = pytester.runpytest_inprocess(f"{spec}::smoke[head_lr=0.001,seed=0]",
                                          "--bertft-results", str(pytester.path / "results"),
                                          "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    render_all(pytester.path / "results", pytester.path / "out")
    index = (pytester.path / "out" / "README.md").read_text()
    assert "| 1 passed, 0 failed, 0 diverged, 0 unreadable; 3 of 4 trials missing " \
           "| no finding: 3 of 4 trials missing |" in index
