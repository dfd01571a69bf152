"""The node runtime end to end, in process: replication, reads, restarts,
snapshots, and the errors a client sees."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kvstore.mvcc.errors import EmptyKey, TooManyOps
from kvstore.mvcc.types import (
    Compare,
    CompareTarget,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from kvstore.server.errors import NoLeader
from tests.server.conftest import Cluster, eventually, make_configs


async def test_a_write_through_any_member_is_read_linearizably_through_every_member(
    cluster3: Cluster,
) -> None:
    await cluster3.wait_leader()
    nodes = list(cluster3.nodes.values())
    for i, writer in enumerate(nodes):
        resp = await writer.put(PutRequest(f"k{i}".encode(), f"v{i}".encode()))
        for reader in nodes:
            # A linearizable read issued after the write returned sees it.
            got = await reader.range(RangeRequest(f"k{i}".encode()), serializable=False)
            assert [kv.value for kv in got.kvs] == [f"v{i}".encode()]
            assert got.revision >= resp.revision


async def test_members_agree_on_every_revision_and_hash(cluster3: Cluster) -> None:
    leader = await cluster3.wait_leader()
    await asyncio.gather(*(leader.put(PutRequest(b"key%d" % i, b"x")) for i in range(50)))
    target = leader.mvcc.current_revision
    nodes = list(cluster3.nodes.values())
    await eventually(
        lambda: all(n.mvcc.current_revision == target for n in nodes), what="all applied"
    )
    hashes = {(await n.hash_kv(0)).hash for n in nodes}
    assert len(hashes) == 1


async def test_concurrent_writes_share_fsyncs_and_get_distinct_revisions(
    cluster3: Cluster,
) -> None:
    leader = await cluster3.wait_leader()
    before = leader.raw.raft.log.last_index()
    fsyncs = leader.fsyncs
    responses = await asyncio.gather(
        *(leader.put(PutRequest(b"c%d" % i, b"v")) for i in range(200))
    )
    revisions = sorted(r.revision for r in responses)
    assert revisions == list(range(revisions[0], revisions[0] + 200))
    # One entry per request, but requests queued together share an append
    # and its fsync (group commit).
    assert leader.raw.raft.log.last_index() - before >= 200
    assert leader.fsyncs - fsyncs < 50


async def test_bad_input_is_refused_before_it_reaches_the_log(cluster3: Cluster) -> None:
    leader = await cluster3.wait_leader()
    last = leader.raw.raft.log.last_index()
    with pytest.raises(EmptyKey):
        await leader.put(PutRequest(b"", b"v"))
    too_many = TxnRequest(success=tuple(PutRequest(b"t%d" % i) for i in range(129)))
    with pytest.raises(TooManyOps):
        await leader.txn(too_many)
    assert leader.raw.raft.log.last_index() == last


async def test_a_read_only_txn_does_not_grow_the_log(cluster3: Cluster) -> None:
    leader = await cluster3.wait_leader()
    await leader.put(PutRequest(b"a", b"1"))
    last = leader.raw.raft.log.last_index()
    txn = TxnRequest(
        compare=(Compare(b"a", CompareTarget.VALUE, value=b"1"),),
        success=(RangeRequest(b"a"),),
    )
    resp = await leader.txn(txn)
    assert resp.succeeded
    assert leader.raw.raft.log.last_index() == last


async def test_without_a_quorum_a_write_fails_with_no_leader_in_bounded_time(
    tmp_path: Path,
) -> None:
    c = Cluster(make_configs(tmp_path, 3, request_timeout_ms=500))
    try:
        node = await c.start("n1")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(NoLeader):
            await node.put(PutRequest(b"k", b"v"))
        assert loop.time() - started < 2.0
        with pytest.raises(NoLeader):
            await node.range(RangeRequest(b"k"), serializable=False)
    finally:
        await c.stop_all()


async def test_a_restarted_member_keeps_its_data_and_applies_nothing_twice(
    cluster3: Cluster,
) -> None:
    leader = await cluster3.wait_leader()
    name = next(n for n, node in cluster3.nodes.items() if node is not leader)
    for i in range(20):
        await leader.put(PutRequest(b"r%d" % i, b"%d" % i))
    await eventually(
        lambda: cluster3.nodes[name].mvcc.current_revision == leader.mvcc.current_revision
    )
    before = await cluster3.nodes[name].hash_kv(0)
    await cluster3.stop(name)
    node = await cluster3.start(name)
    after = await node.hash_kv(0)
    assert (after.hash, after.revision) == (before.hash, before.revision)


async def test_a_member_that_missed_compacted_entries_catches_up_from_a_snapshot(
    tmp_path: Path,
) -> None:
    c = Cluster(make_configs(tmp_path, 3, snapshot_count=20))
    try:
        for name in c.configs:
            await c.start(name)
        leader = await c.wait_leader()
        lagging = next(n for n, node in c.nodes.items() if node is not leader)
        await c.stop(lagging)
        for i in range(60):
            await leader.put(PutRequest(b"s%03d" % i, b"v%d" % i))
        # The leader's log no longer holds what the lagging member lacks.
        assert leader.log_store.first_index() > 2
        node = await c.start(lagging)
        await eventually(
            lambda: node.mvcc.current_revision == leader.mvcc.current_revision,
            what="snapshot installed and caught up",
        )
        assert node.log_store.snapshot().meta.index > 0
        got = await node.range(RangeRequest(b"s", b"t"), serializable=True)
        assert len(got.kvs) == 60
        assert (await node.hash_kv(0)).hash == (await leader.hash_kv(0)).hash
        # It keeps replicating normally afterwards.
        await leader.put(PutRequest(b"after", b"snap"))
        await eventually(lambda: node.mvcc.current_revision == leader.mvcc.current_revision)
    finally:
        await c.stop_all()
