"""Watches served by followers, across a leader failure, over the real gRPC
API: every watcher sees the same gap-free, duplicate-free history."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import grpc

from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc
from kvstore.mvcc.types import PutRequest
from kvstore.server.config import grpc_address
from kvstore.server.errors import ServerError
from kvstore.server.node import Node
from tests.server.conftest import Cluster, eventually, make_configs

WATCHERS_PER_FOLLOWER = 50
WRITES = 240
KILL_AT = 80


class Stream:
    """One Watch stream to one member carrying many watchers."""

    def __init__(self, url: str) -> None:
        self.channel = grpc.aio.insecure_channel(grpc_address(url))
        self.call: Any = rpc_pb2_grpc.WatchStub(self.channel).Watch()
        self.events: dict[int, list[tuple[int, bytes]]] = {}
        self.created: list[int] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for resp in self.call:
            if resp.created:
                self.created.append(resp.watch_id)
                self.events.setdefault(resp.watch_id, [])
            for ev in resp.events:
                self.events[resp.watch_id].append((ev.kv.mod_revision, ev.kv.key))

    async def watch(self, prefix: bytes, start: int) -> None:
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        req = rpc_pb2.WatchCreateRequest(key=prefix, range_end=end, start_revision=start)
        await self.call.write(rpc_pb2.WatchRequest(create_request=req))

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self.reader
        await self.channel.close()


async def put_somewhere(cluster: Cluster, key: bytes) -> None:
    """Put through any live member, retrying while leadership moves."""
    for _ in range(100):
        for node in list(cluster.nodes.values()):
            try:
                await node.put(PutRequest(key, b"v"))
                return
            except ServerError:  # no leader / leader changed / stopped: try again
                await asyncio.sleep(0.02)
    raise AssertionError(f"could not write {key!r}")


async def test_watchers_on_followers_see_every_write_across_a_leader_failure(
    tmp_path: Path,
) -> None:
    c = Cluster(make_configs(tmp_path, 3))
    streams: list[Stream] = []
    try:
        for name in c.configs:
            await c.start(name)
        leader = await c.wait_leader()
        leader_name = next(n for n, node in c.nodes.items() if node is leader)
        start = leader.mvcc.current_revision + 1
        followers = [n for n in c.nodes if n != leader_name]
        for name in followers:
            stream = Stream(c.configs[name].listen_client_urls[0])
            streams.append(stream)
            for _ in range(WATCHERS_PER_FOLLOWER):
                await stream.watch(b"wf/", start)
        await eventually(
            lambda: all(len(s.created) == WATCHERS_PER_FOLLOWER for s in streams),
            what="all watchers created",
        )
        for i in range(WRITES):
            if i == KILL_AT:
                await c.stop(leader_name)
            await put_somewhere(c, b"wf/%04d" % i)

        survivor: Node = next(iter(c.nodes.values()))
        final = survivor.mvcc.current_revision
        history = [
            (e.kv.mod_revision, e.kv.key)
            for e in survivor.mvcc.events_between(start, final, 1 << 20)[0]
            if e.kv.key.startswith(b"wf/")
        ]
        assert len(history) >= WRITES  # a retried put may have applied twice

        def caught_up() -> bool:
            return all(
                evs and evs[-1][0] == final for s in streams for evs in s.events.values()
            )

        await eventually(caught_up, timeout=20, what="every watcher caught up")
        for stream in streams:
            assert len(stream.events) == WATCHERS_PER_FOLLOWER
            for events in stream.events.values():
                assert events == history  # nothing missing, duplicated or reordered
    finally:
        for stream in streams:
            await stream.close()
        await c.stop_all()
