"""Maintenance, Cluster, grpc health and the UNIMPLEMENTED services, over
the real server and stubs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kvstore.api.pb import health_pb2, rpc_pb2
from kvstore.api.server import listen_address
from kvstore.server.errors import NotSupported
from tests.unit.api_fake_backend import CLUSTER_ID, MEMBER_ID, RAFT_TERM, Api, serve

C = grpc.StatusCode
HC = health_pb2.HealthCheckResponse


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(str(tmp_path / "db"), health_watch_interval=0.01) as a:
        yield a


async def put(api: Api, key: bytes, value: bytes) -> None:
    await api.kv.Put(rpc_pb2.PutRequest(key=key, value=value))


async def test_status_fields(api: Api) -> None:
    await put(api, b"k", b"v")
    st = await api.maintenance.Status(rpc_pb2.StatusRequest())
    h = st.header
    assert (h.cluster_id, h.member_id, h.revision, h.raft_term) == (
        CLUSTER_ID,
        MEMBER_ID,
        2,
        RAFT_TERM,
    )
    assert st.version == "3.4.0"
    assert (st.dbSize, st.dbSizeInUse) == (4096, 2048)
    assert st.leader == MEMBER_ID
    assert (st.raftIndex, st.raftTerm, st.raftAppliedIndex) == (42, RAFT_TERM, 41)
    assert not st.isLearner
    assert list(st.errors) == ["one problem"]


async def test_hash_kv_matches_the_store(api: Api) -> None:
    for i in range(3):
        await put(api, b"k%d" % i, b"v")  # revs 2..4
    expected = api.backend.store.hash_kv(0)
    resp = await api.maintenance.HashKV(rpc_pb2.HashKVRequest())
    # etcd reports -1 for a store that was never compacted.
    assert (resp.hash, resp.compact_revision, resp.hash_revision) == (expected.hash, -1, 4)
    assert resp.header.revision == 4 and resp.header.member_id == MEMBER_ID

    at3 = await api.maintenance.HashKV(rpc_pb2.HashKVRequest(revision=3))
    assert at3.hash_revision == 3 and at3.hash == api.backend.store.hash_kv(3).hash
    assert at3.header.revision == 4  # the current revision, as etcd 3.4 answers
    assert at3.hash != resp.hash

    await api.kv.Compact(rpc_pb2.CompactionRequest(revision=3))
    after = await api.maintenance.HashKV(rpc_pb2.HashKVRequest())
    assert after.compact_revision == 3


async def test_hash(api: Api) -> None:
    empty = await api.maintenance.Hash(rpc_pb2.HashRequest())
    await put(api, b"k", b"v")
    one = await api.maintenance.Hash(rpc_pb2.HashRequest())
    assert one.hash != empty.hash and one.header.revision == 2


async def test_member_list(api: Api) -> None:
    resp = await api.cluster.MemberList(rpc_pb2.MemberListRequest())
    assert resp.header.cluster_id == CLUSTER_ID and resp.header.member_id == MEMBER_ID
    assert resp.header.raft_term == RAFT_TERM and resp.header.revision == 0  # as etcd 3.4
    first, learner = resp.members
    assert (first.ID, first.name, list(first.peerURLs), list(first.clientURLs)) == (
        MEMBER_ID,
        "default",
        ["http://127.0.0.1:2380"],
        ["http://127.0.0.1:2379"],
    )
    assert not first.isLearner
    assert learner.ID == 0x2A and learner.isLearner and list(learner.clientURLs) == []


async def test_alarm_and_defragment(api: Api) -> None:
    got = await api.maintenance.Alarm(rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.GET))
    assert list(got.alarms) == [] and not got.HasField("header")  # as etcd 3.4
    disarm = await api.maintenance.Alarm(
        rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.DEACTIVATE, alarm=rpc_pb2.NOSPACE)
    )
    assert list(disarm.alarms) == []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.maintenance.Alarm(rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.ACTIVATE))
    assert info.value.code() == C.UNIMPLEMENTED
    defrag = await api.maintenance.Defragment(rpc_pb2.DefragmentRequest())
    assert defrag == rpc_pb2.DefragmentResponse()  # etcd 3.4 sends no header either


async def unimplemented(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == C.UNIMPLEMENTED
    details: str = info.value.details()
    return details


async def test_unimplemented_methods_say_so(api: Api) -> None:
    assert "move-leader" in await unimplemented(
        api.maintenance.MoveLeader(rpc_pb2.MoveLeaderRequest(targetID=1))
    )
    assert "downgrade" in await unimplemented(api.maintenance.Downgrade(rpc_pb2.DowngradeRequest()))
    assert "member add" in await unimplemented(
        api.cluster.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=["http://x:1"]))
    )
    assert "member remove" in await unimplemented(
        api.cluster.MemberRemove(rpc_pb2.MemberRemoveRequest(ID=1))
    )
    assert "lease" in await unimplemented(api.lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=5)))
    assert "auth" in await unimplemented(api.auth.AuthStatus(rpc_pb2.AuthStatusRequest()))
    assert "auth" in await unimplemented(api.auth.UserList(rpc_pb2.AuthUserListRequest()))

    snapshot = api.maintenance.Snapshot(rpc_pb2.SnapshotRequest())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in snapshot:
            pass
    assert info.value.code() == C.UNIMPLEMENTED and "snapshot" in info.value.details()

    watch = api.watch.Watch()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await watch.read()
    assert info.value.code() == C.UNIMPLEMENTED and "watch" in info.value.details()


async def test_health_check_follows_the_leader(api: Api) -> None:
    check = health_pb2.HealthCheckRequest
    assert (await api.health.Check(check())).status == HC.SERVING
    assert (await api.health.Check(check(service="etcdserverpb.KV"))).status == HC.SERVING
    api.backend.leader = 0
    assert (await api.health.Check(check())).status == HC.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.health.Check(check(service="no.such.Service"))
    assert info.value.code() == C.NOT_FOUND


async def test_health_watch_reports_changes(api: Api) -> None:
    stream = api.health.Watch(health_pb2.HealthCheckRequest())
    first = await asyncio.wait_for(stream.read(), 10)
    assert first.status == HC.SERVING
    api.backend.leader = 0
    changed = await asyncio.wait_for(stream.read(), 10)
    assert changed.status == HC.NOT_SERVING
    stream.cancel()

    unknown = api.health.Watch(health_pb2.HealthCheckRequest(service="nope"))
    assert (await asyncio.wait_for(unknown.read(), 10)).status == HC.SERVICE_UNKNOWN


async def test_etcdctl_style_health_probe_is_a_plain_get(api: Api) -> None:
    # etcdctl 3.4 `endpoint health` does a linearizable Get of "health"
    resp = await api.kv.Range(rpc_pb2.RangeRequest(key=b"health"))
    assert resp.count == 0 and api.backend.serializable_seen == [False]


def test_listen_address_forms() -> None:
    assert listen_address("127.0.0.1:2379") == "127.0.0.1:2379"
    assert listen_address("http://0.0.0.0:2379") == "0.0.0.0:2379"
    with pytest.raises(NotSupported):
        listen_address("https://127.0.0.1:2379")
