"""The gRPC peer transport (kvstore/transport/peer.py) on real loopback sockets.

Every transport listens on 127.0.0.1 port 0; the real ports are read back
with bound_port and wired up with add_peer. Nothing waits on a timer for
synchronisation: conditions are polled with a deadline (`eventually`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import pytest_asyncio

from kvstore.api.pb import peer_pb2 as pb
from kvstore.api.pb import peer_pb2_grpc
from kvstore.raft.types import (
    ConfState,
    Entry,
    Message,
    MessageType,
    Snapshot,
    SnapshotMeta,
)
from kvstore.transport import codec
from kvstore.transport.peer import PeerTransport

# One event loop for the whole module: grpc.aio's completion queue is shared
# by the process and hands completions to the loop that started each
# operation, so a loop closed after one test makes it log "Event loop is
# closed" noise in the next (grpc/grpc#25364).
pytestmark = pytest.mark.asyncio(loop_scope="module")

CLUSTER = 0xC1


class Recorder:
    """A RaftHandler that records everything the transport tells the node."""

    def __init__(self) -> None:
        self.batches: list[list[Message]] = []
        self.unreachable: list[int] = []
        self.snapshot_reports: list[tuple[int, bool]] = []

    def receive(self, messages: list[Message]) -> None:
        self.batches.append(list(messages))

    def report_unreachable(self, node_id: int) -> None:
        self.unreachable.append(node_id)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.snapshot_reports.append((node_id, ok))

    @property
    def messages(self) -> list[Message]:
        return [m for batch in self.batches for m in batch]

    def indexes(self, frm: int | None = None) -> list[int]:
        return [m.index for m in self.messages if frm is None or m.frm == frm]


async def eventually(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def app(frm: int, to: int, index: int, data: bytes = b"") -> Message:
    entries = (Entry(term=1, index=index, data=data),) if data else ()
    return Message(type=MessageType.APP, frm=frm, to=to, term=1, index=index, entries=entries)


def snap(frm: int, to: int, data: bytes) -> Message:
    meta = SnapshotMeta(index=100, term=3, conf_state=ConfState(voters=frozenset({1, 2, 3})))
    return Message(
        type=MessageType.SNAP, frm=frm, to=to, term=3, snapshot=Snapshot(meta=meta, data=data)
    )


Factory = Callable[..., Awaitable[tuple[PeerTransport, Recorder]]]


@pytest_asyncio.fixture(loop_scope="module")
async def make() -> AsyncIterator[Factory]:
    """Starts transports on 127.0.0.1:0 (fast backoff) and stops them all."""
    made: list[PeerTransport] = []

    async def factory(
        member_id: int, *, port: int = 0, cluster_id: int = CLUSTER, **kwargs: Any
    ) -> tuple[PeerTransport, Recorder]:
        options: dict[str, Any] = {
            "backoff_initial": 0.01,
            "backoff_max": 0.1,
            "rng": random.Random(member_id),
            "stop_grace": 0.5,
        }
        options.update(kwargs)
        recorder = Recorder()
        transport = PeerTransport(member_id, cluster_id, recorder, {}, url(port), **options)
        made.append(transport)
        await transport.start()
        return transport, recorder

    yield factory
    await asyncio.gather(*(t.stop() for t in made))


async def trio(make: Factory) -> list[tuple[PeerTransport, Recorder]]:
    nodes = [await make(i) for i in (1, 2, 3)]
    for transport, _ in nodes:
        for i, (other, _) in enumerate(nodes, start=1):
            transport.add_peer(i, url(other.bound_port))  # own id is ignored
    return nodes


async def free_port() -> int:
    """A port nothing listens on any more (a transport was bound there)."""
    transport = PeerTransport(99, CLUSTER, Recorder(), {}, url(0))
    await transport.start()
    port = transport.bound_port
    await transport.stop()
    return port


# ---------------------------------------------------------------- delivery


async def test_a_burst_arrives_in_order_in_few_grpc_writes(make: Factory) -> None:
    (t1, _), (t2, r2), (_, r3) = await trio(make)
    for i in range(1000):  # one send() per message, no await in between
        t1.send([app(1, 2, i), app(1, 3, i)])
    await eventually(lambda: len(r2.messages) == 1000 and len(r3.messages) == 1000)
    assert r2.indexes() == list(range(1000))
    assert r3.indexes() == list(range(1000))
    assert all(m.to == 2 and m.frm == 1 for m in r2.messages)
    # 1,000 messages in a handful of batches (max_batch 512), not 1,000 writes.
    assert len(r2.batches) <= 10
    assert t2.receive_stats.batches == len(r2.batches)
    assert t1.stats.messages_sent == 2000
    assert t1.stats.batches_sent == len(r2.batches) + len(r3.batches)


async def test_max_batch_caps_each_write(make: Factory) -> None:
    t1, _ = await make(1, max_batch=7)
    t2, r2 = await make(2)
    t1.add_peer(2, url(t2.bound_port))
    t1.send([app(1, 2, i) for i in range(100)])
    await eventually(lambda: len(r2.messages) == 100)
    assert r2.indexes() == list(range(100))
    assert max(len(b) for b in r2.batches) <= 7


async def test_batches_split_under_max_message_bytes(make: Factory) -> None:
    limit = 2 << 20
    t1, _ = await make(1, max_message_bytes=limit)
    t2, r2 = await make(2, max_message_bytes=limit)
    t1.add_peer(2, url(t2.bound_port))
    payload = os.urandom(300_000)
    t1.send([app(1, 2, i, payload) for i in range(20)])  # ~6 MB queued at once
    await eventually(lambda: len(r2.messages) == 20)
    assert r2.indexes() == list(range(20))
    assert all(m.entries[0].data == payload for m in r2.messages)
    assert len(r2.batches) >= 3
    assert all(sum(len(m.entries[0].data) for m in b) < limit for b in r2.batches)


async def test_every_member_talks_to_every_other(make: Factory) -> None:
    nodes = await trio(make)
    for i, (transport, _) in enumerate(nodes, start=1):
        transport.send([app(i, j, 10 * i + j) for j in (1, 2, 3) if j != i])
    for j, (_, recorder) in enumerate(nodes, start=1):
        await eventually(lambda r=recorder: len(r.messages) == 2)
        assert sorted((m.frm, m.index) for m in recorder.messages) == sorted(
            (i, 10 * i + j) for i in (1, 2, 3) if i != j
        )


async def test_messages_for_unknown_peers_and_local_kinds_are_not_sent(make: Factory) -> None:
    (t1, r1), (_, r2), _ = await trio(make)
    t1.send([app(1, 7, 1), Message(type=MessageType.HUP, to=2), app(1, 2, 2)])
    await eventually(lambda: len(r2.messages) == 1)
    assert r2.indexes() == [2]
    assert r1.unreachable == []


# ----------------------------------------------------------- failures


async def test_a_dead_peer_blocks_nobody_and_is_reported(make: Factory) -> None:
    dead = await free_port()
    (t1, r1), (_, r2), _ = await trio(make)
    t1.add_peer(4, url(dead))
    for i in range(200):
        t1.send([app(1, 4, i), app(1, 2, i)])  # returns at once: nothing to await
    await eventually(lambda: len(r2.messages) == 200)
    assert r2.indexes() == list(range(200))
    await eventually(lambda: 4 in r1.unreachable)
    assert set(r1.unreachable) == {4}


async def test_a_full_queue_drops_and_reports_unreachable(make: Factory) -> None:
    dead = await free_port()
    t1, r1 = await make(1, queue_limit=10, backoff_initial=5.0, backoff_max=5.0)
    t1.add_peer(4, url(dead))
    t1.send([app(1, 4, 0)])
    # The first attempt fails, the sender then waits out a 2.5-5 s backoff.
    await eventually(lambda: t1.stats.connection_failures == 1)
    unreachable_before = len(r1.unreachable)
    t1.send([app(1, 4, i) for i in range(50)])
    assert t1.stats.messages_dropped >= 40
    assert len(r1.unreachable) == unreachable_before  # deferred, not from inside send()
    await eventually(lambda: len(r1.unreachable) == unreachable_before + 1)


async def test_a_peer_that_comes_up_later_gets_new_messages(make: Factory) -> None:
    port = await free_port()
    t1, r1 = await make(1)
    t1.add_peer(4, url(port))
    t1.send([app(1, 4, 0)])
    await eventually(lambda: 4 in r1.unreachable)

    t4, r4 = await make(4, port=port)
    assert t4.bound_port == port

    # Queued messages may be dropped by an attempt that failed just before
    # the listener came up: keep offering one until one arrives.
    async def offered() -> None:
        i = 1
        while not r4.messages:
            t1.send([app(1, 4, i)])
            i += 1
            await asyncio.sleep(0.01)

    await asyncio.wait_for(offered(), 5.0)
    first = r4.messages[-1].index
    t1.send([app(1, 4, first + 1 + i) for i in range(300)])
    await eventually(lambda: r4.indexes()[-1] == first + 300)
    indexes = r4.indexes()
    assert indexes == sorted(set(indexes))  # in order, no duplicates
    assert indexes[-300:] == list(range(first + 1, first + 301))


async def test_a_restarted_peer_is_reconnected(make: Factory) -> None:
    t1, _ = await make(1)
    t2, r2 = await make(2)
    port = t2.bound_port
    t1.add_peer(2, url(port))
    t1.send([app(1, 2, 1)])
    await eventually(lambda: r2.indexes() == [1])
    await t2.stop()
    _, r2b = await make(2, port=port)

    async def offered() -> None:
        while not r2b.messages:
            t1.send([app(1, 2, 2)])
            await asyncio.sleep(0.01)

    await asyncio.wait_for(offered(), 5.0)
    assert t1.stats.connection_failures >= 1


# A peer in another process, to be frozen with SIGSTOP: its kernel keeps
# accepting bytes, so only an unanswered keepalive ping can tell.
FROZEN_PEER = """
import asyncio, sys
from kvstore.transport.peer import PeerTransport

