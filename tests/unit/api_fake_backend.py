"""A KVBackend for API tests: the real MVCCStore on a temporary LevelDB,
with no Raft. Every request is applied at once; `fail_with` makes the next
calls raise a given error (NoLeader, ...) as the node would."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator

import grpc

from kvstore.api.pb import health_pb2_grpc, rpc_pb2_grpc
from kvstore.api.server import bind, create_grpc_server
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    CompactResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    HashKVResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)
from kvstore.server.views import Header, Member, NodeStatus
from kvstore.storage import keys
from kvstore.storage.db import Database

CLUSTER_ID = 0xC1D
MEMBER_ID = 0x8E9E05C52164694D
RAFT_TERM = 7


class FakeBackend:
    def __init__(self, path: str, max_request_bytes: int = 1536 * 1024) -> None:
        self.db = Database(path)
        self.store = MVCCStore(self.db, StoreOptions(sync=False))
        self._max_request_bytes = max_request_bytes
        self.leader = MEMBER_ID
        self.fail_with: Exception | None = None
        self.calls: list[str] = []
        self.serializable_seen: list[bool] = []
        self.members_list = [
            Member(
                MEMBER_ID,
                "default",
                ("http://127.0.0.1:2380",),
                ("http://127.0.0.1:2379",),
            ),
            Member(0x2A, "learner", ("http://127.0.0.1:2480",), (), is_learner=True),
        ]

    def close(self) -> None:
        self.db.close()

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_with is not None:
            raise self.fail_with

    # -- KVBackend --------------------------------------------------------------------------

    def header(self, revision: int | None = None) -> Header:
        rev = self.store.current_revision if revision is None else revision
        return Header(CLUSTER_ID, MEMBER_ID, rev, RAFT_TERM)

    async def range(self, req: RangeRequest, serializable: bool) -> RangeResponse:
        self._enter("range")
        self.serializable_seen.append(serializable)
        return self.store.range(req)

    async def put(self, req: PutRequest) -> PutResponse:
        self._enter("put")
        return self.store.put(req)

    async def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        self._enter("delete_range")
        return self.store.delete_range(req)

    async def txn(self, req: TxnRequest) -> TxnResponse:
        self._enter("txn")
        return self.store.txn(req)

    async def compact(self, revision: int, physical: bool) -> CompactResponse:
        self._enter("compact")
        return self.store.compact(revision)

    async def hash_kv(self, revision: int) -> HashKVResponse:
        self._enter("hash_kv")
        return self.store.hash_kv(revision)

    async def hash(self) -> int:
        self._enter("hash")
        h = 0
        for k, v in self.db.iterate(keys.MVCC, bytes([keys.MVCC[0] + 1])):
            h = zlib.crc32(v, zlib.crc32(k, h))
        return h

    def status(self) -> NodeStatus:
        return NodeStatus(
            version="3.4.0",
            db_size=4096,
            db_size_in_use=2048,
            leader=self.leader,
            raft_index=42,
            raft_term=RAFT_TERM,
            raft_applied_index=41,
            is_learner=False,
            errors=("one problem",),
        )

    def members(self) -> list[Member]:
        return list(self.members_list)

    @property
    def max_request_bytes(self) -> int:
        return self._max_request_bytes


class Api:
    """A started server over a FakeBackend, a channel to it, and stubs."""

    def __init__(self, backend: FakeBackend, port: int, channel: grpc.aio.Channel) -> None:
        self.backend = backend
        self.port = port
        self.endpoint = f"127.0.0.1:{port}"
        self.channel = channel
        self.kv = rpc_pb2_grpc.KVStub(channel)
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(channel)
        self.cluster = rpc_pb2_grpc.ClusterStub(channel)
        self.watch = rpc_pb2_grpc.WatchStub(channel)
        self.lease = rpc_pb2_grpc.LeaseStub(channel)
        self.auth = rpc_pb2_grpc.AuthStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)


@contextlib.asynccontextmanager
async def serve(
    path: str,
    max_request_bytes: int = 1536 * 1024,
    max_txn_ops: int = 128,
    health_watch_interval: float = 1.0,
) -> AsyncIterator[Api]:
    """Start the real grpc.aio server on 127.0.0.1, on a port the OS picks."""
    backend = FakeBackend(path, max_request_bytes)
    server = create_grpc_server(
        backend,
        max_request_bytes,
        max_txn_ops=max_txn_ops,
        health_watch_interval=health_watch_interval,
    )
    try:
        [port] = bind(server, ["127.0.0.1:0"])
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Api(backend, port, channel)
    finally:
        await server.stop(None)
        backend.close()
