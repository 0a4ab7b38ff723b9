"""Device-aware defaults: what `"auto"` means for each setting on each device type, declared once.

`unpad`, `sampling`, `pad_to_multiple_of`, `precision`, `compile` and `compile_mode` default to
`"auto"`. `resolve(requested, device_type)` is the one function that turns them into values: a
setting given explicitly is kept, an `"auto"` one takes its device type's column of
`DEVICE_DEFAULTS`. A device type without a column of its own (mps) takes the CPU's. `fit`
records both the requested settings (the result's config) and the resolved ones (the result's
`environment["resolved"]`).

Why the columns differ (benchmarks/README.md, issue 23, holds the measurements):
- CPU: today's defaults, unchanged: unpadded BERT per batch, length-bucketed order, dynamic
  padding, fp32, eager. The unpadded CPU step is 1.07-1.8x the padded one.
- CUDA: padded, length-bucketed, bf16, eager. On an H100 unpadding cost 24% (the scatter and
  gather around attention cost more than the padded FLOPs they save on a launch-bound device);
  padded eager was 1.15x the Trainer. CUDA graphs (`compile = true`, which then resolves
  `compile_mode` to `reduce-overhead`) were 2.6x eager there, but this code's graphed path has
  not yet run on a GPU, so they stay opt-in until the prepared GPU run checks them. Graphs want
  few shapes: lengths are padded up to multiples of 32 (at most max_length, `bucket_length`) and a
  short training batch is filled up with rows that carry no loss (`fixed_batch`), so a run
  needs one graph per length bucket.
- precision: no column picks `bf16-master` (bf16 weights with fp32 masters, no weight casts per
  step: `bertft.master`) until the prepared GPU run (long-text table, batch 32 and 128 beside
  the autocast rows) shows it faster than bf16 autocast there; it is opt-in until then.

This module imports nothing heavy: `Config.hash` reads the CPU column (see `HASHED_AS`).
"""

from __future__ import annotations

from typing import Any

AUTO = "auto"
CPU, CUDA = "cpu", "cuda"

# setting -> device type -> the value "auto" resolves to. `fixed_batch` is derived, not a
# setting: training batches keep batch_size rows (filler rows carry no loss) when compiled.
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "unpad": {CPU: True, CUDA: False},
    "sampling": {CPU: "length_buckets", CUDA: "length_buckets"},
    "pad_to_multiple_of": {CPU: None, CUDA: 32},
    "precision": {CPU: "fp32", CUDA: "bf16"},
    # CUDA graphs (`compile = true`, mode reduce-overhead) stay opt-in on CUDA until the prepared
    # GPU run (`python -m benchmarks.gpu --all`) has checked them against eager there.
    "compile": {CPU: False, CUDA: False},
    "compile_mode": {CPU: "default", CUDA: "reduce-overhead"},
    "fixed_batch": {CPU: False, CUDA: True},
}
SETTINGS = tuple(k for k in DEVICE_DEFAULTS if k != "fixed_batch")

# Settings that were "auto" before device-aware defaults existed (precision): hashed as "auto".
# Every other setting's "auto" is hashed as its CPU value, the fixed default it replaced, so the
# reuse key of every stored CPU result stays what it was.
HASHED_AS: dict[str, Any] = {k: DEVICE_DEFAULTS[k][CPU] for k in SETTINGS if k != "precision"}


def column(device_type: str) -> str:
    """The column a device type reads: its own, or the CPU's (mps and anything else)."""
    return device_type if device_type in DEVICE_DEFAULTS["unpad"] else CPU


def value(key: str, requested: Any, device_type: str = CPU) -> Any:
    """One setting's value on `device_type`: `requested`, or its column's when "auto". Code
    that has no device (batching for `bertft predict`, tests) resolves for the CPU."""
    return DEVICE_DEFAULTS[key][column(device_type)] if requested == AUTO else requested


def resolve(requested: dict[str, Any], device_type: str, bf16_supported: bool = True
            ) -> dict[str, Any]:
    """The resolved value of every `SETTINGS` key (and `fixed_batch`) for `device_type`:
    explicit values are kept, "auto" ones read `DEVICE_DEFAULTS`. bf16 needs a device that
    supports it (`bf16_supported`; fp32 otherwise). `fixed_batch` holds only for a compiled
    run on a device whose column asks for it."""
    col = column(device_type)
    out = {k: value(k, requested[k], device_type) for k in SETTINGS}
    if out["precision"] == "bf16" and requested["precision"] == AUTO and not bf16_supported:
        out["precision"] = "fp32"
    out["fixed_batch"] = bool(out["compile"]) and DEVICE_DEFAULTS["fixed_batch"][col]
    return out


def hashed(key: str, value: Any) -> Any:
    """What `Config.hash` sees of a setting: "auto" as its CPU value (`HASHED_AS`)."""
    return HASHED_AS[key] if value == AUTO and key in HASHED_AS else value


def bucket_length(longest: int, multiple: int | None, max_length: int) -> int:
    """Padded width of a batch whose longest sequence has `longest` word pieces: rounded up to
    a multiple of `multiple` (None: not rounded), never past `max_length`."""
    if not multiple:
        return longest
    return min(-(-longest // multiple) * multiple, max(max_length, longest))


def bucket_lengths(multiple: int, max_length: int) -> tuple[int, ...]:
    """Every width `bucket_length` gives for sequences of 1..max_length word pieces: the
    shapes a graphed run compiles (max_length 128, multiple 32: 32, 64, 96, 128)."""
    return tuple(sorted({bucket_length(n, multiple, max_length)
                         for n in range(1, max_length + 1)}))
