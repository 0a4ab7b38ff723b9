"""The data types every part of bertft.data shares: examples, raw and final splits."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

Kind = str  # a task kind's name: a key of bertft.kinds.KINDS
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One classification example (text, optional text_pair, label) or one NER sentence
    (tokens and one BIO tag id per token)."""

    text: str | None = None
    text_pair: str | None = None
    label: int | None = None
    tokens: tuple[str, ...] | None = None
    tags: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Splits:
    """A task's final train/validation/test examples and their label names."""

    task: str
    kind: Kind
    label_names: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]
    source: str
    # splits carved without stratification, with why (sklearn refused: a class too small)
    unstratified: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}

    def fingerprint(self) -> str:
        """sha256 (16 hex digits) over the label names and every example of every split.

        Computed once per instance: trials sharing loaded splits ask for it on every run."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        h = hashlib.sha256(json.dumps(list(self.label_names)).encode())
        for name in SPLIT_NAMES:
            h.update(f"\n#{name}\n".encode())
            for ex in getattr(self, name):
                row = [ex.text, ex.text_pair, ex.label, ex.tokens, ex.tags]
                h.update(json.dumps(row, ensure_ascii=False).encode())
                h.update(b"\n")
        value = h.hexdigest()[:16]
        object.__setattr__(self, "_fingerprint", value)  # a cache, not a field
        return value


@dataclass(frozen=True)
class RawSplits:
    """What a loader returns: splits as the source ships them (None: the source has none)."""

    label_names: tuple[str, ...]
    train: tuple[Example, ...]
    validation: tuple[Example, ...] | None
    test: tuple[Example, ...] | None
    source: str


def splits_nbytes(splits: Splits) -> int:
    """Rough memory of loaded splits (for the cache's budget): 2 bytes a character of text
    and 100 bytes an example."""
    total = 0
    for name in SPLIT_NAMES:
        for ex in getattr(splits, name):
            total += 100 + 2 * (len(ex.text or "") + len(ex.text_pair or "")
                                + sum(len(t) + 8 for t in ex.tokens or ()))
    return total


def portable_source(path: str | Path) -> str:
    """How results and reports name a data source, the same on every machine: a file of an
    installed package as `package:path/inside/it`, anything else as its path relative to the
    working folder (POSIX separators); never this machine's absolute path."""
    text = str(path).replace("\\", "/")
    if text.startswith("hub:"):
        return text
    for marker in ("/site-packages/", "/dist-packages/"):  # also another machine's paths
        if marker in text:
            package, _, inside = text.split(marker, 1)[1].partition("/")
            return f"{package}:{inside}"
    p = Path(path).expanduser().resolve()
    try:
        return Path(os.path.relpath(p)).as_posix()
    except ValueError:  # another drive (Windows): the name is all that travels
        return p.name


def portable_sources(text: str | None) -> str | None:
    """A stored `source` (files joined by ", ") with any absolute path made portable: results
    stored before 2026-11-29 hold the absolute paths of the machine that ran them."""
    if not text:
        return text
    return ", ".join(portable_source(s) if os.path.isabs(s) else s for s in text.split(", "))
