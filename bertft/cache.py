"""One explicit, bounded memory of what the runs of a process can share.

Three kinds of entries, each with its own byte budget:

- `splits`: loaded and split datasets, keyed by the config's `data` section;
- `tokenized`: tokenized features, keyed by `features.cache_key` (data, tokenizer, `tokens`);
- `frozen`: hidden states after a frozen prefix (`bertft.frozen`), keyed by model, data, depth,
  device, dtype and a hash of the frozen weights.

Nothing here changes a result: an entry is only ever a copy of what would be computed again.
When a kind's entries exceed its budget, the least recently used go first; the newest entry
always stays (a budget smaller than one entry caches that entry alone). `fit` makes a fresh
cache when given none; the ablation runner keeps one per process and passes it to every trial.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

GIB = 2**30
DEFAULT_LIMITS = {"splits": 2 * GIB, "tokenized": 2 * GIB, "frozen": 8 * GIB}


class Cache:
    """Least-recently-used entries per kind, each kind bounded in bytes (`limits`)."""

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        unknown = set(limits or {}) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"unknown cache kinds {sorted(unknown)}; kinds: "
                             + ", ".join(DEFAULT_LIMITS))
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._entries: dict[str, OrderedDict[Hashable, tuple[Any, int]]] = {
            kind: OrderedDict() for kind in self.limits}
        self._said: set[str] = set()

    def first_time(self, event: str) -> bool:
        """True the first time `event` is named to this cache (warnings said once)."""
        if event in self._said:
            return False
        self._said.add(event)
        return True

    def get(self, kind: str, key: Hashable) -> Any | None:
        """The entry (now the most recently used), or None."""
        entries = self._entries[kind]
        if key not in entries:
            return None
        entries.move_to_end(key)
        return entries[key][0]

    def put(self, kind: str, key: Hashable, value: Any, nbytes: int,
            limit: int | None = None) -> None:
        """Store an entry of `nbytes`, then evict the oldest of its kind while the kind holds
        more than `limit` (default: the kind's budget) and more than this entry."""
        entries = self._entries[kind]
        entries[key] = (value, nbytes)
        entries.move_to_end(key)
        budget = self.limits[kind] if limit is None else min(limit, self.limits[kind])
        while len(entries) > 1 and self.nbytes(kind) > budget:
            entries.popitem(last=False)

    def get_or_put(self, kind: str, key: Hashable, make: Callable[[], Any],
                   size: Callable[[Any], int]) -> Any:
        value = self.get(kind, key)
        if value is None:
            value = make()
            self.put(kind, key, value, size(value))
        return value

    def keys(self, kind: str) -> Iterator[Hashable]:
        return iter(list(self._entries[kind]))

    def peek(self, kind: str, key: Hashable) -> Any | None:
        """The entry without marking it used."""
        entry = self._entries[kind].get(key)
        return None if entry is None else entry[0]

    def nbytes(self, kind: str) -> int:
        return sum(n for _, n in self._entries[kind].values())

    def __len__(self) -> int:
        return sum(len(e) for e in self._entries.values())

    def clear(self) -> None:
        for entries in self._entries.values():
            entries.clear()
