"""Few shapes, compiled once per process: what CUDA graphs need from the training loop.

A CUDA graph replays one captured shape. With `compile` on (the CUDA default, `bertft.auto`):

- widths are padded up to length buckets (`auto.bucket_length`: multiples of
  `pad_to_multiple_of`, at most max_length), so a run meets a handful of widths;
- a short training batch (the end of an epoch) is filled up to `batch_size` rows with filler
  rows (`fill_rows`): a [CLS] token each, attended to so that every activation stays finite, and
  the label -100, so they add nothing to the loss, its denominator or the gradients (the
  accumulation tests' arithmetic: `train.loss_denominator` counts labelled rows only);
- the compiled model is kept for the process (`StepReuse`): a later trial with the same
  architecture, head, frozen set, device, dtype and compile mode loads its freshly initialised
  weights into the same parameters (same addresses, which CUDA graphs replay on) instead of
  compiling again. Compiled code also persists on disk (`inductor_cache`). So the `model` of a
  compiled run's `RunResult` is the process's kept model: a later compiled trial overwrites its
  weights (`fit(out_dir=...)` saves them before that).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn

from bertft.features import IGNORE_INDEX, PAD_VALUES

FILLER = "filler_rows"  # batch key: how many of the batch's last rows are fillers


def fill_rows(batch: dict[str, torch.Tensor], rows: int, cls_id: int, pad_id: int
              ) -> dict[str, torch.Tensor]:
    """A batch of fewer than `rows` examples filled up with filler rows (input [CLS] then
    padding, attention on [CLS] only, labels -100); `FILLER` says how many. A full batch is
    returned as it is (with FILLER 0)."""
    n = batch["input_ids"].shape[0]
    missing = max(0, rows - n)
    out = {FILLER: torch.tensor(missing)}
    for k, v in batch.items():
        if not missing:
            out[k] = v
            continue
        fill = v.new_full((missing, *v.shape[1:]), PAD_VALUES.get(k, pad_id))
        if k == "input_ids":
            fill[:, 0] = cls_id
        elif k == "attention_mask":
            fill[:, 0] = 1
        elif k == "labels":
            fill.fill_(IGNORE_INDEX)
        out[k] = torch.cat([v, fill])
    return out


def fillers(batch: dict[str, torch.Tensor]) -> int:
    """Filler rows in a batch (0 for a batch that was not filled)."""
    return int(batch[FILLER]) if FILLER in batch else 0


def with_fillers(collate: Callable[[list], dict[str, torch.Tensor]], rows: int, cls_id: int,
                 pad_id: int) -> Callable[[list], dict[str, torch.Tensor]]:
    """Collation whose batches all have `rows` rows (`fill_rows`)."""
    def collate_filled(items: list) -> dict[str, torch.Tensor]:
        return fill_rows(collate(items), rows, cls_id, pad_id)
    return collate_filled


def reuse_key(model: nn.Module, frozen: set[str], device: torch.device, dtype: torch.dtype,
              mode: str) -> Hashable:
    """What a compiled model's graphs depend on besides its weights' values: the architecture
    and head (the model's config), which parameters train (autograd's graph), the device, the
    autocast dtype and the compile mode."""
    arch = json.dumps(model.config.to_dict(), sort_keys=True, default=str)
    digest = hashlib.sha256("\n".join([type(model).__name__, arch, *sorted(frozen)]).encode())
    return (digest.hexdigest()[:16], str(device), str(dtype), mode)


class StepReuse:
    """Compiled models kept per `reuse_key`, at most `keep` of them (least recently used go
    first). `take` gives the kept model with the fresh model's weights loaded, or keeps the
    fresh one; `compile` compiles a model once per target (`compiles` counts them)."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self.models: OrderedDict[Hashable, nn.Module] = OrderedDict()
        self.compiles = 0

    def take(self, key: Hashable, fresh: nn.Module) -> tuple[nn.Module, bool]:
        """(model, reused): the kept model for `key` holding `fresh`'s weights and
        requires_grad flags, or `fresh` itself, now kept."""
        kept = self.models.get(key)
        if kept is None:
            self.models[key] = fresh
            while len(self.models) > self.keep:
                self.models.popitem(last=False)
            return fresh, False
        self.models.move_to_end(key)
        with torch.no_grad():  # in place: the parameters keep their addresses
            kept.load_state_dict(fresh.state_dict())
        for (_, p), (_, q) in zip(kept.named_parameters(), fresh.named_parameters(),
                                  strict=True):
            p.requires_grad_(q.requires_grad)
            p.grad = None
        return kept, True

    def compile(self, target: nn.Module, compile_fn: Callable[[nn.Module], None]) -> bool:
        """Compile `target` (the model, or a layer of it) in place unless done before; True
        when it compiled now."""
        if getattr(target, "_bertft_compiled", False):
            return False
        compile_fn(target)
        target._bertft_compiled = True  # type: ignore[assignment]
        self.compiles += 1
        return True

    def clear(self) -> None:
        self.models.clear()


