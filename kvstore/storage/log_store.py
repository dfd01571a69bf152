"""The Raft log, hard state and snapshot on LevelDB: the core's `Storage`.

Reads follow `kvstore.raft.storage.Storage` and behave exactly like
`MemoryStorage` (a shared contract test runs against both). The log's
boundaries (truncation point, last index) and the most recent entries are
kept in memory, so term(), first_index(), last_index() and entries() for
the replication hot path do not touch LevelDB.

Every write method takes an optional `batch`. Without one it commits its own
synced batch (handy for tests). With one, it only stages writes, so the
runtime can group a whole Ready with the MVCC changes it applies:

    with db.batch(sync=ready.must_sync) as batch:
        log.save_ready(batch, ready.hard_state, ready.entries, ready.snapshot)
        with mvcc.writing(batch):
            for entry in ready.committed_entries:
                ...apply entry to mvcc...
                mvcc.set_applied_index(entry.index)
    # leaving the block commits ONE WriteBatch (fsync'd when sync=True)

In-memory state moves when writes are staged; the entry cache only forgets
entries after their batch is committed, so staged entries stay readable.
"""

from __future__ import annotations

from kvstore.raft.errors import LogCompacted, LogUnavailable, SnapshotOutOfDate
from kvstore.raft.storage import limit_size
from kvstore.raft.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMeta,
)
from kvstore.storage import codec, keys
from kvstore.storage.db import Batch, Database

_LOG_END = bytes([keys.LOG[0] + 1])


