"""A KV + Lease backend for API tests: api_fake_backend's FakeBackend (the
real MVCCStore, no Raft) plus a real Lessor that is always the leader, on a
fake clock (`now`, advanced by the test). `expire()` does what the node's
leader loop does: revoke the expired leases, deleting their keys in one
revision per lease."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import grpc

from kvstore.api.server import bind, create_grpc_server
from kvstore.lease.attachments import leased_keys
from kvstore.lease.lessor import Lessor, LessorConfig
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    DeleteRangeRequest,
    DeleteRangeResponse,
    PutRequest,
    PutResponse,
    TxnRequest,
    TxnResponse,
)
from tests.unit.api_fake_backend import Api, FakeBackend

MIN_TTL = 5


class LeaseFakeBackend(FakeBackend):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.now = 1000.0
        self.rng = random.Random(7)
        self.lessor = Lessor(self.db, LessorConfig(min_ttl=MIN_TTL, checkpoint_interval=60.0))
        # A lease's keys may number more than a client txn may hold.
        opts = StoreOptions(sync=False, max_txn_ops=1 << 30, lease_exists=self.lessor.exists)
        self.store = MVCCStore(self.db, opts)
        self.lessor.rebuild_attachments(leased_keys(self.store))
        self.lessor.promote(self.now)

    def _reattach(self) -> None:
        self.lessor.rebuild_attachments(leased_keys(self.store))

    # -- KV writes keep the attachments current ----------------------------------------------

    async def put(self, req: PutRequest) -> PutResponse:
        resp = await super().put(req)
        self._reattach()
        return resp

    async def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        resp = await super().delete_range(req)
        self._reattach()
        return resp

    async def txn(self, req: TxnRequest) -> TxnResponse:
        resp = await super().txn(req)
        self._reattach()
        return resp

    # -- LeaseBackend ------------------------------------------------------------------------

    async def lease_grant(self, ttl: int, lease_id: int) -> tuple[int, int]:
        self._enter("lease_grant")
        if lease_id == 0:
            lease_id = self.lessor.next_id(self.rng)
        with self.db.batch() as b:
            granted = self.lessor.apply_grant(lease_id, ttl, b, self.now)
        return lease_id, granted

    def _revoke(self, lease_id: int) -> None:
        with self.db.batch() as b, self.store.writing(b):
            doomed = self.lessor.apply_revoke(lease_id, b)
            if doomed:
                self.store.txn(TxnRequest(success=tuple(DeleteRangeRequest(k) for k in doomed)))

    async def lease_revoke(self, lease_id: int) -> None:
        self._enter("lease_revoke")
        self._revoke(lease_id)

    async def lease_keepalive(self, lease_id: int) -> int:
        self._enter("lease_keepalive")
        return self.lessor.renew(lease_id, self.now)

    async def lease_time_to_live(self, lease_id: int, keys: bool) -> tuple[int, int, list[bytes]]:
        self._enter("lease_time_to_live")
        return self.lessor.time_to_live(lease_id, self.now, keys)

    async def lease_leases(self) -> list[int]:
        self._enter("lease_leases")
        return self.lessor.leases()

    # -- the leader loop ---------------------------------------------------------------------

    def expire(self) -> list[int]:
        expired = self.lessor.expired(self.now, 1000)
        for lease_id in expired:
            self._revoke(lease_id)
        return expired


@contextlib.asynccontextmanager
async def serve(path: str) -> AsyncIterator[tuple[Api, LeaseFakeBackend]]:
    """The real grpc.aio server on 127.0.0.1 (a port the OS picks)."""
    backend = LeaseFakeBackend(path)
    server = create_grpc_server(backend, backend.max_request_bytes, lease=backend)
    try:
        [port] = bind(server, ["127.0.0.1:0"])
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Api(backend, port, channel), backend
    finally:
        await server.stop(None)
        backend.close()