class Handler:
    def receive(self, messages): pass
    def report_unreachable(self, node_id): pass
    def report_snapshot(self, node_id, ok): pass

async def main():
    transport = PeerTransport(2, int(sys.argv[1]), Handler(), {}, "http://127.0.0.1:0",
                              keepalive_interval=0.3, keepalive_timeout=0.2)
    await transport.start()
    print(transport.bound_port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_keepalive_notices_a_frozen_peer(make: Factory) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FROZEN_PEER, str(CLUSTER), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        port = int(await asyncio.wait_for(child.stdout.readline(), 10.0))
        t1, r1 = await make(1, keepalive_interval=0.3, keepalive_timeout=0.2)
        t1.add_peer(2, url(port))
        t1.send([app(1, 2, 1)])
        await eventually(lambda: t1.stats.batches_sent == 1)
        child.send_signal(signal.SIGSTOP)
        await eventually(lambda: 2 in r1.unreachable, timeout=10.0)
        assert t1.stats.connection_failures == 1
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGCONT)
            child.kill()
        await child.wait()


# ------------------------------------------------------------- snapshots


async def test_a_large_snapshot_is_chunked_and_reassembled(make: Factory) -> None:
    (t1, r1), (t2, r2), _ = await trio(make)
    data = os.urandom(3 * codec.DEFAULT_CHUNK_SIZE + 12345)
    message = snap(1, 2, data)
    t1.send([message, app(1, 2, 7)])
    await eventually(lambda: r1.snapshot_reports == [(2, True)])
    await eventually(lambda: len(r2.messages) == 2)
    received = [m for m in r2.messages if m.type is MessageType.SNAP]
    assert received == [message]
    assert [m.index for m in r2.messages if m.type is MessageType.APP] == [7]
    assert t2.receive_stats.snapshot_chunks == 1 + 4  # header + 4 data chunks
    assert t1.stats.snapshots_sent == 1


