"""Reports (`bertft report`): seed statistics against hand-computed values, robustness to bad
result files, and the rendered markdown against golden files.

Fixture results: tests/fixtures/report/results (written by make_fixtures.py beside them).
Golden reports: tests/fixtures/report/golden; regenerate after an intended change with

    BERTFT_UPDATE_GOLDEN=1 pytest tests/test_report.py
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from bertft.errors import BertftError
from bertft.report import (aggregate, load_results, mean_ci, paired_test, render_all,
                           render_index, render_markdown)
from bertft.report.fmt import fmt_ci
from bertft.report.columns import columns

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "report"
RESULTS = FIXTURES / "results"
GOLDEN = FIXTURES / "golden"
UPDATE = os.environ.get("BERTFT_UPDATE_GOLDEN") == "1"
CLS, NER = "lr_batch", "ner_freeze"
BASE = "learning_rate=2e-05,batch_size=32"
BEST = "learning_rate=5e-05,batch_size=32"


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The fixture results rendered once as markdown (rendering draws plots: ~1 s)."""
    out = tmp_path_factory.mktemp("reports")
    return out, render_all(RESULTS, out)


@pytest.fixture(scope="module")
def cls_results():
    return load_results(RESULTS / CLS)


def _trial(mod, **changes) -> dict:
    """A passed classification trial of the fixture spec as JSON, with changes."""
    return {**mod.cls_trial(1, 2e-05, 32, 1).to_json(), **changes}


# ---- statistics -------------------------------------------------------------------------------

def test_mean_ci_matches_hand_computed_t_interval():
    mean, half = mean_ci([0.80, 0.82, 0.84])
    # t(0.975, df=2) = 4.302653; sd = 0.02; half width = 4.302653 * 0.02 / sqrt(3)
    assert mean == pytest.approx(0.82)
    assert half == pytest.approx(4.302653 * 0.02 / 1.7320508, abs=1e-6)
    assert half == pytest.approx(0.049683, abs=1e-6)
    # 99%: t(0.995, df=2) = 9.924843
    assert mean_ci([0.80, 0.82, 0.84], confidence=0.99)[1] == pytest.approx(
        9.924843 * 0.02 / 1.7320508, abs=1e-6)


def test_mean_ci_one_seed_has_no_interval_and_says_n1():
    mean, half = mean_ci([0.9])
    assert mean == 0.9 and math.isnan(half)
    assert fmt_ci(mean, half) == "0.9000 (n=1)"
    assert all(math.isnan(x) for x in mean_ci([]))
    assert fmt_ci(0.8123, 0.0123) == "0.8123 ± 0.0123"


def test_paired_test_matches_hand_formula_on_shared_seeds():
    a = {1: 0.80, 2: 0.82, 3: 0.85, 4: 0.99}   # seed 4 only in a, seed 5 only in b: ignored
    b = {1: 0.78, 2: 0.81, 3: 0.82, 5: 0.10}
    diff, p, n = paired_test(a, b)
    # differences 0.02, 0.01, 0.03: mean 0.02, sd 0.01, t = 0.02 / (0.01 / sqrt 3) = 2 sqrt 3;
    # two-sided p for df = 2 in closed form: 1 - t / sqrt(2 + t^2)
    t = 0.02 / (0.01 / math.sqrt(3))
    assert n == 3
    assert diff == pytest.approx(0.02)
    assert p == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)
    assert p == pytest.approx(0.0741799, abs=1e-6)
    assert paired_test(b, a)[0] == pytest.approx(-0.02)  # a - b, so the sign flips


def test_paired_test_degenerate_cases():
    assert paired_test({1: 0.9}, {2: 0.8})[2] == 0
    diff, p, n = paired_test({1: 0.9, 2: 0.7}, {1: 0.8})
    assert (diff, n) == (pytest.approx(0.1), 1) and math.isnan(p)
    assert paired_test({1: 0.5, 2: 0.5}, {1: 0.5, 2: 0.5})[1] == 1.0   # identical runs
    assert paired_test({1: 1.5, 2: 2.5}, {1: 0.5, 2: 1.5})[1] == 0.0   # constant difference


# ---- loading ----------------------------------------------------------------------------------

