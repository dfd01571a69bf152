"""The error table, and the exact gRPC code + message a client receives for
bad input and cluster conditions (over the real server and stubs)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kvstore.api.errors import TABLE, details_of, status_of
from kvstore.api.pb import rpc_pb2
from kvstore.mvcc import errors as mvcc_errors
from kvstore.server import errors as server_errors
from tests.unit.api_fake_backend import Api, serve

C = grpc.StatusCode
RR = rpc_pb2.RangeRequest
Op = rpc_pb2.RequestOp
MAX_BYTES = 4096
MAX_OPS = 4

# etcd's api/v3rpc/rpctypes/error.go, restated independently of the table.
ETCD = {
    "EmptyKey": (C.INVALID_ARGUMENT, "etcdserver: key is not provided"),
    "KeyNotFound": (C.INVALID_ARGUMENT, "etcdserver: key not found"),
    "ValueProvided": (C.INVALID_ARGUMENT, "etcdserver: value is provided"),
    "LeaseProvided": (C.INVALID_ARGUMENT, "etcdserver: lease is provided"),
    "TooManyOps": (C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
    "DuplicateKeyInTxn": (C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"),
    "Compacted": (C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"),
    "FutureRevision": (C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"),
    "LeaseNotFound": (C.NOT_FOUND, "etcdserver: requested lease not found"),
    "MemberNotFound": (C.NOT_FOUND, "etcdserver: member not found"),
    "RequestTooLarge": (C.INVALID_ARGUMENT, "etcdserver: request is too large"),
    "TooManyRequests": (C.RESOURCE_EXHAUSTED, "etcdserver: too many requests"),
    "NoLeader": (C.UNAVAILABLE, "etcdserver: no leader"),
    "LeaderChanged": (C.UNAVAILABLE, "etcdserver: leader changed"),
    "Stopped": (C.UNAVAILABLE, "etcdserver: server stopped"),
    "RequestTimeout": (C.UNAVAILABLE, "etcdserver: request timed out"),
}


def _domain_classes() -> list[type[Exception]]:
    found: list[type[Exception]] = []
    for module, base in (
        (mvcc_errors, mvcc_errors.MVCCError),
        (server_errors, server_errors.ServerError),
    ):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, base):
                found.append(cls)
    return found


def _instance(cls: type[Exception]) -> Exception:
    if issubclass(cls, mvcc_errors.RevisionError):
        return cls(5, 7)
    if cls is mvcc_errors.LeaseNotFound:
        return cls(0x1234)
    return cls("details")


def test_every_domain_error_class_is_in_the_table() -> None:
    for cls in _domain_classes():
        assert cls in TABLE, cls


@pytest.mark.parametrize("name", sorted(ETCD))
def test_etcd_codes_and_messages(name: str) -> None:
    cls = getattr(mvcc_errors, name, None) or getattr(server_errors, name)
    assert details_of(_instance(cls)) == ETCD[name]
    assert cls.etcd_message == ETCD[name][1]  # the domain's reference string agrees


def test_fallbacks() -> None:
    assert details_of(server_errors.NotSupported("no snapshots")) == (
        C.UNIMPLEMENTED,
        "no snapshots",
    )
    assert details_of(mvcc_errors.InvalidRequest("bad enum")) == (C.INVALID_ARGUMENT, "bad enum")
    assert details_of(RuntimeError("boom")) == (C.UNKNOWN, "boom")
    assert status_of(RuntimeError()).unexpected
    assert not status_of(server_errors.NoLeader()).unexpected


# -- over the wire ------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(str(tmp_path / "db"), max_request_bytes=MAX_BYTES, max_txn_ops=MAX_OPS) as a:
        yield a


async def expect(call: object, code: grpc.StatusCode, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert (info.value.code(), info.value.details()) == (code, details)


def put_op(key: bytes, value: bytes = b"v") -> rpc_pb2.RequestOp:
    return Op(request_put=rpc_pb2.PutRequest(key=key, value=value))


async def test_empty_key_never_reaches_the_backend(api: Api) -> None:
    msg = "etcdserver: key is not provided"
    await expect(api.kv.Range(RR(key=b"")), C.INVALID_ARGUMENT, msg)
    await expect(api.kv.Put(rpc_pb2.PutRequest(key=b"", value=b"v")), C.INVALID_ARGUMENT, msg)
    await expect(api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest()), C.INVALID_ARGUMENT, msg)
    await expect(api.kv.Txn(rpc_pb2.TxnRequest(success=[put_op(b"")])), C.INVALID_ARGUMENT, msg)
    await expect(
        api.kv.Txn(rpc_pb2.TxnRequest(compare=[rpc_pb2.Compare(key=b"")])),
        C.INVALID_ARGUMENT,
        msg,
    )
    assert api.backend.calls == []


async def test_request_too_large(api: Api) -> None:
    msg = "etcdserver: request is too large"
    big = b"x" * MAX_BYTES
    await expect(api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=big)), C.INVALID_ARGUMENT, msg)
    await expect(
        api.kv.Txn(rpc_pb2.TxnRequest(success=[put_op(b"k", big)])), C.INVALID_ARGUMENT, msg
    )
    assert api.backend.calls == []
    # just under the limit passes
    ok = await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"x" * (MAX_BYTES - 64)))
    assert ok.header.revision == 2
    # the request check comes first, as in etcd
    await expect(
        api.kv.Put(rpc_pb2.PutRequest(key=b"", value=big)),
        C.INVALID_ARGUMENT,
        "etcdserver: key is not provided",
    )


async def test_request_far_over_the_limit_is_refused_by_grpc(api: Api) -> None:
    # beyond max_request_bytes + 512 KiB, gRPC's own receive limit answers
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"x" * (MAX_BYTES + 600 * 1024)))
    assert info.value.code() == C.RESOURCE_EXHAUSTED
    assert api.backend.calls == []


async def test_too_many_txn_ops(api: Api) -> None:
    msg = "etcdserver: too many operations in txn request"
    ops = [put_op(b"k%d" % i) for i in range(MAX_OPS + 1)]
    await expect(api.kv.Txn(rpc_pb2.TxnRequest(success=ops)), C.INVALID_ARGUMENT, msg)
    compares = [rpc_pb2.Compare(key=b"k%d" % i) for i in range(MAX_OPS + 1)]
    await expect(api.kv.Txn(rpc_pb2.TxnRequest(compare=compares)), C.INVALID_ARGUMENT, msg)
    # a nested txn gets what its parent left of the budget: 2 used, 2 left, 3 nested
    nested = rpc_pb2.TxnRequest(success=[put_op(b"n%d" % i) for i in range(3)])
    outer = rpc_pb2.TxnRequest(success=[put_op(b"a"), Op(request_txn=nested)])
    await expect(api.kv.Txn(outer), C.INVALID_ARGUMENT, msg)
    assert api.backend.calls == []
    # exactly at the limit is fine
    ok = await api.kv.Txn(rpc_pb2.TxnRequest(success=ops[:MAX_OPS]))
    assert ok.succeeded


async def test_duplicate_key_in_txn(api: Api) -> None:
    msg = "etcdserver: duplicate key given in txn request"
    await expect(
        api.kv.Txn(rpc_pb2.TxnRequest(success=[put_op(b"k"), put_op(b"k")])),
        C.INVALID_ARGUMENT,
        msg,
    )
    covered = Op(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"a", range_end=b"z"))
    await expect(
        api.kv.Txn(rpc_pb2.TxnRequest(failure=[covered, put_op(b"k")])), C.INVALID_ARGUMENT, msg
    )
    assert api.backend.calls == []


async def test_put_flag_errors(api: Api) -> None:
    await expect(
        api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v", ignore_value=True)),
        C.INVALID_ARGUMENT,
        "etcdserver: value is provided",
    )
    await expect(
        api.kv.Put(rpc_pb2.PutRequest(key=b"k", lease=5, ignore_lease=True)),
        C.INVALID_ARGUMENT,
        "etcdserver: lease is provided",
    )
    assert api.backend.calls == []
    # ignore_value needs an existing key: the store says so
    await expect(
        api.kv.Put(rpc_pb2.PutRequest(key=b"absent", ignore_value=True)),
        C.INVALID_ARGUMENT,
        "etcdserver: key not found",
    )


async def test_empty_request_op_is_key_not_found(api: Api) -> None:
    await expect(
        api.kv.Txn(rpc_pb2.TxnRequest(success=[Op()])),
        C.INVALID_ARGUMENT,
        "etcdserver: key not found",
    )


async def test_unknown_enum_value(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.kv.Range(RR(key=b"k", sort_order=9))
    assert info.value.code() == C.INVALID_ARGUMENT
    assert "sort order 9" in info.value.details()


async def test_compacted_and_future_revisions(api: Api) -> None:
    for i in range(4):
        await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"%d" % i))  # revs 2..5
    await api.kv.Compact(rpc_pb2.CompactionRequest(revision=4))
    compacted = "etcdserver: mvcc: required revision has been compacted"
    future = "etcdserver: mvcc: required revision is a future revision"
    await expect(api.kv.Range(RR(key=b"k", revision=3)), C.OUT_OF_RANGE, compacted)
    await expect(api.kv.Compact(rpc_pb2.CompactionRequest(revision=4)), C.OUT_OF_RANGE, compacted)
    await expect(api.kv.Range(RR(key=b"k", revision=6)), C.OUT_OF_RANGE, future)
    await expect(api.kv.Compact(rpc_pb2.CompactionRequest(revision=99)), C.OUT_OF_RANGE, future)
    await expect(api.maintenance.HashKV(rpc_pb2.HashKVRequest(revision=99)), C.OUT_OF_RANGE, future)
    # the server keeps serving
    assert (await api.kv.Range(RR(key=b"k"))).kvs[0].value == b"3"


async def test_no_leader_from_the_backend(api: Api) -> None:
    api.backend.fail_with = server_errors.NoLeader()
    msg = "etcdserver: no leader"
    await expect(api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v")), C.UNAVAILABLE, msg)
    await expect(api.kv.Range(RR(key=b"k")), C.UNAVAILABLE, msg)
    api.backend.fail_with = server_errors.LeaderChanged()
    await expect(api.kv.Txn(rpc_pb2.TxnRequest()), C.UNAVAILABLE, "etcdserver: leader changed")
    api.backend.fail_with = server_errors.TooManyRequests()
    await expect(
        api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"k")),
        C.RESOURCE_EXHAUSTED,
        "etcdserver: too many requests",
    )
    api.backend.fail_with = None
    assert (await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v"))).header.revision == 2


async def test_unexpected_error_is_unknown_and_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.backend.fail_with = RuntimeError("disk on fire")
    with caplog.at_level(logging.ERROR, logger="kvstore.api.errors"):
        await expect(api.kv.Range(RR(key=b"k")), C.UNKNOWN, "disk on fire")
    assert any(r.exc_info and "disk on fire" in r.getMessage() for r in caplog.records)