async def test_a_snapshot_to_a_dead_peer_reports_failure(make: Factory) -> None:
    dead = await free_port()
    t1, r1 = await make(1)
    t1.add_peer(4, url(dead))
    t1.send([snap(1, 4, b"x" * 1000), snap(1, 5, b"y")])  # 5: not a known peer
    await eventually(lambda: sorted(r1.snapshot_reports) == [(4, False), (5, False)])
    assert t1.stats.snapshots_failed == 2


# ------------------------------------------------------- the server side


async def test_a_member_of_another_cluster_is_rejected(make: Factory) -> None:
    t2, r2 = await make(2)
    intruder, ri = await make(1, cluster_id=CLUSTER + 1)
    intruder.add_peer(2, url(t2.bound_port))
    intruder.send([app(1, 2, 1), snap(1, 2, b"data")])
    await eventually(lambda: 2 in ri.unreachable and ri.snapshot_reports == [(2, False)])
    assert r2.batches == []
    assert t2.receive_stats.rejected >= 2

    async with grpc.aio.insecure_channel(f"127.0.0.1:{t2.bound_port}") as channel:
        stub = peer_pb2_grpc.PeerStub(channel)
        batch = codec.batch_to_pb([app(1, 2, 1)], cluster_id=CLUSTER + 1)
        with pytest.raises(grpc.aio.AioRpcError) as stream_error:
            await stub.Stream(iter([batch]))
        assert stream_error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "cluster id mismatch" in (stream_error.value.details() or "")
        chunks = codec.snapshot_chunks(snap(1, 2, b"data"), cluster_id=CLUSTER + 1)
        with pytest.raises(grpc.aio.AioRpcError) as snap_error:
            await stub.SendSnapshot(iter(list(chunks)))
        assert snap_error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert r2.batches == []


