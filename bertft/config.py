"""The one typed config shared by the CLI, the ablation specs and the Python API.

Every setting that can change a result lives here, is validated at construction, and is saved
beside every result. Settings are grouped in frozen sections (`cfg.data`, `cfg.tokens`,
`cfg.batch`, `cfg.model`, `cfg.optim`, `cfg.loop`, `cfg.runtime`, `cfg.process`); helpers take
the section they need, and the keys that decide what may be shared are derived from them: equal
`data` sections load the same splits, `data` + `tokens` (+ the tokenizer) the same tokenized
features, and every section but `process` goes into the settings hash (`Config.hash`: versioned,
so that a setting added later stales no stored result), which with the data fingerprint and the
model files' checksums makes a stored result's reuse key (`bertft.ablation.store`).
Outside the core, settings are flat keys (`head_lr`, `model`): the CLI flags, the spec keys,
`--set`, `from_dict`/`to_dict` and the stored results all use them, and names are unique.
Variants are made with `Config.replace(key=value)` / `with_overrides`, never by mutation. Each
field's ``help`` metadata becomes ``--help`` text.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass, field
from typing import Any

from bertft.auto import hashed
from bertft.errors import ConfigError
from bertft.sections import (
    BatchConfig, DataConfig, Freezing, LoopConfig, ModelConfig, OptimConfig, ProcessConfig,
    RuntimeConfig, Section, TokenConfig, flat_key,
)
from bertft.values import check_value, describe

# Bumped whenever the training math changes, so that results of older code are not reused
# (the reuse key, `Config.hash`, covers it; stored results stay readable and are superseded).
# 1: until 2026-11-29. 2: a gradient-accumulation window's loss is normalised by the window's
# real size (examples, labelled tokens, class weights), not by grad_accum_steps. 3: macro
# averages over the classes present in gold or predictions; NER words cut off by max_length are
# scored as missed (2026-12-06).
TRAINING_CODE_VERSION = 3

__all__ = [
    "FIELDS", "HASH_SCHEMA", "HINTS", "SECTIONS", "SECTION_OF", "TRAINING_CODE_VERSION",
    "BatchConfig", "Config", "DataConfig", "Freezing", "LoopConfig", "ModelConfig",
    "OptimConfig", "ProcessConfig", "RuntimeConfig", "TokenConfig", "code_version_of", "coerce",
    "describe_type", "help_text", "parse_overrides", "parse_value", "settings_hash",
    "unknown_key_message",
]


@dataclass(frozen=True)
class Config:
    """All settings of one fine-tuning run, in sections; `Config.of(head_lr=1e-3)` and
    `Config.from_dict` take the flat keys that the CLI and the specs use."""

    data: DataConfig = field(default_factory=DataConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    process: ProcessConfig = field(default_factory=ProcessConfig)

    def __post_init__(self) -> None:
        wrong = [f"{name}: expected a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                 for name, cls in SECTIONS.items() if not isinstance(getattr(self, name), cls)]
        if wrong:
            raise ConfigError(wrong)

    # -- construction helpers ----------------------------------------------------------------
    @classmethod
    def of(cls, **settings: Any) -> Config:
        """From flat keyword settings: `Config.of(model="tiny-bert", batch_size=8)`."""
        return cls.from_dict(settings)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> Config:
        """Build from flat plain data (TOML table, JSON, parsed CLI); all problems raised at
        once."""
        problems: list[str] = []
        by_section: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for key, value in values.items():
            if key not in FIELDS:
                problems.append(unknown_key_message(key))
                continue
            ok, converted, why = coerce(key, value)
            if ok:
                by_section[SECTION_OF[key]][FIELDS[key].name] = converted
            else:
                problems.append(why)
        if problems:
            raise ConfigError(problems, source)
        sections: dict[str, Any] = {}
        for name, section in SECTIONS.items():
            try:
                sections[name] = section(**by_section[name])
            except ConfigError as e:
                problems += e.problems
        if problems:
            raise ConfigError(problems, source)
        return cls(**sections)

    def with_overrides(self, values: dict[str, Any], source: str = "overrides") -> Config:
        return Config.from_dict({**self.to_dict(), **values}, source)

    def replace(self, **settings: Any) -> Config:
        """A variant with some flat settings changed (validated)."""
        return self.with_overrides(settings)

    def to_dict(self) -> dict[str, Any]:
        """Flat {key: value}, the form saved beside every result (JSON's types: a tuple
        setting such as report_to as a list, so a stored result reads back equal)."""
        return {key: _plain(getattr(getattr(self, SECTION_OF[key]), f.name))
                for key, f in FIELDS.items()}

    def diff(self) -> dict[str, Any]:
        """Only the settings that differ from the defaults (how a run is summarised)."""
        return {k: v for k, v in self.to_dict().items() if v != _plain(FIELDS[k].default)}

    def hash(self, code_version: int | None = None) -> str:
        """The settings' part of the result reuse key: 16 hex digits of SHA-256 over the
        result-changing settings (every section but `process`) and the training code's version
        (`code_version`, default TRAINING_CODE_VERSION; another value recomputes the hash an
        older bertft gave these settings).

        Versioned so that adding a setting stales nothing: the settings of HASH_SCHEMA (those
        the hash covered when it became versioned) always enter it, defaults included, so their
        hashes keep the values stored results carry; a setting added since enters it only when
        it differs from its default. A new setting's default must therefore reproduce what the
        code did before the setting existed; changing a default later changes results silently
        for the configs that rely on it, so it comes with a TRAINING_CODE_VERSION bump. A stored
        result lacking a new key reads as its default (`from_dict`) and keeps its hash. A
        device-aware setting left to "auto" is hashed as the fixed default it replaced
        (`bertft.auto.HASHED_AS`), so stored CPU results keep their keys."""
        return settings_hash(self.to_dict(), code_version)

    def changes(self, other: Config) -> list[str]:
        """`key old -> new` for every result-changing setting `other` sets differently (the
        stale reason of a stored result: `self` its settings, `other` the trial's)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k} {mine[k]!r} -> {theirs[k]!r}" for k in mine
                if hashed(k, mine[k]) != hashed(k, theirs[k])
                and SECTIONS[SECTION_OF[k]].affects_results]


