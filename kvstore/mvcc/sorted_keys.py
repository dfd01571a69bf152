"""A sorted set of byte strings with cheap inserts: a list of sorted chunks.

Inserting into one flat sorted list of a million keys moves megabytes per
insert; here an insert touches one chunk of at most 2 x LOAD keys, and a
range scan walks chunks in order.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

LOAD = 512


class SortedKeys:
    __slots__ = ("_chunks", "_len", "_maxes")

    def __init__(self, sorted_unique: Iterable[bytes] = ()) -> None:
        flat = list(sorted_unique)
        self._chunks: list[list[bytes]] = [flat[i : i + LOAD] for i in range(0, len(flat), LOAD)]
        self._maxes: list[bytes] = [c[-1] for c in self._chunks]
        self._len = len(flat)

    def __len__(self) -> int:
        return self._len

    def add(self, key: bytes) -> None:
        """Insert a key that is not present yet."""
        maxes = self._maxes
        if not maxes:
            self._chunks.append([key])
            maxes.append(key)
            self._len = 1
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):
            i -= 1
            self._chunks[i].append(key)
            maxes[i] = key
        else:
            insort(self._chunks[i], key)
        self._len += 1
        chunk = self._chunks[i]
        if len(chunk) > 2 * LOAD:
            self._chunks[i : i + 1] = [chunk[:LOAD], chunk[LOAD:]]
            maxes[i : i + 1] = [chunk[LOAD - 1], chunk[-1]]

    def discard(self, key: bytes) -> None:
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return
        chunk = self._chunks[i]
        j = bisect_left(chunk, key)
        if j == len(chunk) or chunk[j] != key:
            return
        del chunk[j]
        self._len -= 1
        if not chunk:
            del self._chunks[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]

    def irange(self, lo: bytes, hi: bytes | None) -> Iterator[bytes]:
        """Keys k with lo <= k < hi (hi None: no upper bound), ascending."""
        maxes = self._maxes
        i = bisect_left(maxes, lo)
        if i == len(maxes):
            return
        chunks = self._chunks
        j = bisect_left(chunks[i], lo)
        while i < len(chunks):
            chunk = chunks[i]
            if hi is not None and chunk[-1] >= hi:
                yield from chunk[j : bisect_left(chunk, hi, j)]
                return
            yield from chunk[j:] if j else chunk
            i += 1
            j = 0
