"""The in-memory index of the whole key space: user key -> KeyIndex.

A dict answers point lookups without scanning; a SortedKeys answers ranges.
It is rebuilt at open by one scan of the MVCC records in revision order
(see MVCCStore), which is cheaper to keep correct than a persisted copy.
"""

from __future__ import annotations

from collections.abc import Iterator

from kvstore.mvcc.key_index import KeyIndex
from kvstore.mvcc.sorted_keys import SortedKeys


class Index:
    __slots__ = ("_keys", "_sorted")

    def __init__(self) -> None:
        self._keys: dict[bytes, KeyIndex] = {}
        self._sorted = SortedKeys()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: bytes) -> KeyIndex | None:
        return self._keys.get(key)

    def get_or_create(self, key: bytes) -> KeyIndex:
        ki = self._keys.get(key)
        if ki is None:
            ki = self._keys[key] = KeyIndex()
            self._sorted.add(key)
        return ki

    def create_unsorted(self, key: bytes) -> KeyIndex:
        """Bulk loading: add to the dict only; call `finish_load()` after."""
        ki = self._keys.get(key)
        if ki is None:
            ki = self._keys[key] = KeyIndex()
        return ki

    def finish_load(self) -> None:
        self._sorted = SortedKeys(sorted(self._keys))

    def keys_in(self, lo: bytes, hi: bytes | None) -> Iterator[bytes]:
        """Keys with history in [lo, hi) (hi None: unbounded), ascending."""
        return self._sorted.irange(lo, hi)

    def range(
        self, lo: bytes, hi: bytes | None, at_main: int
    ) -> list[tuple[bytes, int, int, int]]:
        """(key, mod, created, version) of the keys alive at `at_main`."""
        out: list[tuple[bytes, int, int, int]] = []
        keys = self._keys
        for key in self._sorted.irange(lo, hi):
            found = keys[key].get(at_main)
            if found is not None:
                out.append((key, *found))
        return out

    def compact(self, at_main: int) -> list[int]:
        """Compact every key; drop keys with no history left. Returns the
        packed revisions whose records are no longer needed."""
        dropped: list[int] = []
        emptied: list[bytes] = []
        for key, ki in self._keys.items():
            ki.compact(at_main, dropped)
            if ki.is_empty():
                emptied.append(key)
        for key in emptied:
            del self._keys[key]
            self._sorted.discard(key)
        return dropped
