"""The Raft log as the core sees it: stable entries in Storage followed by an
unstable tail that has been decided in memory but not yet handed to (and
persisted by) the runtime.

    storage:   [snapshot] first ........ last
    unstable:                      offset ........ (entries not yet persisted)

When the tail conflicts with stable entries, the unstable offset moves back;
the runtime's storage truncates its own suffix when it appends the Ready.
"""

from __future__ import annotations

from collections.abc import Callable

from kvstore.raft.errors import LogCompacted, LogUnavailable, StorageError
from kvstore.raft.storage import Storage, limit_size
from kvstore.raft.types import Entry, Snapshot


class Unstable:
    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        return self.snapshot.meta.index + 1 if self.snapshot is not None else None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.meta.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.meta.index == index:
                return self.snapshot.meta.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        if index < self.offset or self.maybe_term(index) != term:
            return  # superseded by a truncation since the Ready was made
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.meta.index == index:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.meta.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, entries: list[Entry]) -> None:
        after = entries[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif after <= self.offset:
            # Replaces the whole tail, and some stable entries too.
            self.offset = after
            self.entries = list(entries)
        else:
            del self.entries[after - self.offset :]
            self.entries.extend(entries)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    def __init__(self, storage: Storage, max_apply_bytes: int | None = None) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        # Everything up to the snapshot is committed and applied by definition.
        self.committed = first - 1
        self.applied = first - 1
        self.applying = first - 1
        self.max_apply_bytes = max_apply_bytes
        self.on_append: Callable[[list[Entry]], None] | None = None
        """Told of every run of entries added (membership is derived from them)."""

    # -- indexes and terms -----------------------------------------------------

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def term(self, index: int) -> int | None:
        """Term at index, or None if it is compacted away or beyond the end."""
        if index < self.first_index() - 1 or index > self.last_index():
            return None
        t = self.unstable.maybe_term(index)
        if t is not None:
            return t
        try:
            return self.storage.term(index)
        except (LogCompacted, LogUnavailable):
            return None

    def last_term(self) -> int:
        t = self.term(self.last_index())
        if t is None:
            raise AssertionError("the last index of the log has no term")
        return t

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: is a log ending at (last_index, last_term) at least as
        up-to-date as ours?"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    # -- reading entries ---------------------------------------------------------

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi). Raises LogCompacted if lo is below the log."""
        if lo < self.first_index():
            raise LogCompacted(f"index {lo} is compacted (first is {self.first_index()})")
        if hi > self.last_index() + 1:
            raise LogUnavailable(f"index {hi - 1} is beyond last {self.last_index()}")
        if lo >= hi:
            return []
        offset = self.unstable.offset
        result: list[Entry] = []
        if lo < offset:
            stored = self.storage.entries(lo, min(hi, offset), max_bytes)
            if len(stored) < min(hi, offset) - lo:
                return stored  # cut by max_bytes
            result = stored
        if hi > offset:
            result = result + self.unstable.slice(max(lo, offset), hi)
        return limit_size(result, max_bytes)

    def entries_from(self, lo: int, max_bytes: int | None = None) -> list[Entry]:
        if lo > self.last_index():
            return []
        return self.slice(lo, self.last_index() + 1, max_bytes)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # -- changing the log -------------------------------------------------------

    def append(self, entries: list[Entry]) -> int:
        if not entries:
            return self.last_index()
        if entries[0].index - 1 < self.committed:
            raise AssertionError(
                f"append at {entries[0].index} would overwrite committed {self.committed}"
            )
        self.unstable.truncate_and_append(entries)
        if self.on_append is not None:
            self.on_append(entries)
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """The index of the first entry that is new or conflicts, else 0."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Raft §5.3 AppendEntries receiver: if our log matches (index,
        log_term), add the entries (truncating a conflicting suffix) and
        return the index of the last new entry; otherwise None."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise AssertionError(
                    f"entry {conflict} conflicts with committed entry ({self.committed})"
                )
            self.append(list(entries[conflict - index - 1 :]))
        self.commit_to(min(committed, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise AssertionError(f"commit {index} beyond last {self.last_index()}")
            self.committed = index

    def restore(self, snap: Snapshot) -> None:
        self.committed = snap.meta.index
        self.applying = max(self.applying, snap.meta.index)
        self.unstable.restore(snap)

    # -- handing work to the runtime ----------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def next_committed_entries(self) -> list[Entry]:
        lo = max(self.applying + 1, self.first_index())
        hi = self.committed + 1
        if lo >= hi:
            return []
        try:
            return self.slice(lo, hi, self.max_apply_bytes)
        except StorageError as exc:  # pragma: no cover - a broken invariant
            raise AssertionError(f"committed entries unavailable: {exc}") from exc

    def has_next_committed_entries(self) -> bool:
        return self.committed > max(self.applying, self.first_index() - 1)

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index
        self.applying = max(self.applying, index)