def test_fixtures_are_what_the_script_writes(tmp_path):
    """The stored fixtures match make_fixtures.py, so they can be regenerated and changed."""
    written = _fixture_module().write(tmp_path)
    stored = sorted(p.relative_to(RESULTS) for p in RESULTS.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path) for p in written) == stored
    for rel in stored:
        assert (tmp_path / rel).read_text() == (RESULTS / rel).read_text(), rel


def test_load_results_skips_corrupted_files(cls_results):
    results, unreadable = cls_results
    assert len(results) == 12
    reasons = {p.name: r for p, r in unreadable}
    assert reasons["learning_rate=1e-04,batch_size=32,seed=1.json"].startswith("invalid JSON")
    assert "schema_version 0" in reasons["old_format.json"]
    assert "moved aside by the results store" in reasons[
        "learning_rate=5e-05,batch_size=32,seed=2.json.corrupt"]
    assert len(unreadable) == 3


def test_load_results_names_every_kind_of_bad_file(tmp_path):
    mod = _fixture_module()
    good = _trial(mod)
    files = {
        "good.json": json.dumps(good),
        "same_trial.json": json.dumps(good),
        "list.json": "[1, 2]",
        "no_spec.json": json.dumps({"schema_version": 1}),
        "extra_key.json": json.dumps({**good, "surprise": 1}),
        "no_metric.json": json.dumps({**good, "validation": {"accuracy": 0.9}}),
        "bad_status.json": json.dumps({**good, "status": "weird", "trial_id": "x"}),
        "binary.json": b"\xff\xfe\x00",
        "notes.txt": "not a result",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    results, unreadable = load_results(tmp_path)
    assert [r.trial_id for r in results] == [good["trial_id"]]
    reasons = {p.name: r for p, r in unreadable}
    assert set(reasons) == set(files) - {"good.json", "notes.txt"}
    assert "duplicate" in reasons["same_trial.json"]
    assert "JSON object" in reasons["list.json"]
    assert "missing key 'spec'" in reasons["no_spec.json"]
    assert "surprise" in reasons["extra_key.json"]
    assert "f1_macro" in reasons["no_metric.json"]
    assert "weird" in reasons["bad_status.json"]
    assert "unreadable file" in reasons["binary.json"]


# ---- aggregation ------------------------------------------------------------------------------

def test_aggregate_one_row_per_arm_with_seed_statistics(cls_results):
    df = aggregate(cls_results[0]).set_index("arm")
    assert list(df.index) == ["learning_rate=2e-05,batch_size=16", BASE,
                              "learning_rate=5e-05,batch_size=16", BEST]
    assert df["baseline"].tolist() == [False, True, False, False]
    assert df["best"].tolist() == [False, False, False, True]
    assert df["n_seeds"].tolist() == [2, 3, 2, 3]
    assert df["fewer_seeds"].tolist() == [True, False, True, False]
    assert df["n_failed"].tolist() == [1, 0, 0, 0]
    assert df["n_diverged"].tolist() == [0, 0, 1, 0]
    best = df.loc[BEST]
    # f1_macro 0.885, 0.870, 0.893 -> mean 0.882667, sd 0.011676, t(0.975, 2) = 4.302653
    f1 = [0.885, 0.870, 0.893]
    m = sum(f1) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in f1) / 2)
    assert best["val_f1_macro_mean"] == pytest.approx(0.882667, abs=1e-6)
    assert sd == pytest.approx(0.011676, abs=1e-6)
    assert best["val_f1_macro_ci"] == pytest.approx(4.302653 * sd / math.sqrt(3), abs=1e-6)
    # the decision: test macro-F1 recomputed from the stored predictions, paired over seeds
    mod = _fixture_module()

    def test_f1(lr, bs, seed):
        preds = mod.cls_predictions(lr, bs, seed)
        return f1_score(preds["label"], preds["pred"], average="macro")
    diffs = [test_f1(5e-05, 32, s) - test_f1(2e-05, 32, s) for s in (1, 2, 3)]
    assert best["diff"] == pytest.approx(sum(diffs) / 3, abs=1e-12)
    assert best["decided_on"] == "test" and best["metric"] == "f1_macro"
    assert best["verdict"] == "better" and best["p_adjusted"] < 0.05 and best["diff_low"] > 0
    assert best["n_pairs"] == 3 and best["n_examples"] == 400
    assert math.isnan(best["seeds_needed"])  # decided: none needed
    # the diverged seed 1 is not paired; two seeds cannot decide this one
    other = df.loc["learning_rate=5e-05,batch_size=16"]
    assert other["n_pairs"] == 2 and other["verdict"] == "undecided"
    assert other["diff_low"] < 0 < other["diff_high"] and other["seeds_needed"] > 2
    assert df.loc[BASE, "verdict"] == "baseline"
    assert best["samples_per_s"] == pytest.approx((401 + 402 + 403) / 3)
    assert best["peak_memory_mb"] == 3103.0  # the maximum over seeds


