"""Protobuf <-> domain conversions, without a server."""

from __future__ import annotations

import pytest

from kvstore.api import convert
from kvstore.api.pb import rpc_pb2
from kvstore.mvcc import types as t
from kvstore.mvcc.errors import InvalidRequest, KeyNotFound

Cmp = rpc_pb2.Compare
Op = rpc_pb2.RequestOp


def test_range_request_all_fields() -> None:
    pb = rpc_pb2.RangeRequest(
        key=b"a",
        range_end=b"b",
        limit=3,
        revision=7,
        sort_order=rpc_pb2.RangeRequest.DESCEND,
        sort_target=rpc_pb2.RangeRequest.MOD,
        serializable=True,
        keys_only=True,
        count_only=True,
        min_mod_revision=1,
        max_mod_revision=2,
        min_create_revision=3,
        max_create_revision=4,
    )
    req, serializable = convert.range_request(pb)
    assert serializable
    assert req == t.RangeRequest(
        b"a", b"b", 3, 7, t.SortOrder.DESCEND, t.SortTarget.MOD, True, True, 1, 2, 3, 4
    )


def test_compare_reads_its_operand_from_the_oneof() -> None:
    c = convert.compare(Cmp(key=b"k", target=Cmp.MOD, result=Cmp.LESS, mod_revision=9))
    assert (c.target, c.result, c.mod_revision, c.version) == (
        t.CompareTarget.MOD,
        t.CompareResult.LESS,
        9,
        0,
    )
    # operand of another kind than the target: the target's operand reads as 0 (etcd's rule)
    mismatched = convert.compare(Cmp(key=b"k", target=Cmp.VERSION, mod_revision=9))
    assert mismatched.version == 0
    ranged = convert.compare(Cmp(key=b"a", range_end=b"\0", target=Cmp.VALUE, value=b"x"))
    assert (ranged.range_end, ranged.value) == (b"\0", b"x")


def test_nested_txn_and_empty_op() -> None:
    pb = rpc_pb2.TxnRequest(
        success=[
            Op(
                request_txn=rpc_pb2.TxnRequest(
                    failure=[Op(request_put=rpc_pb2.PutRequest(key=b"k"))]
                )
            )
        ],
        failure=[Op(request_range=rpc_pb2.RangeRequest(key=b"r"))],
    )
    req = convert.txn_request(pb)
    assert req.success == (t.TxnRequest(failure=(t.PutRequest(b"k"),)),)
    assert req.failure == (t.RangeRequest(b"r"),)
    assert not convert.is_read_only(req)
    assert convert.is_read_only(t.TxnRequest(success=(t.RangeRequest(b"r"),)))
    with pytest.raises(KeyNotFound):
        convert.txn_request(rpc_pb2.TxnRequest(failure=[Op()]))


def test_unknown_enum_numbers_are_invalid() -> None:
    with pytest.raises(InvalidRequest, match="sort target 12"):
        convert.range_request(rpc_pb2.RangeRequest(key=b"k", sort_target=12))
    with pytest.raises(InvalidRequest, match="compare result 8"):
        convert.compare(Cmp(key=b"k", result=8))


def test_responses_and_presence() -> None:
    hdr = rpc_pb2.ResponseHeader(revision=5)
    assert not convert.put_response(t.PutResponse(5), hdr).HasField("prev_kv")
    with_prev = convert.put_response(t.PutResponse(5, t.KeyValue(b"k", 2, 3, 2, b"v", 0)), hdr)
    assert with_prev.prev_kv.value == b"v"
    txn = convert.txn_response(
        t.TxnResponse(
            6,
            True,
            [
                t.RangeResponse(6, [t.KeyValue(b"a", 1, 1, 1, b"x")], 1),
                t.TxnResponse(6, False, [t.DeleteRangeResponse(6, 0)]),
            ],
        ),
        rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=6, raft_term=3),
    )
    rng = txn.responses[0].response_range
    assert rng.header == rpc_pb2.ResponseHeader(revision=6) and rng.count == 1
    inner = txn.responses[1].response_txn
    assert inner.HasField("header") and inner.header == rpc_pb2.ResponseHeader()
    assert inner.responses[0].response_delete_range.header.revision == 6
