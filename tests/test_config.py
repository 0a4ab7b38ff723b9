import dataclasses

import pytest

from bertft.config import (
    FIELDS, SECTION_OF, SECTIONS, Config, Freezing, ModelConfig, OptimConfig, TokenConfig,
    parse_overrides, parse_value,
)
from bertft.errors import ConfigError


def test_configs_are_values_and_variants_are_new_validated_configs():
    cfg = Config.of(head_lr=1e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.loop.seed = 3  # type: ignore[misc]
    variant = cfg.replace(seed=4)
    assert (cfg.loop.seed, variant.loop.seed) == (0, 4)  # the original is unchanged
    assert {cfg: "x"}[Config.of(head_lr=1e-3)] == "x"  # equal settings, equal keys
    assert {cfg.data: "x"}[variant.data] == "x"  # the data section is the runner's data key
    with pytest.raises(ConfigError, match="seed = 'x': expected an integer"):
        cfg.replace(seed="x")


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        Config.from_dict({"bach_size": 3, "padding": "x", "freeze_layers": "some"}, "spec.toml")
    msg = str(exc.value)
    assert msg.startswith("spec.toml: 3 problems:")
    assert "unknown setting 'bach_size' (did you mean batch_size" in msg
    assert "padding = 'x': expected one of 'dynamic', 'max_length'" in msg
    assert "freeze_layers = 'some': expected an integer or one of 'all'" in msg


@pytest.mark.parametrize(("values", "message"), [
    ({"head_lr": 0.0}, "head_lr = 0.0: must be > 0"),
    ({"base_lr": -1e-5}, "base_lr = -1e-05: must be > 0"),
    ({"batch_size": 0}, "batch_size = 0: must be >= 1"),
    ({"layer_lr_decay": 1.5}, "layer_lr_decay = 1.5: must be in (0, 1]"),
    ({"warmup_steps": 10, "warmup_ratio": 0.1}, "set at most one of them"),
    ({"freeze_layers": -1}, "freeze_layers = -1: must be >= 0 or 'all'"),
    ({"unfreeze_at_epoch": 1}, "unfreeze_at_epoch = 1: must be 0 (never) or >= 2"),
    ({"device": "gpu"}, "device = 'gpu': expected one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"),
    ({"epochs": 1.5}, "epochs = 1.5: expected an integer"),
    ({"lowercase": "yes"}, "lowercase = 'yes': expected true/false"),
    ({"validation_ratio": 0.6, "test_ratio": 0.5}, "validation_ratio + test_ratio: must be < 1"),
    ({"compile_mode": "fast"}, "compile_mode = 'fast': expected one of 'auto', 'default', "
                               "'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'"),
])
def test_bad_values_name_the_field_and_what_is_allowed(values, message):
    with pytest.raises(ConfigError, match=None) as exc:
        Config.from_dict(values)
    assert message in str(exc.value)


def test_ints_are_accepted_for_floats_and_all_for_freeze_layers():
    cfg = Config.from_dict({"head_lr": 1, "freeze_layers": "all"})
    assert cfg.optim.head_lr == 1.0 and isinstance(cfg.optim.head_lr, float)
    assert cfg.model.freeze_layers == "all"


def test_cli_values_parse_as_toml_literals():
    assert parse_value("1e-4") == 1e-4
    assert parse_value("true") is True
    assert parse_value("3") == 3
    assert parse_value("sst2") == "sst2"
    assert parse_value("none") is None
    assert parse_overrides(["head_lr=2e-5", "task=sst2"]) == {"head_lr": 2e-5, "task": "sst2"}
    with pytest.raises(ConfigError, match="'oops': expected key=value"):
        parse_overrides(["oops"])


def test_hash_ignores_presentation_settings_only():
    base = Config.of()
    assert base.hash() == base.replace(progress=False).hash()
    assert base.hash() != base.replace(seed=1).hash()
    assert base.replace(seed=1).diff() == {"seed": 1}


def test_sections_hold_the_flat_keys_and_round_trip():
    cfg = Config.of(model="tiny-bert", head_lr=1e-3, task="sst2", max_length=64, batch_size=8)
    assert (cfg.model.name, cfg.optim.head_lr, cfg.data.task) == ("tiny-bert", 1e-3, "sst2")
    assert (cfg.tokens.max_length, cfg.batch.batch_size) == (64, 8)
    flat = cfg.to_dict()
    assert flat["model"] == "tiny-bert" and "name" not in flat  # the flat key stays `model`
    assert list(flat) == list(FIELDS) and len(flat) == 84
    assert Config.from_dict(flat) == cfg
    assert cfg.replace(head_lr=2e-3).optim == OptimConfig(head_lr=2e-3)
    assert cfg.replace(head_lr=2e-3).data == cfg.data  # other sections are shared, not copied
    with pytest.raises(ConfigError, match="data: expected a DataConfig, got dict"):
        Config(data={"task": "sst2"})  # type: ignore[arg-type]


def test_a_section_validates_itself_and_names_the_flat_key():
    with pytest.raises(ConfigError, match="model: must not be empty"):
        ModelConfig(name=" ")
    with pytest.raises(ConfigError, match=r"max_length = 4: must be >= 8"):
        TokenConfig(max_length=4)


def test_the_reuse_key_covers_the_training_code_version(monkeypatch):
    from bertft import config

    before = Config.of().hash()
    monkeypatch.setattr(config, "TRAINING_CODE_VERSION", config.TRAINING_CODE_VERSION + 1)
    assert Config.of().hash() != before


def test_every_section_but_process_is_in_the_hash():
    """The reuse key covers a section exactly when the section says it affects results."""
    base = Config.of()
    changed = {"task": "sst2", "max_length": 64, "batch_size": 8, "model": "tiny-bert",
               "head_lr": 1e-3, "epochs": 1, "device": "cpu", "num_threads": 2}
    assert {SECTION_OF[k] for k in changed} == set(SECTIONS)
    for key, value in changed.items():
        section = SECTIONS[SECTION_OF[key]]
        assert (base.replace(**{key: value}).hash() != base.hash()) == section.affects_results
    assert [n for n, s in SECTIONS.items() if not s.affects_results] == ["process"]


def test_freeze_layers_all_resolves_to_every_layer_and_the_embeddings():
    assert ModelConfig(freeze_layers="all").freezing(6) == Freezing(6, True)
    assert ModelConfig(freeze_layers=2).freezing(6) == Freezing(2, False)
    assert ModelConfig(freeze_layers=2, freeze_embeddings=True).freezing(2) == Freezing(2, True)
    with pytest.raises(ConfigError, match="freeze_layers = 3: model m has 2 encoder layers; "
                                          "allowed: 0..2 or 'all'"):
        ModelConfig(name="m", freeze_layers=3).freezing(2)


def _numeric(tp) -> bool:
    """An int or float setting (None or a word such as 'all' allowed too); not a column, which
    is a name or an index (str | int, checked against the header setting)."""
    import types
    import typing

    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) \
        else (tp,)
    return any(a in (int, float) for a in args) and str not in args