# ---- rendering --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [f"{CLS}.md", f"{NER}.md", "README.md"])
def test_markdown_matches_golden(rendered, name):
    out, _ = rendered
    actual = (out / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    if not golden.exists():
        pytest.fail(f"{golden} missing; create it with BERTFT_UPDATE_GOLDEN=1 pytest "
                    f"tests/test_report.py")
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                            actual.splitlines(keepends=True),
                                            fromfile=f"golden/{name}", tofile=f"rendered/{name}"))
        pytest.fail(f"{name} differs from its golden file (if intended, regenerate with "
                    f"BERTFT_UPDATE_GOLDEN=1 pytest tests/test_report.py):\n{diff}")


def _row(md: str, start: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(start))


def test_report_marks_best_baseline_and_verdicts(rendered):
    md = (rendered[0] / f"{CLS}.md").read_text()
    best = _row(md, "| **5e-05**")
    assert best.count("**") >= 2 * 16  # every cell of the best arm is bold
    assert "| **better** | **+5.2 [+0.8, +9.7]**" in best and "| **0.034** " in best
    assert "| baseline " in _row(md, "| 2e-05           | 32")
    assert "| undecided  | −2.0 [−12.8, +8.9] " in _row(md, "| 2e-05           | 16")
    assert ("**Guarantee.** Every verdict in this report (better, worse or equivalent) is wrong "
            "with probability at most 5% in all, whatever the true differences: each of the 3 "
            "intervals is at level 1 − 0.05/3.") in md
    assert "Δ test F1 (macro) (points) [interval]" in md
    assert "on the **test** split (the validation split picked each trial's best epoch" in md
    assert "within ±2.0 points (the spec's `equivalence_margin`)" in md
    assert "## Best arm: `learning_rate=5e-05,batch_size=32`" in md
    ner = (rendered[0] / f"{NER}.md").read_text()
    assert "**baseline**" in _row(ner, "| **0**")  # the baseline itself is best


def test_report_mixing_schema_versions_says_what_it_could_not_use(rendered):
    """freeze_layers=4,seed=2 is a schema-1 record: kept in the means, named as lacking
    predictions; its comparison has one seed with predictions, so no interval."""
    ner = (rendered[0] / f"{NER}.md").read_text()
    assert ("⚠ 1 passed result(s) lack per-example predictions (written before schema version "
            "2), so comparisons using them are undecided: `freeze_layers=4,seed=2`") in ner
    assert "undecided (one shared seed: no interval)" in _row(ner, "| 4 ")
    assert "on the **validation** split (the task has no test split" in ner
    assert "- **Trials:** 4 passed, 0 failed, 0 diverged, 0 unreadable" in ner


def test_report_lists_failures_short_arms_and_unreadable_files(rendered):
    md = (rendered[0] / f"{CLS}.md").read_text()
    failures = md.split("## Failed or diverged trials")[1].split("## Unreadable")[0]
    assert "| `learning_rate=2e-05,batch_size=16,seed=3` | failed   | RuntimeError: CUDA out of " \
           "memory" in failures
    assert "| `learning_rate=5e-05,batch_size=16,seed=1` | diverged | training loss became nan" \
        in failures
    assert "2 of 3 ⚠" in _row(md, "| 2e-05           | 16")
    assert ("⚠ Fewer seeds than the other arms: `learning_rate=5e-05,batch_size=16` has 2 of 3 "
            "passed seeds; seed 1 diverged.") in md
    unreadable = md.split("## Unreadable results")[1]
    assert "| invalid JSON" in _row(unreadable.strip(),
                                    "| `lr_batch/learning_rate=1e-04,batch_size=32,seed=1.json`")
    assert "`lr_batch/old_format.json`" in unreadable
    assert "`lr_batch/learning_rate=5e-05,batch_size=32,seed=2.json.corrupt`" in unreadable
    assert "- **Trials:** 10 passed, 1 failed, 1 diverged, 3 unreadable" in md
    assert "Traceback" not in md  # the reason is the first line of a failure


