"""The declared range of every numeric setting, and the limits that depend on the model.

`RANGES` names, for each int or float Config field, the smallest and largest value allowed,
as the field declares it (`within=`, `bertft.values`). The position limit of the model
(`position_problems`: `max_length`, and the length padding to it pads up to) is
checked at spec collection when the model's config.json is on this machine, and in `fit` once
the model is built, before any training step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bertft.config import FIELDS
from bertft.values import Range

RANGES: dict[str, Range] = {
    key: f.metadata["within"] for key, f in FIELDS.items() if "within" in f.metadata}


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
