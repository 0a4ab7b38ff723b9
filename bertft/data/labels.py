"""Class labels as names: one label space per task, every split mapped into it by name.

A label is compared as a name: Unicode NFC, surrounding whitespace stripped, so "café" typed
either way is one class and "neg " is "neg". Integer labels compare as integers ("01" is "1")
when the label space is numeric. Every split's labels (strings, integers, or the ids of that
split's own `ClassLabel`, read through its own names) are looked up by name in the one space
built from train (or from `label_names`); a name that is not in it is an error naming the row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bertft.errors import DataError

INT_LABEL = re.compile(r"[+-]?\d+")


def label_text(value: str) -> str:
    """A label as a name: Unicode NFC, surrounding whitespace stripped."""
    return unicodedata.normalize("NFC", value).strip()


def declared_names(raw: Sequence[str], where: str) -> tuple[str, ...]:
    """Names given as a list (a `ClassLabel`, `label_names`), normalised; two raw names that
    become one name, or an empty name, is an error: the list declared distinct classes."""
    seen: dict[str, str] = {}
    for value in raw:
        name = label_text(str(value))
        if not name:
            raise DataError(f"{where}: label name {value!r} is empty; every class needs a name")
        if name in seen:
            raise DataError(f"{where}: label names {seen[name]!r} and {value!r} are one name "
                            "once Unicode-normalised (NFC) and stripped of surrounding "
                            "whitespace; give every class a distinct name")
        seen[name] = value
    return tuple(seen)


def label_names_from(labels: Iterable[str]) -> tuple[tuple[str, ...], bool]:
    """Sorted distinct labels (numerically when all are integers) and whether they are ints."""
    labels = set(labels)
    numeric = all(INT_LABEL.fullmatch(x) for x in labels)
    if numeric:
        return tuple(str(v) for v in sorted({int(x) for x in labels})), True
    return tuple(sorted(labels)), False


@dataclass(frozen=True)
class LabelSpace:
    """A task's label names and how a label (as text) finds its id."""

    names: tuple[str, ...]
    index: dict[str, int]  # normalised name (and, with label_names, integer id) -> id
    numeric: bool          # integer labels compare as integers ("01" == "1")

    def id_of(self, label: str) -> int | None:
        key = label_text(label)
        if self.numeric and INT_LABEL.fullmatch(key):
            key = str(int(key))
        return self.index.get(key)

    def listed(self) -> str:
        return ", ".join(self.names)


def inferred_space(labels: Iterable[str]) -> LabelSpace:
    """The sorted distinct training labels (numerically when they are all integers)."""
    names, numeric = label_names_from(label_text(x) for x in labels)
    return LabelSpace(names, {n: i for i, n in enumerate(names)}, numeric)


def listed_space(names: Sequence[str], where: str) -> LabelSpace:
    """The names of a `ClassLabel`, in its order (ids are positions)."""
    names = declared_names(names, where)
    return LabelSpace(names, {n: i for i, n in enumerate(names)},
                      all(INT_LABEL.fullmatch(n) for n in names))


def named_space(names: Sequence[str], first_id: int) -> LabelSpace:
    """`label_names`: integer label k is names[k - first_id]; any other label must be a name.
    A name that is an integer would make a label like "2" mean two things: refused."""
    normal = declared_names(names, "label_names")
    if number := next((n for n in normal if INT_LABEL.fullmatch(n)), None):
        raise DataError(f"label_names: '{number}' is an integer; with label_names, integer "
                        f"labels are class ids (label {first_id} is '{normal[0]}'), so name "
                        "every class with a word")
    index = {n: i for i, n in enumerate(normal)}
    index.update({str(i + first_id): i for i in range(len(normal))})
    return LabelSpace(normal, index, True)
