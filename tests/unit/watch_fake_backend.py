"""FakeBackend (api_fake_backend.py) plus a WatchHub: every write is durable
at once, so it notifies the hub right after, as the node does after a Ready."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from kvstore.api.server import bind, create_grpc_server
from kvstore.mvcc.types import (
    CompactResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    PutRequest,
    PutResponse,
    TxnRequest,
    TxnResponse,
)
from kvstore.mvcc.watch import WatchHub
from tests.unit.api_fake_backend import Api, FakeBackend


class WatchFakeBackend(FakeBackend):
    def __init__(self, path: str, max_request_bytes: int = 1536 * 1024) -> None:
        super().__init__(path, max_request_bytes)
        self.hub = WatchHub(self.store)

    @property
    def watch_hub(self) -> WatchHub:
        return self.hub

    def _notify(self) -> None:
        self.hub.notify(self.store.take_events(), self.store.current_revision)
        self.hub.sync_pending()

    async def put(self, req: PutRequest) -> PutResponse:
        resp = await super().put(req)
        self._notify()
        return resp

    async def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        resp = await super().delete_range(req)
        self._notify()
        return resp

    async def txn(self, req: TxnRequest) -> TxnResponse:
        resp = await super().txn(req)
        self._notify()
        return resp

    async def compact(self, revision: int, physical: bool) -> CompactResponse:
        resp = await super().compact(revision, physical)
        self._notify()
        return resp


@contextlib.asynccontextmanager
async def serve_watch(
    path: str, max_request_bytes: int = 1536 * 1024
) -> AsyncIterator[tuple[Api, WatchFakeBackend]]:
    backend = WatchFakeBackend(path, max_request_bytes)
    server = create_grpc_server(backend, max_request_bytes, watch=backend)
    try:
        [port] = bind(server, ["127.0.0.1:0"])
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Api(backend, port, channel), backend
    finally:
        await server.stop(None)
        backend.close()
