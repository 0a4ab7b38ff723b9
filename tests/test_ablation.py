"""Specs, grid expansion, ids, pytest collection and resume."""

from pathlib import Path

import pytest

from bertft.ablation.spec import SpecError, expand, load_spec, make_id, parse_spec
from bertft.config import Config

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "ablations").glob("*.toml"))
SMOKE = ROOT / "tests" / "fixtures" / "specs" / "smoke.toml"
pytest_plugins = ["pytester"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_spec_loads_validates_and_has_three_seeds(path):
    spec = load_spec(path)
    trials = expand(spec)
    assert len(spec.seeds) >= 3
    assert spec.baseline, "every shipped spec names its baseline arm"
    assert any(all(t.overrides[k] == v for k, v in spec.baseline.items()) for t in trials)
    assert len({t.trial_id for t in trials}) == len(trials)
    assert all(t.config.model == "minilm-l6" for t in trials)  # offline defaults
    text = path.read_text()
    assert "Full scale" in text and "--bertft-set" in text  # says how to run at full scale


def test_shipped_specs_cover_the_seed_questions():
    names = {p.stem for p in SHIPPED}
    assert {"freezing", "learning_rates", "batch_size", "small_data", "early_stopping",
            "ner"} <= names


def _spec(**data):
    return parse_spec({"name": "t", "seeds": [0, 1], **data}, "t.toml", {})


def test_grid_is_the_product_of_axes_and_zip_groups_vary_together():
    spec = _spec(base={"task": "bbc-news"}, grid={"freeze_layers": [0, 2]},
                 zip=[{"head_lr": [1e-3, 1e-4], "base_lr": [1e-4, 1e-5]}])
    trials = expand(spec)
    assert [t.trial_id for t in trials] == [
        "freeze_layers=0,head_lr=0.001,base_lr=0.0001,seed=0",
        "freeze_layers=0,head_lr=0.001,base_lr=0.0001,seed=1",
        "freeze_layers=0,head_lr=0.0001,base_lr=1e-05,seed=0",
        "freeze_layers=0,head_lr=0.0001,base_lr=1e-05,seed=1",
        "freeze_layers=2,head_lr=0.001,base_lr=0.0001,seed=0",
        "freeze_layers=2,head_lr=0.001,base_lr=0.0001,seed=1",
        "freeze_layers=2,head_lr=0.0001,base_lr=1e-05,seed=0",
        "freeze_layers=2,head_lr=0.0001,base_lr=1e-05,seed=1",
    ]
    t = trials[3]
    assert t.arm_id == "freeze_layers=0,head_lr=0.0001,base_lr=1e-05"
    assert (t.config.head_lr, t.config.base_lr, t.config.seed) == (1e-4, 1e-5, 1)
    assert t.config.task == "bbc-news"


def test_expansion_is_pure_and_stable():
    spec = _spec(grid={"batch_size": [8, 16]})
    assert [t.trial_id for t in expand(spec)] == [t.trial_id for t in expand(spec)]
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
    assert expand(spec)[0].config.task == "sst2"


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
    ("seeds = []\n", "seeds = []: expected a non-empty list of integers", ""),
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
    spec = load_spec(SMOKE)
    assert isinstance(expand(spec)[0].config, Config)


def test_bertft_ablate_is_a_thin_wrapper_over_pytest():
    from bertft.cli import ablate_argv, build_parser

    args, extra = build_parser().parse_known_args(
        ["ablate", "a.toml", "--set", "epochs=1", "--data-dir", "D", "--executor", "ray",
         "--ray-num-gpus", "0.5", "--rerun", "-k", "freezing", "-x", "-n", "2"])
    assert ablate_argv(args, extra) == [
        "a.toml", "--bertft-results", "results", "--bertft-executor", "ray",
        "--bertft-set", "epochs=1", "--bertft-data-dir", "D", "--bertft-ray-num-gpus", "0.5",
        "--bertft-rerun", "-k", "freezing", "-x", "-n", "2"]