def test_report_sections_per_kind(rendered):
    md = (rendered[0] / f"{CLS}.md").read_text()
    assert "### Per-class F1" in md and "### Confusion matrix (validation, summed over 3 seeds)" \
        in md
    assert "| **negative**       | 134 " in md  # 44 + 45 + 45 correct negatives over 3 seeds
    assert "moments o… | negative | positive    | 0.9890        | 1, 2, 3 |" in md  # truncated
    ner = (rendered[0] / f"{NER}.md").read_text()
    assert "### Per-entity type F1" in ner and "| PER " in ner
    assert "Confusion matrix" not in ner
    assert "Test entity F1" in ner and "| **–** " in ner  # no test split: a dash, not a crash


def test_plots_written_and_linked(rendered):
    out, written = rendered
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    assert pngs == [f"{CLS}_curves.png", f"{CLS}_metric.png", f"{CLS}_throughput.png",
                    f"{NER}_curves.png", f"{NER}_metric.png"]  # no batch_size axis: no throughput
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        spec = name.rsplit("_", 1)[0]
        assert f"]({name})" in (out / f"{spec}.md").read_text()
    assert sorted(p.name for p in written if p.suffix == ".md") == [
        "README.md", f"{CLS}.md", f"{NER}.md"]


def test_index_gives_one_finding_per_spec(rendered):
    index = (rendered[0] / "README.md").read_text()
    assert f"[{CLS}]({CLS}.md)" in index and f"[{NER}]({NER}.md)" in index
    assert (f"`{BEST}`: better, +5.2 [+0.8, +9.7] points (1 better, 0 worse, 0 equivalent, "
            f"2 undecided vs `{BASE}`)") in index
    assert ("`freeze_layers=4`: undecided, −10.7 points (one shared seed: no interval) "
            "(0 better, 0 worse, 0 equivalent, 1 undecided vs `freeze_layers=0`)") in index


def test_render_markdown_is_deterministic_and_independent_of_order(tmp_path, cls_results):
    results, unreadable = cls_results
    one = render_markdown(results, unreadable, tmp_path / "a")
    two = render_markdown(list(reversed(results)), unreadable, tmp_path / "b")
    assert one == two
    assert str(tmp_path) not in one


def test_single_seed_and_missing_baseline(tmp_path):
    mod = _fixture_module()
    spec_dir = tmp_path / "results" / "one_seed"
    spec_dir.mkdir(parents=True)
    for lr in (2e-05, 5e-05):
        t = mod.cls_trial(1, lr, 32, 1).to_json()
        t["spec"] = {**t["spec"], "name": "one_seed", "seeds": [1],
                     "baseline": {"learning_rate": 1.0}}
        (spec_dir / f"{t['trial_id']}.json").write_text(json.dumps(t))
    render_all(tmp_path / "results", tmp_path / "out")
    md = (tmp_path / "out" / "one_seed.md").read_text()
    assert "0.8500 (n=1)" in md
    assert "No arm matches the spec's baseline" in md
    assert "no baseline arm" in (tmp_path / "out" / "README.md").read_text()


def test_mixed_type_axis_like_the_freezing_spec(tmp_path):
    """Zipped axes whose main axis mixes numbers and strings (freeze_layers 0, 3, "all")."""
    mod = _fixture_module()
    spec_dir = tmp_path / "results" / "freezing"
    spec_dir.mkdir(parents=True)
    arms = [(0, False), (0, True), (3, True), ("all", True)]
    for i, (layers, emb) in enumerate(arms):
        for seed in (1, 2):
            t = mod.cls_trial(1, 2e-05, 32, seed).to_json()
            arm = f"freeze_layers={layers},freeze_embeddings={emb}"
            t.update(arm_id=arm, trial_id=f"{arm},seed={seed}",
                     overrides={"freeze_layers": layers, "freeze_embeddings": emb, "seed": seed})
            t["validation"] = {**t["validation"], "f1_macro": 0.80 + 0.01 * i + 0.001 * seed}
            t["spec"] = {**t["spec"], "name": "freezing", "seeds": [1, 2],
                         "axes": ["freeze_layers", "freeze_embeddings"],
                         "baseline": {"freeze_layers": 0, "freeze_embeddings": False}}
            (spec_dir / f"{t['trial_id']}.json").write_text(json.dumps(t))
    written = render_all(tmp_path / "results", tmp_path / "out")
    assert (tmp_path / "out" / "freezing_metric.png") in written
    df = aggregate(load_results(spec_dir)[0])
    assert df["arm"].tolist() == [f"freeze_layers={a},freeze_embeddings={b}" for a, b in arms]
    assert df["baseline"].tolist() == [True, False, False, False]
    assert df["best"].tolist() == [False, False, False, True]


