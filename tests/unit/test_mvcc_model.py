"""Hypothesis state machine: the LevelDB MVCC store against the naive model."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kvstore.mvcc.errors import Compacted, DuplicateKeyInTxn, FutureRevision
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RangeResponse,
    RequestOp,
    TxnRequest,
)
from kvstore.mvcc.validate import interval
from kvstore.storage.db import Database
from tests.unit.mvcc_model import Model, ModelTxn

KEYS = [b"a", b"ab", b"b", b"ba", b"c", b"d"]
keys_st = st.sampled_from(KEYS)
values_st = st.binary(max_size=4)
leases_st = st.sampled_from([0, 0, 7, -3])
range_end_st = st.sampled_from([b"", b"", b"\0", b"b", b"c", b"e", b"a"])


@st.composite
def write_ops(draw: st.DrawFn) -> RequestOp:
    if draw(st.booleans()):
        return PutRequest(draw(keys_st), draw(values_st), draw(leases_st), prev_kv=True)
    if draw(st.integers(0, 3)) == 0:
        return RangeRequest(draw(keys_st), draw(range_end_st))
    return DeleteRangeRequest(draw(keys_st), draw(range_end_st), prev_kv=True)


def _has_duplicates(ops: tuple[RequestOp, ...]) -> bool:
    puts = [op.key for op in ops if isinstance(op, PutRequest)]
    dels = [interval(op.key, op.range_end) for op in ops if isinstance(op, DeleteRangeRequest)]
    if len(set(puts)) != len(puts):
        return True
    return any(lo <= k and (hi is None or k < hi) for k in puts for lo, hi in dels)


def _bounds(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    return interval(key, range_end)


class MVCCMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mvcc-model-")
        self.db = Database(self.dir)
        self.store = MVCCStore(self.db, StoreOptions(sync=False))
        self.model = Model()

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(key=keys_st, value=values_st, lease=leases_st)
    def put(self, key: bytes, value: bytes, lease: int) -> None:
        resp = self.store.put(PutRequest(key, value, lease, prev_kv=True))
        t = ModelTxn(self.model)
        prev = t.put(key, value, lease)
        assert resp.revision == t.commit()
        assert resp.prev_kv == prev

    @rule(key=keys_st, range_end=range_end_st)
    def delete(self, key: bytes, range_end: bytes) -> None:
        resp = self.store.delete_range(DeleteRangeRequest(key, range_end, prev_kv=True))
        t = ModelTxn(self.model)
        gone = t.delete(*_bounds(key, range_end))
        assert resp.revision == t.commit()
        assert (resp.deleted, resp.prev_kvs) == (len(gone), gone)

    @rule(
        key=keys_st,
        version=st.integers(0, 3),
        result=st.sampled_from(list(CompareResult)),
        success=st.lists(write_ops(), max_size=4).map(tuple),
        failure=st.lists(write_ops(), max_size=3).map(tuple),
    )
    def txn(
        self,
        key: bytes,
        version: int,
        result: CompareResult,
        success: tuple[RequestOp, ...],
        failure: tuple[RequestOp, ...],
    ) -> None:
        cmp = Compare(key, CompareTarget.VERSION, result, version=version)
        req = TxnRequest((cmp,), success, failure)
        if _has_duplicates(success) or _has_duplicates(failure):
            rev = self.store.current_revision
            with pytest.raises(DuplicateKeyInTxn):
                self.store.txn(req)
            assert self.store.current_revision == rev
            return
        resp = self.store.txn(req)
        current = self.model.state_at(self.model.rev).get(key)
        have = current.version if current else 0
        ok = {
            CompareResult.EQUAL: have == version,
            CompareResult.NOT_EQUAL: have != version,
            CompareResult.GREATER: have > version,
            CompareResult.LESS: have < version,
        }[result]
        assert resp.succeeded == ok
        t = ModelTxn(self.model)
        for op, got in zip(success if ok else failure, resp.responses, strict=True):
            if isinstance(op, PutRequest):
                assert getattr(got, "prev_kv", None) == t.put(op.key, op.value, op.lease)
            elif isinstance(op, DeleteRangeRequest):
                assert getattr(got, "prev_kvs", None) == t.delete(*_bounds(op.key, op.range_end))
            elif isinstance(op, RangeRequest):
                assert isinstance(got, RangeResponse)
                assert got.kvs == t.read(*_bounds(op.key, op.range_end))
        assert resp.revision == t.commit()

    @rule(
        key=keys_st,
        range_end=range_end_st,
        back=st.integers(-2, 12),
        limit=st.integers(0, 3),
    )
    def range_at(self, key: bytes, range_end: bytes, back: int, limit: int) -> None:
        at = self.model.rev - back
        req = RangeRequest(key, range_end, limit=limit, revision=at)
        if at > self.model.rev:
            with pytest.raises(FutureRevision):
                self.store.range(req)
            return
        if 0 < at < self.model.compacted:
            with pytest.raises(Compacted):
                self.store.range(req)
            return
        resp = self.store.range(req)
        expected = self.model.range(*_bounds(key, range_end), at if at > 0 else self.model.rev)
        assert resp.count == len(expected)
        assert resp.kvs == (expected[:limit] if limit else expected)
        assert resp.more == (0 < limit < len(expected))
        assert resp.revision == self.model.rev

    @rule(back=st.integers(0, 8))
    def compact(self, back: int) -> None:
        at = max(self.model.rev - back, 1)
        if at <= self.model.compacted:
            with pytest.raises(Compacted):
                self.store.compact(at)
            return
        self.store.compact(at)
        self.model.compacted = at

    @rule()
    def reopen(self) -> None:
        before = self.store.hash_kv()
        self.db.close()
        self.db = Database(self.dir)
        self.store = MVCCStore(self.db, StoreOptions(sync=False))
        assert self.store.hash_kv() == before
        assert self.store.compact_revision == self.model.compacted

    @precondition(lambda self: self.model.rev > 1)
    @rule(data=st.data())
    def every_readable_revision_matches(self, data: st.DataObject) -> None:
        lo = max(self.model.compacted, 1)
        at = data.draw(st.integers(lo, self.model.rev))
        got = self.store.range(RangeRequest(b"\0", b"\0", revision=at)).kvs
        assert got == self.model.range(b"\0", None, at)

    @invariant()
    def latest_matches(self) -> None:
        assert self.store.current_revision == self.model.rev
        got = self.store.range(RangeRequest(b"\0", b"\0")).kvs
        assert got == self.model.range(b"\0", None, self.model.rev)


MVCCMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMVCCAgainstModel = MVCCMachine.TestCase
