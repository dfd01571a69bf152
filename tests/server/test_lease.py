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


def keys_of(node: Node, prefix: bytes) -> list[bytes]:
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    return [kv.key for kv in node.mvcc.range(RangeRequest(prefix, end)).kvs]


def deletion_revision(node: Node, key: bytes) -> int:
    """The revision at which `key` was deleted (it existed one before)."""
    history = node.mvcc.events_between(1, node.mvcc.current_revision, 1 << 20)[0]
    deletes = [e.kv.mod_revision for e in history if e.kv.key == key and e.type == 1]
    assert deletes, f"{key!r} was never deleted on {node.cfg.name}"
    return deletes[-1]


async def test_an_expired_lease_deletes_its_keys_on_every_member_at_one_revision(
    cluster3: Cluster,
) -> None:
    leader = await cluster3.wait_leader()
    lease_id, ttl = await leader.lease_grant(2, 0)
    assert ttl == 2
    for key in (b"l/a", b"l/b", b"l/c"):
        await leader.put(PutRequest(key, b"v", lease=lease_id))
    nodes = list(cluster3.nodes.values())
    await eventually(lambda: all(len(keys_of(n, b"l/")) == 3 for n in nodes))
    await eventually(
        lambda: all(not keys_of(n, b"l/") for n in nodes), timeout=10, what="expiry everywhere"
    )
    revisions = {deletion_revision(n, key) for n in nodes for key in (b"l/a", b"l/b", b"l/c")}
    assert len(revisions) == 1, revisions
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
        assert keys_of(leader, b"kept") == [b"kept"]
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
            assert keys_of(new_leader, b"f/") == [b"f/key"], "lease expired early"
            await asyncio.sleep(0.05)
        # ...and it does expire in the end, decided by the new leader.
        await eventually(lambda: not keys_of(new_leader, b"f/"), timeout=10, what="expiry")
    finally:
        await c.stop_all()