class LogStore:
    """Durable Raft storage in one LevelDB keyspace (prefixes l, t, h, s, S)."""

    def __init__(self, db: Database, cache_entries: int = 4096) -> None:
        self._db = db
        self._cache_entries = cache_entries
        raw_hs = db.get(keys.HARD_STATE)
        self.hard_state = codec.decode_hard_state(raw_hs) if raw_hs else EMPTY_HARD_STATE
        raw_meta = db.get(keys.SNAPSHOT_META)
        self._snap_meta = codec.decode_snapshot_meta(raw_meta) if raw_meta else SnapshotMeta()
        raw_trunc = db.get(keys.LOG_TRUNCATION)
        if raw_trunc:
            self._trunc_index, self._trunc_term = codec.decode_index_term(raw_trunc)
        else:
            self._trunc_index, self._trunc_term = self._snap_meta.index, self._snap_meta.term
        self._last = self._trunc_index
        for key in db.iterate_keys(keys.LOG, _LOG_END, reverse=True):
            self._last = max(self._last, keys.log_index(key))
            break
        # index -> Entry for recent entries, and every entry not yet committed.
        self._cache: dict[int, Entry] = {}

    # -- reads (the Storage protocol) -------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snap_meta.conf_state

    def first_index(self) -> int:
        return self._trunc_index + 1

    def last_index(self) -> int:
        return self._last

    def term(self, index: int) -> int:
        if index < self._trunc_index:
            raise LogCompacted(f"index {index} < first stored {self._trunc_index}")
        if index > self._last:
            raise LogUnavailable(f"index {index} > last {self._last}")
        if index == self._trunc_index:
            return self._trunc_term
        entry = self._cache.get(index)
        if entry is not None:
            return entry.term
        raw = self._db.get(keys.log_key(index))
        if raw is None:
            raise LogUnavailable(f"entry {index} missing on disk")
        return codec.decode_entry_term(raw)

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        if lo <= self._trunc_index:
            raise LogCompacted(f"index {lo} <= snapshot index {self._trunc_index}")
        if hi > self._last + 1:
            raise LogUnavailable(f"index {hi - 1} > last {self._last}")
        out: list[Entry] = []
        cache = self._cache
        budget = max_bytes
        i = lo
        while i < hi:
            entry = cache.get(i)
            if entry is None:
                # A run of cold entries: one iterator over [i, first cached or hi).
                j = i + 1
                while j < hi and j not in cache:
                    j += 1
                for key, raw in self._db.iterate(keys.log_key(i), keys.log_key(j)):
                    out.append(codec.decode_entry(keys.log_index(key), raw))
                if len(out) != j - lo:
                    raise LogUnavailable(f"entries [{i}, {j}) missing on disk")
                i = j
            else:
                out.append(entry)
                i += 1
            if budget is not None and len(out) > 1 and _size(out) > budget:
                break
        return limit_size(out, max_bytes)

    def snapshot(self) -> Snapshot:
        if self._snap_meta.index == 0:
            return EMPTY_SNAPSHOT
        return Snapshot(self._snap_meta, self._db.get(keys.SNAPSHOT_DATA) or b"")

    # -- writes -------------------------------------------------------------------

    def save_ready(
        self,
        batch: Batch,
        hard_state: HardState | None,
        entries: list[Entry] | tuple[Entry, ...],
        snapshot: Snapshot | None,
    ) -> None:
        """Stage one Ready: snapshot first, then entries, then the hard state."""
        if snapshot is not None and not snapshot.is_empty:
            self.apply_snapshot(snapshot, batch)
        if entries:
            self.append(entries, batch)
        if hard_state is not None and hard_state != self.hard_state:
            self.set_hard_state(hard_state, batch)

    def set_hard_state(self, hs: HardState, batch: Batch | None = None) -> None:
        with _batch_or_own(self._db, batch) as b:
            b.put(keys.HARD_STATE, codec.encode_hard_state(hs))
            self.hard_state = hs

    def append(self, entries: list[Entry] | tuple[Entry, ...], batch: Batch | None = None) -> None:
        """Append entries, truncating any conflicting suffix first."""
        if not entries:
            return
        first = entries[0].index
        if first <= self._trunc_index:
            entries = [e for e in entries if e.index > self._trunc_index]
            if not entries:
                return
            first = entries[0].index
        if first > self._last + 1:
            raise LogUnavailable(f"gap: append at {first}, last is {self._last}")
        with _batch_or_own(self._db, batch) as b:
            cache = self._cache
            new_last = entries[-1].index
            for index in range(new_last + 1, self._last + 1):
                b.delete(keys.log_key(index))  # the conflicting suffix beyond the new tail
                cache.pop(index, None)
            for e in entries:
                b.put(keys.log_key(e.index), codec.encode_entry(e))
                cache[e.index] = e
            self._last = new_last
            b.after_commit(self._trim_cache)

    def apply_snapshot(self, snap: Snapshot, batch: Batch | None = None) -> None:
        """Replace the whole log by a snapshot received from the leader."""
        if snap.meta.index <= self._snap_meta.index:
            raise SnapshotOutOfDate(f"{snap.meta.index} <= {self._snap_meta.index}")
        with _batch_or_own(self._db, batch) as b:
            for key in self._db.iterate_keys(keys.LOG, _LOG_END):
                b.delete(key)
            for index in self._cache:
                b.delete(keys.log_key(index))
            self._cache.clear()
            self._put_snapshot(b, snap)
            self._set_truncation(b, snap.meta.index, snap.meta.term)
            self._last = snap.meta.index

    def create_snapshot(
        self, index: int, conf_state: ConfState, data: bytes, batch: Batch | None = None
    ) -> Snapshot:
        """Record a snapshot of the applied state at `index` (<= last index)."""
        if index <= self._snap_meta.index:
            raise SnapshotOutOfDate(f"{index} <= {self._snap_meta.index}")
        snap = Snapshot(SnapshotMeta(index, self.term(index), conf_state), data)
        with _batch_or_own(self._db, batch) as b:
            self._put_snapshot(b, snap)
        return snap

    def compact(self, index: int, batch: Batch | None = None) -> None:
        """Drop entries up to and including `index` (which must be <= last)."""
        if index <= self._trunc_index:
            return
        if index > self._last:
            raise LogUnavailable(f"compact {index} > last {self._last}")
        term = self.term(index)
        with _batch_or_own(self._db, batch) as b:
            for i in range(self._trunc_index + 1, index + 1):
                b.delete(keys.log_key(i))
                self._cache.pop(i, None)
            self._set_truncation(b, index, term)

    # -- internals ------------------------------------------------------------------

    def _put_snapshot(self, b: Batch, snap: Snapshot) -> None:
        b.put(keys.SNAPSHOT_META, codec.encode_snapshot_meta(snap.meta))
        b.put(keys.SNAPSHOT_DATA, snap.data)
        self._snap_meta = snap.meta

    def _set_truncation(self, b: Batch, index: int, term: int) -> None:
        b.put(keys.LOG_TRUNCATION, codec.encode_index_term(index, term))
        self._trunc_index, self._trunc_term = index, term

    def _trim_cache(self) -> None:
        """After a commit: keep only the newest `cache_entries` entries in memory."""
        cache = self._cache
        if len(cache) <= 2 * self._cache_entries:
            return
        floor = self._last - self._cache_entries
        for index in [i for i in cache if i <= floor]:
            del cache[index]


def _size(entries: list[Entry]) -> int:
    return sum(len(e.data) + 16 for e in entries)


class _batch_or_own:
    """Use the caller's batch, or open a synced one and commit it on exit."""

    __slots__ = ("_batch", "_own")

    def __init__(self, db: Database, batch: Batch | None) -> None:
        self._own = batch is None
        self._batch = db.batch(sync=True) if batch is None else batch

    def __enter__(self) -> Batch:
        return self._batch

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._own and exc_type is None:
            self._batch.commit()
