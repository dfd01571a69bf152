"""MVCCStore's event capture (take_events) and history reads (events_between)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    Compare,
    CompareTarget,
    DeleteRangeRequest,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from kvstore.storage.db import Database

P, D = EventType.PUT, EventType.DELETE


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MVCCStore]:
    db = Database(str(tmp_path / "db"))
    try:
        yield MVCCStore(db, StoreOptions(sync=False))
    finally:
        db.close()


def test_nothing_is_captured_until_asked(store: MVCCStore) -> None:
    store.put(PutRequest(b"a", b"1"))
    assert store.take_events() == []
    store.capture_events()
    store.put(PutRequest(b"a", b"2"))
    assert store.take_events() == [Event(P, KeyValue(b"a", 2, 3, 2, b"2"))]
    assert store.take_events() == []


def test_events_of_puts_deletes_and_txns(store: MVCCStore) -> None:
    store.capture_events()
    store.put(PutRequest(b"a", b"1", lease=0))
    store.put(PutRequest(b"b", b"1"))
    store.delete_range(DeleteRangeRequest(b"a", b"\0"))  # deletes a and b at 4
    store.delete_range(DeleteRangeRequest(b"zz"))  # nothing: no revision, no event
    nested = TxnRequest(success=(PutRequest(b"n", b"inner"),))
    store.txn(
        TxnRequest(
            compare=(Compare(b"a", CompareTarget.VERSION, version=0),),
            success=(PutRequest(b"c", b"x"), RangeRequest(b"c"), nested, DeleteRangeRequest(b"q")),
        )
    )
    store.put(PutRequest(b"c", b"y", prev_kv=True))
    assert store.take_events() == [
        Event(P, KeyValue(b"a", 2, 2, 1, b"1")),
        Event(P, KeyValue(b"b", 3, 3, 1, b"1")),
        Event(D, KeyValue(b"a", mod_revision=4)),
        Event(D, KeyValue(b"b", mod_revision=4)),
        Event(P, KeyValue(b"c", 5, 5, 1, b"x")),
        Event(P, KeyValue(b"n", 5, 5, 1, b"inner")),
        Event(P, KeyValue(b"c", 5, 6, 2, b"y")),
    ]


def test_a_refused_write_captures_nothing(store: MVCCStore) -> None:
    store.capture_events()
    with pytest.raises(Exception):  # noqa: B017 - any domain error will do
        store.put(PutRequest(b"a", ignore_value=True))
    assert store.take_events() == []


def test_events_between_reads_whole_revisions(store: MVCCStore) -> None:
    store.capture_events()
    store.put(PutRequest(b"a", b"1"))  # 2
    store.txn(TxnRequest(success=(PutRequest(b"b", b"1"), PutRequest(b"c", b"1"))))  # 3
    store.delete_range(DeleteRangeRequest(b"a"))  # 4
    store.put(PutRequest(b"a", b"2"))  # 5
    written = store.take_events()
    assert store.events_between(2, 5, 100) == (written, 5)
    # A limit of 2 reached inside revision 3: revision 3 is finished, no more.
    assert store.events_between(2, 5, 2) == (written[:3], 3)
    assert store.events_between(4, 4, 1) == (written[3:4], 4)
    assert store.events_between(6, 9, 10) == ([], 9)
    store.compact(4)  # drops a@2, and the tombstone at 4 (as etcd does)
    assert store.events_between(1, 5, 100) == ([written[1], written[2], written[4]], 5)