def test_kind_comes_from_passed_trials(tmp_path):
    """Records written before the runners stored the kind of failed trials say classification
    even for NER: the kind comes from the passed trials."""
    mod = _fixture_module()
    results, _ = load_results(RESULTS / NER)
    failed = {**mod.ner_trial(9, 4, 2).to_json(), "status": "failed", "kind": "classification",
              "error": "ValueError: boom", "validation": {}, "trial_id": "freeze_layers=4,seed=3",
              "seed": 3, "created": "2099-01-01T00:00:00Z"}
    (tmp_path / "failed.json").write_text(json.dumps(failed))
    results += load_results(tmp_path)[0]
    df = aggregate(results)
    assert "val_f1_mean" in df.columns
    assert df["n_failed"].tolist() == [0, 1]
    md = render_markdown(results, [], tmp_path / "out")
    assert "Val entity F1" in md
    assert "| `freeze_layers=4,seed=3` | failed   | ValueError: boom" in md


def test_report_leaves_out_results_the_current_trials_do_not_match(tmp_path):
    """`.current/trials.json` (written when a spec runs) lists the spec's trials and hashes: a
    removed arm or another config hash is left out and counted; superseded/ is never read."""
    from bertft.ablation.store import ResultStore
    from bertft.report.load import current_trials, only_current

    results = tmp_path / "results"
    shutil.copytree(RESULTS / NER, results / NER)
    shutil.copytree(RESULTS / NER, results / NER / "superseded")
    loaded, _ = load_results(results / NER)
    assert current_trials(results / NER) is None
    assert only_current(loaded, None) == (loaded, 0)
    current = {r.trial_id: r.config_hash for r in loaded if r.arm_id == "freeze_layers=0"}
    current["freeze_layers=0,seed=2"] = "another hash"
    current["freeze_layers=2,seed=1"] = "not run yet"
    ResultStore(results).write_current(NER, current)
    assert current_trials(results / NER) == current
    kept, skipped = only_current(loaded, current)
    assert [r.trial_id for r in kept] == ["freeze_layers=0,seed=1"] and skipped == 3

    render_all(results, tmp_path / "out")
    md = (tmp_path / "out" / f"{NER}.md").read_text()
    assert "- **Trials:** 1 passed, 0 failed, 0 diverged, 0 unreadable; 2 of 3 trials missing\n" \
           "- **Skipped:** 3 stored " \
           "results of trials no longer in the spec or stored under other settings or seed " \
           "roles (kept on disk, not in this report)\n" in md
    ResultStore(results).write_current(NER, {})
    render_all(results, tmp_path / "out")
    assert (tmp_path / "out" / f"{NER}.md").read_text().startswith(
        f"# {NER}\n\n- **Skipped:** 4 stored results of trials no longer in the spec or stored "
        "under other settings or seed roles (kept on disk, not in this report)\n\nNo readable "
        "results.\n")


def test_a_confirmation_result_of_a_seed_the_spec_now_pilots_is_left_out(cls_results):
    """Results written before roles read as confirmation; once the spec lists their seeds as
    pilot seeds (the shipped specs' 0-3), they must not decide: a confirmation-only run records
    both lists as current, and these match the pilot trials' ids and hashes."""
    import dataclasses

    from bertft.report import compare
    from bertft.report.load import only_current

    results, _ = cls_results
    newest = max(results, key=lambda r: (r.created, r.trial_id))
    moved = [dataclasses.replace(r, spec=dataclasses.replace(r.spec, pilot_seeds=(1,)))
             if r is newest else r for r in results]
    kept, skipped = only_current(moved, {r.trial_id: r.config_hash for r in moved})
    assert sorted({r.seed for r in kept}) == [2, 3] and skipped == 4  # seed 1 of 4 arms
    assert all(c.n_seeds < 3 for c in compare(kept))


