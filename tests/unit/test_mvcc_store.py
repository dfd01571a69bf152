"""MVCC store behaviour, one etcd rule per test, plus bad-input handling."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvstore.mvcc import errors
from kvstore.mvcc.key_index import KeyIndex
from kvstore.mvcc.revision import main_of, pack
from kvstore.mvcc.sorted_keys import SortedKeys
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)
from kvstore.raft.types import Entry, HardState
from kvstore.storage.db import Database
from kvstore.storage.log_store import LogStore

Opener = Callable[..., MVCCStore]


@pytest.fixture
def opener(tmp_path: Path) -> Iterator[Opener]:
    dbs: list[Database] = []

    def open_store(**opts: object) -> MVCCStore:
        for db in dbs:
            db.close()
        db = Database(str(tmp_path / "db"))
        dbs.append(db)
        return MVCCStore(db, StoreOptions(sync=False, **opts))  # type: ignore[arg-type]

    yield open_store
    for db in dbs:
        db.close()


@pytest.fixture
def store(opener: Opener) -> MVCCStore:
    return opener()


def put(s: MVCCStore, key: bytes, value: bytes = b"v", lease: int = 0) -> int:
    return s.put(PutRequest(key, value, lease)).revision


def get(s: MVCCStore, key: bytes, rev: int = 0) -> KeyValue | None:
    kvs = s.range(RangeRequest(key, revision=rev)).kvs
    return kvs[0] if kvs else None


def keys_of(resp: RangeResponse) -> list[bytes]:
    return [kv.key for kv in resp.kvs]


# -- revisions and the key index ---------------------------------------------------------


def test_worked_example_of_the_key_index_docstring() -> None:
    ki = KeyIndex()
    ki.put(pack(2, 0))
    ki.put(pack(3, 0))
    ki.put(pack(4, 1))
    ki.tombstone(pack(5, 0))
    ki.put(pack(6, 0))
    ki.put(pack(7, 0))
    assert ki.get(3) == (pack(3, 0), pack(2, 0), 2)
    assert ki.get(4) == (pack(4, 1), pack(2, 0), 3)
    assert ki.get(5) is None
    assert ki.get(6) == (pack(6, 0), pack(6, 0), 1)
    dropped: list[int] = []
    ki.compact(4, dropped)
    assert dropped == [pack(2, 0), pack(3, 0)]
    assert ki.revisions() == [pack(4, 1), pack(5, 0), pack(6, 0), pack(7, 0)]
    assert ki.get(4) == (pack(4, 1), pack(2, 0), 3)
    ki.compact(6, dropped)
    assert ki.revisions() == [pack(6, 0), pack(7, 0)]
    ki.compact(7, dropped)
    assert ki.revisions() == [pack(7, 0)]
    assert ki.get(7) == (pack(7, 0), pack(6, 0), 2)
    ki.tombstone(pack(8, 0))
    ki.compact(8, dropped)
    assert ki.is_empty()


def test_revisions_start_at_one_and_txn_changes_share_one(store: MVCCStore) -> None:
    assert store.current_revision == 1
    assert put(store, b"a") == 2
    resp = store.txn(TxnRequest(success=(PutRequest(b"b"), PutRequest(b"c"))))
    assert resp.revision == 3
    kvs = store.range(RangeRequest(b"a", b"z")).kvs
    assert [(kv.key, kv.create_revision, kv.mod_revision) for kv in kvs] == [
        (b"a", 2, 2),
        (b"b", 3, 3),
        (b"c", 3, 3),
    ]


def test_versions_and_generations(store: MVCCStore) -> None:
    put(store, b"k", b"1")
    put(store, b"k", b"2")
    kv = get(store, b"k")
    assert kv == KeyValue(b"k", 2, 3, 2, b"2", 0)
    resp = store.delete_range(DeleteRangeRequest(b"k", prev_kv=True))
    assert (resp.revision, resp.deleted, resp.prev_kvs) == (4, 1, [kv])
    assert get(store, b"k") is None
    put(store, b"k", b"3")
    assert get(store, b"k") == KeyValue(b"k", 5, 5, 1, b"3", 0)
    assert get(store, b"k", rev=3) == kv
    assert get(store, b"k", rev=4) is None


def test_delete_of_nothing_makes_no_revision(store: MVCCStore) -> None:
    put(store, b"a")
    resp = store.delete_range(DeleteRangeRequest(b"x", b"z"))
    assert (resp.revision, resp.deleted) == (2, 0)
    assert store.current_revision == 2


# -- range --------------------------------------------------------------------------------


@pytest.fixture
def abc(store: MVCCStore) -> MVCCStore:
    put(store, b"a", b"3")  # rev 2
    put(store, b"b", b"1")  # rev 3
    put(store, b"c", b"2")  # rev 4
    put(store, b"a", b"0")  # rev 5: a has version 2
    return store


def test_range_forms(abc: MVCCStore) -> None:
    assert keys_of(abc.range(RangeRequest(b"b"))) == [b"b"]
    assert keys_of(abc.range(RangeRequest(b"a", b"c"))) == [b"a", b"b"]
    assert keys_of(abc.range(RangeRequest(b"b", b"\0"))) == [b"b", b"c"]
    assert keys_of(abc.range(RangeRequest(b"\0", b"\0"))) == [b"a", b"b", b"c"]
    assert keys_of(abc.range(RangeRequest(b"zz"))) == []


def test_limit_keeps_true_count_and_more(abc: MVCCStore) -> None:
    resp = abc.range(RangeRequest(b"a", b"\0", limit=2))
    assert (keys_of(resp), resp.count, resp.more) == ([b"a", b"b"], 3, True)
    resp = abc.range(RangeRequest(b"a", b"\0", limit=3))
    assert (resp.count, resp.more) == (3, False)


def test_count_only_and_keys_only(abc: MVCCStore) -> None:
    resp = abc.range(RangeRequest(b"a", b"\0", count_only=True))
    assert (resp.kvs, resp.count) == ([], 3)
    resp = abc.range(RangeRequest(b"a", b"\0", keys_only=True))
    assert [kv.value for kv in resp.kvs] == [b"", b"", b""]
    assert resp.kvs[0].version == 2


@pytest.mark.parametrize(
    ("target", "order", "expected"),
    [
        (SortTarget.KEY, SortOrder.DESCEND, [b"c", b"b", b"a"]),
        (SortTarget.VALUE, SortOrder.ASCEND, [b"a", b"b", b"c"]),
        (SortTarget.VALUE, SortOrder.DESCEND, [b"c", b"b", b"a"]),
        (SortTarget.MOD, SortOrder.DESCEND, [b"a", b"c", b"b"]),
        (SortTarget.CREATE, SortOrder.ASCEND, [b"a", b"b", b"c"]),
        (SortTarget.CREATE, SortOrder.NONE, [b"a", b"b", b"c"]),
        (SortTarget.VERSION, SortOrder.DESCEND, [b"a", b"b", b"c"]),
        (SortTarget.MOD, SortOrder.NONE, [b"b", b"c", b"a"]),  # non-key target: ascending
    ],
)
def test_sorting(
    abc: MVCCStore, target: SortTarget, order: SortOrder, expected: list[bytes]
) -> None:
    req = RangeRequest(b"a", b"\0", sort_target=target, sort_order=order)
    assert keys_of(abc.range(req)) == expected


def test_sort_then_limit(abc: MVCCStore) -> None:
    req = RangeRequest(
        b"a", b"\0", limit=1, sort_target=SortTarget.MOD, sort_order=SortOrder.ASCEND
    )
    resp = abc.range(req)
    assert (keys_of(resp), resp.count, resp.more) == ([b"b"], 3, True)


def test_revision_filters(abc: MVCCStore) -> None:
    def ks(**kw: int) -> list[bytes]:
        return keys_of(abc.range(RangeRequest(b"a", b"\0", **kw)))  # type: ignore[arg-type]

    assert ks(min_mod_revision=4) == [b"a", b"c"]
    assert ks(max_mod_revision=3) == [b"b"]
    assert ks(min_create_revision=3) == [b"b", b"c"]
    assert ks(max_create_revision=3) == [b"a", b"b"]
    resp = abc.range(RangeRequest(b"a", b"\0", min_mod_revision=5))
    assert resp.count == 3  # count is of the range, before filters (etcd)


def test_range_at_old_revisions(abc: MVCCStore) -> None:
    assert keys_of(abc.range(RangeRequest(b"a", b"\0", revision=3))) == [b"a", b"b"]
    assert abc.range(RangeRequest(b"a", revision=4)).kvs[0].value == b"3"
    assert abc.range(RangeRequest(b"a", b"\0", revision=1)).kvs == []
    assert abc.range(RangeRequest(b"a", revision=3)).revision == 5  # header: current


# -- put options --------------------------------------------------------------------------


def test_ignore_value_and_ignore_lease(store: MVCCStore) -> None:
    put(store, b"k", b"keep", lease=9)
    store.put(PutRequest(b"k", ignore_value=True, lease=4))
    assert get(store, b"k") == KeyValue(b"k", 2, 3, 2, b"keep", 4)
    store.put(PutRequest(b"k", b"new", ignore_lease=True))
    assert get(store, b"k") == KeyValue(b"k", 2, 4, 3, b"new", 4)


def test_prev_kv_on_put(store: MVCCStore) -> None:
    assert store.put(PutRequest(b"k", b"1", prev_kv=True)).prev_kv is None
    prev = store.put(PutRequest(b"k", b"2", prev_kv=True)).prev_kv
    assert prev == KeyValue(b"k", 2, 2, 1, b"1", 0)


# -- txn ----------------------------------------------------------------------------------


def cmp(key: bytes, target: CompareTarget, result: CompareResult, **kw: object) -> Compare:
    return Compare(key, target, result, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("compare", "succeeds"),
    [
        (cmp(b"a", CompareTarget.VERSION, CompareResult.EQUAL, version=2), True),
        (cmp(b"a", CompareTarget.VERSION, CompareResult.GREATER, version=2), False),
        (cmp(b"a", CompareTarget.CREATE, CompareResult.EQUAL, create_revision=2), True),
        (cmp(b"a", CompareTarget.MOD, CompareResult.LESS, mod_revision=6), True),
        (cmp(b"a", CompareTarget.MOD, CompareResult.NOT_EQUAL, mod_revision=5), False),
        (cmp(b"a", CompareTarget.VALUE, CompareResult.EQUAL, value=b"0"), True),
        (cmp(b"a", CompareTarget.VALUE, CompareResult.GREATER, value=b"-"), True),
        (cmp(b"a", CompareTarget.LEASE, CompareResult.EQUAL, lease=0), True),
        # A missing key compares as zeros; a value compare on it always fails.
        (cmp(b"zz", CompareTarget.MOD, CompareResult.EQUAL, mod_revision=0), True),
        (cmp(b"zz", CompareTarget.VERSION, CompareResult.EQUAL, version=0), True),
        (cmp(b"zz", CompareTarget.VALUE, CompareResult.NOT_EQUAL, value=b"x"), False),
        # With range_end every key in the range must satisfy the compare.
        (cmp(b"a", CompareTarget.VERSION, CompareResult.GREATER, version=0, range_end=b"\0"), True),
        (cmp(b"a", CompareTarget.VERSION, CompareResult.EQUAL, version=1, range_end=b"d"), False),
        (cmp(b"b", CompareTarget.VERSION, CompareResult.EQUAL, version=1, range_end=b"d"), True),
    ],
)
def test_compares(abc: MVCCStore, compare: Compare, succeeds: bool) -> None:
    resp = abc.txn(TxnRequest((compare,), (PutRequest(b"ok"),), (PutRequest(b"ko"),)))
    assert resp.succeeded is succeeds
    assert get(abc, b"ok" if succeeds else b"ko") is not None


def test_txn_reads_see_earlier_writes_and_nested_txn(store: MVCCStore) -> None:
    put(store, b"x", b"old")
    inner = TxnRequest(
        (cmp(b"x", CompareTarget.VALUE, CompareResult.EQUAL, value=b"old"),),
        (PutRequest(b"y", b"inner"), RangeRequest(b"x")),
    )
    resp = store.txn(
        TxnRequest(
            success=(
                PutRequest(b"x", b"new"),
                RangeRequest(b"x"),
                inner,  # its compare ran before any write: x was still "old"
                DeleteRangeRequest(b"zz"),
            )
        )
    )
    assert resp.revision == 3
    ranged = resp.responses[1]
    assert isinstance(ranged, RangeResponse)
    assert ranged.kvs[0].value == b"new" and ranged.revision == 3
    nested = resp.responses[2]
    assert isinstance(nested, TxnResponse) and nested.succeeded
    assert isinstance(nested.responses[0], PutResponse)
    assert [kv.value for kv in store.range(RangeRequest(b"x", b"z")).kvs] == [b"new", b"inner"]


def test_read_only_txn_makes_no_revision(abc: MVCCStore) -> None:
    resp = abc.txn(TxnRequest(success=(RangeRequest(b"a"),)))
    assert resp.revision == 5 and abc.current_revision == 5


# -- bad input: typed error, nothing changed ------------------------------------------------


def dup_cases() -> list[tuple[RequestOp, ...]]:
    nested_put = TxnRequest(success=(PutRequest(b"a"),))
    return [
        (PutRequest(b"a"), PutRequest(b"a")),
        (DeleteRangeRequest(b"a", b"c"), PutRequest(b"b")),
        (PutRequest(b"b"), DeleteRangeRequest(b"a", b"\0")),
        (nested_put, PutRequest(b"a")),
        (DeleteRangeRequest(b"a"), nested_put),
        (nested_put, TxnRequest(failure=(PutRequest(b"a"),))),
    ]


@pytest.mark.parametrize("ops", dup_cases())
def test_duplicate_key_in_txn(abc: MVCCStore, ops: tuple[RequestOp, ...]) -> None:
    before = abc.hash_kv()
    with pytest.raises(errors.DuplicateKeyInTxn):
        abc.txn(TxnRequest(success=ops))
    with pytest.raises(errors.DuplicateKeyInTxn):
        abc.txn(TxnRequest(failure=ops))
    assert abc.hash_kv() == before


def test_allowed_overlaps_in_txn(abc: MVCCStore) -> None:
    # then/else of one nested txn may put the same key; deletes may overlap.
    either = TxnRequest(success=(PutRequest(b"a"),), failure=(PutRequest(b"a"),))
    abc.txn(TxnRequest(success=(either, DeleteRangeRequest(b"b", b"d"), DeleteRangeRequest(b"c"))))
    # success and failure of the top txn are checked separately.
    abc.txn(TxnRequest(success=(PutRequest(b"q"),), failure=(PutRequest(b"q"),)))


def test_too_many_ops(opener: Opener) -> None:
    s = opener()
    ops = tuple(PutRequest(b"k%d" % i) for i in range(129))
    with pytest.raises(errors.TooManyOps):
        s.txn(TxnRequest(success=ops))
    s.txn(TxnRequest(success=ops[:128]))
    s = opener(max_txn_ops=3)
    with pytest.raises(errors.TooManyOps):
        s.txn(TxnRequest(compare=tuple(cmp(b"a", CompareTarget.VERSION, CompareResult.EQUAL)
                                       for _ in range(4))))
    nested = TxnRequest(success=(TxnRequest(success=(PutRequest(b"x"), PutRequest(b"y"))),))
    s.txn(nested)  # the nested txn may use what its parent left: 3 - 1 = 2 ops
    rev = s.current_revision
    with pytest.raises(errors.TooManyOps):
        s.txn(TxnRequest(success=(PutRequest(b"w"), *nested.success)))
    assert s.current_revision == rev


def bad_requests() -> list[tuple[Callable[[MVCCStore], object], type[Exception]]]:
    return [
        (lambda s: s.put(PutRequest(b"")), errors.EmptyKey),
        (lambda s: s.range(RangeRequest(b"")), errors.EmptyKey),
        (lambda s: s.delete_range(DeleteRangeRequest(b"", b"z")), errors.EmptyKey),
        (lambda s: s.txn(TxnRequest(success=(PutRequest(b""),))), errors.EmptyKey),
        (lambda s: s.txn(TxnRequest((cmp(b"", CompareTarget.MOD, CompareResult.EQUAL),))),
         errors.EmptyKey),
        (lambda s: s.range(RangeRequest(b"a", revision=99)), errors.FutureRevision),
        (lambda s: s.range(RangeRequest(b"a", revision=2)), errors.Compacted),
        (lambda s: s.txn(TxnRequest(success=(PutRequest(b"n"), RangeRequest(b"a", revision=2)))),
         errors.Compacted),
        (lambda s: s.txn(TxnRequest(success=(PutRequest(b"n"), RangeRequest(b"a", revision=9)))),
         errors.FutureRevision),
        (lambda s: s.compact(3), errors.Compacted),
        (lambda s: s.compact(2), errors.Compacted),
        (lambda s: s.compact(6), errors.FutureRevision),
        (lambda s: s.hash_kv(2), errors.Compacted),
        (lambda s: s.put(PutRequest(b"a", b"x", ignore_value=True)), errors.ValueProvided),
        (lambda s: s.put(PutRequest(b"a", lease=1, ignore_lease=True)), errors.LeaseProvided),
        (lambda s: s.put(PutRequest(b"nope", ignore_value=True)), errors.KeyNotFound),
        (lambda s: s.put(PutRequest(b"nope", ignore_lease=True)), errors.KeyNotFound),
        (lambda s: s.txn(TxnRequest(success=(PutRequest(b"n"), PutRequest(b"nope",
                                                                            ignore_value=True)))),
         errors.KeyNotFound),
        (lambda s: s.put(PutRequest(b"a", lease=404)), errors.LeaseNotFound),
        (lambda s: s.txn(TxnRequest(success=(PutRequest(b"n"), PutRequest(b"a", lease=404)))),
         errors.LeaseNotFound),
    ]


@pytest.mark.parametrize(("call", "error"), bad_requests())
def test_bad_input_raises_typed_error_and_changes_nothing(
    opener: Opener, call: Callable[[MVCCStore], object], error: type[Exception]
) -> None:
    s = opener(lease_exists=lambda lease: lease != 404)
    for v in (b"3", b"1", b"2", b"0"):
        put(s, b"a", v)
    s.compact(3)
    before = (s.current_revision, s.compact_revision, s.hash_kv())
    with pytest.raises(error) as info:
        call(s)
    assert info.value.etcd_message.startswith("etcdserver: ")  # type: ignore[attr-defined]
    assert (s.current_revision, s.compact_revision, s.hash_kv()) == before


def test_inverted_range_end(opener: Opener) -> None:
    s = opener()
    put(s, b"a")
    put(s, b"m")
    # etcd answers an inverted range with nothing and deletes nothing...
    assert s.range(RangeRequest(b"m", b"b")).kvs == []
    assert s.delete_range(DeleteRangeRequest(b"m", b"b")).deleted == 0
    assert s.current_revision == 3
    # ...and strict mode turns it into a typed error.
    s = opener(strict_range_end=True)
    with pytest.raises(errors.InvalidRangeEnd):
        s.range(RangeRequest(b"m", b"b"))
    with pytest.raises(errors.InvalidRangeEnd):
        s.delete_range(DeleteRangeRequest(b"m", b"b"))
    assert s.current_revision == 3


# -- compaction and hashing -----------------------------------------------------------------


def test_compaction_frees_space_and_keeps_latest(opener: Opener) -> None:
    s = opener()
    for i in range(10):
        put(s, b"k", b"%d" % i)  # revs 2..11
    put(s, b"gone")  # 12
    s.delete_range(DeleteRangeRequest(b"gone"))  # 13
    s.compact(13)
    assert get(s, b"k") == KeyValue(b"k", 2, 11, 10, b"9", 0)
    with pytest.raises(errors.Compacted):
        get(s, b"k", rev=12)
    records = list(s._db.iterate(b"k", b"l"))
    assert len(records) == 1
    assert len(s) == 1  # "gone" left the index
    s = opener()  # reopen: same answers from disk
    assert get(s, b"k") == KeyValue(b"k", 2, 11, 10, b"9", 0)
    assert (s.current_revision, s.compact_revision) == (13, 13)
    assert put(s, b"k") == 14


def test_hash_kv_equal_for_equal_histories(tmp_path: Path) -> None:
    stores = []
    for name in ("m1", "m2"):
        db = Database(str(tmp_path / name))
        s = MVCCStore(db, StoreOptions(sync=False))
        for i in range(20):
            put(s, b"k%d" % (i % 7), b"v%d" % i)
        s.compact(10)
        stores.append((db, s))
    (db1, s1), (db2, s2) = stores
    assert s1.hash_kv() == s2.hash_kv()
    assert s1.hash_kv(15).hash == s2.hash_kv(15).hash != s1.hash_kv().hash
    put(s2, b"extra")
    assert s1.hash_kv().hash != s2.hash_kv().hash
    db1.close()
    db2.close()


# -- group commit with the Raft log -----------------------------------------------------


def test_ready_and_applied_data_share_one_batch(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "db"))
    log, s = LogStore(db), MVCCStore(db)
    with db.batch(sync=True) as batch:
        log.save_ready(batch, HardState(1, 1, 1), [Entry(1, 1, data=b"put a")], None)
        with s.writing(batch):
            s.put(PutRequest(b"a", b"1"))
            s.set_applied_index(1)
            assert get(s, b"a") is not None  # reads see the staged write
        assert MVCCStore(db).current_revision == 1  # nothing on disk yet
    db.close()
    db = Database(str(tmp_path / "db"))
    log, s = LogStore(db), MVCCStore(db)
    assert (log.last_index(), log.hard_state.commit) == (1, 1)
    assert (s.applied_index, s.current_revision, get(s, b"a")) == (
        1,
        2,
        KeyValue(b"a", 2, 2, 1, b"1", 0),
    )
    db.close()


def test_failed_apply_discards_the_batch(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "db"))
    s = MVCCStore(db)
    with pytest.raises(RuntimeError), db.batch(sync=True) as batch, s.writing(batch):
        s.put(PutRequest(b"a"))
        raise RuntimeError("apply crashed")
    db.close()
    db = Database(str(tmp_path / "db"))
    assert MVCCStore(db).current_revision == 1
    db.close()


def test_sorted_keys_against_a_sorted_list() -> None:
    rng = random.Random(5)
    sk, ref = SortedKeys(), set[bytes]()
    for _ in range(5000):
        k = rng.randbytes(rng.randint(1, 3))
        if rng.random() < 0.7:
            if k not in ref:
                sk.add(k)
                ref.add(k)
        else:
            sk.discard(k)
            ref.discard(k)
        if rng.random() < 0.05:
            lo, hi = sorted([rng.randbytes(2), rng.randbytes(2)])
            want = sorted(x for x in ref if lo <= x < hi)
            assert list(sk.irange(lo, hi)) == want
            assert list(sk.irange(lo, None)) == sorted(x for x in ref if x >= lo)
    assert len(sk) == len(ref)


def test_revision_packing_orders_like_pairs() -> None:
    assert pack(3, 7) < pack(4, 0) and main_of(pack(9, 2**31)) == 9
