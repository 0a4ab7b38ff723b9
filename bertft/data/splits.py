"""Preprocessing and deterministic splits, and `load_task`, the one entry point.

`load_task(cfg)` looks the task up in `TASKS`, runs its loader, preprocesses every split, carves
the splits the source lacks out of train, and finally subsets train (`max_train_samples`). Every
random choice is seeded by `data_seed` only, so all `seed`s of an ablation see identical data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple


from bertft.config import DataConfig
from bertft.data.tasks import task_spec, unread_setting_problem
from bertft.data.types import Example, Kind, Splits
from bertft.errors import DataError
from bertft.kinds import kind_of

_HTML_TAG = re.compile(r"<[^>]+>")


# --- preprocessing ---------------------------------------------------------------------------
def clean_text(text: str, cfg: DataConfig) -> str:
    """strip_html (tags -> space), then lowercase, then normalize_whitespace."""
    if cfg.strip_html:
        text = _HTML_TAG.sub(" ", text)
    if cfg.lowercase:
        text = text.lower()
    if cfg.normalize_whitespace:
        text = " ".join(text.split())
    return text


def _clean_example(ex: Example, cfg: DataConfig, kind: Kind) -> Example:
    if kind_of(kind).token_level:
        if not cfg.lowercase:
            return ex
        return replace(ex, tokens=tuple(t.lower() for t in ex.tokens or ()))
    pair = None if ex.text_pair is None else clean_text(ex.text_pair, cfg)
    return replace(ex, text=clean_text(ex.text or "", cfg), text_pair=pair)


def _is_empty(ex: Example, kind: Kind) -> bool:
    return not ex.tokens if kind_of(kind).token_level else not (ex.text or "").strip()


def _dedupe_key(ex: Example, kind: Kind) -> tuple:
    """Duplicates: same (text, text_pair); for NER, same tokens (tags ignored)."""
    return (ex.tokens,) if kind_of(kind).token_level else (ex.text, ex.text_pair)


def preprocess(examples: Sequence[Example], cfg: DataConfig, kind: Kind, is_train: bool
               ) -> tuple[Example, ...]:
    """Clean every example; drop_empty everywhere, drop_duplicates (first kept) on train only."""
    out = [_clean_example(ex, cfg, kind) for ex in examples]
    if cfg.drop_empty:
        out = [ex for ex in out if not _is_empty(ex, kind)]
    if cfg.drop_duplicates and is_train:
        seen: set[tuple] = set()
        unique = []
        for ex in out:
            key = _dedupe_key(ex, kind)
            if key not in seen:
                seen.add(key)
                unique.append(ex)
        out = unique
    return tuple(out)


# --- splitting -------------------------------------------------------------------------------
class Carved(NamedTuple):
    kept: tuple[Example, ...]
    carved: tuple[Example, ...]
    unstratified: str | None  # why a split asked to be stratified is not; None when it is


def carve(pool: Sequence[Example], n_out: int, seed: int, stratify: bool) -> Carved:
    """Split `pool` into (kept, carved) with exactly `n_out` carved, seeded; both keep pool order.

    Stratified by label when asked; sklearn refuses that when a class has a single member or
    there are more classes than carved slots, and then the split is unstratified instead and
    `unstratified` says why (the run records it)."""
    from sklearn.model_selection import train_test_split  # 2 s to import: not for usage errors

    indices = list(range(len(pool)))
    labels = [ex.label for ex in pool] if stratify else None
    why = None
    try:
        kept, out = train_test_split(indices, test_size=n_out, random_state=seed,
                                     stratify=labels)
    except ValueError as exc:
        if labels is None:
            raise
        why = str(exc).split(".")[0]
        kept, out = train_test_split(indices, test_size=n_out, random_state=seed)
    return Carved(tuple(pool[i] for i in sorted(kept)), tuple(pool[i] for i in sorted(out)),
                  why)


def _carve_missing(task: str, train: tuple[Example, ...], validation: tuple[Example, ...] | None,
                   test: tuple[Example, ...] | None, cfg: DataConfig, stratify: bool,
                   notes: list[str]
                   ) -> tuple[tuple[Example, ...], tuple[Example, ...], tuple[Example, ...]]:
    """Carve test (test_ratio) then validation (validation_ratio), both shares of the train
    pool as loaded and preprocessed, rounded up; a split carved unstratified goes in `notes`."""
    n = len(train)
    n_test = 0 if test is not None else math.ceil(cfg.test_ratio * n)
    n_val = 0 if validation is not None else math.ceil(cfg.validation_ratio * n)
    if n - n_test - n_val < 1:
        raise DataError(f"{task}: only {n} training examples, too few to carve a validation "
                        f"({n_val}) and test ({n_test}) split out of them; add data or give "
                        "validation/test files")
    if test is None:
        train, test, why = carve(train, n_test, cfg.data_seed, stratify)
        notes += [f"test: {why}"] if why else []
    if validation is None:
        train, validation, why = carve(train, n_val, cfg.data_seed, stratify)
        notes += [f"validation: {why}"] if why else []
    return train, validation, test


SUBSET_KEYS = {"train": "max_train_samples", "validation": "max_eval_samples",
               "test": "max_test_samples"}


def subset(train: tuple[Example, ...], n: int | None, seed: int, stratify: bool,
           notes: list[str] | None = None, split: str = "train") -> tuple[Example, ...]:
    """A seeded (stratified for classification) subset of exactly `n` examples of `split`, in
    their original order; all when `n` is None or not smaller than the split. A subset drawn
    unstratified goes in `notes`, named by its split and setting."""
    if n is None or n >= len(train):
        return train
    kept, _, why = carve(train, len(train) - n, seed, stratify)
    if why and notes is not None:
        notes.append(f"{split} subset ({SUBSET_KEYS[split]}): {why}")
    return kept


def _require_classes(task: str, examples: Sequence[Example], names: Sequence[str],
                     what: str = "the training data") -> None:
    """Classification needs two classes in every split: one class trains nothing and makes
    every macro figure of that split meaningless."""
    present = sorted({ex.label for ex in examples if ex.label is not None})
    if len(present) < 2:
        found = ", ".join(f"'{names[i]}'" for i in present) or "none"
        raise DataError(f"{task}: {what} has only {len(present)} class ({found}); "
                        "classification needs at least 2 different labels in every split")


def load_task(cfg: DataConfig) -> Splits:
    """Load `cfg.task`: raw splits -> preprocess -> carve missing splits -> subset train
    (max_train_samples), validation (max_eval_samples) and test (max_test_samples)."""
    spec = task_spec(cfg.task)
    if problem := unread_setting_problem(cfg):
        raise DataError(problem)
    raw = spec.loader(cfg)
    train = preprocess(raw.train, cfg, spec.kind, is_train=True)
    if not train:
        raise DataError(f"{spec.name}: no training examples left after preprocessing "
                        "(drop_empty/drop_duplicates)")
    given = {}
    for name, examples in (("validation", raw.validation), ("test", raw.test)):
        if examples is not None:
            given[name] = preprocess(examples, cfg, spec.kind, is_train=False)
            if not given[name]:
                raise DataError(f"{spec.name}: no {name} examples left after preprocessing "
                                "(drop_empty)")
    stratify = kind_of(spec.kind).stratify
    if stratify:
        _require_classes(spec.name, train, raw.label_names)
    notes: list[str] = []
    train, validation, test = _carve_missing(spec.name, train, given.get("validation"),
                                             given.get("test"), cfg, stratify, notes)
    final = {name: subset(examples, getattr(cfg, SUBSET_KEYS[name]), cfg.data_seed, stratify,
                          notes, name)
             for name, examples in (("train", train), ("validation", validation),
                                    ("test", test))}
    if stratify:
        carved = len(given) < 2  # a split given as a file is the user's choice; one that
        for name, examples in final.items():  # carving or a subset made is checked
            steps = [] if name in given else ["carving"] if name != "train" or carved else []
            steps += [SUBSET_KEYS[name]] if getattr(cfg, SUBSET_KEYS[name]) else []
            if steps:
                _require_classes(spec.name, examples, raw.label_names,
                                 f"the {name} split after {' and '.join(steps)}")
    return Splits(spec.name, spec.kind, raw.label_names, final["train"], final["validation"],
                  final["test"], raw.source, tuple(notes))
