"""KV over the real grpc.aio server and the generated stubs: round trips,
response headers and proto3 field presence, against an MVCCStore backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kvstore.api.pb import rpc_pb2
from tests.unit.api_fake_backend import CLUSTER_ID, MEMBER_ID, RAFT_TERM, Api, serve

RR = rpc_pb2.RangeRequest
Cmp = rpc_pb2.Compare


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(str(tmp_path / "db")) as a:
        yield a


async def put(api: Api, key: bytes, value: bytes, **kw: object) -> rpc_pb2.PutResponse:
    resp: rpc_pb2.PutResponse = await api.kv.Put(rpc_pb2.PutRequest(key=key, value=value, **kw))
    return resp


def check_header(h: rpc_pb2.ResponseHeader, revision: int) -> None:
    assert (h.cluster_id, h.member_id, h.revision, h.raft_term) == (
        CLUSTER_ID,
        MEMBER_ID,
        revision,
        RAFT_TERM,
    )


async def test_put_then_get_with_full_header(api: Api) -> None:
    resp = await put(api, b"foo", b"bar")
    check_header(resp.header, 2)  # the store starts at revision 1
    assert not resp.HasField("prev_kv")
    got = await api.kv.Range(RR(key=b"foo"))
    check_header(got.header, 2)
    assert got.count == 1 and not got.more
    [kv] = got.kvs
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) == (
        b"foo",
        b"bar",
        2,
        2,
        1,
        0,
    )


async def test_get_missing_key_is_empty_with_current_revision(api: Api) -> None:
    await put(api, b"a", b"1")
    got = await api.kv.Range(RR(key=b"missing"))
    check_header(got.header, 2)
    assert list(got.kvs) == [] and got.count == 0 and not got.more
    # proto3: an empty answer encodes as the header alone, as etcd's does
    assert rpc_pb2.RangeResponse(header=got.header).SerializeToString() == got.SerializeToString()


async def test_prev_kv_only_when_requested_and_present(api: Api) -> None:
    first = await put(api, b"k", b"v1", prev_kv=True)
    assert not first.HasField("prev_kv")  # requested, but there was none
    second = await put(api, b"k", b"v2")
    assert not second.HasField("prev_kv")  # present, but not requested
    third = await put(api, b"k", b"v3", prev_kv=True)
    assert third.HasField("prev_kv")
    assert (third.prev_kv.value, third.prev_kv.version, third.prev_kv.mod_revision) == (
        b"v2",
        2,
        3,
    )
    check_header(third.header, 4)


async def test_range_forms_limit_count_sort_and_filters(api: Api) -> None:
    for i, k in enumerate([b"a", b"b1", b"b2", b"b3", b"c"]):
        await put(api, k, b"v%d" % (5 - i))
    prefix = await api.kv.Range(RR(key=b"b", range_end=b"c"))
    assert [kv.key for kv in prefix.kvs] == [b"b1", b"b2", b"b3"]
    from_key = await api.kv.Range(RR(key=b"b2", range_end=b"\0"))
    assert [kv.key for kv in from_key.kvs] == [b"b2", b"b3", b"c"]
    everything = await api.kv.Range(RR(key=b"\0", range_end=b"\0"))
    assert everything.count == 5

    limited = await api.kv.Range(RR(key=b"\0", range_end=b"\0", limit=2))
    assert [kv.key for kv in limited.kvs] == [b"a", b"b1"]
    assert limited.count == 5 and limited.more

    counted = await api.kv.Range(RR(key=b"\0", range_end=b"\0", count_only=True))
    assert list(counted.kvs) == [] and counted.count == 5 and not counted.more

    keys_only = await api.kv.Range(RR(key=b"a", keys_only=True))
    assert keys_only.kvs[0].key == b"a" and keys_only.kvs[0].value == b""

    by_value = await api.kv.Range(
        RR(key=b"\0", range_end=b"\0", sort_target=RR.VALUE, sort_order=RR.ASCEND)
    )
    assert [kv.value for kv in by_value.kvs] == [b"v1", b"v2", b"v3", b"v4", b"v5"]
    desc = await api.kv.Range(RR(key=b"\0", range_end=b"\0", sort_order=RR.DESCEND, limit=1))
    assert [kv.key for kv in desc.kvs] == [b"c"] and desc.more

    mod_window = await api.kv.Range(
        RR(key=b"\0", range_end=b"\0", min_mod_revision=3, max_mod_revision=4)
    )
    assert [kv.key for kv in mod_window.kvs] == [b"b1", b"b2"]


async def test_read_at_old_revision_answers_with_current_revision(api: Api) -> None:
    await put(api, b"k", b"old")  # rev 2
    await put(api, b"k", b"new")  # rev 3
    old = await api.kv.Range(RR(key=b"k", revision=2))
    assert old.kvs[0].value == b"old"
    check_header(old.header, 3)


async def test_serializable_flag_reaches_the_backend(api: Api) -> None:
    await api.kv.Range(RR(key=b"k", serializable=True))
    await api.kv.Range(RR(key=b"k"))
    assert api.backend.serializable_seen == [True, False]


async def test_delete_range_with_prev_kvs(api: Api) -> None:
    for k in (b"p/1", b"p/2", b"q"):
        await put(api, k, k.upper())
    resp = await api.kv.DeleteRange(
        rpc_pb2.DeleteRangeRequest(key=b"p/", range_end=b"p0", prev_kv=True)
    )
    assert resp.deleted == 2
    assert [kv.value for kv in resp.prev_kvs] == [b"P/1", b"P/2"]
    check_header(resp.header, 5)
    nothing = await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"zzz"))
    assert nothing.deleted == 0 and list(nothing.prev_kvs) == []
    check_header(nothing.header, 5)  # a delete of nothing makes no revision


async def test_txn_guarded_create_update_and_nested_responses(api: Api) -> None:
    # Kubernetes' create: mod_revision == 0
    create = rpc_pb2.TxnRequest(
        compare=[Cmp(key=b"obj", target=Cmp.MOD, result=Cmp.EQUAL, mod_revision=0)],
        success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"obj", value=b"v1"))],
        failure=[rpc_pb2.RequestOp(request_range=RR(key=b"obj"))],
    )
    created = await api.kv.Txn(create)
    assert created.succeeded
    check_header(created.header, 2)
    nested_put = created.responses[0].response_put
    assert nested_put.header.revision == 2
    assert nested_put.header.cluster_id == 0 and nested_put.header.member_id == 0

    again = await api.kv.Txn(create)
    assert not again.succeeded
    check_header(again.header, 2)
    [current] = again.responses[0].response_range.kvs
    assert current.value == b"v1" and current.mod_revision == 2

    # update guarded on a value compare, with a nested txn and a range_end compare
    update = rpc_pb2.TxnRequest(
        compare=[
            Cmp(key=b"obj", target=Cmp.VALUE, result=Cmp.EQUAL, value=b"v1"),
            Cmp(key=b"a", range_end=b"z", target=Cmp.VERSION, result=Cmp.GREATER, version=0),
        ],
        success=[
            rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"obj", value=b"v2")),
            rpc_pb2.RequestOp(
                request_txn=rpc_pb2.TxnRequest(
                    compare=[Cmp(key=b"other", target=Cmp.CREATE, create_revision=0)],
                    success=[
                        rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"other", value=b"x"))
                    ],
                )
            ),
            rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"nothing-here")),
        ],
    )
    updated = await api.kv.Txn(update)
    assert updated.succeeded
    check_header(updated.header, 3)
    inner = updated.responses[1].response_txn
    assert inner.succeeded and inner.responses[0].response_put.header.revision == 3
    assert inner.header == rpc_pb2.ResponseHeader()
    assert updated.responses[2].response_delete_range.deleted == 0
    got = await api.kv.Range(RR(key=b"obj", range_end=b"other\0"))
    assert [(kv.key, kv.value, kv.mod_revision) for kv in got.kvs] == [
        (b"obj", b"v2", 3),
        (b"other", b"x", 3),
    ]


async def test_read_only_txn(api: Api) -> None:
    await put(api, b"k", b"v")
    resp = await api.kv.Txn(
        rpc_pb2.TxnRequest(success=[rpc_pb2.RequestOp(request_range=RR(key=b"k"))])
    )
    assert resp.succeeded
    check_header(resp.header, 2)
    assert resp.responses[0].response_range.kvs[0].value == b"v"


async def test_compact_then_reads(api: Api) -> None:
    for i in range(4):
        await put(api, b"k", b"%d" % i)  # revs 2..5
    resp = await api.kv.Compact(rpc_pb2.CompactionRequest(revision=4, physical=True))
    check_header(resp.header, 5)
    old = await api.kv.Range(RR(key=b"k", revision=4))
    assert old.kvs[0].value == b"2"


async def test_ignore_value_keeps_value(api: Api) -> None:
    await put(api, b"k", b"keep")
    resp = await put(api, b"k", b"", ignore_value=True)
    check_header(resp.header, 3)
    got = await api.kv.Range(RR(key=b"k"))
    assert got.kvs[0].value == b"keep" and got.kvs[0].version == 2
