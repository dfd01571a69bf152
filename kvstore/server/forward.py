"""Requests only the leader can answer, sent on from a follower.

Lease keepalives and TimeToLive depend on the leader's clock, so a follower
passes them to the leader's advertised client endpoint over the etcd Lease
API itself, as etcd's followers do. One channel per leader URL is kept open.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import grpc  # type: ignore[import-untyped, unused-ignore]

from kvstore.api.pb import rpc_pb2
from kvstore.api.pb import rpc_pb2_grpc as _rpc_pb2_grpc
from kvstore.mvcc.errors import LeaseNotFound
from kvstore.server.config import grpc_address
from kvstore.server.errors import LeaderChanged

_GENERATED: Any = _rpc_pb2_grpc


class _KeepAliveCall(Protocol):
    async def write(self, request: rpc_pb2.LeaseKeepAliveRequest) -> None: ...

    async def read(self) -> Any: ...

    async def done_writing(self) -> None: ...


class _LeaseStub(Protocol):
    def LeaseKeepAlive(self, *, timeout: float) -> _KeepAliveCall: ...

    async def LeaseTimeToLive(
        self, request: rpc_pb2.LeaseTimeToLiveRequest, *, timeout: float
    ) -> rpc_pb2.LeaseTimeToLiveResponse: ...


class LeaderForwarder:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._url = ""
        self._channel: Any = None
        self._stub: _LeaseStub | None = None

    def _lease_stub(self, url: str) -> _LeaseStub:
        if url != self._url or self._stub is None:
            if self._channel is not None:
                self._channel.close()  # an awaitable; the old channel just closes
            self._channel = grpc.aio.insecure_channel(grpc_address(url))
            self._stub = cast(_LeaseStub, _GENERATED.LeaseStub(self._channel))
            self._url = url
        return self._stub

    async def keepalive(self, url: str, lease_id: int) -> int:
        """The lease's TTL after the leader renewed it; 0 if it is unknown."""
        try:
            call = self._lease_stub(url).LeaseKeepAlive(timeout=self.timeout)
            await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
            resp = await call.read()
            await call.done_writing()
        except grpc.aio.AioRpcError as exc:
            raise LeaderChanged() from exc
        if resp is grpc.aio.EOF:
            raise LeaderChanged()
        ttl: int = resp.TTL
        return ttl

    async def time_to_live(
        self, url: str, lease_id: int, keys: bool
    ) -> tuple[int, int, list[bytes]]:
        try:
            resp = await self._lease_stub(url).LeaseTimeToLive(
                rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id, keys=keys), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise LeaseNotFound(lease_id) from exc
            raise LeaderChanged() from exc
        return resp.grantedTTL, resp.TTL, list(resp.keys)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None