def test_every_numeric_setting_declares_its_range_and_ranges_lists_them_all():
    from bertft.config import HINTS
    from bertft.limits import RANGES

    numeric = {k for k, tp in HINTS.items() if _numeric(tp)}
    assert {"max_eval_samples", "max_test_samples", "unpad_min_padding", "freeze_layers",
            "encoder_dropout", "num_threads"} <= numeric
    assert sorted(k for k in numeric if "within" not in FIELDS[k].metadata) == []
    assert set(RANGES) == numeric
    assert all(RANGES[k] is FIELDS[k].metadata["within"] for k in numeric)  # one declaration


@pytest.mark.parametrize("key, value, message", [
    ("max_eval_samples", 10**10, "max_eval_samples = 10000000000: allowed: [1, 1000000000]"),
    ("max_test_samples", float("inf"), "max_test_samples = inf: expected an integer or None"),
    ("unpad_min_padding", float("inf"),
     "unpad_min_padding = inf: must be a finite number in [0, 1)"),
    ("unpad_min_padding", float("nan"),
     "unpad_min_padding = nan: must be a finite number in [0, 1)"),
])
def test_the_ranges_once_missing_are_enforced(key, value, message):
    with pytest.raises(ConfigError) as exc:
        Config.of(**{key: value})
    assert exc.value.problems == [message]
