"""The MVCC store: etcd's key-value semantics over one LevelDB keyspace.

Records live under `k` + revision (see kvstore.storage.keys): each put
writes a full record, each delete a tombstone; nothing is rewritten in place.
The key index (kvstore.mvcc.index) is in memory and rebuilt at open by one
scan of the records in revision order. The current and compact revisions and
the Raft applied index are meta keys written in the same batch as the
records they describe.

Writes go into the caller's batch inside `with store.writing(batch):` (the
runtime's one-batch-per-Ready group commit) or, outside it, into a batch of
their own that is committed (fsync'd when StoreOptions.sync) before the call
returns. Every request is validated before anything changes, so an error
leaves the store and the batch untouched.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kvstore.mvcc import record
from kvstore.mvcc.compare import compare_kv
from kvstore.mvcc.errors import (
    Compacted,
    FutureRevision,
    KeyNotFound,
    LeaseNotFound,
    StoreUsageError,
)
from kvstore.mvcc.index import Index
from kvstore.mvcc.revision import SUB_MASK, main_of, pack, upper
from kvstore.mvcc.types import (
    CompactResponse,
    Compare,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Event,
    EventType,
    HashKVResponse,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)
from kvstore.mvcc.validate import check_key, check_put, check_txn, interval
from kvstore.storage import keys
from kvstore.storage.db import Batch, Database

_REV = struct.Struct(">QQ")
_MVCC_END = bytes([keys.MVCC[0] + 1])

Hit = tuple[bytes, int, int, int]
"""(key, mod, created, version) from the index; revisions packed."""


def _rec_key(rev: int) -> bytes:
    return keys.MVCC + _REV.pack(rev >> 32, rev & SUB_MASK)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    max_txn_ops: int = 128
    sync: bool = True
    """fsync the batches the store commits itself (writes outside `writing`)."""
    strict_range_end: bool = False
    """Reject range_end < key with InvalidRangeEnd (etcd returns no keys)."""
    lease_exists: Callable[[int], bool] | None = None
    """Lessor hook: puts naming an unknown lease fail with LeaseNotFound."""


class _Write:
    """One write in progress: every change shares `main`, `sub` counts them."""

    __slots__ = ("batch", "main", "sub")

    def __init__(self, batch: Batch, main: int) -> None:
        self.batch = batch
        self.main = main
        self.sub = 0

    @property
    def view(self) -> int:
        """The revision reads inside this write see (its own changes included)."""
        return self.main if self.sub else self.main - 1


class MVCCStore:
    def __init__(self, db: Database, options: StoreOptions | None = None) -> None:
        self._db = db
        self._opts = options or StoreOptions()
        self._batch: Batch | None = None
        self._index = Index()
        self._compact = _read_u64(db, keys.META_COMPACT_REV, 0)
        self._applied = _read_u64(db, keys.META_APPLIED_INDEX, 0)
        self._current = max(_read_u64(db, keys.META_CURRENT_REV, 1), self._compact, 1)
        self._events: list[Event] | None = None
        self._load()

    def _load(self) -> None:
        index = self._index
        head = record.HEAD_SIZE
        last = 0
        for k, v in self._db.iterate(keys.MVCC, _MVCC_END):
            main, sub = _REV.unpack_from(k, 1)
            flags, create, version, _, key_len = record.decode_head(v)
            ki = index.create_unsorted(v[head : head + key_len])
            if flags & record.TOMBSTONE:
                ki.tombstone(pack(main, sub))
            else:
                ki.restore(pack(main, sub), pack(create, 0), version)
            last = main
        index.finish_load()
        self._current = max(self._current, last)

    # -- state ------------------------------------------------------------------------

    @property
    def current_revision(self) -> int:
        return self._current

    @property
    def compact_revision(self) -> int:
        return self._compact

    @property
    def applied_index(self) -> int:
        return self._applied

    def __len__(self) -> int:
        """Keys with any history in the index (live or not yet compacted)."""
        return len(self._index)

    @contextmanager
    def writing(self, batch: Batch) -> Iterator[None]:
        """Stage every write made inside the block in `batch` (not committed here)."""
        if self._batch is not None:
            raise StoreUsageError("already writing into a batch")
        self._batch = batch
        try:
            yield
        finally:
            self._batch = None

    def set_applied_index(self, index: int) -> None:
        """Record the Raft index whose effects the staged writes include."""
        with self._own_batch() as b:
            b.put(keys.META_APPLIED_INDEX, keys.encode_u64(index))
            self._applied = index

    # -- events (for kvstore.mvcc.watch) ------------------------------------------------

    def capture_events(self) -> None:
        """From now on, record an Event for every change staged; the owner
        must call take_events() after each durable batch (the list grows
        until it does). Off by default: a store nobody watches pays nothing."""
        if self._events is None:
            self._events = []

    def take_events(self) -> list[Event]:
        """The events staged since the last call, in revision order (a txn's
        changes together, in the order it made them); clears the list."""
        events = self._events
        if not events:
            return []
        self._events = []
        return events

    def events_between(self, lo: int, hi: int, limit: int) -> tuple[list[Event], int]:
        """Events of the committed records with lo <= main revision <= hi, in
        revision order, read from LevelDB (not the staged batch). Reading
        stops at the end of the revision that reaches `limit` events, so a
        revision is never split. Returns (events, covered): every record up
        to revision `covered` was read (hi when the scan was not cut)."""
        out: list[Event] = []
        last = 0
        head = record.HEAD_SIZE
        for k, v in self._db.iterate(_rec_key(pack(lo, 0)), _rec_key(upper(hi))):
            main = _REV.unpack_from(k, 1)[0]
            if main != last and len(out) >= limit:
                return out, last
            last = main
            if v[0] & record.TOMBSTONE:
                key = v[head : head + record.decode_head(v)[4]]
                out.append(Event(EventType.DELETE, KeyValue(key, mod_revision=main)))
            else:
                out.append(Event(EventType.PUT, record.decode_kv(main, v)))
        return out, hi

    # -- requests ---------------------------------------------------------------------

    def range(self, req: RangeRequest) -> RangeResponse:
        check_key(req.key, req.range_end, self._opts.strict_range_end)
        return self._range(req, self._current)

    def put(self, req: PutRequest) -> PutResponse:
        check_put(req)
        self._check_put_state(req)
        with self._write() as w:
            return self._do_put(w, req)

    def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        check_key(req.key, req.range_end, self._opts.strict_range_end)
        with self._write() as w:
            return self._do_delete(w, req)

    def delete_keys(self, keys: list[bytes]) -> DeleteRangeResponse:
        """Delete the given keys (those that exist) in ONE revision. For a
        lease revoke: the keys come from the lessor, not from a client, so
        no txn op limit applies."""
        with self._write() as w:
            deleted = 0
            for key in keys:
                deleted += self._do_delete(w, DeleteRangeRequest(key)).deleted
            return DeleteRangeResponse(w.view, deleted)

    def txn(self, req: TxnRequest) -> TxnResponse:
        check_txn(req, self._opts.max_txn_ops, self._opts.strict_range_end)
        cur = self._current
        path: list[bool] = []
        self._choose(req, cur, path)
        self._check_branch(req, iter(path), cur)
        with self._write() as w:
            resp = self._do_txn(w, req, iter(path))
        return resp

    def compact(self, revision: int) -> CompactResponse:
        if revision <= self._compact:
            raise Compacted(revision, self._compact)
        if revision > self._current:
            raise FutureRevision(revision, self._current)
        with self._own_batch() as b:
            for rev in self._index.compact(revision):
                b.delete(_rec_key(rev))
            b.put(keys.META_COMPACT_REV, keys.encode_u64(revision))
            self._compact = revision
        return CompactResponse(self._current)

    def hash_kv(self, revision: int = 0) -> HashKVResponse:
        """CRC-32 over every stored record up to `revision` (0: current), in
        revision order. Members with equal histories (incl. compactions)
        store equal records, so they answer equal hashes."""
        if self._batch is not None:
            raise StoreUsageError("hash_kv reads committed data: call it outside writing()")
        at = self._check_rev(revision, self._current)
        h = 0
        for k, v in self._db.iterate(keys.MVCC, _rec_key(upper(at))):
            h = zlib.crc32(v, zlib.crc32(k, h))
        # etcd reports -1 for a store that was never compacted.
        compact = self._compact if self._compact > 0 else -1
        return HashKVResponse(h, compact, at, self._current)

    # -- reads --------------------------------------------------------------------------

    def _get(self, key: bytes) -> bytes | None:
        b = self._batch
        return b.get(key) if b is not None else self._db.get(key)

    def _fetch(self, rev: int) -> KeyValue:
        raw = self._get(_rec_key(rev))
        if raw is None:
            raise RuntimeError(f"index names revision {rev:x} but its record is missing")
        return record.decode_kv(main_of(rev), raw)

    def _check_rev(self, revision: int, cur: int) -> int:
        at = revision if revision > 0 else cur
        if at > cur:
            raise FutureRevision(at, cur)
        if at < self._compact:
            raise Compacted(at, self._compact)
        return at

    def _hits(self, key: bytes, range_end: bytes, at: int) -> list[Hit]:
        if not range_end:
            ki = self._index.get(key)
            found = ki.get(at) if ki is not None else None
            return [(key, *found)] if found is not None else []
        lo, hi = interval(key, range_end)
        return self._index.range(lo, hi, at)

    def _range(self, req: RangeRequest, cur: int) -> RangeResponse:
        at = self._check_rev(req.revision, cur)
        hits = self._hits(req.key, req.range_end, at)
        count = len(hits)
        if req.count_only:
            return RangeResponse(cur, [], count, False)
        hits = _filter(req, hits)
        order, target = req.sort_order, req.sort_target
        if target is not SortTarget.KEY and order is SortOrder.NONE:
            order = SortOrder.ASCEND  # etcd: a non-key target implies ascending
        descend = order is SortOrder.DESCEND
        limit = req.limit
        if target is SortTarget.VALUE:
            kvs = [self._fetch(h[1]) for h in hits]
            kvs.sort(key=lambda kv: kv.value, reverse=descend)
        else:
            if target is not SortTarget.KEY:
                hits.sort(key=_SORT_KEYS[target], reverse=descend)
            elif descend:
                hits.reverse()
            if limit > 0:
                hits = hits[: limit + 1]
            kvs = [self._fetch(h[1]) for h in hits]
        more = 0 < limit < len(kvs)
        if more:
            kvs = kvs[:limit]
        if req.keys_only:
            kvs = [
                KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
                for kv in kvs
            ]
        return RangeResponse(cur, kvs, count, more)

    def _exists(self, key: bytes, at: int) -> bool:
        ki = self._index.get(key)
        return ki is not None and ki.get(at) is not None

    # -- writes -------------------------------------------------------------------------

    @contextmanager
    def _own_batch(self) -> Iterator[Batch]:
        if self._batch is not None:
            yield self._batch
            return
        b = self._db.batch(sync=self._opts.sync)
        self._batch = b
        try:
            yield b
        finally:
            self._batch = None
        b.commit()

    @contextmanager
    def _write(self) -> Iterator[_Write]:
        with self._own_batch() as b:
            w = _Write(b, self._current + 1)
            yield w
            if w.sub:
                self._current = w.main
                b.put(keys.META_CURRENT_REV, keys.encode_u64(w.main))

    def _check_put_state(self, req: PutRequest) -> None:
        lease_exists = self._opts.lease_exists
        if req.lease and lease_exists is not None and not lease_exists(req.lease):
            raise LeaseNotFound(req.lease)
        if (req.ignore_value or req.ignore_lease) and not self._exists(req.key, self._current):
            raise KeyNotFound(repr(req.key))

    def _do_put(self, w: _Write, req: PutRequest) -> PutResponse:
        key, value, lease = req.key, req.value, req.lease
        ki = self._index.get_or_create(key)
        found = ki.get(w.main)
        prev = self._fetch(found[0]) if found is not None else None
        if req.ignore_value or req.ignore_lease:
            if prev is None:
                raise KeyNotFound(repr(key))  # unreachable: checked before writing
            if req.ignore_value:
                value = prev.value
            if req.ignore_lease:
                lease = prev.lease
        rev = pack(w.main, w.sub)
        w.sub += 1
        g = ki.put(rev)
        created = main_of(g.created)
        w.batch.put(_rec_key(rev), record.encode(key, value, created, g.ver, lease))
        if self._events is not None:
            kv = KeyValue(key, created, w.main, g.ver, value, lease)
            self._events.append(Event(EventType.PUT, kv))
        return PutResponse(w.main, prev if req.prev_kv else None)

    def _do_delete(self, w: _Write, req: DeleteRangeRequest) -> DeleteRangeResponse:
        hits = self._hits(req.key, req.range_end, w.main)
        prev_kvs = [self._fetch(h[1]) for h in hits] if req.prev_kv else []
        index, batch = self._index, w.batch
        for key, *_ in hits:
            rev = pack(w.main, w.sub)
            w.sub += 1
            ki = index.get(key)
            assert ki is not None
            ki.tombstone(rev)
            batch.put(_rec_key(rev), record.encode_tombstone(key))
            if self._events is not None:
                self._events.append(Event(EventType.DELETE, KeyValue(key, mod_revision=w.main)))
        return DeleteRangeResponse(w.view, len(hits), prev_kvs)

    # -- txn ------------------------------------------------------------------------------

    def _compare(self, cmp: Compare, at: int) -> bool:
        hits = self._hits(cmp.key, cmp.range_end, at)
        if not hits:
            # A value compare on a missing key always fails (etcd).
            return cmp.target is not CompareTarget.VALUE and compare_kv(cmp, KeyValue(cmp.key))
        needs_record = cmp.target in (CompareTarget.VALUE, CompareTarget.LEASE)
        for key, mod, created, version in hits:
            kv = (
                self._fetch(mod)
                if needs_record
                else KeyValue(key, main_of(created), main_of(mod), version)
            )
            if not compare_kv(cmp, kv):
                return False
        return True

    def _choose(self, req: TxnRequest, at: int, path: list[bool]) -> None:
        """Decide every branch up front against the state before the txn, in
        depth-first order (etcd evaluates nested compares before any write)."""
        ok = all(self._compare(c, at) for c in req.compare)
        path.append(ok)
        for op in req.success if ok else req.failure:
            if isinstance(op, TxnRequest):
                self._choose(op, at, path)

    def _check_branch(self, req: TxnRequest, path: Iterator[bool], cur: int) -> None:
        """Fail the whole txn, before it writes, on any op that would fail."""
        for op in req.success if next(path) else req.failure:
            if isinstance(op, RangeRequest):
                if op.revision > 0:
                    self._check_rev(op.revision, cur)
            elif isinstance(op, PutRequest):
                self._check_put_state(op)
            elif isinstance(op, TxnRequest):
                self._check_branch(op, path, cur)

    def _do_txn(self, w: _Write, req: TxnRequest, path: Iterator[bool]) -> TxnResponse:
        ok = next(path)
        responses: list[ResponseOp] = []
        for op in req.success if ok else req.failure:
            if isinstance(op, RangeRequest):
                responses.append(self._range(op, w.view))
            elif isinstance(op, PutRequest):
                responses.append(self._do_put(w, op))
            elif isinstance(op, DeleteRangeRequest):
                responses.append(self._do_delete(w, op))
            else:
                responses.append(self._do_txn(w, op, path))
        return TxnResponse(w.view, ok, responses)


_SORT_KEYS: dict[SortTarget, Callable[[Hit], int | bytes]] = {
    SortTarget.KEY: lambda h: h[0],
    SortTarget.VERSION: lambda h: h[3],
    SortTarget.CREATE: lambda h: h[2],
    SortTarget.MOD: lambda h: h[1],
}


def _filter(req: RangeRequest, hits: list[Hit]) -> list[Hit]:
    """etcd's min/max mod/create revision filters (0 means no bound)."""
    lo_mod, hi_mod = req.min_mod_revision, req.max_mod_revision
    lo_cr, hi_cr = req.min_create_revision, req.max_create_revision
    if not (lo_mod or hi_mod or lo_cr or hi_cr):
        return hits
    out: list[Hit] = []
    for h in hits:
        mod, created = main_of(h[1]), main_of(h[2])
        if (lo_mod and mod < lo_mod) or (hi_mod and mod > hi_mod):
            continue
        if (lo_cr and created < lo_cr) or (hi_cr and created > hi_cr):
            continue
        out.append(h)
    return out


def _read_u64(db: Database, key: bytes, default: int) -> int:
    raw = db.get(key)
    return keys.decode_u64(raw) if raw is not None else default
