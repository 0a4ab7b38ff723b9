import dataclasses

import pytest

from bertft.config import Config, parse_overrides, parse_value
from bertft.errors import ConfigError


def test_defaults_are_valid_and_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


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
    ({"compile_mode": "fast"}, "compile_mode = 'fast': expected one of 'default', "
                               "'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'"),
])
def test_bad_values_name_the_field_and_what_is_allowed(values, message):
    with pytest.raises(ConfigError, match=None) as exc:
        Config.from_dict(values)
    assert message in str(exc.value)


def test_ints_are_accepted_for_floats_and_all_for_freeze_layers():
    cfg = Config.from_dict({"head_lr": 1, "freeze_layers": "all"})
    assert cfg.head_lr == 1.0 and isinstance(cfg.head_lr, float)
    assert cfg.freeze_layers == "all"


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
    base = Config()
    assert base.hash() == dataclasses.replace(base, progress=False).hash()
    assert base.hash() != dataclasses.replace(base, seed=1).hash()
    assert dataclasses.replace(base, seed=1).diff() == {"seed": 1}
