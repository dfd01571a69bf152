"""The storage interface the Raft core reads from, and an in-memory version.

The core never writes to storage. The runtime writes what each Ready hands
it (hard state, entries, snapshot) and then calls advance(). The core reads
back stable entries through this interface.

Index layout: the storage holds entries `first_index() .. last_index()` and
the term of `first_index() - 1` (the compaction point). It also holds the
latest snapshot, whose index is at least `first_index() - 1`: a runtime may
keep some entries behind its snapshot so that slow followers can be served
from the log. A runtime that restarts from a snapshot passes the applied
index in Config.applied. Anything below `first_index() - 1` raises
LogCompacted.
"""

from __future__ import annotations

from typing import Protocol

from kvstore.raft.errors import LogCompacted, LogUnavailable, SnapshotOutOfDate
from kvstore.raft.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMeta,
)


class Storage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the ConfState of the stored snapshot."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi). At least one entry is returned even if it is larger
        than max_bytes. Raises LogCompacted / LogUnavailable."""
        ...

    def term(self, index: int) -> int:
        """Term of the entry at index, for snapshot index <= index <= last."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot (EMPTY_SNAPSHOT when there is none)."""
        ...


def entries_size(entries: list[Entry] | tuple[Entry, ...]) -> int:
    """The byte budget measure used for batching: payload plus a small overhead."""
    return sum(len(e.data) + 16 for e in entries)


def limit_size(entries: list[Entry], max_bytes: int | None) -> list[Entry]:
    """Cut a run of entries to max_bytes, always keeping the first entry."""
    if max_bytes is None or not entries:
        return entries
    total = 0
    for i, e in enumerate(entries):
        total += len(e.data) + 16
        if total > max_bytes and i > 0:
            return entries[:i]
    return entries


def bootstrap_entries(voters: list[int]) -> list[Entry]:
    """The log every founding member starts with: one ADD_VOTER per member at
    term 1, so that members added later learn the initial membership from
    the log itself."""
    return [
        Entry(
            term=1,
            index=i + 1,
            type=EntryType.CONF_CHANGE,
            data=ConfChange(ConfChangeType.ADD_VOTER, node_id).encode(),
        )
        for i, node_id in enumerate(sorted(voters))
    ]


class MemoryStorage:
    """Storage kept in a Python list; used by tests and the simulator.

    `_entries[0]` is a dummy entry carrying the snapshot's index and term, so
    the entry at index i lives at `_entries[i - snapshot_index]`.
    """

    def __init__(self) -> None:
        self.hard_state: HardState = EMPTY_HARD_STATE
        self._snapshot: Snapshot = EMPTY_SNAPSHOT
        self._entries: list[Entry] = [Entry(term=0, index=0)]

    # -- reads ---------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.meta.conf_state

    def _offset(self) -> int:
        return self._entries[0].index

    def first_index(self) -> int:
        return self._offset() + 1

    def last_index(self) -> int:
        return self._entries[-1].index

    def term(self, index: int) -> int:
        offset = self._offset()
        if index < offset:
            raise LogCompacted(f"index {index} < first stored {offset}")
        if index > self.last_index():
            raise LogUnavailable(f"index {index} > last {self.last_index()}")
        return self._entries[index - offset].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        offset = self._offset()
        if lo <= offset:
            raise LogCompacted(f"index {lo} <= snapshot index {offset}")
        if hi > self.last_index() + 1:
            raise LogUnavailable(f"index {hi - 1} > last {self.last_index()}")
        return limit_size(self._entries[lo - offset : hi - offset], max_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writes (made by the runtime, never by the core) ------------------------

    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = hs

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append entries, truncating any conflicting suffix first."""
        if not entries:
            return
        first = entries[0].index
        offset = self._offset()
        if first <= offset:
            # Entries at or below the snapshot are already covered by it.
            entries = [e for e in entries if e.index > offset]
            if not entries:
                return
            first = entries[0].index
        if first > self.last_index() + 1:
            raise LogUnavailable(f"gap: append at {first}, last is {self.last_index()}")
        del self._entries[first - offset :]
        self._entries.extend(entries)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log by a snapshot received from the leader."""
        if snap.meta.index <= self._snapshot.meta.index:
            raise SnapshotOutOfDate(f"{snap.meta.index} <= {self._snapshot.meta.index}")
        self._snapshot = snap
        self._entries = [Entry(term=snap.meta.term, index=snap.meta.index)]

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the applied state at `index` (<= last index)."""
        if index <= self._snapshot.meta.index:
            raise SnapshotOutOfDate(f"{index} <= {self._snapshot.meta.index}")
        snap = Snapshot(SnapshotMeta(index, self.term(index), conf_state), data)
        self._snapshot = snap
        return snap

    def compact(self, index: int) -> None:
        """Drop entries up to and including `index` (which must be <= last)."""
        offset = self._offset()
        if index <= offset:
            return
        if index > self.last_index():
            raise LogUnavailable(f"compact {index} > last {self.last_index()}")
        self._entries = [
            Entry(term=self._entries[index - offset].term, index=index),
            *self._entries[index - offset + 1 :],
        ]