SECTIONS: dict[str, type[Section]] = {
    f.name: f.default_factory for f in dataclasses.fields(Config)  # type: ignore[misc]
}
# flat key -> the section field; flat key -> its section's name
FIELDS: dict[str, dataclasses.Field] = {
    flat_key(f): f for section in SECTIONS.values() for f in dataclasses.fields(section)}
SECTION_OF: dict[str, str] = {
    flat_key(f): name for name, section in SECTIONS.items() for f in dataclasses.fields(section)}
HINTS: dict[str, Any] = {
    flat_key(f): typing.get_type_hints(section)[f.name]
    for section in SECTIONS.values() for f in dataclasses.fields(section)}


# The settings `Config.hash` covered, defaults included, when it became versioned. A historical
# record, never edited: these always enter the hash (so stored results keep their hashes); a
# setting added since enters it only when it differs from its default (see `Config.hash`).
HASH_SCHEMA: frozenset[str] = frozenset({
    "task", "data_dir", "train_file", "validation_file", "test_file", "file_format", "encoding",
    "text_column", "text_pair_column", "label_column", "header", "dataset", "dataset_config",
    "train_split", "validation_split", "test_split", "tokens_column", "tags_column",
    "token_column", "tag_column", "validation_ratio", "test_ratio", "data_seed", "lowercase",
    "strip_html", "normalize_whitespace", "drop_empty", "drop_duplicates", "max_train_samples",
    "max_eval_samples", "max_test_samples", "max_length", "label_all_subtokens", "batch_size",
    "eval_batch_size", "padding", "pad_to_multiple_of", "sampling", "model", "trust_remote_code",
    "head_dropout", "encoder_dropout", "freeze_embeddings", "freeze_layers", "unfreeze_at_epoch",
    "head_lr", "base_lr", "layer_lr_decay", "weight_decay", "adam_beta1", "adam_beta2",
    "adam_eps", "lr_schedule", "warmup_steps", "warmup_ratio", "max_grad_norm",
    "grad_accum_steps", "class_weights", "optimizer_impl", "epochs", "max_steps", "eval_steps",
    "metric_for_best", "ner_strict", "early_stopping_patience", "restore_best", "log_every",
    "seed", "device", "precision", "deterministic", "compile", "compile_mode", "cache_frozen",
    "unpad", "unpad_min_padding",
})


def settings_hash(values: dict[str, Any], code_version: int | None = None) -> str:
    """`Config.hash` of flat settings (`Config.to_dict()`), under the training code's version
    `code_version` (default: the current one)."""
    values = {k: hashed(k, v) for k, v in values.items()}  # "auto" as the default it replaced
    payload = {k: v for k, v in values.items() if SECTIONS[SECTION_OF[k]].affects_results
               and (k in HASH_SCHEMA or v != _plain(FIELDS[k].default))}
    payload["training_code_version"] = (TRAINING_CODE_VERSION if code_version is None
                                        else code_version)
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def code_version_of(settings: dict[str, Any], config_hash: str, recorded: Any = None
                    ) -> int | None:
    """The TRAINING_CODE_VERSION a stored result was trained under: `recorded` (its
    environment's `training_code_version`) when that is an integer, else the version under
    which its `settings` hash to its `config_hash`; None when neither tells."""
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return recorded
    try:
        values = Config.from_dict(settings).to_dict()
    except ConfigError:  # settings this bertft no longer reads
        return None
    return next((v for v in range(TRAINING_CODE_VERSION, 0, -1)
                 if settings_hash(values, v) == config_hash), None)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def help_text(key: str) -> str:
    return FIELDS[key].metadata.get("help", "")


def describe_type(key: str) -> str:
    """Human-readable allowed values, e.g. `one of 'dynamic', 'max_length'` or `int or None`."""
    return describe(HINTS[key])


def unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, FIELDS, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown setting '{key}'{hint}; see `bertft train --help` for the allowed settings"


def coerce(key: str, value: Any) -> tuple[bool, Any, str]:
    """Check a value against the field's type; ints are accepted where floats are."""
    return check_value(key, HINTS[key], value)


def parse_value(text: str) -> Any:
    """Parse a CLI value as a TOML literal (`3`, `1e-4`, `true`, `"x"`), else as a bare string.

    `none`/`null` give None so that optional settings can be reset from the command line.
    """
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str], source: str = "--set") -> dict[str, Any]:
    """Parse `key=value` strings; every malformed or unknown key is reported at once."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"'{item}': expected key=value")
        elif key not in FIELDS:
            problems.append(unknown_key_message(key))
        else:
            out[key] = parse_value(raw.strip())
    if problems:
        raise ConfigError(problems, source)
    return out


