"""The declared range of every numeric setting, and the limits that depend on the model.

`RANGES` names, for each int or float Config field, the smallest and largest value allowed
(a bound in parentheses is open). Every value must also be finite: TOML and `--set` accept
`inf` and `nan`, which would otherwise pass a `> 0` check and train to NaN. Seeds stay in
[0, 2**32 - 1], the range NumPy and scikit-learn accept. The position limit of the model
(`position_problems`: `max_length`, and the length padding to it pads up to) is
checked at spec collection when the model's config.json is on this machine, and in `fit` once
the model is built, before any training step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_open: bool = False   # True: the bound itself is not allowed
    high_open: bool = False
    note: str = ""           # what a special value means, e.g. "0: off"

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def text(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{_num(self.low)}, {_num(self.high)}{right}" + (
            f" ({self.note})" if self.note else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


SEED_MAX = 2**32 - 1
BIG = 10**9  # counts (steps, epochs, samples): any real run is far below

RANGES: dict[str, Range] = {
    "validation_ratio": Range(0, 1, True, True),
    "test_ratio": Range(0, 1, True, True),
    "data_seed": Range(0, SEED_MAX),
    "first_label_id": Range(0, BIG),
    "seed": Range(0, SEED_MAX),
    "token_column": Range(-100, 99, note="negative: from the end"),
    "tag_column": Range(-100, 99, note="negative: from the end"),
    "max_train_samples": Range(1, BIG),
    "max_length": Range(8, 131072),
    "pad_to_multiple_of": Range(1, 4096),
    "head_dropout": Range(0, 1, high_open=True),
    "encoder_dropout": Range(0, 1, high_open=True),
    "freeze_layers": Range(0, 1000),
    "unfreeze_at_epoch": Range(0, BIG, note="0: never, else >= 2"),
    "head_lr": Range(0, 10, low_open=True),
    "base_lr": Range(0, 10, low_open=True),
    "layer_lr_decay": Range(0, 1, low_open=True),
    "weight_decay": Range(0, 10),
    "adam_beta1": Range(0, 1, high_open=True),
    "adam_beta2": Range(0, 1, high_open=True),
    "adam_eps": Range(0, 1, low_open=True),
    "warmup_steps": Range(0, BIG),
    "warmup_ratio": Range(0, 1, high_open=True),
    "max_grad_norm": Range(0, 1e6, note="0: off"),
    "grad_accum_steps": Range(1, 65536),
    "epochs": Range(1, 100000),
    "max_steps": Range(1, BIG),
    "batch_size": Range(1, 65536),
    "eval_batch_size": Range(1, 65536),
    "eval_steps": Range(0, BIG, note="0: each epoch"),
    "early_stopping_patience": Range(0, BIG, note="0: off"),
    "log_every": Range(1, BIG),
    "num_threads": Range(0, 4096, note="0: torch's default"),
}


def range_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each numeric setting that is not finite or outside its declared
    range (None and non-numbers, e.g. freeze_layers = 'all', are left to the type checks)."""
    problems = []
    for key, rng in RANGES.items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            problems.append((key, f"{key} = {value!r}: must be a finite number in "
                                  f"{rng.text()}"))
        elif not rng.contains(value):
            problems.append((key, f"{key} = {value!r}: allowed: {rng.text()}"))
    return problems


# Architectures whose position ids start after the padding index (two positions fewer).
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert"})


def position_limit(model_config: Mapping[str, Any]) -> int | None:
    """How many tokens the model can embed, from its config.json (None if it does not say)."""
    n = model_config.get("max_position_embeddings")
    if not isinstance(n, int):
        return None
    return n - 2 if model_config.get("model_type") in _OFFSET_POSITIONS else n


def max_length_problems(max_length: int, model_config: Mapping[str, Any], model: str
                        ) -> list[str]:
    """`max_length` above the model's position limit (`model_config`: its config.json as a
    dict), which would fail at the first forward pass with a tensor-size error. The layer
    count limit of freeze_layers is `ModelConfig.freezing`'s."""
    limit = position_limit(model_config)
    if limit is not None and max_length > limit:
        return [f"max_length = {max_length}: model {model} embeds at most {limit} positions; "
                f"allowed: 8..{limit}"]
    return []


def padded_length(max_length: int, pad_to_multiple_of: int | str | None, padding: str) -> int:
    """The longest a batch can be padded to. Dynamic padding rounds up to the multiple but never
    past `max_length` (`auto.bucket_length`); `padding = "max_length"` pads every batch to
    `max_length` rounded up to the multiple, as the tokenizer's `pad` does. An "auto" multiple
    counts as the largest any device resolves it to (`auto.DEVICE_DEFAULTS`)."""
    from bertft import auto

    if padding != "max_length":
        return max_length
    multiples = set(auto.DEVICE_DEFAULTS["pad_to_multiple_of"].values()) \
        if pad_to_multiple_of == auto.AUTO else {pad_to_multiple_of}
    return max(-(-max_length // m) * m if m else max_length for m in multiples)


def position_problems(max_length: int, batch: Any, model_config: Mapping[str, Any], model: str
                      ) -> list[str]:
    """Every way the settings can ask the model for more positions than it embeds: `max_length`
    itself, or `padding = "max_length"` with a `pad_to_multiple_of` that pads it past the limit
    (512 rounded up to a multiple of 100 is 600: a tensor-size error at the first batch, or
    after an epoch when only evaluation pads that far). Refused whatever `unpad` says.
    `batch`: the config's batch section (`padding`, `pad_to_multiple_of`)."""
    problems = max_length_problems(max_length, model_config, model)
    limit = position_limit(model_config)
    multiple = batch.pad_to_multiple_of
    padded = padded_length(max_length, multiple, batch.padding)
    if problems or limit is None or padded <= limit:
        return problems
    return [f"max_length = {max_length} with padding = 'max_length' and pad_to_multiple_of = "
            f"{multiple!r}: batches are padded to {padded} positions; model {model} "
            f"embeds at most {limit}; allowed: a max_length that is a multiple of "
            "pad_to_multiple_of, or padding = 'dynamic' (never pads past max_length)"]
