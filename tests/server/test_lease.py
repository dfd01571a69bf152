"""Leases on a real in-process cluster: expiry decided by the leader and
applied everywhere at one revision, keepalives through followers, and TTLs
that survive a leader failover."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kvstore.mvcc.errors import LeaseNotFound
from kvstore.mvcc.types import PutRequest, RangeRequest
from kvstore.server.node import Node
from tests.server.conftest import Cluster, eventually, make_configs


async def keys_of(node: Node, prefix: bytes) -> list[bytes]:
    """A local read through the node (it waits for any write in flight)."""
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    resp = await node.range(RangeRequest(prefix, end), serializable=True)
    return [kv.key for kv in resp.kvs]


async def revision_of(node: Node) -> int:
    return (
        await node.range(RangeRequest(b"\0", b"\0", count_only=True), serializable=True)
    ).revision


async def test_an_expired_lease_deletes_its_keys_on_every_member_at_one_revision(
    cluster3: Cluster,
) -> None:
    leader = await cluster3.wait_leader()
    lease_id, ttl = await leader.lease_grant(2, 0)
    assert ttl == 2
    for key in (b"l/a", b"l/b", b"l/c"):
        put = await leader.put(PutRequest(key, b"v", lease=lease_id))
    nodes = list(cluster3.nodes.values())

    async def everywhere(n_keys: int) -> bool:
        return all([len(await keys_of(n, b"l/")) == n_keys for n in nodes])

    await eventually(lambda: everywhere(3), what="keys everywhere")
    await eventually(lambda: everywhere(0), timeout=10, what="expiry everywhere")
    # The revoke is the only write after the puts: one revision, the same
    # on every member, deleted all three keys.
    assert [await revision_of(n) for n in nodes] == [put.revision + 1] * 3
    assert all(not n.lessor.exists(lease_id) for n in nodes)


async def test_keepalive_through_a_follower_keeps_a_lease_alive(cluster3: Cluster) -> None:
    leader = await cluster3.wait_leader()
    follower = next(n for n in cluster3.nodes.values() if n is not leader)
    lease_id, _ = await follower.lease_grant(2, 0)
    await follower.put(PutRequest(b"kept", b"v", lease=lease_id))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 4.5  # more than twice the TTL
    while loop.time() < deadline:
        assert await follower.lease_keepalive(lease_id) == 2
        assert await keys_of(leader, b"kept") == [b"kept"]
        await asyncio.sleep(0.5)  # the client's keepalive period, not synchronisation
    granted, remaining, keys = await follower.lease_time_to_live(lease_id, keys=True)
    assert (granted, keys) == (2, [b"kept"])
    assert 0 < remaining <= 2


async def test_unknown_leases_answer_as_etcd_does(cluster3: Cluster) -> None:
    leader = await cluster3.wait_leader()
    follower = next(n for n in cluster3.nodes.values() if n is not leader)
    for node in (leader, follower):
        with pytest.raises(LeaseNotFound):
            await node.lease_revoke(0x1234)
        with pytest.raises(LeaseNotFound):
            await node.put(PutRequest(b"k", b"v", lease=0x1234))
        assert await node.lease_keepalive(0x1234) == 0
        assert (await node.lease_time_to_live(0x1234, keys=True))[1] == -1


async def test_a_leader_failover_does_not_expire_a_lease_early(tmp_path: Path) -> None:
    c = Cluster(make_configs(tmp_path, 3))
    try:
        for name in c.configs:
            await c.start(name)
        leader = await c.wait_leader()
        lease_id, _ = await leader.lease_grant(6, 0)
        await leader.put(PutRequest(b"f/key", b"v", lease=lease_id))
        loop = asyncio.get_running_loop()
        granted_at = loop.time()
        old = next(name for name, n in c.nodes.items() if n is leader)
        await c.stop(old)
        new_leader = await c.wait_leader()
        assert new_leader is not leader
        await eventually(lambda: new_leader.lessor.is_primary, what="new leader promoted")
        _, remaining, _ = await new_leader.lease_time_to_live(lease_id, keys=False)
        assert remaining > 0
        # Nobody keeps the lease alive: it must still hold its key until its
        # full TTL has run, whatever the failover did.
        while loop.time() < granted_at + 6 - 0.5:
            assert await keys_of(new_leader, b"f/") == [b"f/key"], "lease expired early"
            await asyncio.sleep(0.05)

        # ...and it does expire in the end, decided by the new leader.
        async def expired() -> bool:
            return not await keys_of(new_leader, b"f/")

        await eventually(expired, timeout=10, what="expiry")
    finally:
        await c.stop_all()
