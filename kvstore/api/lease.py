"""etcdserverpb.Lease over a LeaseBackend.

etcd's answers for an unknown lease differ per method, and this module is
where they are made, whichever way the backend reports one (a sentinel value
or LeaseNotFound):

    LeaseKeepAlive   TTL 0 in a normal response (not an error)
    LeaseTimeToLive  TTL -1 in a normal response (grantedTTL 0, no keys)
    LeaseRevoke      NotFound "etcdserver: requested lease not found"
    LeaseGrant       ID 0 is the server's to pick; an ID in use fails with
                     FailedPrecondition "etcdserver: lease already exists"

Every response carries the header at the current revision (etcd fills it
when the answer is ready). LeaseKeepAlive is a bidirectional stream: each
request gets one response, in order; streams run independently. An error
other than an unknown lease (no leader, timeout...) ends the stream with
its status, as etcd's does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from kvstore.api import convert
from kvstore.api.errors import Context, abort_with, rpc
from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc
from kvstore.lease.errors import LeaseNotFound, LeaseTTLTooLarge
from kvstore.lease.lessor import MAX_LEASE_TTL
from kvstore.server.views import Header

KEEPALIVE_UNKNOWN_TTL = 0
TIME_TO_LIVE_UNKNOWN_TTL = -1


class LeaseBackend(Protocol):
    """What the Lease servicer needs from a node. Errors are the typed domain
    errors of kvstore.lease.errors / kvstore.server.errors."""

    def header(self, revision: int | None = None) -> Header:
        """The response header; revision None means the current revision."""
        ...

    async def lease_grant(self, ttl: int, lease_id: int) -> tuple[int, int]:
        """Grant through Raft; lease_id 0 means pick one. Returns (ID, TTL
        granted, raised to the minimum TTL if below it)."""
        ...

    async def lease_revoke(self, lease_id: int) -> None:
        """Revoke through Raft, deleting the lease's keys in one revision."""
        ...

    async def lease_keepalive(self, lease_id: int) -> int:
        """Renew on the leader (forwarded there from a follower); the lease's
        TTL, or 0 (or LeaseNotFound) for an unknown or expired lease."""
        ...

    async def lease_time_to_live(self, lease_id: int, keys: bool) -> tuple[int, int, list[bytes]]:
        """(granted TTL, remaining TTL, attached keys if asked), answered by
        the leader; remaining -1 (or LeaseNotFound) for an unknown lease."""
        ...

    async def lease_leases(self) -> list[int]: ...


class LeaseService(rpc_pb2_grpc.LeaseServicer):
    def __init__(self, backend: LeaseBackend) -> None:
        self._backend = backend

    def _header(self) -> rpc_pb2.ResponseHeader:
        return convert.header(self._backend.header(None))

    @rpc
    async def LeaseGrant(
        self, request: rpc_pb2.LeaseGrantRequest, context: Context
    ) -> rpc_pb2.LeaseGrantResponse:
        # Refused before proposing; the lessor repeats the check at apply.
        if request.TTL > MAX_LEASE_TTL:
            raise LeaseTTLTooLarge(request.TTL)
        lease_id, ttl = await self._backend.lease_grant(request.TTL, request.ID)
        return rpc_pb2.LeaseGrantResponse(header=self._header(), ID=lease_id, TTL=ttl)

    @rpc
    async def LeaseRevoke(
        self, request: rpc_pb2.LeaseRevokeRequest, context: Context
    ) -> rpc_pb2.LeaseRevokeResponse:
        await self._backend.lease_revoke(request.ID)
        return rpc_pb2.LeaseRevokeResponse(header=self._header())

    async def LeaseKeepAlive(
        self, request_iterator: AsyncIterator[rpc_pb2.LeaseKeepAliveRequest], context: Context
    ) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        async for request in request_iterator:
            try:
                ttl = await self._keepalive(request.ID)
            except Exception as exc:
                await abort_with(context, exc)
            yield rpc_pb2.LeaseKeepAliveResponse(header=self._header(), ID=request.ID, TTL=ttl)

    async def _keepalive(self, lease_id: int) -> int:
        try:
            ttl = await self._backend.lease_keepalive(lease_id)
        except LeaseNotFound:
            return KEEPALIVE_UNKNOWN_TTL
        return max(ttl, KEEPALIVE_UNKNOWN_TTL)

    @rpc
    async def LeaseTimeToLive(
        self, request: rpc_pb2.LeaseTimeToLiveRequest, context: Context
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        try:
            granted, remaining, keys = await self._backend.lease_time_to_live(
                request.ID, request.keys
            )
        except LeaseNotFound:
            granted, remaining, keys = 0, TIME_TO_LIVE_UNKNOWN_TTL, []
        if remaining < 0:
            granted, remaining, keys = 0, TIME_TO_LIVE_UNKNOWN_TTL, []
        return rpc_pb2.LeaseTimeToLiveResponse(
            header=self._header(), ID=request.ID, TTL=remaining, grantedTTL=granted, keys=keys
        )

    @rpc
    async def LeaseLeases(
        self, request: rpc_pb2.LeaseLeasesRequest, context: Context
    ) -> rpc_pb2.LeaseLeasesResponse:
        ids = await self._backend.lease_leases()
        return rpc_pb2.LeaseLeasesResponse(
            header=self._header(), leases=[rpc_pb2.LeaseStatus(ID=i) for i in ids]
        )
