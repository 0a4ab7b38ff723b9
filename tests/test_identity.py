"""Issue 22, result identity: a stored result, a checkpoint, tokenized features and an evaluated
run are used only for what they were made from - the settings, the training code, the data and
the model's files - and a result that no longer matches says what differs (issue 21 item 5:
adding a setting whose default keeps the old behaviour stales nothing)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch

from bertft import config as config_module
from bertft.ablation.runner import spec_info
from bertft.ablation.spec import expand, load_spec
from bertft.ablation.store import ResultStore
from bertft.config import Config
from bertft.results import TrialResult
from bertft.sections import OptimConfig

pytest_plugins = ["pytester"]
SMOKE = Path(__file__).parent / "fixtures" / "specs" / "smoke.toml"


def _result(trial, cfg: Config | None = None, **fields) -> TrialResult:
    cfg = cfg or trial.config
    return TrialResult(**{
        "spec": spec_info(load_spec(SMOKE)), "trial_id": trial.trial_id, "arm_id": trial.arm_id,
        "overrides": trial.overrides, "seed": trial.seed, "config": cfg.to_dict(),
        "config_hash": cfg.hash(), "status": "passed",
        "validation": {"f1_macro": 0.5, "accuracy": 0.6}, **fields})


def _add_setting(monkeypatch, key: str, default: int) -> None:
    """Simulate a bertft that gained an optimizer setting `key` (an int, default `default`)."""
    newer = dataclasses.make_dataclass(
        "OptimConfig", [(key, int, dataclasses.field(default=default, metadata={"help": "x"}))],
        bases=(OptimConfig,), frozen=True)
    monkeypatch.setitem(config_module.SECTIONS, "optim", newer)
    monkeypatch.setitem(config_module.FIELDS, key, dataclasses.fields(newer)[-1])
    monkeypatch.setitem(config_module.SECTION_OF, key, "optim")
    monkeypatch.setitem(config_module.HINTS, key, int)


# -- issue 21 item 5: the settings hash is versioned ------------------------------------------
def test_a_new_setting_at_its_default_keeps_stored_results(tmp_path, monkeypatch) -> None:
    trial = expand(load_spec(SMOKE))[0]
    store = ResultStore(tmp_path)
    store.write(_result(trial))  # stored before the setting existed: its config lacks the key
    settings = trial.config.to_dict()
    _add_setting(monkeypatch, "new_knob", 0)
    now = Config.from_dict(settings)  # as a spec written before the setting existed
    assert now.to_dict()["new_knob"] == 0
    assert store.lookup("smoke", trial.trial_id, now).state == "complete"
    assert store.same_settings(now.hash()) is not None
    found = store.lookup("smoke", trial.trial_id, now.replace(new_knob=3))
    assert (found.state, found.reason) == (
        "stale", "the settings (new_knob 0 -> 3) changed since this result was stored")


def test_stored_hashes_keep_their_values(monkeypatch) -> None:
    """The hash of the settings that existed when it became versioned is the one stored
    results carry (a changed value would stale every stored result): pinned at training-code
    version 2, the version they were taken at; a version bump changes them on purpose."""
    monkeypatch.setattr(config_module, "TRAINING_CODE_VERSION", 2)
    assert Config().hash() == "5b9d52ae03a95865"
    assert Config.of(model="tiny-bert", seed=3, train_file="x").hash() == "566762f288622ad2"


def test_every_setting_of_the_hash_schema_still_exists() -> None:
    """Removing (or renaming) one of them changes every stored hash: that needs a
    TRAINING_CODE_VERSION bump, so the stale reason says why, and a new HASH_SCHEMA."""
    assert config_module.HASH_SCHEMA <= set(config_module.FIELDS)


def test_a_result_names_the_training_code_version_it_was_trained_under() -> None:
    trial = expand(load_spec(SMOKE))[0]
    version = config_module.TRAINING_CODE_VERSION
    old = dataclasses.replace(_result(trial), config_hash=trial.config.hash(version - 1))
    assert config_module.code_version_of(old.config, old.config_hash) == version - 1
    assert config_module.code_version_of(old.config, "0" * 16) is None


# -- model files in the reuse key --------------------------------------------------------------
def _model_folder(root: Path, weights: bytes) -> Path:
    folder = root / "my-model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"num_hidden_layers": 2}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"truncation_side": "right"}))
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "README.md").write_text("notes")
    return folder


def test_changed_model_weights_make_a_stored_result_stale(tmp_path) -> None:
    from bertft.models import model_files

    folder = _model_folder(tmp_path, b"weights 1")
    trial = expand(load_spec(SMOKE))[0]
    cfg = trial.config.replace(model=str(folder))
    store = ResultStore(tmp_path / "results")
    store.write(_result(trial, cfg, environment={"model_files": model_files(str(folder))}))
    assert store.lookup("smoke", trial.trial_id, cfg).state == "complete"
    (folder / "README.md").write_text("other notes")  # no loader reads it
    assert store.lookup("smoke", trial.trial_id, cfg).state == "complete"
    (folder / "model.safetensors").write_bytes(b"weights 2")
    found = store.lookup("smoke", trial.trial_id, cfg)
    assert (found.state, found.reason) == (
        "stale", f"the model files changed since this result was stored (model.safetensors of "
        f"model {folder})")
    assert store.same_settings(cfg.hash()) is None  # nor copied into another spec
    (folder / "tokenizer_config.json").write_text(json.dumps({"truncation_side": "left"}))
    assert "(model.safetensors, tokenizer_config.json of" in store.lookup(
        "smoke", trial.trial_id, cfg).reason


def test_a_hub_model_is_identified_by_its_cached_revision(tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    from bertft.models import changed_files, model_files

    repo = tmp_path / "models--org--bert"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert model_files("org/bert") == {}  # not cached: nothing to compare
    for commit in ("aaa111", "bbb222"):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("aaa111")
    first = model_files("org/bert")
    assert first == {"revision": "aaa111", "config.json": "44136fa355b3678a"}
    (repo / "refs" / "main").write_text("bbb222")  # a newer revision downloaded
    assert changed_files(first, model_files("org/bert")) == ["revision"]


def test_a_grid_over_a_local_model_reruns_after_its_weights_change(pytester, monkeypatch):
    """The plugin: the second run reuses, the third (weights rewritten) trains again and says
    why; the old result is kept under superseded/."""
    import bertft.ablation.executors as executors
    from bertft.models import model_files

    folder = _model_folder(pytester.path, b"weights 1")
    ran: list[str] = []

    def run_trial(trial, spec, measure=None, checkpoint_dir=None, tracking_root=None,
                  cache=None):
        ran.append(trial.trial_id)  # what fit records, without training
        return _result(trial, environment={"model_files": model_files(trial.config.model.name)})
    monkeypatch.setattr(executors, "run_trial", run_trial)
    spec = pytester.path / "local.toml"
    spec.write_text(SMOKE.read_text().replace('"tiny-bert"', json.dumps(str(folder))))
    args = [str(spec), "--bertft-results", str(pytester.path / "results"), "-p",
            "no:cacheprovider", "--benchmark-disable", "-k", "0.01", "-W", "always"]
    pytester.runpytest_inprocess(*args).assert_outcomes(passed=2, deselected=2)
    pytester.runpytest_inprocess(*args).assert_outcomes(skipped=2, deselected=2)
    assert len(ran) == 2
    (folder / "model.safetensors").write_bytes(b"weights 2")
    third = pytester.runpytest_inprocess(*args)
    third.assert_outcomes(passed=2, deselected=2)
    assert len(ran) == 4
    third.stdout.fnmatch_lines([f"*stored result not reused: the model files changed since this "
                                f"result was stored (model.safetensors of model {folder}); "
                                "kept as *superseded*"])


# -- fit: the model files recorded, a checkpoint of other data never resumed --------------------
def tiny(**overrides) -> Config:
    return Config.from_dict({"model": "tiny-bert", "task": "bbc-news", "max_train_samples": 40,
                             "max_length": 32, "epochs": 2, "batch_size": 8, "progress": False,
                             "save_model": False, "num_threads": 1,
                             "checkpoint_every_epoch": True, **overrides})


def test_a_checkpoint_of_other_data_is_not_resumed(tmp_path, monkeypatch) -> None:
    from bertft import checkpoint
    from bertft.data import load_task
    from bertft.models import model_files
    from bertft.train import fit

    cfg, ckpt = tiny(), tmp_path / "ckpt"
    splits = load_task(cfg.data)
    threads = torch.get_num_threads()
    monkeypatch.setattr(checkpoint, "remove", lambda directory: None)  # as if killed at the end
    first = fit(cfg, splits=splits, checkpoint_dir=ckpt)
    assert first.environment["model_files"] == model_files("tiny-bert")
    assert (ckpt / "checkpoint.pt").is_file()
    # the data file's rows reordered: the same settings, other splits
    other = dataclasses.replace(splits, train=tuple(reversed(splits.train)))
    object.__setattr__(other, "_fingerprint", None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = fit(cfg, splits=other, checkpoint_dir=ckpt)
    torch.set_num_threads(threads)
    said = [str(w.message) for w in seen if "checkpoint" in str(w.message)]
    assert said == [f"checkpoint {ckpt / 'checkpoint.pt'} was trained on other data (data "
                    f"fingerprint {splits.fingerprint()} -> {other.fingerprint()}: a data file "
                    "changed since); the run starts from the beginning and replaces it"]
    assert [row["epoch"] for row in again.history] == [1, 2]  # trained from the start
    assert again.data["fingerprint"] == other.fingerprint()


# -- the tokenization cache key ----------------------------------------------------------------
def test_tokenizers_with_other_settings_never_share_features() -> None:
    from bertft.cache import Cache
    from bertft.data import load_task
    from bertft.features import cache_key, encode_splits
    from bertft.models import load_tokenizer

    cfg = tiny()
    splits = load_task(cfg.data)
    right, left = load_tokenizer(cfg.model), load_tokenizer(cfg.model)
    left.truncation_side = "left"
    assert cache_key(splits, right, cfg.tokens) == cache_key(splits, load_tokenizer(cfg.model),
                                                             cfg.tokens)
    assert cache_key(splits, right, cfg.tokens) != cache_key(splits, left, cfg.tokens)
    cache = Cache()
    a = encode_splits(splits, right, cfg.tokens, cache)
    b = encode_splits(splits, left, cfg.tokens, cache)
    long = next(i for i, f in enumerate(a.train) if len(f["input_ids"]) == cfg.tokens.max_length)
    assert a.train[long]["input_ids"] != b.train[long]["input_ids"]
    assert b.train[long]["input_ids"][-2] == right(splits.train[long].text)["input_ids"][-2]


# -- eval compares the run's data fingerprint --------------------------------------------------
def test_eval_refuses_a_data_file_changed_since_training(toy_text_run, capsys) -> None:
    from bertft.cli import main

    run, data, rows = toy_text_run(1)
    assert main(["eval", str(run), "--split", "test"]) == 0
    stored = json.loads((run / "metrics.json").read_text())["data"]["fingerprint"]
    data.write_text("text,label\n" + "\n".join(reversed(rows)) + "\n")  # rows reordered
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bertft: error: {run}: the data differ from the data the run was "
                          f"trained on (data fingerprint {stored} in metrics.json, now ")
    assert err.endswith(f"): train_file {data} changed since, so the test split may hold "
                        "training examples; restore the data the run was trained on, or "
                        "train again\n")


# -- reports never compare training-code versions ----------------------------------------------
def test_a_report_compares_results_of_one_training_code_version(tmp_path) -> None:
    from bertft.report import render_all

    trials = expand(load_spec(SMOKE))
    store = ResultStore(tmp_path / "results")  # no .current/trials.json: an older store
    version = config_module.TRAINING_CODE_VERSION
    for trial in trials[:2]:
        store.write(_result(trial, environment={"training_code_version": version}))
    old = _result(trials[2], validation={"f1_macro": 0.99, "accuracy": 0.99})
    store.write(dataclasses.replace(old, config_hash=trials[2].config.hash(version - 1)))
    with pytest.warns(UserWarning, match=f"training-code versions {version - 1} and {version} "
                      "are not compared"):
        render_all(tmp_path / "results", tmp_path / "reports")
    md = (tmp_path / "reports" / "smoke.md").read_text()
    assert (f"- **Older training code:** 1 stored result of training-code version {version - 1}"
            f" left out: results of training-code versions {version - 1} and {version} are not "
            f"compared; this report shows version {version} (the newest) only: run the spec "
            "again to replace them") in md
    assert "0.99" not in md  # the version-1 result's metrics are in no table