def test_spec_with_only_unreadable_files_does_not_crash(tmp_path):
    spec_dir = tmp_path / "results" / "broken"
    spec_dir.mkdir(parents=True)
    (spec_dir / "a.json").write_text("{not json")
    written = render_all(tmp_path / "results", tmp_path / "out")
    md = (tmp_path / "out" / "broken.md").read_text()
    assert "No readable results." in md and "`broken/a.json` | invalid JSON" in md
    assert "no passed trials" in (tmp_path / "out" / "README.md").read_text()
    assert {p.name for p in written} == {"broken.md", "README.md"}


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_aggregated_table(tmp_path, fmt):
    written = render_all(RESULTS, tmp_path, fmt=fmt)
    assert sorted(p.name for p in written) == [f"{CLS}.{fmt}", f"{NER}.{fmt}"]
    path = tmp_path / f"{CLS}.{fmt}"
    df = pd.read_csv(path) if fmt == "csv" else pd.DataFrame(json.loads(path.read_text()))
    assert list(df.columns) == columns("classification", ("learning_rate", "batch_size"))
    assert len(df) == 4
    assert df.loc[df["best"].astype(bool), "arm"].tolist() == [BEST]
    assert df.loc[df["arm"] == BEST, "val_f1_macro_mean"].item() == pytest.approx(0.882667,
                                                                                   abs=1e-5)
    ner = tmp_path / f"{NER}.{fmt}"
    ner_df = pd.read_csv(ner) if fmt == "csv" else pd.DataFrame(json.loads(ner.read_text()))
    assert "val_f1_mean" in ner_df.columns and "val_f1_macro_mean" not in ner_df.columns
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "README.md").exists()


def test_no_results_is_a_usage_error(tmp_path):
    for missing in (tmp_path / "absent", tmp_path):
        with pytest.raises(BertftError, match="no results found; run `tox -e ablations` or "
                                              "`bertft ablate` first"):
            render_all(missing, tmp_path / "out")
    (tmp_path / "empty_spec").mkdir()
    with pytest.raises(BertftError, match=f"{tmp_path}: no results found"):
        render_all(tmp_path, tmp_path / "out")


def test_unknown_format_names_the_allowed_ones(tmp_path):
    shutil.copytree(RESULTS / NER, tmp_path / NER)
    with pytest.raises(BertftError, match="expected one of md, csv, json"):
        render_all(tmp_path, tmp_path / "out", fmt="html")


def test_time_shares_count_trials_that_ran_here(tmp_path):
    """The header's time shares sum the trials that ran for this spec: a copy of another
    spec's trial (its time counted where it ran) and a record without the split are left out."""
    from bertft.report.table import time_shares

    mod = _fixture_module()
    split = {"train_seconds": 6.0, "validation_seconds": 1.0, "test_seconds": 2.0,
             "setup_seconds": 1.0}
    trials = [
        _trial(mod, trial_id="lr=2e-05,batch_size=32,seed=1", timing=split),
        _trial(mod, trial_id="lr=2e-05,batch_size=32,seed=2", seed=2,
               timing={**split, "train_seconds": 16.0}),
        _trial(mod, trial_id="lr=2e-05,batch_size=32,seed=3", seed=3,  # a copy: left out
               timing={**split, "train_seconds": 1000.0},
               environment={**mod.cls_trial(1, 2e-05, 32, 1).environment,
                            "reused_from": "other/lr=2e-05,batch_size=32,seed=3"}),
        _trial(mod, trial_id="lr=2e-05,batch_size=32,seed=4", seed=4,  # an older record
               timing={"train_seconds": 1000.0, "wall_seconds": 1200.0}),
    ]
    for t in trials:
        (tmp_path / f"{t['trial_id']}.json").write_text(json.dumps(t))
    results, _ = load_results(tmp_path)
    assert time_shares(results) == {"training": pytest.approx(22 / 30),
                                    "validation": pytest.approx(2 / 30),
                                    "test": pytest.approx(4 / 30), "setup": pytest.approx(2 / 30)}
    assert time_shares(results[3:]) is None
    md = render_markdown(results, [], tmp_path / "out")
    assert ("- **Time shares:** training 73%, validation 7%, test 13%, setup 7% (test: the "
            "split the verdicts are decided on)\n") in md


# ---- pilot, plan, confirm ---------------------------------------------------------------------

