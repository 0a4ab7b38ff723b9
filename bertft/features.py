"""Tokenization, NER label alignment, batching.

Examples are tokenized once (fast tokenizer, truncation, no padding) and cached in memory and on
disk by (tokenizer, data fingerprint, the `tokens` config section). Padding happens per batch in the
collator: dynamic by default, to `max_length` as an option, rounded up to `pad_to_multiple_of`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler
from transformers import (
    PreTrainedTokenizerBase,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from bertft import auto
from bertft.cache import Cache
from bertft.checkpoint import atomic_torch_save
from bertft.config import BatchConfig, TokenConfig
from bertft.data import Example, Splits
from bertft.kinds import kind_of

IGNORE_INDEX = -100
Feature = dict[str, list[int] | int]


@dataclass(frozen=True)
class Encoded:
    """Tokenized splits: lists of features (input_ids, attention_mask, [token_type_ids], labels)."""

    train: list[Feature]
    validation: list[Feature]
    test: list[Feature]
    key: str

    def split(self, name: str) -> list[Feature]:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def align_labels(word_ids: list[int | None], tags: tuple[int, ...], all_subtokens: bool
                 ) -> list[int]:
    """Word-level tags to word pieces: the first piece of each word gets the word's tag, later
    pieces -100 (or the tag with `all_subtokens`), special tokens -100.

    With `all_subtokens`, a continuation piece of a `B-X` word would need `I-X`; we keep the
    tag as is, the common convention. It only applies to training: evaluation splits are
    always labelled on first pieces (`encode_examples`), so seqeval scores words, not pieces.
    """
    out: list[int] = []
    previous: int | None = None
    for wid in word_ids:
        if wid is None:
            out.append(IGNORE_INDEX)
        elif wid != previous:
            out.append(tags[wid])
        else:
            out.append(tags[wid] if all_subtokens else IGNORE_INDEX)
        previous = wid
    return out


def encode_examples(examples: tuple[Example, ...], kind: str, tokenizer: PreTrainedTokenizerBase,
                    cfg: TokenConfig, *, train: bool = True) -> list[Feature]:
    """Features of one split. NER labels of evaluation splits (`train=False`) sit on the first
    piece of each word only, whatever `label_all_subtokens` says: metrics, predictions and the
    validation loss are per word."""
    if not examples:
        return []
    if not kind_of(kind).token_level:
        texts = [e.text or "" for e in examples]
        pairs = [e.text_pair or "" for e in examples] if examples[0].text_pair is not None \
            else None
        enc = tokenizer(texts, pairs, truncation=True, max_length=cfg.max_length)
        feats = [{k: enc[k][i] for k in enc.keys()} for i in range(len(examples))]
        for f, e in zip(feats, examples, strict=True):
            f["labels"] = int(e.label)  # type: ignore[arg-type]
        return feats
    words = [list(e.tokens or ()) for e in examples]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=cfg.max_length)
    feats = []
    for i, e in enumerate(examples):
        f = {k: enc[k][i] for k in enc.keys()}
        f["labels"] = align_labels(enc.word_ids(i), e.tags or (),
                                   cfg.label_all_subtokens and train)
        feats.append(f)
    return feats


def scored_words(examples: tuple[Example, ...], tokenizer: PreTrainedTokenizerBase,
                 cfg: TokenConfig) -> list[tuple[tuple[int, ...], list[int]]]:
    """Per NER sentence of an evaluation split: every word's gold tag, and the words that
    evaluation scores (those whose first piece fits in max_length, in order). A word cut off,
    or one the tokenizer turns into no piece at all, is missing from the second list."""
    if not examples:
        return []
    enc = tokenizer([list(e.tokens or ()) for e in examples], is_split_into_words=True,
                    truncation=True, max_length=cfg.max_length)
    out = []
    for i, e in enumerate(examples):
        ids = enc.word_ids(i)
        seen = [w for j, w in enumerate(ids) if w is not None and (j == 0 or ids[j - 1] != w)]
        out.append((tuple(e.tags or ()), seen))
    return out


def cache_key(splits: Splits, tokenizer: PreTrainedTokenizerBase, cfg: TokenConfig) -> str:
    """Everything tokenization depends on: the data, the tokenizer (`tokenizer_settings`: its
    vocabulary, normalizer, truncation side, limits, special tokens...) and the `tokens`
    section; trials that share it share the encoded data."""
    from bertft.models import tokenizer_settings

    parts = {
        "data": splits.fingerprint(),
        "tokenizer": tokenizer_settings(tokenizer),
        "tokens": dataclasses.asdict(cfg),
        "version": 4,  # 2: evaluation splits labelled on first pieces only; 3: sections;
        #                4: every tokenizer setting (truncation_side...)
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path | None:
    """On-disk cache between sessions: $BERTFT_CACHE_DIR, or ~/.cache/bertft; '' disables it."""
    value = os.environ.get("BERTFT_CACHE_DIR")
    if value == "":
        return None
    return Path(value) if value else Path.home() / ".cache" / "bertft"


def encode_splits(splits: Splits, tokenizer: PreTrainedTokenizerBase, cfg: TokenConfig,
                  cache: Cache | None = None) -> Encoded:
    """Tokenize all splits once per key: `cache` (memory) first, then disk, else compute and
    store in both."""
    key = cache_key(splits, tokenizer, cfg)
    cached = cache.get("tokenized", key) if cache is not None else None
    if cached is not None:
        return cached
    root = cache_dir()
    path = root / "tokenized" / f"{key}.pt" if root else None
    encoded: Encoded | None = None
    if path is not None and path.is_file():
        try:
            blob = torch.load(path, weights_only=True)  # plain lists and ints; no pickle code
            encoded = Encoded(blob["train"], blob["validation"], blob["test"], key)
        except Exception as exc:  # a truncated or foreign file: recompute and overwrite
            warnings.warn(f"tokenization cache: cannot read {path} ({type(exc).__name__}); "
                          "tokenizing again and replacing it", RuntimeWarning, stacklevel=2)
            encoded = None
    if encoded is None:
        encoded = Encoded(*(encode_examples(getattr(splits, s), splits.kind, tokenizer, cfg,
                                            train=s == "train")
                            for s in ("train", "validation", "test")), key=key)
        if path is not None:
            _write_cache({"train": encoded.train, "validation": encoded.validation,
                          "test": encoded.test}, path, cache)
    if cache is not None:
        cache.put("tokenized", key, encoded, _nbytes(encoded))
    return encoded


def _nbytes(encoded: Encoded) -> int:
    """Rough memory of tokenized features: 8 bytes per stored integer (list slots)."""
    return 8 * sum(len(v) if isinstance(v, list) else 1
                   for s in ("train", "validation", "test") for f in encoded.split(s)
                   for v in f.values())


def _write_cache(obj: Any, path: Path, cache: Cache | None) -> None:
    """The disk cache only saves time: a failed write (read-only folder, full disk) leaves no
    partial file, warns once per `cache` (per process, for the runner) and the run goes on."""
    try:
        atomic_torch_save(obj, path)
    except Exception as exc:
        if cache is None or cache.first_time("tokenization cache write failed"):
            warnings.warn(f"tokenization cache: cannot write {path} ({type(exc).__name__}: "
                          f"{exc}); continuing without the disk cache (set BERTFT_CACHE_DIR "
                          "to a writable folder, or to '' to turn it off)",
                          RuntimeWarning, stacklevel=2)


def collator(tokenizer: PreTrainedTokenizerBase, kind: str, cfg: BatchConfig, max_length: int):
    """Pads each batch: to its longest sequence (dynamic) or to max_length; with
    `pad_to_multiple_of`, dynamic widths are rounded up to a multiple of it, never past
    max_length (`auto.bucket_length`; "auto" unresolved here reads the CPU's column)."""
    multiple = auto.value("pad_to_multiple_of", cfg.pad_to_multiple_of)
    cls = kind_of(kind).collator_class()
    if cfg.padding == "max_length":
        return cls(tokenizer=tokenizer, padding="max_length", max_length=max_length,
                   pad_to_multiple_of=multiple, return_tensors="pt")
    pad = cls(tokenizer=tokenizer, padding="longest", max_length=max_length,
              return_tensors="pt")
    if not multiple:
        return pad

    def bucketed(items: list) -> dict[str, torch.Tensor]:
        batch = pad(items)
        width = batch["input_ids"].shape[1]
        return pad_width(batch, auto.bucket_length(width, multiple, max_length),
                         tokenizer.pad_token_id or 0)
    return bucketed


# What each batch key is padded with: padding is never attended to nor labelled.
PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "labels": IGNORE_INDEX}