async def test_a_rejected_peer_is_retried_with_one_warning_each_side(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kvstore.transport")
    t2, _ = await make(2)
    intruder, ri = await make(1, cluster_id=CLUSTER + 1)
    intruder.add_peer(2, url(t2.bound_port))
    calls = 0

    def retried() -> bool:  # keep traffic queued so the sender keeps retrying
        nonlocal calls
        calls += 1
        intruder.send([app(1, 2, calls)])
        return intruder.stats.connection_failures >= 4

    await eventually(retried)
    assert ri.unreachable.count(2) >= 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == ["kvstore.transport.receiver", "kvstore.transport.peer"]
    assert "cluster id mismatch" in warnings[0].getMessage()
    assert "unreachable" in warnings[1].getMessage()
    assert t2.receive_stats.rejected >= 4


async def test_server_drops_messages_for_other_members_and_local_kinds(make: Factory) -> None:
    t2, r2 = await make(2)
    batch = codec.batch_to_pb(
        [app(1, 3, 1), Message(type=MessageType.HUP, to=2, frm=1), app(1, 2, 2)],
        cluster_id=CLUSTER,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{t2.bound_port}") as channel:
        stub = peer_pb2_grpc.PeerStub(channel)
        await stub.Stream(iter([batch, batch]))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.SendSnapshot(iter(list(codec.snapshot_chunks(snap(1, 3, b"z"), CLUSTER))))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        bad = pb.SnapshotChunk(data=b"data before any header")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.SendSnapshot(iter([bad]))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert r2.indexes() == [2, 2]
    assert [len(b) for b in r2.batches] == [1, 1]
    assert t2.receive_stats.dropped == 4


# ------------------------------------------------------------ membership


async def test_remove_and_re_add_a_peer(make: Factory) -> None:
    (t1, _), (t2, r2), _ = await trio(make)
    t1.send([app(1, 2, 1)])
    await eventually(lambda: r2.indexes() == [1])
    t1.remove_peer(2)
    t1.remove_peer(2)  # unknown now: nothing happens
    t1.send([app(1, 2, 2)])
    t1.add_peer(2, url(t2.bound_port))
    t1.add_peer(2, url(t2.bound_port))  # same URL: keeps the connection
    t1.send([app(1, 2, 3)])
    await eventually(lambda: r2.indexes() == [1, 3])


async def test_a_new_url_replaces_the_connection(make: Factory) -> None:
    t1, _ = await make(1)
    old, r_old = await make(2)
    new, r_new = await make(2)
    t1.add_peer(2, url(old.bound_port))
    t1.send([app(1, 2, 1)])
    await eventually(lambda: r_old.indexes() == [1])
    t1.add_peer(2, url(new.bound_port))
    t1.send([app(1, 2, 2)])
    await eventually(lambda: r_new.indexes() == [2])
    assert r_old.indexes() == [1]


# ------------------------------------------------------------- lifecycle


async def test_stop_is_idempotent_and_leaves_no_tasks() -> None:
    before = asyncio.all_tasks()
    dead = await free_port()
    recorders = [Recorder() for _ in range(3)]
    nodes = [
        PeerTransport(i, CLUSTER, r, {}, url(0), backoff_initial=0.01, stop_grace=0.5)
        for i, r in enumerate(recorders, start=1)
    ]
    try:
        for transport in nodes:
            await transport.start()
        for transport in nodes:
            for i, other in enumerate(nodes, start=1):
                transport.add_peer(i, url(other.bound_port))
        t1 = nodes[0]
        t1.add_peer(4, url(dead))  # a sender that keeps failing and backing off
        t1.send([app(1, 2, 1), app(1, 3, 1), app(1, 4, 1)])
        t1.send([snap(1, 2, os.urandom(4 << 20))])  # likely still in flight at stop
        await eventually(
            lambda: recorders[1].indexes()[:1] == [1] and 4 in recorders[0].unreachable
        )
    finally:
        await asyncio.gather(*(t.stop() for t in nodes), nodes[0].stop())
    await nodes[0].stop()
    nodes[0].send([app(1, 2, 2)])  # after stop: dropped, no error, no task
    nodes[0].add_peer(5, url(dead))
    await eventually(lambda: not (asyncio.all_tasks() - before - {asyncio.current_task()}))


async def test_start_twice_and_port_before_start_are_errors(make: Factory) -> None:
    transport, _ = await make(1)
    with pytest.raises(RuntimeError):
        await transport.start()
    fresh = PeerTransport(1, CLUSTER, Recorder(), {}, url(0))
    with pytest.raises(RuntimeError):
        _ = fresh.bound_port
    await fresh.stop()  # never started: fine
