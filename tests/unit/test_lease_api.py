"""The Lease service over the real grpc.aio server and generated stubs, with
a real Lessor and MVCCStore behind it (no Raft; tests/unit/lease_fake_backend)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from kvstore.api.errors import details_of
from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc
from kvstore.api.server import create_grpc_server
from kvstore.lease import errors as lease_errors
from kvstore.lease.lessor import MAX_LEASE_TTL
from kvstore.server.errors import NoLeader
from tests.unit.api_fake_backend import CLUSTER_ID, MEMBER_ID, RAFT_TERM, Api, FakeBackend
from tests.unit.lease_fake_backend import MIN_TTL, LeaseFakeBackend, serve

C = grpc.StatusCode


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Api, LeaseFakeBackend]]:
    async with serve(str(tmp_path / "db")) as pair:
        yield pair


def check_header(h: rpc_pb2.ResponseHeader, revision: int) -> None:
    assert (h.cluster_id, h.member_id, h.revision, h.raft_term) == (
        CLUSTER_ID,
        MEMBER_ID,
        revision,
        RAFT_TERM,
    )


async def grant(api: Api, ttl: int, lease_id: int = 0) -> rpc_pb2.LeaseGrantResponse:
    resp: rpc_pb2.LeaseGrantResponse = await api.lease.LeaseGrant(
        rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=lease_id)
    )
    return resp


async def ttl_of(api: Api, lease_id: int, keys: bool = False) -> rpc_pb2.LeaseTimeToLiveResponse:
    resp: rpc_pb2.LeaseTimeToLiveResponse = await api.lease.LeaseTimeToLive(
        rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id, keys=keys)
    )
    return resp


async def keepalive(api: Api, ids: list[int]) -> list[rpc_pb2.LeaseKeepAliveResponse]:
    call = api.lease.LeaseKeepAlive(iter([rpc_pb2.LeaseKeepAliveRequest(ID=i) for i in ids]))
    return [resp async for resp in call]


async def status_of(call: object) -> tuple[object, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details()


# -- the error table -----------------------------------------------------------------------

ETCD = {
    lease_errors.LeaseNotFound(5): (C.NOT_FOUND, "etcdserver: requested lease not found"),
    lease_errors.LeaseExists(5): (C.FAILED_PRECONDITION, "etcdserver: lease already exists"),
    lease_errors.LeaseTTLTooLarge(10**10): (C.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
}


@pytest.mark.parametrize("exc", list(ETCD), ids=lambda e: type(e).__name__)
def test_error_table_has_etcd_codes_and_messages(exc: Exception) -> None:
    assert details_of(exc) == ETCD[exc]
    assert type(exc).etcd_message == ETCD[exc][1]


def test_not_primary_is_retryable_with_its_own_text() -> None:
    code, message = details_of(lease_errors.NotPrimary("lease 5: not the leader"))
    assert (code, message) == (C.UNAVAILABLE, "lease 5: not the leader")


# -- grant, time to live, leases, revoke ---------------------------------------------------


async def test_grant_with_server_chosen_and_client_chosen_ids(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, _ = env
    picked = await grant(api, 60)
    check_header(picked.header, 1)
    assert picked.ID > 0 and picked.TTL == 60 and picked.error == ""
    mine = await grant(api, 30, lease_id=0x1234)
    assert (mine.ID, mine.TTL) == (0x1234, 30)
    negative = await grant(api, 30, lease_id=-3)  # etcd accepts negative IDs
    assert negative.ID == -3
    listed = await api.lease.LeaseLeases(rpc_pb2.LeaseLeasesRequest())
    check_header(listed.header, 1)
    assert sorted(s.ID for s in listed.leases) == sorted([picked.ID, 0x1234, -3])


async def test_grant_below_minimum_gets_the_minimum(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, _ = env
    assert (await grant(api, 1)).TTL == MIN_TTL
    assert (await grant(api, 0)).TTL == MIN_TTL


async def test_grant_errors(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, backend = env
    await grant(api, 10, lease_id=7)
    assert await status_of(grant(api, 10, lease_id=7)) == (
        C.FAILED_PRECONDITION,
        "etcdserver: lease already exists",
    )
    calls = len(backend.calls)
    assert await status_of(grant(api, MAX_LEASE_TTL + 1)) == (
        C.OUT_OF_RANGE,
        "etcdserver: too large lease TTL",
    )
    assert len(backend.calls) == calls  # refused before reaching the backend
    assert (await grant(api, MAX_LEASE_TTL)).TTL == MAX_LEASE_TTL


async def test_time_to_live_with_keys_and_unknown_lease(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, backend = env
    lease_id = (await grant(api, 60)).ID
    for key in (b"b", b"a"):
        await api.kv.Put(rpc_pb2.PutRequest(key=key, value=b"v", lease=lease_id))
    backend.now += 10.5
    got = await ttl_of(api, lease_id, keys=True)
    check_header(got.header, 3)
    assert (got.ID, got.TTL, got.grantedTTL, list(got.keys)) == (lease_id, 49, 60, [b"a", b"b"])
    assert list((await ttl_of(api, lease_id)).keys) == []
    unknown = await ttl_of(api, 999, keys=True)
    check_header(unknown.header, 3)
    assert (unknown.ID, unknown.TTL, unknown.grantedTTL, list(unknown.keys)) == (999, -1, 0, [])


async def test_revoke_deletes_keys_in_one_revision(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, _ = env
    lease_id = (await grant(api, 60)).ID
    for key in (b"k1", b"k2", b"k3"):
        await api.kv.Put(rpc_pb2.PutRequest(key=key, value=b"v", lease=lease_id))
    await api.kv.Put(rpc_pb2.PutRequest(key=b"free", value=b"v"))  # rev 5
    revoked = await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id))
    check_header(revoked.header, 6)  # the three deletes share revision 6
    got = await api.kv.Range(rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0"))
    assert [kv.key for kv in got.kvs] == [b"free"]
    assert (await ttl_of(api, lease_id)).TTL == -1
    assert await status_of(api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id))) == (
        C.NOT_FOUND,
        "etcdserver: requested lease not found",
    )


async def test_put_with_unknown_lease_fails_and_put_without_detaches(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, _ = env
    assert await status_of(api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v", lease=42))) == (
        C.NOT_FOUND,
        "etcdserver: requested lease not found",
    )
    lease_id = (await grant(api, 60)).ID
    await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v", lease=lease_id))
    await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v2", ignore_lease=True))
    assert list((await ttl_of(api, lease_id, keys=True)).keys) == [b"k"]
    await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v3"))  # no lease: detached
    assert list((await ttl_of(api, lease_id, keys=True)).keys) == []
    await api.lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id))
    got = await api.kv.Range(rpc_pb2.RangeRequest(key=b"k"))
    assert [kv.value for kv in got.kvs] == [b"v3"]


# -- keepalive -----------------------------------------------------------------------------


async def test_keepalive_stream_answers_each_request_in_order(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, backend = env
    a = (await grant(api, 20)).ID
    b = (await grant(api, 40)).ID
    backend.now += 15
    answers = await keepalive(api, [a, 999, b, a])
    assert [(r.ID, r.TTL) for r in answers] == [(a, 20), (999, 0), (b, 40), (a, 20)]
    check_header(answers[0].header, 1)
    assert (await ttl_of(api, a)).TTL == 20  # renewed at the new "now"


async def test_keepalive_is_interactive_and_streams_are_independent(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, _ = env
    lease_id = (await grant(api, 30)).ID
    one = api.lease.LeaseKeepAlive()
    two = api.lease.LeaseKeepAlive()
    for step in range(3):
        await one.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
        await two.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id + step))
        r1, r2 = await asyncio.gather(one.read(), two.read())
        got = [(r.ID, r.TTL) for r in (r1, r2)]
        assert got == [(lease_id, 30), (lease_id + step, 30 if step == 0 else 0)]
    await one.done_writing()
    await two.done_writing()
    assert await one.read() == grpc.aio.EOF
    assert await two.read() == grpc.aio.EOF


async def test_expired_lease_answers_ttl_0_and_its_keys_go(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, backend = env
    lease_id = (await grant(api, 10)).ID
    await api.kv.Put(rpc_pb2.PutRequest(key=b"k", value=b"v", lease=lease_id))
    backend.now += 10
    [answer] = await keepalive(api, [lease_id])  # expired, revoke not yet applied
    assert answer.TTL == 0
    assert backend.expire() == [lease_id]
    assert (await api.kv.Range(rpc_pb2.RangeRequest(key=b"k"))).count == 0
    assert (await ttl_of(api, lease_id)).TTL == -1


async def test_keepalive_error_ends_the_stream_with_its_status(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, backend = env
    lease_id = (await grant(api, 30)).ID
    call = api.lease.LeaseKeepAlive()
    await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
    assert (await call.read()).TTL == 30
    backend.fail_with = NoLeader("no leader")
    await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert (err.value.code(), err.value.details()) == (C.UNAVAILABLE, "etcdserver: no leader")


async def test_unary_errors_use_the_table(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, backend = env
    backend.fail_with = NoLeader("no leader")
    expected = (C.UNAVAILABLE, "etcdserver: no leader")
    assert await status_of(grant(api, 10)) == expected
    assert await status_of(ttl_of(api, 1)) == expected
    assert await status_of(api.lease.LeaseLeases(rpc_pb2.LeaseLeasesRequest())) == expected


# -- without a lease backend ---------------------------------------------------------------


@pytest.fixture
def plain_backend(tmp_path: Path) -> Iterator[FakeBackend]:
    b = FakeBackend(str(tmp_path / "plain"))
    yield b
    b.close()


async def test_server_without_lease_backend_answers_unimplemented(
    plain_backend: FakeBackend,
) -> None:
    server = create_grpc_server(plain_backend, plain_backend.max_request_bytes)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = rpc_pb2_grpc.LeaseStub(channel)
            code, _ = await status_of(stub.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=5)))
            assert code == C.UNIMPLEMENTED
    finally:
        await server.stop(None)