def pad_width(batch: dict[str, torch.Tensor], width: int, pad_id: int
              ) -> dict[str, torch.Tensor]:
    """A padded batch widened to `width` positions (input ids with `pad_id`, the rest as
    `PAD_VALUES` says); 1-D keys (classification labels) are left alone."""
    out = {}
    for k, v in batch.items():
        extra = width - v.shape[1] if v.dim() == 2 else 0
        out[k] = (torch.nn.functional.pad(v, (0, extra), value=PAD_VALUES.get(k, pad_id))
                  if extra > 0 else v)
    return out


def length_bucket_order(lengths: list[int], batch_size: int, generator: torch.Generator
                        ) -> list[int]:
    """Indices of one epoch, `sampling = "length_buckets"`: shuffle; cut into mega-batches of
    `mult` batches (the Trainer's rule: min(50, n // (4 * batch_size)), at least 1, so a small
    set still has about four); sort each by length (longest first) and cut it into batches;
    shuffle the full batches, then move the one holding the longest example to the front (a
    memory error shows at once, as with the Trainer). The one partial batch, if any, comes last,
    so the DataLoader cuts exactly these batches."""
    n = len(lengths)
    mega = max(1, min(50, n // (4 * batch_size))) * batch_size
    perm = torch.randperm(n, generator=generator).tolist()
    batches = []
    for first in range(0, n, mega):
        group = sorted(perm[first:first + mega], key=lengths.__getitem__, reverse=True)
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    partial = [b for b in batches if len(b) < batch_size]
    full = [b for b in batches if len(b) == batch_size]
    full = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
    if full:
        longest = max(range(len(full)), key=lambda i: lengths[full[i][0]])
        full[0], full[longest] = full[longest], full[0]
    return [i for b in full + partial for i in b]


class LengthBucketSampler(Sampler[int]):
    """`length_bucket_order` each epoch, from its own generator (advanced each epoch, saved in
    checkpoints like RandomSampler's)."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator) -> None:
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(length_bucket_order(self.lengths, self.batch_size, self.generator))


def train_sampler(features: list[Feature], cfg: BatchConfig, generator: torch.Generator
                  ) -> Sampler:
    """The training order `cfg.sampling` names, drawn from `generator`."""
    lengths = [len(f["input_ids"]) for f in features]  # type: ignore[arg-type]
    sampling = auto.value("sampling", cfg.sampling)  # `fit` passes it resolved
    if sampling == "length_buckets":
        return LengthBucketSampler(lengths, cfg.batch_size, generator)
    if sampling == "group_by_length":
        return LengthGroupedSampler(cfg.batch_size, lengths=lengths, generator=generator)
    return RandomSampler(features, generator=generator)


def eval_order(features: list[Feature]) -> list[int]:
    """Evaluation order: longest first, so each batch holds similar lengths (little padding)
    and the largest batch comes first. `evaluate` puts predictions back in data order."""
    return sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))  # type: ignore


def make_loader(features: list[Feature], tokenizer: PreTrainedTokenizerBase, kind: str,
                cfg: BatchConfig, max_length: int, *, train: bool, seed: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """Training loaders shuffle with their own generator (seeded by `seed`, advanced each
    epoch); evaluation loaders go longest first (`eval_order`)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        features,  # type: ignore[arg-type]
        batch_size=cfg.batch_size if train else cfg.eval_batch_size,
        sampler=train_sampler(features, cfg, generator) if train else eval_order(features),
        shuffle=False,
        collate_fn=collator(tokenizer, kind, cfg, max_length),
        num_workers=0,  # tokenization is done up front; batching is cheap
        pin_memory=pin_memory,
    )


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Non-padding tokens in a batch (a CPU-GPU sync point if the mask is on the GPU)."""
    return int(batch["attention_mask"].sum())
