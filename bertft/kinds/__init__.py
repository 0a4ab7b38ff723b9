"""Task kinds: what differs between a classification task and an NER task, declared once.

The core asks the kind (`kind_of(name).main_metrics`, `.auto_model()`, `.collator_class()`, ...)
instead of comparing kind names. Stored results keep the kind's name (`TrialResult.kind`); the
object is looked up from it. Adding a kind is one module beside `classification.py` and `ner.py`
plus its line in `KINDS` below.

This package sits low: it imports nothing from bertft but `errors`, and transformers only when a
model head or collator class is asked for (the report reads kinds without loading transformers).
"""

from __future__ import annotations

from bertft.errors import BertftError
from bertft.kinds import classification, ner
from bertft.kinds.base import TaskKind

KINDS: dict[str, TaskKind] = {k.name: k for k in (
    classification.KIND,
    ner.KIND,
)}
"""Every task kind, by name: the registry."""

DEFAULT = classification.KIND
"""The kind of a stored result that names none (written before results stored the kind)."""


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def kind_of(kind: str | TaskKind) -> TaskKind:
    """The kind named `kind` (a TaskKind passes through), or one BertftError naming the allowed."""
    if isinstance(kind, TaskKind):
        return kind
    try:
        return KINDS[kind]
    except (KeyError, TypeError):
        raise BertftError(f"task kind {kind!r} is not known; allowed: "
                          f"{', '.join(KINDS)}") from None


__all__ = ["DEFAULT", "KINDS", "TaskKind", "kind_names", "kind_of"]
