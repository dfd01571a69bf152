"""The typed edge between the client and grpc.aio.

grpcio ships no type information and the generated rpc_pb2_grpc and
health_pb2_grpc modules are untyped. Everything the client needs from them
is declared here as small Protocols, and the untyped objects are cast to
those Protocols in this module only; the rest of kvstore/client is checked
by `mypy --strict` against these declarations.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import grpc  # type: ignore[import-untyped, unused-ignore]

from kvstore.api.pb import health_pb2, rpc_pb2
from kvstore.api.pb import health_pb2_grpc as _health_pb2_grpc
from kvstore.api.pb import rpc_pb2_grpc as _rpc_pb2_grpc

# The generated modules have no annotations: treat them as Any, here only.
_RPC: Any = _rpc_pb2_grpc
_HEALTH: Any = _health_pb2_grpc

ReqT = TypeVar("ReqT", contravariant=True)
RespT = TypeVar("RespT", covariant=True)


class Unary(Protocol[ReqT, RespT]):
    """A unary-unary method of a grpc.aio stub."""

    def __call__(
        self, request: ReqT, *, timeout: float | None = ..., wait_for_ready: bool | None = ...
    ) -> Awaitable[RespT]: ...


class ServerStream(Protocol[RespT]):
    """The call object of a unary-stream method (grpc.aio.UnaryStreamCall)."""

    def __aiter__(self) -> AsyncIterator[RespT]: ...

    def cancel(self) -> bool: ...


class UnaryStream(Protocol[ReqT, RespT]):
    def __call__(
        self, request: ReqT, *, timeout: float | None = ..., wait_for_ready: bool | None = ...
    ) -> ServerStream[RespT]: ...


class BidiCall(Protocol[ReqT]):
    """The call object of a stream-stream method (grpc.aio.StreamStreamCall);
    read() returns a response message or EOF."""

    async def write(self, request: ReqT) -> None: ...

    async def read(self) -> object: ...

    async def done_writing(self) -> None: ...

    def cancel(self) -> bool: ...


class Bidi(Protocol[ReqT]):
    def __call__(self, *, wait_for_ready: bool | None = ...) -> BidiCall[ReqT]: ...


EOF: object = grpc.aio.EOF
"""What BidiCall.read() returns once the server has closed the stream."""


class State(enum.Enum):
    IDLE = "IDLE"
    CONNECTING = "CONNECTING"
    READY = "READY"
    TRANSIENT_FAILURE = "TRANSIENT_FAILURE"
    SHUTDOWN = "SHUTDOWN"


class Channel:
    """A grpc.aio insecure channel to one endpoint, with typed stubs."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel: Any = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.max_send_message_length", 2**31 - 1),
                # Fail over quickly: do not back off for long between tries.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
                ("grpc.enable_http_proxy", 0),
            ],
        )
        ch = self._channel
        kv = _RPC.KVStub(ch)
        self.range = cast("Unary[rpc_pb2.RangeRequest, rpc_pb2.RangeResponse]", kv.Range)
        self.put = cast("Unary[rpc_pb2.PutRequest, rpc_pb2.PutResponse]", kv.Put)
        self.delete_range = cast(
            "Unary[rpc_pb2.DeleteRangeRequest, rpc_pb2.DeleteRangeResponse]", kv.DeleteRange
        )
        self.txn = cast("Unary[rpc_pb2.TxnRequest, rpc_pb2.TxnResponse]", kv.Txn)
        self.compact = cast(
            "Unary[rpc_pb2.CompactionRequest, rpc_pb2.CompactionResponse]", kv.Compact
        )
        lease = _RPC.LeaseStub(ch)
        self.lease_grant = cast(
            "Unary[rpc_pb2.LeaseGrantRequest, rpc_pb2.LeaseGrantResponse]", lease.LeaseGrant
        )
        self.lease_revoke = cast(
            "Unary[rpc_pb2.LeaseRevokeRequest, rpc_pb2.LeaseRevokeResponse]", lease.LeaseRevoke
        )
        self.lease_time_to_live = cast(
            "Unary[rpc_pb2.LeaseTimeToLiveRequest, rpc_pb2.LeaseTimeToLiveResponse]",
            lease.LeaseTimeToLive,
        )
        self.lease_leases = cast(
            "Unary[rpc_pb2.LeaseLeasesRequest, rpc_pb2.LeaseLeasesResponse]", lease.LeaseLeases
        )
        self.lease_keep_alive = cast(
            "Bidi[rpc_pb2.LeaseKeepAliveRequest]",
            lease.LeaseKeepAlive,
        )
        self.watch = cast("Bidi[rpc_pb2.WatchRequest]", _RPC.WatchStub(ch).Watch)
        cluster = _RPC.ClusterStub(ch)
        self.member_list = cast(
            "Unary[rpc_pb2.MemberListRequest, rpc_pb2.MemberListResponse]", cluster.MemberList
        )
        self.member_add = cast(
            "Unary[rpc_pb2.MemberAddRequest, rpc_pb2.MemberAddResponse]", cluster.MemberAdd
        )
        self.member_remove = cast(
            "Unary[rpc_pb2.MemberRemoveRequest, rpc_pb2.MemberRemoveResponse]",
            cluster.MemberRemove,
        )
        self.member_update = cast(
            "Unary[rpc_pb2.MemberUpdateRequest, rpc_pb2.MemberUpdateResponse]",
            cluster.MemberUpdate,
        )
        self.member_promote = cast(
            "Unary[rpc_pb2.MemberPromoteRequest, rpc_pb2.MemberPromoteResponse]",
            cluster.MemberPromote,
        )
        mt = _RPC.MaintenanceStub(ch)
        self.alarm = cast("Unary[rpc_pb2.AlarmRequest, rpc_pb2.AlarmResponse]", mt.Alarm)
        self.status = cast("Unary[rpc_pb2.StatusRequest, rpc_pb2.StatusResponse]", mt.Status)
        self.defragment = cast(
            "Unary[rpc_pb2.DefragmentRequest, rpc_pb2.DefragmentResponse]", mt.Defragment
        )
        self.hash_kv = cast("Unary[rpc_pb2.HashKVRequest, rpc_pb2.HashKVResponse]", mt.HashKV)
        self.snapshot = cast(
            "UnaryStream[rpc_pb2.SnapshotRequest, rpc_pb2.SnapshotResponse]", mt.Snapshot
        )
        self.move_leader = cast(
            "Unary[rpc_pb2.MoveLeaderRequest, rpc_pb2.MoveLeaderResponse]", mt.MoveLeader
        )
        self.health_check = cast(
            "Unary[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]",
            _HEALTH.HealthStub(ch).Check,
        )

    def state(self, try_to_connect: bool) -> State:
        return State(self._channel.get_state(try_to_connect).name)

    async def wait_for_state_change(self, last: State) -> None:
        await self._channel.wait_for_state_change(getattr(grpc.ChannelConnectivity, last.value))

    async def close(self) -> None:
        await self._channel.close(None)


@dataclass(frozen=True, slots=True)
class RpcStatus:
    """The status of a failed RPC: code name (as in grpc.StatusCode) and details."""

    code: str
    details: str


def rpc_status(error: BaseException) -> RpcStatus | None:
    """The status of a grpc.RpcError, None for any other exception."""
    if not isinstance(error, grpc.RpcError):
        return None
    untyped: Any = error
    code = untyped.code()
    details = untyped.details()
    return RpcStatus(getattr(code, "name", str(code)), str(details or ""))