def _as_pilot(results, seed_shift: int = 0, flip: str | None = None):
    """The fixture's results as a pilot's (seeds moved by `seed_shift`); `flip`: an arm whose
    test predictions are replaced by wrong ones, so that counting the pilot would change its
    verdict."""
    import dataclasses

    out = []
    for r in results:
        spec = dataclasses.replace(r.spec, pilot_seeds=tuple(s + seed_shift for s in r.spec.seeds))
        preds = r.predictions
        if r.arm_id == flip and preds:
            test = preds["test"]
            preds = {"test": {**test, "pred": [(g + 1) % 3 for g in test["label"]]}}
        seed = r.seed + seed_shift
        out.append(dataclasses.replace(
            r, spec=spec, role="pilot", seed=seed, predictions=preds,
            trial_id=r.trial_id.replace(f"seed={r.seed}", f"seed={seed}"),
            overrides={**r.overrides, "seed": seed}))
    return out


def test_a_report_over_mixed_roles_says_so_and_decides_on_the_confirmation_only(tmp_path,
                                                                             cls_results):
    import dataclasses

    from bertft.report import compare

    results, unreadable = cls_results
    pilot = _as_pilot(results, 10, flip=BEST)  # counted, the pilot would make BEST worse
    confirmation = [dataclasses.replace(r, spec=dataclasses.replace(
        r.spec, pilot_seeds=(11, 12, 13))) for r in results]
    mixed = confirmation + pilot
    assert compare(mixed) == compare(results)
    assert aggregate(mixed).equals(aggregate(results))
    md = render_markdown(mixed, unreadable, tmp_path)
    assert ("- **Seeds:** confirmation 1, 2, 3 (the verdicts); pilot 11, 12, 13 (the plan)\n"
            "- **Mixed roles:** 12 pilot results (seeds 11, 12, 13) are left out of the table "
            "and the verdicts, which use the confirmation's 12 results only\n") in md
    assert "| **better** | **+5.2 [+0.8, +9.7]**" in _row(md, "| **5e-05**")
    assert "## Plan for the confirmation (from the pilot)" in md
    assert "| 10 passed, 1 failed, 1 diverged, 0 unreadable |" in render_index([(CLS, mixed, [])])
    plain = render_markdown(results, unreadable, tmp_path)
    assert "- **Seeds:** 1, 2, 3 (confirmation: the verdicts; no pilot)\n" in plain
    assert "Mixed roles" not in plain and "## Plan" not in plain


def test_a_pilot_report_gives_the_plan_and_no_verdicts(tmp_path, cls_results):
    from bertft.report import compare, finding
    from bertft.report import decide as dc
    from bertft.report.plan import plan

    results, unreadable = cls_results
    pilot = _as_pilot(results)
    assert compare(pilot) == []
    assert finding(pilot) == "pilot only: no verdicts (its report plans the confirmation)"
    rows = {r.arm_id: r for r in plan(pilot)}
    confirmed = {c.arm_id: c for c in compare(results)}
    best = rows[BEST]  # the same pairing and components as the confirmation's test
    assert (best.n_seeds, best.n_examples) == (3, 400)
    assert best.delta == pytest.approx(confirmed[BEST].delta)
    level = dc.ALPHA / 3
    # 4, not 3: planned at the degrees of freedom the confirmation's interval would get
    # (seed mean square at its upper bound, decide.Components.df_at)
    assert best.seeds == 4 and best.examples is None
    assert best.seeds_cautious is not None and best.seeds_cautious >= best.seeds
    assert best.se == pytest.approx((confirmed[BEST].high - confirmed[BEST].delta)
                                    / dc.stats.t.ppf(1 - level / 2, best.df))
    md = render_markdown(pilot, unreadable, tmp_path)
    assert ("- **Pilot report:** all 12 results are the pilot's (seeds 1, 2, 3): no verdicts; "
            "the plan below sizes the confirmation\n") in md
    assert "**Guarantee.**" not in md  # no verdicts, so no decision note
    assert "| better" not in md and "Recommendation" not in md
    plan_md = md.split("## Plan for the confirmation (from the pilot)")[1].split("##")[0]
    assert "Planning figures from the pilot's observed differences (seeds 1, 2, 3)" in plan_md
    assert f"| `{BEST}` | 3             | +5.2 " in plan_md
    assert "Seeds needed (80% bound)" in plan_md and "at its 80% upper confidence bound" in plan_md


