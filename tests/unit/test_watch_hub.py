"""WatchHub over a real MVCCStore: a property test against a naive history
model, and the indexing bound (a write visits only the watchers it concerns)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvstore.mvcc.errors import Compacted
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    DeleteRangeRequest,
    Event,
    EventType,
    PutRequest,
    RequestOp,
    TxnRequest,
)
from kvstore.mvcc.watch import WatchHub
from kvstore.mvcc.watch_types import Delivery, EmptyWatcherRange, State, Watcher, WatchFilter
from kvstore.storage.db import Database
from tests.unit.watch_history import Change, History

KEYS = [b"a", b"ab", b"abc", b"b", b"ba", b"c", b"\x00", b"\xff"]
ENDS = [b"", b"b", b"c", b"ac", b"\x00", b"\xff", b"a"]
FILTERS = [(), (WatchFilter.NOPUT,), (WatchFilter.NODELETE,)]


@contextmanager
def open_store() -> Iterator[MVCCStore]:
    with tempfile.TemporaryDirectory() as d:
        db = Database(d)
        try:
            yield MVCCStore(db, StoreOptions(sync=False))
        finally:
            db.close()


class Recorder:
    """A sink that can be told to be full, remembering what it took."""

    def __init__(self, start: int, key: bytes, range_end: bytes, drop: frozenset[EventType]):
        self.start = start
        self.key = key
        self.range_end = range_end
        self.drop = drop
        self.full = False
        self.taken: list[Delivery] = []
        self.calls = 0
        self.client_cancelled = False

    def __call__(self, w: Watcher, d: Delivery) -> bool:
        self.calls += 1
        assert not self.taken or not self.taken[-1].compact_revision, "sent after compaction"
        if self.full:
            return False
        self.taken.append(d)
        return True


put_op = st.tuples(st.just("put"), st.sampled_from(KEYS), st.binary(max_size=2))
op = st.one_of(
    put_op,
    put_op,
    put_op,
    st.tuples(st.just("del"), st.sampled_from(KEYS), st.sampled_from(ENDS)),
    st.tuples(
        st.just("txn"), st.lists(st.tuples(st.booleans(), st.sampled_from(KEYS)), max_size=4)
    ),
    st.tuples(st.just("compact"), st.floats(0, 1)),
    st.tuples(
        st.just("watch"),
        st.sampled_from(KEYS),
        st.sampled_from(ENDS),
        st.integers(-3, 12),
        st.booleans(),
        st.sampled_from(FILTERS),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
    st.tuples(st.just("slow"), st.integers(0, 60), st.booleans()),
    st.tuples(st.just("sync"), st.integers(1, 6)),
    st.tuples(st.just("resume")),
)


class Run:
    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.hub = WatchHub(store)
        self.hist = History()
        self.watchers: list[tuple[Watcher, Recorder]] = []

    def write(self, model_ops: list[tuple[str, bytes, bytes | None, bytes]]) -> None:
        ops: list[RequestOp] = []
        for kind, key, end, value in model_ops:
            if kind == "put":
                ops.append(PutRequest(key, value))
            else:
                ops.append(DeleteRangeRequest(key, end or b""))
        if len(ops) == 1 and isinstance(ops[0], PutRequest):
            self.store.put(ops[0])
        elif len(ops) == 1 and isinstance(ops[0], DeleteRangeRequest):
            self.store.delete_range(ops[0])
        else:
            self.store.txn(TxnRequest(success=tuple(ops)))
        self.hist.write(model_ops)
        assert self.store.current_revision == self.hist.rev
        self.hub.notify(self.store.take_events(), self.store.current_revision)

    def step(self, o: tuple[Any, ...]) -> None:
        kind = o[0]
        if kind == "put":
            self.write([("put", o[1], None, o[2])])
        elif kind == "del":
            self.write([("del", o[1], o[2] or None, b"")])
        elif kind == "txn":
            puts = {k for is_put, k in o[1] if is_put}
            ops: list[tuple[str, bytes, bytes | None, bytes]] = []
            for k in sorted(puts):
                ops.append(("put", k, None, b"t"))
            for is_put, k in o[1]:
                if not is_put and k not in puts:
                    ops.append(("del", k, None, b""))
            self.write(ops)
        elif kind == "compact":
            lo, hi = self.store.compact_revision + 1, self.store.current_revision
            if lo <= hi:
                at = lo + int(o[1] * (hi - lo))
                self.store.compact(at)
                self.hist.compactions.append(at)
        elif kind == "watch":
            self.watch(o[1], o[2], o[3], o[4], o[5])
        elif kind == "cancel" and self.watchers:
            w, rec = self.watchers[o[1] % len(self.watchers)]
            if w.state is not State.CANCELLED:
                rec.client_cancelled = True
            self.hub.cancel(w)
        elif kind == "slow" and self.watchers:
            self.watchers[o[1] % len(self.watchers)][1].full = o[2]
        elif kind == "sync":
            self.hub.sync_pending(o[1])
        elif kind == "resume":
            for w, rec in self.watchers:
                if not rec.full:
                    self.hub.resume(w)

    def watch(
        self, key: bytes, end: bytes, back: int, prev_kv: bool, filters: tuple[WatchFilter, ...]
    ) -> None:
        # back: -1 "from now" (0); -2, -3 a future revision; else that far back.
        rev = self.hub.revision
        start = {-1: 0, -2: rev + 1, -3: rev + 3}.get(back, max(rev - back, 0))
        eff = rev + 1 if start == 0 else start
        drop = frozenset(
            EventType.PUT if f is WatchFilter.NOPUT else EventType.DELETE for f in filters
        )
        rec = Recorder(eff, key, end, drop)
        if end and end != b"\0" and key >= end:
            with pytest.raises(EmptyWatcherRange):
                self.hub.watch(key, end, start, sink=rec)
            return
        w = self.hub.watch(key, end, start, sink=rec, prev_kv=prev_kv, filters=filters)
        self.watchers.append((w, rec))

    def drain(self) -> None:
        for w, rec in self.watchers:
            rec.full = False
            self.hub.resume(w)
        for _ in range(10_000):
            if not self.hub.unsynced:
                return
            self.hub.sync_pending(3)
        raise AssertionError("unsynced watchers never caught up")

    def check(self) -> None:
        compact_points = set(self.hist.compactions)
        final_compact = self.store.compact_revision
        for w, rec in self.watchers:
            seen_revs: set[int] = set()
            got: list[Event] = []
            compacted = 0
            for d in rec.taken:
                if d.compact_revision:
                    compacted = d.compact_revision
                    continue
                revs = {e.kv.mod_revision for e in d.events}
                assert not revs & seen_revs, f"revision split across deliveries: {w}"
                assert d.events, "an empty delivery outside progress"
                assert d.revision >= max(revs)
                seen_revs |= revs
                got.extend(d.events)
            expected = [
                c
                for c in self.hist.since(rec.start, rec.key, rec.range_end)
                if c.event.type not in rec.drop
            ]

            # A delete made at exactly a compaction point is gone from disk
            # (etcd drops the tombstone too): a watcher reading that revision
            # from history cannot see it.
            def keep(e: Event) -> bool:
                return not (e.type is EventType.DELETE and e.kv.mod_revision in compact_points)

            got_kept = [e for e in got if keep(e)]
            exp_kept = [c for c in expected if keep(c.event)]
            pairs = list(zip(got_kept, exp_kept, strict=False))
            for e, c in pairs:
                assert (e.type, e.kv) == (c.event.type, c.event.kv), (w, got, expected)
                check_prev(w, e, c, final_compact)
            if compacted:
                assert w.state is State.CANCELLED and rec.start < compacted
                assert len(got_kept) <= len(exp_kept)
            elif rec.client_cancelled:
                assert len(got_kept) <= len(exp_kept)
            else:
                assert len(got_kept) == len(exp_kept), (w, got, expected)
                assert w.state is State.SYNCED
            revs = [e.kv.mod_revision for e in got]
            assert revs == sorted(revs)


def check_prev(w: Watcher, e: Event, c: Change, compact: int) -> None:
    if not w.prev_kv:
        assert e.prev_kv is None
    elif e.prev_kv is not None:
        assert e.prev_kv == c.prev
    else:
        assert c.prev is None or e.kv.mod_revision - 1 < compact


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(op, min_size=20, max_size=150))
def test_every_watcher_sees_exactly_its_history(ops: list[tuple[Any, ...]]) -> None:
    with open_store() as store:
        run = Run(store)
        for o in ops:
            run.step(o)
        run.drain()
        run.check()


def test_compacted_start_is_cancelled_with_the_compact_revision() -> None:
    with open_store() as store:
        hub = WatchHub(store)
        for i in range(5):
            store.put(PutRequest(b"k", b"%d" % i))
        hub.notify(store.take_events(), store.current_revision)
        store.compact(4)
        rec = Recorder(3, b"k", b"", frozenset())
        w = hub.watch(b"k", b"", 3, sink=rec)
        assert w.state is State.UNSYNCED and rec.calls == 0  # watch() never calls the sink
        hub.sync_pending()
        assert [d.compact_revision for d in rec.taken] == [4]
        assert w.state is State.CANCELLED and w.compact_revision == 4
        # At the compaction point itself: accepted, as etcd does.
        rec2 = Recorder(4, b"k", b"", frozenset())
        w2 = hub.watch(b"k", b"", 4, sink=rec2)
        hub.sync_pending()
        assert w2.state is State.SYNCED
        assert [e.kv.mod_revision for d in rec2.taken for e in d.events] == [4, 5, 6]


def test_compaction_while_behind_cancels() -> None:
    with open_store() as store:
        hub = WatchHub(store)
        rec = Recorder(0, b"k", b"", frozenset())
        w = hub.watch(b"k", b"", 0, sink=rec)
        rec.full = True
        store.put(PutRequest(b"k", b"1"))
        hub.notify(store.take_events(), store.current_revision)
        assert w.state is State.UNSYNCED and w.paused
        store.put(PutRequest(b"k", b"2"))
        hub.notify(store.take_events(), store.current_revision)
        store.compact(3)
        rec.full = False
        hub.resume(w)
        hub.sync_pending()
        assert [d.compact_revision for d in rec.taken] == [3]
        with pytest.raises(Compacted):
            store.compact(2)


def test_prev_kv_and_filters() -> None:
    with open_store() as store:
        hub = WatchHub(store)
        both = Recorder(0, b"k", b"", frozenset())
        no_put = Recorder(0, b"k", b"", frozenset())
        hub.watch(b"k", b"", 0, sink=both, prev_kv=True)
        hub.watch(b"k", b"", 0, sink=no_put, filters=[WatchFilter.NOPUT])
        store.put(PutRequest(b"k", b"1"))
        store.put(PutRequest(b"k", b"2"))
        store.delete_range(DeleteRangeRequest(b"k"))
        hub.notify(store.take_events(), store.current_revision)
        evs = [e for d in both.taken for e in d.events]
        assert [(e.type, e.kv.value) for e in evs] == [
            (EventType.PUT, b"1"),
            (EventType.PUT, b"2"),
            (EventType.DELETE, b""),
        ]
        assert [e.prev_kv.value if e.prev_kv else None for e in evs] == [None, b"1", b"2"]
        assert [(e.type, e.kv.mod_revision) for d in no_put.taken for e in d.events] == [
            (EventType.DELETE, 4)
        ]


def test_progress_notify_follows_etcd_34() -> None:
    with open_store() as store:
        hub = WatchHub(store, progress_interval=10.0)
        quiet = Recorder(0, b"q", b"", frozenset())
        busy = Recorder(0, b"b", b"", frozenset())
        hub.watch(b"q", b"", 0, sink=quiet, progress_notify=True)
        hub.watch(b"b", b"", 0, sink=busy, progress_notify=True)
        assert hub.progress_all(0.0) == 0  # the first call starts the clock
        store.put(PutRequest(b"b", b"1"))
        hub.notify(store.take_events(), store.current_revision)
        assert hub.progress_all(5.0) == 0
        assert hub.progress_all(10.0) == 1  # busy just got events: skipped once
        assert quiet.taken[-1] == Delivery([], 2)
        assert hub.progress_all(20.0) == 2


def test_a_write_visits_only_the_watchers_it_concerns() -> None:
    with open_store() as store:
        hub = WatchHub(store)
        sink_calls = 0

        def sink(w: Watcher, d: Delivery) -> bool:
            nonlocal sink_calls
            sink_calls += 1
            return True

        for i in range(5000):
            hub.watch(b"other/%05d" % i, b"", 0, sink=sink)
            hub.watch(b"range/%05d/" % i, b"range/%05d0" % i, 0, sink=sink)
        mine = hub.watch(b"mine/", b"mine0", 0, sink=sink)
        assert hub.synced == 10_001
        store.put(PutRequest(b"mine/x", b"v"))
        store.put(PutRequest(b"range/00042/x", b"v"))
        hub.notify(store.take_events(), store.current_revision)
        assert hub.visits == 2 and sink_calls == 2
        hub.cancel(mine)
        assert hub.synced == 10_000


def test_notify_refuses_a_gap_or_a_replay() -> None:
    with open_store() as store:
        hub = WatchHub(store)
        store.put(PutRequest(b"k", b"1"))
        events = store.take_events()
        hub.notify(events, store.current_revision)
        with pytest.raises(ValueError):
            hub.notify(events, store.current_revision)
        with pytest.raises(ValueError):
            hub.notify([], 1)