PROCESS = StepReuse()  # the process's compiled models, shared by its trials


def kept_model(model: nn.Module, frozen: set[str], device: torch.device, dtype: torch.dtype,
               runtime: Any, cache_root: str | os.PathLike | None
               ) -> tuple[nn.Module, bool]:
    """(model, reused): for a compiled run (`runtime`: the resolved runtime section) the
    process's kept model of the same `reuse_key` holding `model`'s weights (`PROCESS.take`),
    with compiled code kept on disk under `cache_root`; else `model` itself."""
    if not runtime.compile:
        return model, False
    inductor_cache(cache_root)
    return PROCESS.take(reuse_key(model, frozen, device, dtype, runtime.compile_mode), model)


def facts(compiled: bool, reused: bool, seconds_before: float) -> dict[str, float]:
    """A compiled run's timing entries: seconds compiling since `seconds_before`
    (`compile_seconds()` when the run began) and whether its model was reused. Eager runs add
    none (their timing keeps its keys)."""
    if not compiled:
        return {}
    return {"compile_seconds": compile_seconds() - seconds_before,
            "compiled_model_reused": float(reused)}


def inductor_cache(root: str | os.PathLike | None) -> str | None:
    """Keep inductor's compiled code and FX/AOT-autograd graph caches on disk under `root`
    (a later process compiles from them), unless TORCHINDUCTOR_CACHE_DIR is set already.
    Returns the folder in use (None: torch's default)."""
    if root is not None and not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(root, "inductor")
    try:
        import torch._inductor.config as inductor

        inductor.fx_graph_cache = True
        if hasattr(inductor, "autograd_cache"):  # AOT-autograd cache: the backward too
            inductor.autograd_cache = True
    except ImportError:  # pragma: no cover - a torch without inductor
        pass
    return os.environ.get("TORCHINDUCTOR_CACHE_DIR")


# Graphs one static-shape model may hold: (train, eval) x length buckets x batch shapes, for
# every trial of the process that reuses it (torch's default limit of 8 would fall back to
# eager after a few).
STATIC_RECOMPILE_LIMIT = 64


def compile_fn(mode: str, static: bool) -> Callable[[nn.Module], None]:
    """`Module.compile` in place (state_dict keys unchanged), static shapes when `static`
    (one graph per length bucket, not dynamic shapes that CUDA graphs re-record)."""
    def run(module: nn.Module) -> None:
        if static:
            import torch._dynamo.config as dynamo

            name = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
            setattr(dynamo, name, max(getattr(dynamo, name), STATIC_RECOMPILE_LIMIT))
        module.compile(mode=mode, dynamic=False if static else None)
    return run


def compile_seconds() -> float:
    """Seconds torch.compile has spent in this process so far (dynamo's own timer of each
    frame's compilation, inductor's code generation inside it; 0 before any)."""
    try:
        from torch._dynamo.utils import compilation_time_metrics
    except ImportError:  # pragma: no cover
        return 0.0
    return float(sum(sum(v) for k, v in compilation_time_metrics.items()
                     if k.endswith("compile_inner")))