def test_the_cautious_plan_bounds_the_seed_component_from_above():
    """Browne (1995): size from an upper bound of the pilot's variance. With k = 3 the
    chi-square bound at 80% is MS_seed * 2 / chi2.ppf(0.2, 2) = MS_seed * 2 / (-2 ln 0.8)."""
    import math

    import numpy as np

    from bertft.report import decide as dc
    from bertft.report.plan import seed_bound

    c = dc.Components(*(np.asarray(x) for x in (0.0, 0.1, 1.0, 0.5, 0.05, 0.0, 0.5)), k=3, n=10)
    assert seed_bound(c) == pytest.approx((2 / (-2 * math.log(0.8)) - 0.5) / 10)
    # a pilot whose seed mean square came out at the residual one (seed part 0.00) still
    # plans with seed noise: the bound is positive where the point estimate is 0
    flat = dc.Components(*(np.asarray(x) for x in (0.0, 0.1, 0.5, 0.5, 0.0, 0.0, 0.5)), k=3,
                         n=10)
    assert float(flat.s2_seed) == 0.0 and seed_bound(flat) > 0.05


# ---- the recommendation -----------------------------------------------------------------------

def _recommend(verdict: str, base_times, arm_times) -> str:
    import dataclasses

    from bertft.report.advice import recommendation

    mod = _fixture_module()
    results = []
    for (lr, times) in ((2e-05, base_times), (5e-05, arm_times)):
        for seed, t in zip((1, 2, 3), times, strict=True):
            r = mod.cls_trial(seed, lr, 32, seed)
            results.append(dataclasses.replace(r, timing={**r.timing, "train_seconds": t}))
    df = pd.DataFrame({"arm": [BASE, BEST], "baseline": [True, False],
                       "verdict": ["baseline", verdict], "diff": [math.nan, 0.004],
                       "decided_on": [None, "test"]})
    return recommendation(results, df)


def test_recommendation_picks_a_cheaper_equivalent_arm():
    assert _recommend("equivalent", [12.0, 13.0, 14.4], [10.0, 11.0, 12.0]) == (
        f"Recommendation: `{BEST}`: equivalent test F1 (macro) (+0.4 points), 1.19× faster to "
        "train (1.18–1.20× over 3 seeds).")


def test_recommendation_is_the_baseline_when_no_arm_qualifies():
    baseline = (f"Recommendation: the baseline (`{BASE}`): no arm is better than it or "
                "equivalent to it.")
    assert _recommend("worse", [12.0, 13.0, 14.4], [10.0, 11.0, 12.0]) == baseline
    assert _recommend("undecided", [12.0, 13.0, 14.4], [10.0, 11.0, 12.0]) == baseline
    assert _recommend("equivalent", [10.0, 11.0, 12.0], [12.0, 13.0, 14.4]) == (
        f"Recommendation: the baseline (`{BASE}`): `{BEST}` (1.19× the baseline's train time) "
        "is equivalent but not faster to train on average.")
    # slower on average though not on every seed (the shipped early-stopping spec: a seed that
    # stopped at the baseline's epoch): still the baseline
    assert _recommend("equivalent", [10.0, 11.0, 12.0], [10.0, 16.0, 20.0]) == (
        f"Recommendation: the baseline (`{BASE}`): `{BEST}` (1.39× the baseline's train time) "
        "is equivalent but not faster to train on average.")


def test_recommendation_says_when_the_cost_difference_is_timing_noise():
    assert _recommend("better", [11.0, 12.0, 12.4], [10.0, 12.5, 12.0]) == (
        f"Recommendation: `{BEST}`: better test F1 (macro) (+0.4 points), 1.03× faster to "
        "train (0.96–1.10× over 3 seeds: within run-to-run timing noise, the seed range "
        "includes 1.00×).")


def test_the_index_has_a_recommendation_column(rendered):
    index = " ".join((rendered[0] / "README.md").read_text().split())
    assert "| Finding | Recommendation |" in index
    assert (f"| `{BEST}`: better test F1 (macro) (+5.2 points), the baseline's train time "
            "(1.00–1.00× over 3 seeds: within run-to-run timing noise, the seed range includes "
            "1.00×). |") in index
    assert "| the baseline (`freeze_layers=0`): no arm is better than it or equivalent to " \
           "it. |" in index
