"""Specs, grid expansion, ids, pytest collection and resume."""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from bertft.ablation.spec import SpecError, expand, load_spec, make_id, parse_spec
from bertft.config import Config, parse_overrides
from bertft.data import load_task

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "ablations").glob("*.toml"))
SMOKE = ROOT / "tests" / "fixtures" / "specs" / "smoke.toml"
LOOKED_AT = {0, 1, 2, 3, 20, 21, 22, 23, 24, 100, 101, 102, 103}  # seeds a design decision saw
CONFIRM_BBC = [40, 41, 42, 43, 44, 45]  # the bbc-news confirmation seeds (docs/statistics.md)
pytest_plugins = ["pytester"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_spec_loads_validates_and_has_three_seeds(path):
    spec = load_spec(path)
    trials = expand(spec)
    assert len(spec.seeds) >= 3
    assert spec.baseline, "every shipped spec names its baseline arm"
    assert any(all(t.overrides[k] == v for k, v in spec.baseline.items()) for t in trials)
    assert len({t.trial_id for t in trials}) == len(trials)
    assert all(t.config.model.name == "minilm-l6" for t in trials)  # offline defaults


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_spec_says_how_to_run_at_full_scale_and_that_command_is_valid(path):
    """The header comment's full-scale command: its `--bertft-set` overrides must name real
    settings with valid values for every grid point (a typo there fails here)."""
    header = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert "Full scale" in header
    overrides = parse_overrides(re.findall(r"--bertft-set (\S+)", header))
    assert overrides.get("task") in ("sst2", "conll2003")
    spec = load_spec(path, overrides)
    assert all(t.config.data.task == overrides["task"] for t in expand(spec))


def test_shipped_specs_cover_the_seed_questions():
    names = {p.stem for p in SHIPPED}
    assert {"freezing", "learning_rates", "batch_size", "small_data", "early_stopping",
            "ner"} <= names


def test_the_shipped_bbc_news_specs_share_their_baseline_trials():
    """The five bbc-news specs name one baseline: the same settings, so the suite trains each of
    its seeds once and the other specs copy it (an edit to one spec's [base] breaks this)."""
    baselines = {}
    for path in SHIPPED:
        spec = load_spec(path)
        if spec.name == "ner":
            continue
        baselines[spec.name] = {t.seed: t.config.hash() for t in expand(spec)
                                if all(t.overrides[k] == v for k, v in spec.baseline.items())}
    assert sorted(baselines) == ["batch_size", "early_stopping", "freezing", "learning_rates",
                                 "small_data"]
    by_seed: dict[int, set[str]] = {}
    for hashes in baselines.values():
        for seed, h in hashes.items():
            by_seed.setdefault(seed, set()).add(h)
    assert all(len(h) == 1 for h in by_seed.values()) and sorted(by_seed) == CONFIRM_BBC
    assert sorted(baselines["freezing"]) == CONFIRM_BBC[:4]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_specs_confirm_on_fresh_seeds_no_design_looked_at(path):
    """Pilot, plan, confirm: the pilot that sized a spec ran seeds 20-24 at the shipped
    settings; the first design's pilot (0-3) and confirmation (20-24, now part of the pilot)
    and an A/A check (100-103) were looked at too. The confirmation (the main job) runs other
    seeds, as many as the pilot's plan asks within the suite's budget (a comment says where
    the count comes from)."""
    spec = load_spec(path)
    assert spec.pilot_seeds == (20, 21, 22, 23, 24)
    assert not set(spec.seeds) & LOOKED_AT
    assert 3 <= len(spec.seeds) <= len(CONFIRM_BBC)
    assert "#   Count from the pilot's plan under the report's procedure" in path.read_text()


def _spec(**data):
    return parse_spec({"name": "t", "seeds": [0, 1], **data}, "t.toml", {})


def test_float_ids_stay_short_and_distinct_floats_get_distinct_ids():
    assert make_id({"head_lr": 5e-05, "weight_decay": 0.1, "base_lr": 1e-4, "x": 1.0}) == \
        "head_lr=5e-05,weight_decay=0.1,base_lr=0.0001,x=1"
    trials = expand(_spec(grid={"weight_decay": [0.1, 0.1000001]}))
    assert [t.arm_id for t in trials[::2]] == ["weight_decay=0.1", "weight_decay=0.1000001"]
    assert len({t.trial_id for t in trials}) == len({t.config.hash() for t in trials}) == 4


def test_grid_is_the_product_of_axes_and_zip_groups_vary_together():
    """Axes in file order, zip groups after the grid, seeds last; ids from the overrides;
    [base] settings in every trial."""
    spec = _spec(base={"task": "bbc-news"}, grid={"batch_size": [8, 16]},
                 zip=[{"head_lr": [1e-3, 1e-4], "base_lr": [1e-4, 1e-5]}])
    trials = expand(spec)
    assert [t.trial_id for t in trials] == [
        "batch_size=8,head_lr=0.001,base_lr=0.0001,seed=0",
        "batch_size=8,head_lr=0.001,base_lr=0.0001,seed=1",
        "batch_size=8,head_lr=0.0001,base_lr=1e-05,seed=0",
        "batch_size=8,head_lr=0.0001,base_lr=1e-05,seed=1",
        "batch_size=16,head_lr=0.001,base_lr=0.0001,seed=0",
        "batch_size=16,head_lr=0.001,base_lr=0.0001,seed=1",
        "batch_size=16,head_lr=0.0001,base_lr=1e-05,seed=0",
        "batch_size=16,head_lr=0.0001,base_lr=1e-05,seed=1"]
    t = trials[3]
    assert t.arm_id == "batch_size=8,head_lr=0.0001,base_lr=1e-05"
    assert (t.config.optim.head_lr, t.config.optim.base_lr, t.config.loop.seed) == (1e-4, 1e-5, 1)
    assert t.config.data.task == "bbc-news"
    last = trials[-1]
    assert (last.arm_id, last.seed) == ("batch_size=16,head_lr=0.0001,base_lr=1e-05", 1)
    assert (last.config.batch.batch_size, last.config.optim.head_lr, last.config.optim.base_lr,
            last.config.loop.seed) == (16, 1e-4, 1e-5, 1)
    assert last.config == Config.of(batch_size=16, head_lr=1e-4, base_lr=1e-5, seed=1)
    assert make_id({"freeze_layers": "all", "lowercase": True, "seed": 1}) == \
        "freeze_layers=all,lowercase=true,seed=1"


def test_resources_table_is_read_for_the_ray_executor():
    spec = parse_spec({"name": "t", "resources": {"num_gpus": 0.5, "num_cpus": 4},
                       "grid": {"batch_size": [8]}}, "t.toml", {})
    assert spec.resources == {"num_gpus": 0.5, "num_cpus": 4.0}
    assert parse_spec({"name": "t", "grid": {"batch_size": [8]}}, "t.toml", {}).resources == {}


def test_command_line_overrides_replace_base_settings():
    spec = parse_spec({"name": "t", "base": {"task": "bbc-news"}, "grid": {"batch_size": [8]}},
                      "t.toml", {"task": "sst2"})
    assert expand(spec)[0].config.data.task == "sst2"


def test_changing_one_value_changes_only_the_affected_hashes():
    a = expand(_spec(grid={"batch_size": [8, 16]}))
    b = expand(_spec(grid={"batch_size": [8, 32]}))
    assert a[0].config.hash() == b[0].config.hash()
    assert a[2].config.hash() != b[2].config.hash()


BAD_SPECS = [
    ("name = \"x\"\n[grid\nbatch_size = [1]\n", "TOML syntax error:", "line 2"),
    ("name = \"x\"\nbogus = 1\n", "unknown top-level key 'bogus'", "allowed: name"),
    ("[base]\nbach_size = 8\n", "base.bach_size: unknown setting 'bach_size'",
     "did you mean batch_size"),
    ("[grid]\nbatch_size = []\n", "grid.batch_size: empty axis", "at least one value"),
    ("[grid]\nbatch_size = 8\n", "grid.batch_size = 8: an axis must be a list of values", ""),
    ("[grid]\nbatch_size = [0, 8]\n", "[batch_size=0] batch_size = 0: must be >= 1", ""),
    ("[grid]\nhead_lr = [-1e-3]\n", "head_lr = -0.001: must be > 0", ""),
    ("[grid]\nfreeze_layers = [7]\n[base]\nmodel = \"minilm-l6\"\n",
     "freeze_layers = 7: model minilm-l6 has 6 encoder layers; allowed: 0..6 or 'all'", ""),
    ("[grid]\npadding = [\"max\"]\n", "grid.padding[0]: padding = 'max': expected one of "
     "'dynamic', 'max_length'", ""),
    ("[grid]\nepochs = [1.5]\n", "grid.epochs[0]: epochs = 1.5: expected an integer", ""),
    ("seeds = []\n", "seeds = []: allowed: a list of distinct integers, or { min = M, max = N }",
     ""),
    ("baseline = { batch_size = 8 }\n", "baseline.batch_size: not an axis of this spec", ""),
    ("baseline = { batch_size = 4 }\n[grid]\nbatch_size = [8]\n",
     "baseline.batch_size = 4: not among the axis values [8]", ""),
    ("[[zip]]\nhead_lr = [1e-3, 1e-4]\nbase_lr = [1e-4]\n",
     "zip[0]: lists must have equal lengths, got head_lr=2, base_lr=1", ""),
    ("[grid]\nseed = [1, 2]\n", "seed: use the top-level `seeds = [...]` list", ""),
    ("[resources]\nnum_gpu = 1\n", "resources.num_gpu: unknown key", "allowed: num_gpus, num_cpus"),
    ("[resources]\nnum_gpus = 1.5\n", "resources.num_gpus = 1.5: allowed: a fraction in [0, 1] "
     "or a whole number", ""),
    ("[resources]\nnum_cpus = \"two\"\n", "resources.num_cpus = 'two': expected a number", ""),
    ("resources = 2\n", "resources: expected a [resources] table", ""),
    ("[grid]\nhead_lr = [1, 1.0]\n", "grid.head_lr: values 1 and 1.0 give the same id "
     "'head_lr=1'; they are equal; list the value once", ""),
    ("[[zip]]\nhead_lr = [1, 1.0]\nbase_lr = [1e-4, 1e-4]\n", "zip[0]: values (1, 0.0001) and "
     "(1.0, 0.0001) give the same id 'head_lr=1,base_lr=0.0001'; they are equal; list the value "
     "once", ""),
    ("[grid]\ntrain_file = [\"a/b.csv\", \"a_b.csv\"]\n", "grid.train_file: values 'a/b.csv' "
     "and 'a_b.csv' give the same results file name 'train_file=a_b.csv.json'; use values that "
     "differ in a letter, a digit or one of = , . _ + -", ""),
    ("[grid]\ntext_column = [\"x,label_column=y\", \"x\"]\nlabel_column = [\"z\", "
     "\"y,label_column=z\"]\n", "[text_column=x,label_column=y,label_column=z]: stored in the "
     "same results file text_column=x,label_column=y,label_column=z.json as "
     "[text_column=x,label_column=y,label_column=z]; axis values must not contain ',' or '='", ""),
    ("[base]\ntask = \"nope\"\n[grid]\nhead_lr = [1e-3]\n", "[head_lr=0.001] unknown task "
     "'nope'; known tasks: bbc-news, conll-file, conll2003, hf-dataset, hf-dataset-ner, imdb, "
     "sst2, text-file, wnut16", ""),
    ("[base]\nmetric_for_best = \"f1\"\n[grid]\nhead_lr = [1e-3]\n", "[head_lr=0.001] "
     "metric_for_best = 'f1': not a classification metric; allowed: auto, accuracy, f1_macro, "
     "precision_macro, recall_macro, loss", ""),
    ("[base]\ntask = \"wnut16\"\n[grid]\nmetric_for_best = [\"f1\", \"f1_macro\"]\n",
     "[metric_for_best=f1_macro] metric_for_best = 'f1_macro': not a ner metric; allowed: auto, "
     "f1, precision, recall, accuracy, loss", ""),
]


@pytest.mark.parametrize(("text", "message", "detail"), BAD_SPECS,
                         ids=[m[:40] for _, m, _ in BAD_SPECS])
def test_bad_specs_report_file_key_and_allowed_values(tmp_path, text, message, detail):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg
    assert message in msg
    assert detail in msg


def test_all_problems_of_a_spec_are_reported_at_once(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("bogus = 1\n[base]\nbach_size = 8\n[grid]\nhead_lr = []\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert len(exc.value.problems) == 3


def test_collection_gives_one_item_per_trial_with_readable_ids(pytester):
    pytester.copy_example(str(SMOKE))
    result = pytester.runpytest("smoke.toml", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "smoke.toml::smoke[[]head_lr=0.001,seed=0[]]",
        "smoke.toml::smoke[[]head_lr=0.001,seed=1[]]",
        "smoke.toml::smoke[[]head_lr=0.01,seed=0[]]",
        "smoke.toml::smoke[[]head_lr=0.01,seed=1[]]",
        "4 tests collected*",
    ])


def test_a_bad_spec_is_a_collection_error_before_any_training(pytester):
    pytester.makefile(".toml", bad="[grid]\nbatch_size = [0]\n")
    result = pytester.runpytest("bad.toml")
    result.stdout.fnmatch_lines(["*bad.toml: 1 problem:*", "*batch_size = 0: must be >= 1*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


PILOT = SMOKE.read_text().replace("seeds = [0, 1]", "pilot_seeds = [0, 1]\nseeds = [5, 6]")


def test_pilot_and_confirmation_seeds_that_overlap_are_a_collection_error(pytester):
    pytester.makefile(".toml", spec=PILOT.replace("seeds = [5, 6]", "seeds = [1, 0, 7]"))
    result = pytester.runpytest("spec.toml")
    result.stdout.fnmatch_lines([
        "*spec.toml: 1 problem:",
        "*  - pilot_seeds and seeds share seeds 0, 1: the confirmation must run seeds the pilot "
        "did not (its verdicts would reuse the data that designed it)"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_pilot_without_confirmation_seeds_is_a_collection_error(pytester):
    pytester.makefile(".toml", spec=PILOT.replace("seeds = [5, 6]\n", ""))
    result = pytester.runpytest("spec.toml")
    result.stdout.fnmatch_lines(["*spec.toml: 1 problem:"])
    assert "  - pilot_seeds = [0, 1] but no `seeds`: give the confirmation seeds (fresh ones, " \
        "disjoint from the pilot's), e.g. seeds = [20, 21, 22]" in result.stdout.lines
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_the_main_job_runs_the_confirmation_and_the_pilot_option_the_pilot(pytester):
    pytester.makefile(".toml", spec=PILOT, plain=SMOKE.read_text().replace("smoke", "plain"))
    main = pytester.runpytest("spec.toml", "--collect-only", "-q")
    pilot = pytester.runpytest("spec.toml", "--bertft-pilot", "--collect-only", "-q")
    for run, seeds in ((main, (5, 6)), (pilot, (0, 1))):
        assert [x for x in run.stdout.lines if x.startswith("spec.toml::")] == [
            f"spec.toml::smoke[head_lr={lr},seed={s}]" for lr in ("0.001", "0.01") for s in seeds]
    none = pytester.runpytest("plain.toml", "--bertft-pilot")
    none.stdout.fnmatch_lines(["*plain.toml: 1 problem:"])
    assert "  - --bertft-pilot: the spec has no pilot_seeds; add pilot_seeds = [...] or run it " \
        "without --bertft-pilot" in none.stdout.lines


def test_each_result_stores_its_seed_role_and_the_report_keeps_both(pytester, monkeypatch):
    """A pilot run and a confirmation run into one results folder: every record names its role,
    the spec's current trials are both roles' (neither run hides the other's results), and a
    record of the other role (a seed moved between pilot and confirmation) is not reused."""
    ran = _fake_trials(monkeypatch)
    results = pytester.path / "results"
    spec = pytester.path / "smoke.toml"
    spec.write_text(PILOT)
    _run_smoke(pytester, results, "--bertft-pilot").assert_outcomes(passed=4)
    _run_smoke(pytester, results).assert_outcomes(passed=4)
    roles = {p.stem: json.loads(p.read_text())["role"] for p in (results / "smoke").glob("*.json")}
    assert roles == {f"head_lr={lr},seed={s}": role for lr in ("0.001", "0.01")
                     for s, role in ((0, "pilot"), (1, "pilot"), (5, "confirmation"),
                                     (6, "confirmation"))}
    current = json.loads((results / "smoke" / ".current" / "trials.json").read_text())
    assert sorted(current) == sorted(roles)
    ran.clear()
    spec.write_text(PILOT.replace("pilot_seeds = [0, 1]", "pilot_seeds = [0, 5]")
                    .replace("seeds = [5, 6]", "seeds = [1, 6]"))
    _run_smoke(pytester, results, "--bertft-pilot").assert_outcomes(passed=2, skipped=2)
    assert ran == ["head_lr=0.001,seed=5", "head_lr=0.01,seed=5"]
    assert json.loads((results / "smoke" / "head_lr=0.01,seed=5.json").read_text())["role"] \
        == "pilot"
    kept = list((results / "smoke" / "superseded").glob("head_lr=0.01,seed=5.*.json"))
    assert [json.loads(p.read_text())["role"] for p in kept] == ["confirmation"]


def test_a_confirmation_alone_misses_no_trial_and_a_pilot_alone_only_its_own(pytester,
                                                                              monkeypatch):
    """Both roles' trials are the spec's current trials; a report counts as missing only the
    trials of the role it reports (the main job never runs the pilot)."""
    from bertft.report import render_all

    _fake_trials(monkeypatch)
    results, out = pytester.path / "results", pytester.path / "reports"
    (pytester.path / "smoke.toml").write_text(PILOT)
    _run_smoke(pytester, results).assert_outcomes(passed=4)
    render_all(results, out)
    assert "- **Trials:** 4 passed, 0 failed, 0 diverged, 0 unreadable\n" in \
        (out / "smoke.md").read_text()
    assert "no finding" not in (out / "README.md").read_text()
    _run_smoke(pytester, results, "--bertft-pilot", "-k", "0.01").assert_outcomes(
        passed=2, deselected=2)
    for name in results.joinpath("smoke").glob("*seed=[56].json"):
        name.unlink()  # a pilot's report: the pilot trials of head_lr=0.001 are missing
    render_all(results, out)
    assert "- **Trials:** 2 passed, 0 failed, 0 diverged, 0 unreadable; 2 of 4 trials missing" \
        in (out / "smoke.md").read_text()


def test_records_written_before_roles_read_as_confirmation():
    from bertft.results import TrialResult

    fixture = ROOT / "tests" / "fixtures" / "report" / "results" / "ner_freeze"
    data = json.loads((fixture / "freeze_layers=4,seed=2.json").read_text())  # schema 1
    assert "role" not in data and "pilot_seeds" not in data["spec"]
    result = TrialResult.from_json(data)
    assert result.role == "confirmation" and result.spec.pilot_seeds == ()


def test_resume_runs_only_the_missing_trial_and_k_selects(pytester, tmp_path):
    pytester.copy_example(str(SMOKE))
    results = tmp_path / "results"
    args = ["smoke.toml", "--bertft-results", str(results), "-p", "no:cacheprovider",
            "--benchmark-disable"]
    # -k takes words, not "key=value": "0.01" selects the head_lr=0.01 arm
    first = pytester.runpytest_subprocess(*args, "-k", "0.01")
    first.assert_outcomes(passed=2, deselected=2)
    stored = sorted(p.name for p in (results / "smoke").glob("*.json"))
    assert stored == ["head_lr=0.01,seed=0.json", "head_lr=0.01,seed=1.json"]
    (results / "smoke" / "head_lr=0.01,seed=0.json").unlink()
    second = pytester.runpytest_subprocess(*args, "-k", "0.01")
    second.assert_outcomes(passed=1, skipped=1, deselected=2)
    rerun = pytester.runpytest_subprocess(*args, "-k", "0.01", "--bertft-rerun")
    rerun.assert_outcomes(passed=2, deselected=2)


def test_trial_configs_are_full_configs():
    trials = expand(load_spec(SMOKE))
    base = {"model": "tiny-bert", "task": "bbc-news", "max_train_samples": 40, "max_length": 32,
            "epochs": 1, "batch_size": 8, "progress": False, "save_model": False}
    assert [(t.trial_id, t.config) for t in trials] == [
        (f"head_lr={lr},seed={seed}", Config.from_dict({**base, "head_lr": float(lr),
                                                        "seed": seed}))
        for lr in ("0.001", "0.01") for seed in (0, 1)]
    # unset settings keep their defaults
    assert trials[0].config.optim.base_lr == Config().optim.base_lr


# -- the store under the plugin (trials faked: no training) -------------------------------------
def _fake_trials(monkeypatch) -> list[str]:
    """The local executor's runner returns a passed result at once; returns the trial ids it
    ran."""
    import bertft.ablation.executors as executors
    from bertft.results import TrialResult
    from bertft.ablation.runner import spec_info

    ran: list[str] = []

    def run_trial(trial, spec, measure=None, checkpoint_dir=None, tracking_root=None,
                  cache=None):
        ran.append(trial.trial_id)
        return TrialResult(spec=spec_info(spec), trial_id=trial.trial_id, arm_id=trial.arm_id,
                           overrides=trial.overrides, seed=trial.seed,
                           config=trial.config.to_dict(), config_hash=trial.config.hash(),
                           status="passed", validation={"f1_macro": 0.5, "accuracy": 0.6},
                           created="2025-01-01T00:00:00+00:00", role=trial.role)
    monkeypatch.setattr(executors, "run_trial", run_trial)
    return ran


def _run_smoke(pytester, results: Path, *args: str):
    spec = pytester.path / "smoke.toml"
    if not spec.exists():
        spec.write_text(SMOKE.read_text())
    return pytester.runpytest_inprocess(str(spec), "--bertft-results", str(results), "-p",
                                        "no:cacheprovider", "--benchmark-disable", *args)


def test_an_override_keeps_the_results_it_replaces(pytester, monkeypatch):
    """--bertft-set changes the config hash, not the trial id: the stored result it replaces
    moves to superseded/, and the report shows only results of the current settings."""
    from bertft.report import render_all

    ran = _fake_trials(monkeypatch)
    results = pytester.path / "results"
    _run_smoke(pytester, results).assert_outcomes(passed=4)
    folder = results / "smoke"
    old = {p.name: p.read_text() for p in folder.glob("*.json")}
    assert len(old) == 4

    ran.clear()
    _run_smoke(pytester, results, "--bertft-set", "epochs=2", "-k", "0.01").assert_outcomes(
        passed=2, deselected=2)
    assert ran == ["head_lr=0.01,seed=0", "head_lr=0.01,seed=1"]
    for name in ("head_lr=0.01,seed=0.json", "head_lr=0.01,seed=1.json"):
        old_hash = json.loads(old[name])["config_hash"]
        kept = folder / "superseded" / f"{name[:-5]}.{old_hash[:8]}.json"
        assert kept.read_text() == old[name]  # the replaced result, byte for byte
        new = json.loads((folder / name).read_text())
        assert new["config"]["epochs"] == 2 and new["config_hash"] != old_hash
    assert (folder / "head_lr=0.001,seed=0.json").read_text() == old["head_lr=0.001,seed=0.json"]

    render_all(results, pytester.path / "reports")
    md = (pytester.path / "reports" / "smoke.md").read_text()
    assert "- **Trials:** 2 passed, 0 failed, 0 diverged, 0 unreadable; 2 of 4 trials missing\n" \
           "- **Skipped:** 2 stored " \
           "results of trials no longer in the spec or stored under other settings or seed " \
           "roles (kept on disk, not in this report)\n" in md
    assert "head_lr=0.001" not in md.split("## Results")[1]


def test_a_trial_with_the_settings_of_another_specs_trial_copies_its_result(pytester,
                                                                            monkeypatch):
    """Specs sharing a baseline train it once: a trial whose config hash matches a passed result
    stored for another spec copies it under its own spec and id, naming the source;
    --bertft-rerun trains it anyway."""
    ran = _fake_trials(monkeypatch)
    results = pytester.path / "results"
    other = pytester.path / "other.toml"
    other.write_text(SMOKE.read_text().replace('name = "smoke"', 'name = "other"')
                     .replace("head_lr = [1e-3, 1e-2]", "head_lr = [1e-2, 1e-1]")
                     .replace("baseline = { head_lr = 1e-3 }", "baseline = { head_lr = 1e-2 }"))
    _run_smoke(pytester, results).assert_outcomes(passed=4)
    ran.clear()
    _run_smoke(pytester, results, str(other)).assert_outcomes(passed=2, skipped=6)
    assert ran == ["head_lr=0.1,seed=0", "head_lr=0.1,seed=1"]
    source = json.loads((results / "smoke" / "head_lr=0.01,seed=1.json").read_text())
    copy = json.loads((results / "other" / "head_lr=0.01,seed=1.json").read_text())
    assert copy["environment"] == {"reused_from": "smoke/head_lr=0.01,seed=1.json"}
    assert copy["spec"]["name"] == "other" and copy["spec"]["axes"] == ["head_lr"]
    assert copy["spec"]["baseline"] == {"head_lr": 0.01}
    assert {k: v for k, v in copy.items() if k not in ("spec", "environment")} == \
        {k: v for k, v in source.items() if k not in ("spec", "environment")}
    from bertft.report import render_all

    render_all(results, pytester.path / "reports")
    md = (pytester.path / "reports" / "other.md").read_text()
    assert "over 4 trials (2 copied from trials of the same settings in other specs: their " \
           "time is counted where they ran)\n" in md
    ran.clear()
    _run_smoke(pytester, results, str(other), "--bertft-rerun", "-k", "other").assert_outcomes(
        passed=4, deselected=4)
    assert ran == ["head_lr=0.01,seed=0", "head_lr=0.01,seed=1", "head_lr=0.1,seed=0",
                   "head_lr=0.1,seed=1"]
    assert "reused_from" not in json.loads(
        (results / "other" / "head_lr=0.01,seed=1.json").read_text())["environment"]


def test_a_result_of_other_data_is_superseded_and_rerun(pytester, monkeypatch):
    """A stored result records its data fingerprint; an edited data file or an upgraded data
    package (another fingerprint) makes it stale, while matching data reuses it."""
    import bertft.ablation.executors as executors

    ran = _fake_trials(monkeypatch)
    fake = executors.run_trial

    def with_data(trial, spec, measure=None, checkpoint_dir=None, tracking_root=None,
                  cache=None):
        result = fake(trial, spec, measure, checkpoint_dir, tracking_root)
        fingerprint = load_task(trial.config.data).fingerprint()
        return dataclasses.replace(result, data={"fingerprint": fingerprint})

    monkeypatch.setattr(executors, "run_trial", with_data)
    results = pytester.path / "results"
    _run_smoke(pytester, results, "-k", "0.01").assert_outcomes(passed=2, deselected=2)
    ran.clear()
    _run_smoke(pytester, results, "-k", "0.01").assert_outcomes(skipped=2, deselected=2)
    assert ran == []  # same settings, same data: reused
    path = results / "smoke" / "head_lr=0.01,seed=0.json"
    stored = json.loads(path.read_text())
    stored["data"]["fingerprint"] = "0" * 16  # as if the data had changed since
    path.write_text(json.dumps(stored))
    _run_smoke(pytester, results, "-k", "0.01").assert_outcomes(passed=1, skipped=1,
                                                                     deselected=2)
    assert ran == ["head_lr=0.01,seed=0"]
    kept = results / "smoke" / "superseded" / f"head_lr=0.01,seed=0.{stored['config_hash'][:8]}" \
        ".json"
    assert json.loads(kept.read_text())["data"]["fingerprint"] == "0" * 16
    assert json.loads(path.read_text())["data"]["fingerprint"] != "0" * 16


def test_a_result_file_that_is_not_an_object_is_quarantined_and_rerun(pytester, monkeypatch):
    from bertft.ablation.store import ResultStore

    ran = _fake_trials(monkeypatch)
    results = pytester.path / "results"
    path = ResultStore(results).path("smoke", "head_lr=0.01,seed=0")
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    out = _run_smoke(pytester, results, "-k", "0.01", "-W", "always")
    out.assert_outcomes(passed=2, deselected=2)
    out.stdout.fnmatch_lines([f"*{path}: unreadable result (expected a JSON object, got list); "
                              f"moved to {path}.corrupt and running the trial again*"])
    assert ran == ["head_lr=0.01,seed=0", "head_lr=0.01,seed=1"]
    assert Path(f"{path}.corrupt").read_text() == "[]"
    assert json.loads(path.read_text())["status"] == "passed"


def test_superseded_results_never_overwrite_each_other(tmp_path):
    from bertft.ablation.store import ResultStore

    store = ResultStore(tmp_path)
    path = store.path("s", "a/b=1")
    assert path.name == "a_b=1.json"
    assert store.supersede("s", "a/b=1", "0123456789abcdef") is None  # nothing stored
    names = []
    for text in ("first", "second"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        names.append(store.supersede("s", "a/b=1", "0123456789abcdef").name)
        assert not path.exists()
    assert names == ["a_b=1.01234567.json", "a_b=1.01234567.1.json"]
    assert [(tmp_path / "s" / "superseded" / n).read_text() for n in names] == ["first", "second"]


def test_bertft_ablate_is_a_thin_wrapper_over_pytest():
    from bertft.cli import ablate_argv, build_parser

    args, extra = build_parser().parse_known_args(
        ["ablate", "a.toml", "--set", "epochs=1", "--data-dir", "D", "--executor", "ray",
         "--ray-num-gpus", "0.5", "--rerun", "-k", "freezing", "-x", "-n", "2"])
    assert ablate_argv(args, extra) == [
        "a.toml", "--bertft-results", "results", "--bertft-executor", "ray",
        "--bertft-set", "epochs=1", "--bertft-data-dir", "D", "--bertft-ray-num-gpus", "0.5",
        "--bertft-rerun", "-k", "freezing", "-x", "-n", "2"]


def test_results_of_older_training_code_are_stale_and_say_so(tmp_path, monkeypatch):
    """A result whose settings match but whose hash came from an older TRAINING_CODE_VERSION
    is stale (it reruns, the old file is superseded, never deleted), with the reason."""
    from bertft import config
    from bertft.results import TrialResult
    from bertft.ablation.runner import spec_info
    from bertft.ablation.store import ResultStore

    spec = load_spec(SMOKE)
    trial = expand(spec)[0]
    with monkeypatch.context() as m:
        m.setattr(config, "TRAINING_CODE_VERSION", config.TRAINING_CODE_VERSION - 1)
        old_hash = trial.config.hash()
    assert old_hash != trial.config.hash()
    store = ResultStore(tmp_path)
    store.write(TrialResult(spec=spec_info(spec), trial_id=trial.trial_id,
                            arm_id=trial.arm_id, overrides=trial.overrides, seed=trial.seed,
                            config=trial.config.to_dict(), config_hash=old_hash,
                            status="passed", validation={"accuracy": 0.9}))
    version = config.TRAINING_CODE_VERSION
    found = store.lookup(spec.name, trial.trial_id, trial.config)
    assert (found.state, found.reason) == (
        "stale", f"the training code (version {version - 1} -> {version}) changed since this "
        "result was stored")
    other = store.lookup(spec.name, trial.trial_id, trial.config.replace(seed=7))
    assert other.reason == (f"the settings (seed 0 -> 7) and the training code (version "
                            f"{version - 1} -> {version}) changed since this result was stored")
    by_hash = store.lookup(spec.name, trial.trial_id, trial.config.replace(seed=7).hash())
    assert by_hash.reason == (f"the settings and the training code (version {version - 1} -> "
                              f"{version}) changed since this result was stored")
    kept = store.supersede(spec.name, trial.trial_id, old_hash)
    assert kept.parent.name == "superseded" and json.loads(kept.read_text())["config_hash"] \
        == old_hash
