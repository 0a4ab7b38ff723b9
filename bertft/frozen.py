"""How a batch reaches the logits: the full model, or trainable top layers on cached states.

`fit` picks one *forward* object before its loop (`choose_forward`) and then only calls
`forward.loader(split)`, `forward.logits(model, batch)` and `forward.tokens(batch)`:

- `FullForward`: token ids -> the whole model (the ordinary path).
- `CachedForward` (frozen-prefix cache): when the embeddings AND the bottom K >= 1 encoder layers
  are frozen for the whole run (`freeze_embeddings=True` with `freeze_layers=K`, or
  `freeze_layers='all'`; no gradual unfreezing; `cache_frozen=True`), the hidden states after
  layer K are computed once per example, without gradients and in eval mode (no dropout in the
  frozen layers; `fit` runs frozen layers in eval mode on the full path too, so both paths train
  the same function), and batches carry those states instead of token ids. Only layers K.., the
  pooler and the head run per step. With `freeze_layers='all'` a classifier needs only the [CLS]
  vector after the last layer, so only that is stored.

Both run BERT on the real tokens of each batch only when `cfg.unpad` allows (`bertft.unpad`:
batches then also carry the real tokens' flat positions, computed on the host).

States are kept in the run's `Cache` (fp32, [length, hidden] per example, on the training
device; the ablation runner shares one per process), keyed by model name, tokenized-data key, K,
device, dtype and a hash of the frozen weights, so trials that share those (other seeds,
learning rates, head settings, epochs) reuse them. The hash makes the key correct for randomly
initialised models (tiny-bert) and changed checkpoints.
A deeper K continues from the deepest cached K' < K of the same weights and data (a freezing
grid over K = 2, 4, 6 runs two layers per new K, not K).
Memory: real tokens x hidden x 4 bytes per split (SST-2 4k rows on minilm-l6: ~40 MB); states
that would exceed `cache_limit(cache, device)` (the cache's `frozen` budget, 8 GiB by default; on
a GPU at most a quarter of its memory, which the training needs) are not cached (the full path
runs instead), and older states are evicted to stay within it.

The top layers are run as `BertModel.forward` runs them: the same
`transformers.masking_utils.create_bidirectional_mask` call builds the attention mask for the
model's attention implementation (eager: additive float mask; sdpa: boolean mask, or None when
nothing is padded), so cached logits equal the full model's (tests/test_frozen.py: 1e-5).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase
from transformers.masking_utils import create_bidirectional_mask

from bertft import auto, graphs, unpad
from bertft.cache import Cache
from bertft.config import Config
from bertft.features import (
    IGNORE_INDEX, Encoded, Feature, eval_order, make_loader, real_tokens, train_sampler,
)
from bertft.kinds import kind_of
from bertft.models import encoder_parts
from bertft.runtime import autocast, resolve_settings, resolved_config, synchronize

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
GPU_CACHE_FRACTION = 0.25  # on a GPU the states live beside the model, optimizer and activations


def cache_limit(cache: Cache, device: torch.device) -> int:
    """Bytes of cached states allowed on `device`: the cache's `frozen` budget, and on a CUDA
    device at most GPU_CACHE_FRACTION of its memory."""
    limit = cache.limits["frozen"]
    if device.type != "cuda":
        return limit
    total = torch.cuda.get_device_properties(device).total_memory
    return min(limit, int(total * GPU_CACHE_FRACTION))


def forward_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits


def cached_depth(cfg: Config, n_layers: int) -> int:
    """K, the number of bottom layers whose outputs can be cached; 0 when caching is off."""
    freezing = cfg.model.freezing(n_layers)
    if not cfg.runtime.cache_frozen or not freezing.embeddings or cfg.model.unfreeze_at_epoch:
        return 0
    return freezing.layers


# Architectures whose top layers and heads `CachedForward.logits` reproduces exactly.
unsupported_reason = unpad.architecture_reason


def _with_token_index(collate: Callable[[list], dict[str, torch.Tensor]], min_padding: float
                      ) -> Callable[[list], dict[str, torch.Tensor]]:
    """Collation that also ships the real tokens' flat positions (computed on the host) when
    the batch has enough padding to be worth skipping; the others run padded."""
    def collate_indexed(items: list) -> dict[str, torch.Tensor]:
        batch = collate(items)
        if unpad.worth_unpadding(batch["attention_mask"], min_padding):
            batch[unpad.TOKEN_INDEX] = unpad.token_index(batch["attention_mask"])
        return batch
    return collate_indexed


class FullForward:
    """Token ids through the whole model (padded, or on the real tokens only: `unpadded`)."""

    cached = False
    precompute_seconds = 0.0

    def __init__(self, encoded: Encoded, tokenizer: PreTrainedTokenizerBase, kind: str,
                 cfg: Config, why: str = "", pin_memory: bool = False,
                 unpadded: bool = False, fixed_batch: bool = False) -> None:
        self.encoded, self.tokenizer, self.kind, self.cfg, self.why = (
            encoded, tokenizer, kind, cfg, why)
        self.pin_memory = pin_memory  # page-locked batches: host-to-GPU copies do not block
        self.unpadded = unpadded
        self.fixed_batch = fixed_batch  # training batches filled up to batch_size rows

    def loader(self, split: str, *, train: bool, seed: int = 0) -> DataLoader:
        loader = make_loader(self.encoded.split(split), self.tokenizer, self.kind, self.cfg.batch,
                             self.cfg.tokens.max_length, train=train, seed=seed,
                             pin_memory=self.pin_memory)
        if self.unpadded:
            loader.collate_fn = _with_token_index(loader.collate_fn,
                                                  self.cfg.runtime.unpad_min_padding)
        if self.fixed_batch and train:  # one batch shape per length bucket (CUDA graphs)
            tok = self.tokenizer
            loader.collate_fn = graphs.with_fillers(loader.collate_fn, self.cfg.batch.batch_size,
                                                    tok.cls_token_id, tok.pad_token_id or 0)
        return loader

    def logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if unpad.TOKEN_INDEX in batch:  # an unpadded forward with enough padding to skip
            return unpad.logits(model, batch, self.kind)
        return forward_logits(model, batch)

    @staticmethod
    def tokens(batch: dict[str, torch.Tensor]) -> int:
        return real_tokens(batch) - graphs.fillers(batch)  # a filler row attends to [CLS]

    def compile(self, model: nn.Module) -> None:
        # In place: state_dict keys stay the same (no `_orig_mod.`), so restore_best and saving
        # work; once per model object (`graphs.PROCESS` keeps it for later trials). Each new
        # padded length is a new shape: with fixed batches, one static graph per length bucket;
        # else after the second shape torch.compile switches to dynamic shapes.
        graphs.PROCESS.compile(model, graphs.compile_fn(self.cfg.runtime.compile_mode,
                                                        static=self.fixed_batch))

    def timing(self) -> dict[str, float]:
        return {"frozen_cache": 0.0, "frozen_precompute_seconds": 0.0,
                "unpadded": float(self.unpadded)}


class CachedForward:
    """Cached hidden states after frozen layer K through layers K.., pooler and head."""

    cached = True

    def __init__(self, model: nn.Module, encoded: Encoded, tokenizer: PreTrainedTokenizerBase,
                 kind: str, cfg: Config, k: int, device: torch.device, dtype: torch.dtype,
                 cache: Cache, unpadded: bool = False) -> None:
        parts = encoder_parts(model)
        self.encoded, self.kind, self.cfg, self.k = encoded, kind, cfg, k
        self.top = list(parts.layers[k:])
        self.cls_only = kind_of(kind).pooled and not self.top  # the pooler reads [CLS]
        self.unpadded = unpadded and bool(self.top)  # states packed [T, hidden] per batch
        self.weights = next(model.parameters()).dtype  # states are fp32; bf16-master's are not
        synchronize(device)
        t0 = time.perf_counter()
        key = (cfg.model.name, encoded.key, k, self.cls_only, str(device), str(dtype),
               frozen_weights_hash(model, k))
        states = cache.get("frozen", key)
        self.hit = states is not None
        self.reused_layers = 0  # K' < K: continued from the cached states after layer K'
        if states is None:
            start = _deepest_cached_prefix(model, key, cache)
            self.reused_layers = start[0] if start else 0
            states = {s: precompute(model, encoded.split(s), tokenizer, k, self.cls_only,
                                    device, dtype, cfg.batch.eval_batch_size,
                                    start=(start[0], start[1][s]) if start else None)
                      for s in ("train", "validation", "test")}
            cache.put("frozen", key, states, _nbytes(states), limit=cache_limit(cache, device))
        self.states = states
        synchronize(device)
        self.precompute_seconds = time.perf_counter() - t0

    def loader(self, split: str, *, train: bool, seed: int = 0) -> DataLoader:
        """Same batches, in the same order, as the full path's loader (same samplers)."""
        feats = self.encoded.split(split)
        generator = torch.Generator()
        generator.manual_seed(seed)
        return DataLoader(
            range(len(feats)),  # type: ignore[arg-type]
            batch_size=self.cfg.batch.batch_size if train else self.cfg.batch.eval_batch_size,
            sampler=(train_sampler(feats, self.cfg.batch, generator) if train
                     else eval_order(feats)),
            shuffle=False, num_workers=0,
            collate_fn=lambda idx: self._collate(split, idx),
        )

    def _collate(self, split: str, idx: list[int]) -> dict[str, torch.Tensor]:
        feats, rows = self.encoded.split(split), [self.states[split][i] for i in idx]
        kept = [t.shape[0] for t in rows]
        # built on the host (the loop moves it): deciding and indexing never sync a GPU
        mask = _states_mask(kept, self._width(max(kept)))
        extra = {}
        if self.unpadded and unpad.worth_unpadding(mask, self.cfg.runtime.unpad_min_padding):
            h = torch.cat(rows)
            extra[unpad.TOKEN_INDEX] = unpad.token_index(mask)
        else:
            h = _pad_states(rows, mask.shape[1])
        lengths = torch.tensor([len(feats[i]["input_ids"]) for i in idx])  # type: ignore
        if not kind_of(self.kind).token_level:
            labels = torch.tensor([feats[i]["labels"] for i in idx])
        else:
            labels = torch.full((len(idx), mask.shape[1]), IGNORE_INDEX)
            for j, i in enumerate(idx):
                row = feats[i]["labels"]
                labels[j, :len(row)] = torch.tensor(row)  # type: ignore[arg-type]
        return {"hidden_states": h, "attention_mask": mask, "labels": labels, "length": lengths,
                **extra}

    def _width(self, longest: int) -> int:
        """Padded length, as the full path's collator pads (max_length / multiple-of)."""
        if self.cls_only:
            return 1
        batching = self.cfg.batch
        m = auto.value("pad_to_multiple_of", batching.pad_to_multiple_of)
        if batching.padding == "max_length":
            return -(-self.cfg.tokens.max_length // m) * m if m else self.cfg.tokens.max_length
        return auto.bucket_length(longest, m, self.cfg.tokens.max_length)

    def logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h, mask = batch["hidden_states"].to(self.weights), batch["attention_mask"]
        if unpad.TOKEN_INDEX in batch:
            index = batch[unpad.TOKEN_INDEX]
            h = unpad.pad(unpad.layers(self.top, h, index, mask), index, mask.shape)
        elif self.top:  # exactly as BertModel.forward builds it for its attention implementation
            mask = create_bidirectional_mask(config=model.config, inputs_embeds=h,
                                             attention_mask=mask)
            for layer in self.top:
                h = layer(h, mask)
        return unpad.head(model, h, self.kind)

    @staticmethod
    def tokens(batch: dict[str, torch.Tensor]) -> int:
        return int(batch["length"].sum())  # real tokens of the examples, not of the states

    def compile(self, model: nn.Module) -> None:
        for layer in self.top:  # frozen layers never run per step; compiling them is waste
            graphs.PROCESS.compile(layer, graphs.compile_fn(self.cfg.runtime.compile_mode,
                                                            static=False))

    def timing(self) -> dict[str, float]:
        return {"frozen_cache": 1.0, "frozen_cache_hit": float(self.hit),
                "frozen_cache_reused_layers": float(self.reused_layers),
                "frozen_precompute_seconds": self.precompute_seconds,
                "unpadded": float(self.unpadded)}


Forward = FullForward | CachedForward


def choose_forward(model: nn.Module, encoded: Encoded, tokenizer: PreTrainedTokenizerBase,
                   kind: str, cfg: Config, device: torch.device, dtype: torch.dtype,
                   cache: Cache | None = None) -> Forward:
    """The cached path when the config freezes a prefix for the whole run and the
    architecture is supported and the states fit `cache_limit(cache, device)`; else the full
    path. Frozen-prefix states are kept in `cache` (default: a fresh one, shared with nothing).
    Device-aware settings left to "auto" are resolved for `device` here (`bertft.auto`)."""
    cache = cache if cache is not None else Cache()
    fixed = resolve_settings(cfg, device)["fixed_batch"]
    cfg = resolved_config(cfg, device)
    k = cached_depth(cfg, len(encoder_parts(model).layers))
    pin = device.type == "cuda"
    # compile wants the padded model's static (bucketed) shapes, not per-batch token counts
    unpadded = (cfg.runtime.unpad is True and not cfg.runtime.compile
                and unpad.unsupported_reason(model, kind) is None)
    if k == 0:
        return FullForward(encoded, tokenizer, kind, cfg, "no frozen prefix", pin, unpadded,
                           fixed)
    why = unsupported_reason(model, kind)
    if why is None:
        needed = estimate_bytes(encoded, model.config.hidden_size,
                                cls_only=kind_of(kind).pooled
                                and k == len(encoder_parts(model).layers))
        limit = cache_limit(cache, device)
        if needed > limit:
            why = (f"states would take {needed / 2**30:.2f} GiB, over the cache limit of "
                   f"{limit / 2**30:.2f} GiB on {device.type}")
    if why is not None:
        return FullForward(encoded, tokenizer, kind, cfg, why, pin, unpadded, fixed)
    return CachedForward(model, encoded, tokenizer, kind, cfg, k, device, dtype, cache, unpadded)


def estimate_bytes(encoded: Encoded, hidden: int, cls_only: bool) -> int:
    rows = [f for s in ("train", "validation", "test") for f in encoded.split(s)]
    tokens = len(rows) if cls_only else sum(len(f["input_ids"]) for f in rows)  # type: ignore
    return tokens * hidden * 4


def frozen_weights_hash(model: nn.Module, k: int) -> str:
    """blake2b over the embeddings and layers[:k] (~0.1 s for minilm-l6's 22M parameters)."""
    parts = encoder_parts(model)
    h = hashlib.blake2b(digest_size=16)
    for module in (parts.embeddings, *parts.layers[:k]):
        for name, t in module.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _pad_states(states: list[torch.Tensor], width: int | None = None) -> torch.Tensor:
    """Cached per-example states ([length, hidden]) as one zero-padded batch, `width` positions
    wide (default: the longest). Shared by the training batches and by continuing a shallower
    cached prefix; `_states_mask` gives its attention mask."""
    h = nn.utils.rnn.pad_sequence(states, batch_first=True)
    if width is not None and width > h.shape[1]:
        h = nn.functional.pad(h, (0, 0, 0, width - h.shape[1]))
    return h


def _states_mask(lengths: list[int], width: int, device: torch.device | None = None
                 ) -> torch.Tensor:
    """Attention mask of padded states: 1 on each example's first `length` positions."""
    kept = torch.tensor(lengths, device=device)
    return (torch.arange(width, device=device)[None, :] < kept[:, None]).long()


def _deepest_cached_prefix(model: nn.Module, key: tuple, cache: Cache
                           ) -> tuple[int, dict[str, list[torch.Tensor]]] | None:
    """Cached full states after a shallower layer K' < K of the same model weights, data,
    device and precision, the deepest such K' (a freezing grid over K reuses K=2 for K=4):
    layers K'..K then run on them instead of the embeddings and layers 0..K."""
    name, data, k, _, device, dtype, _ = key
    found = sorted(((c[2], c) for c in cache.keys("frozen") if c[:2] == (name, data)
                    and c[2] < k and not c[3] and c[4:6] == (device, dtype)), reverse=True)
    for k0, candidate in found:
        if candidate[6] == frozen_weights_hash(model, k0):
            return k0, cache.peek("frozen", candidate)
    return None


@torch.no_grad()
def precompute(model: nn.Module, feats: list[Feature], tokenizer: PreTrainedTokenizerBase,
               k: int, cls_only: bool, device: torch.device, dtype: torch.dtype,
               batch_size: int, start: tuple[int, list[torch.Tensor]] | None = None
               ) -> list[torch.Tensor]:
    """Hidden states after layer k for each example ([real length, hidden], or [1, hidden] of
    [CLS] when `cls_only`), in eval mode. Examples are batched by length to skip padding.
    With `start = (k0, states)`, layers k0..k run on the given states after layer k0."""
    parts = encoder_parts(model)
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(feats)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))  # type: ignore
    try:
        for first in range(0, len(order), batch_size):
            idx = order[first:first + batch_size]
            with autocast(device, dtype):
                if start is None:
                    batch = tokenizer.pad(
                        [{n: feats[i][n] for n in MODEL_INPUTS if n in feats[i]} for i in idx],
                        padding="longest", return_tensors="pt")
                    batch = {n: v.to(device) for n, v in batch.items()}
                    h = parts.embeddings(input_ids=batch["input_ids"],
                                         token_type_ids=batch.get("token_type_ids"))
                    attention, layers = batch["attention_mask"], parts.layers[:k]
                else:
                    rows = [start[1][i] for i in idx]
                    h = _pad_states(rows)
                    attention = _states_mask([t.shape[0] for t in rows], h.shape[1], h.device)
                    layers = parts.layers[start[0]:k]
                mask = create_bidirectional_mask(config=model.config, inputs_embeds=h,
                                                 attention_mask=attention)
                for layer in layers:
                    h = layer(h, mask)
            real = attention.bool()
            for j, i in enumerate(idx):
                out[i] = (h[j, :1] if cls_only else h[j][real[j]]).float().clone()
    finally:
        model.train(was_training)
    return out


def _nbytes(states: dict[str, list[torch.Tensor]]) -> int:
    return sum(t.numel() * t.element_size() for ts in states.values() for t in ts)
