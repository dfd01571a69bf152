"""In-process clusters: real Nodes with real peer transports and client gRPC
APIs on loopback, driven through their backend API, all in one event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from kvstore.api.server import build_grpc_server
from kvstore.raft.types import Role
from kvstore.server.config import ServerConfig, grpc_address
from kvstore.server.node import Node
from tests.procs import free_port


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what}")
        await asyncio.sleep(0.01)


@dataclass
class Cluster:
    configs: dict[str, ServerConfig]
    nodes: dict[str, Node] = field(default_factory=dict)
    servers: dict[str, Any] = field(default_factory=dict)

    async def start(self, name: str) -> Node:
        """Start the node and its client gRPC API (followers forward some
        requests, such as lease keepalives, to the leader's client URL)."""
        cfg = self.configs[name]
        node = Node(cfg)
        await node.start()
        server = build_grpc_server(
            node,
            [grpc_address(u) for u in cfg.listen_client_urls],
            cfg.max_request_bytes,
            lease=node,
            watch=node,
        )
        await server.start()
        self.nodes[name] = node
        self.servers[name] = server
        return node

    async def stop(self, name: str) -> None:
        await self.servers.pop(name).stop(0)
        node = self.nodes.pop(name)
        await node.stop()

    async def stop_all(self) -> None:
        for name in list(self.nodes):
            await self.stop(name)

    def leader(self) -> Node | None:
        for node in self.nodes.values():
            if node.raw.raft.role is Role.LEADER:
                return node
        return None

    async def wait_leader(self, timeout: float = 10.0) -> Node:
        await eventually(lambda: self.leader() is not None, timeout, "a leader")
        leader = self.leader()
        assert leader is not None
        return leader


def make_configs(tmp_path: Path, n: int, **overrides: object) -> dict[str, ServerConfig]:
    names = [f"n{i}" for i in range(1, n + 1)]
    peers = {name: f"http://127.0.0.1:{free_port()}" for name in names}
    clients = {name: f"http://127.0.0.1:{free_port()}" for name in names}
    initial = ",".join(f"{name}={url}" for name, url in peers.items())
    base = ServerConfig(
        heartbeat_interval_ms=20,
        election_timeout_ms=200,
        request_timeout_ms=3000,
        initial_cluster=initial,
    )
    return {
        name: replace(
            base,
            name=name,
            data_dir=str(tmp_path / name),
            listen_peer_urls=(peers[name],),
            initial_advertise_peer_urls=(peers[name],),
            listen_client_urls=(clients[name],),
            advertise_client_urls=(clients[name],),
            **overrides,  # type: ignore[arg-type]
        )
        for name in names
    }


@pytest.fixture
async def cluster3(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(make_configs(tmp_path, 3))
    try:
        for name in c.configs:
            await c.start(name)
        yield c
    finally:
        await c.stop_all()
