"""An asyncio client for the etcd v3 API (kvstore or etcd), with failover.

    async with Client(["127.0.0.1:2379", "127.0.0.1:22379"]) as c:
        await c.put(b"greeting", b"hello")
        resp = await c.get(b"greeting")

Endpoint failover: each request goes to the endpoint that answered last.
If it cannot be reached (no connection within `dial_timeout`, refused, or
UNAVAILABLE before the request was sent) the next endpoint is tried; when
all fail, `Unavailable` says which endpoint failed and why. Reads are also
retried on the next endpoint when a connected server answers UNAVAILABLE
("etcdserver: no leader"); writes are not, since they may have been applied.

Responses are the protobuf messages of kvstore.api.pb.rpc_pb2, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import TypeVar

from kvstore.api.pb import health_pb2, rpc_pb2
from kvstore.client._grpc import EOF, Channel, State, Unary, rpc_status
from kvstore.client.errors import (
    ClientError,
    EndpointFailure,
    RequestFailed,
    RequestTimeout,
    Unavailable,
)

Req = TypeVar("Req")
Resp = TypeVar("Resp")

DEFAULT_DIAL_TIMEOUT = 2.0
DEFAULT_COMMAND_TIMEOUT = 5.0

SortOrder = rpc_pb2.RangeRequest.SortOrder
SortTarget = rpc_pb2.RangeRequest.SortTarget


class WatchCanceled(ClientError):
    """The server cancelled a watch (for example: its start revision was compacted)."""

    def __init__(self, reason: str, compact_revision: int) -> None:
        super().__init__(reason or "watch canceled by the server")
        self.reason = reason
        self.compact_revision = compact_revision


def grpc_target(endpoint: str) -> str:
    """'http://127.0.0.1:2379' or '127.0.0.1:2379' -> '127.0.0.1:2379'."""
    for scheme in ("http://", "https://", "unix://"):
        if endpoint.startswith(scheme):
            endpoint = endpoint[len(scheme) :]
    return endpoint.rstrip("/")


def prefix_end(key: bytes) -> bytes:
    """The range end that selects every key starting with `key` (etcd's
    GetPrefixRangeEnd): the key with its last non-0xff byte incremented;
    b"\\0" (all keys) if there is none."""
    buf = bytearray(key)
    for i in range(len(buf) - 1, -1, -1):
        if buf[i] < 0xFF:
            buf[i] += 1
            return bytes(buf[: i + 1])
    return b"\0"


def _connect_reason(details: str) -> str:
    """gRPC's 'failed to connect to all addresses; last error: UNKNOWN:
    ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused'
    -> 'cannot connect: Connection refused'."""
    tail = details.rsplit(": ", 1)[-1].strip()
    return f"cannot connect: {tail}" if tail else "cannot connect"


class Client:
    """A client of one etcd-API cluster through a list of endpoints."""

    def __init__(
        self,
        endpoints: Sequence[str],
        dial_timeout: float = DEFAULT_DIAL_TIMEOUT,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.endpoints = [grpc_target(e) for e in endpoints]
        self.dial_timeout = dial_timeout
        self.command_timeout = command_timeout
        self._channels: dict[str, Channel] = {}
        self._preferred = 0

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close()

    # -- connections -------------------------------------------------------

    def _channel(self, target: str) -> Channel:
        ch = self._channels.get(target)
        if ch is None:
            ch = self._channels[target] = Channel(target)
        return ch

    def _order(self) -> list[int]:
        n = len(self.endpoints)
        return [(self._preferred + i) % n for i in range(n)]

    async def _connect(self, ch: Channel) -> tuple[bool, str | None]:
        """Wait until the channel is READY (True, None) or has failed to
        connect ((False, None): the caller's fail-fast request will say
        why), or give up after the dial timeout ((False, reason))."""
        deadline = time.monotonic() + self.dial_timeout
        state = ch.state(try_to_connect=True)
        while state not in (State.READY, State.TRANSIENT_FAILURE):
            if state is State.SHUTDOWN:
                return False, "channel closed"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(ch.wait_for_state_change(state), remaining)
            except TimeoutError:
                break
            state = ch.state(try_to_connect=True)
        if state is State.READY:
            return True, None
        if state is State.TRANSIENT_FAILURE:
            return False, None
        return False, f"no connection within the dial timeout ({self.dial_timeout:g}s)"

    async def _unary(
        self,
        pick: Callable[[Channel], Unary[Req, Resp]],
        request: Req,
        *,
        retry: bool,
    ) -> Resp:
        failures: list[EndpointFailure] = []
        for idx in self._order():
            target = self.endpoints[idx]
            ch = self._channel(target)
            ready, reason = await self._connect(ch)
            if reason is not None:
                failures.append(EndpointFailure(target, reason))
                continue
            try:
                resp = await pick(ch)(
                    request, timeout=self.command_timeout, wait_for_ready=False
                )
            except Exception as exc:
                status = rpc_status(exc)
                if status is None:
                    raise
                if status.code == "UNAVAILABLE" and not ready:
                    failures.append(EndpointFailure(target, _connect_reason(status.details)))
                    continue
                if status.code == "UNAVAILABLE" and retry:
                    failures.append(EndpointFailure(target, status.details or "unavailable"))
                    continue
                if status.code == "DEADLINE_EXCEEDED":
                    raise RequestTimeout(target, self.command_timeout) from None
                raise RequestFailed(target, status.code, status.details) from None
            self._preferred = idx
            return resp
        if failures and all(f.reason.startswith("etcdserver:") for f in failures):
            # Every server answered (e.g. "etcdserver: no leader"): say what they said.
            last = failures[-1]
            raise RequestFailed(last.endpoint, "UNAVAILABLE", last.reason)
        raise Unavailable(failures)

    async def _connected_channel(self) -> Channel:
        """A channel to the first endpoint that connects (for streams)."""
        failures: list[EndpointFailure] = []
        for idx in self._order():
            target = self.endpoints[idx]
            ch = self._channel(target)
            ready, reason = await self._connect(ch)
            if ready:
                self._preferred = idx
                return ch
            failures.append(EndpointFailure(target, reason or "cannot connect"))
        raise Unavailable(failures)

    def _stream_error(self, ch: Channel, exc: Exception) -> ClientError:
        status = rpc_status(exc)
        if status is None:
            raise exc
        if status.code == "UNAVAILABLE" and not status.details.startswith("etcdserver:"):
            return Unavailable([EndpointFailure(ch.target, status.details or "unavailable")])
        return RequestFailed(ch.target, status.code, status.details)

    # -- KV ----------------------------------------------------------------

    async def put(
        self,
        key: bytes,
        value: bytes,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> rpc_pb2.PutResponse:
        req = rpc_pb2.PutRequest(
            key=key,
            value=value,
            lease=lease,
            prev_kv=prev_kv,
            ignore_value=ignore_value,
            ignore_lease=ignore_lease,
        )
        return await self.put_request(req)

    async def put_request(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        return await self._unary(lambda c: c.put, request, retry=False)

    async def get(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> rpc_pb2.RangeResponse:
        req = rpc_pb2.RangeRequest(
            key=key,
            range_end=range_end,
            revision=revision,
            limit=limit,
            sort_order=sort_order,
            sort_target=sort_target,
            serializable=serializable,
            keys_only=keys_only,
            count_only=count_only,
        )
        return await self.range(req)

    async def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        return await self._unary(lambda c: c.range, request, retry=True)

    async def delete(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> rpc_pb2.DeleteRangeResponse:
        req = rpc_pb2.DeleteRangeRequest(key=key, range_end=range_end, prev_kv=prev_kv)
        return await self.delete_request(req)

    async def delete_request(
        self, request: rpc_pb2.DeleteRangeRequest
    ) -> rpc_pb2.DeleteRangeResponse:
        return await self._unary(lambda c: c.delete_range, request, retry=False)

    async def txn(self, request: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        return await self._unary(lambda c: c.txn, request, retry=False)

    async def compact(self, revision: int, *, physical: bool = False) -> rpc_pb2.CompactionResponse:
        req = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        return await self._unary(lambda c: c.compact, req, retry=False)

    # -- Maintenance -------------------------------------------------------

    async def status(self) -> rpc_pb2.StatusResponse:
        return await self._unary(lambda c: c.status, rpc_pb2.StatusRequest(), retry=True)

    async def hash_kv(self, revision: int = 0) -> rpc_pb2.HashKVResponse:
        req = rpc_pb2.HashKVRequest(revision=revision)
        return await self._unary(lambda c: c.hash_kv, req, retry=True)

    async def defragment(self) -> rpc_pb2.DefragmentResponse:
        req = rpc_pb2.DefragmentRequest()
        return await self._unary(lambda c: c.defragment, req, retry=False)

    async def alarm(
        self,
        action: rpc_pb2.AlarmRequest.AlarmAction,
        member_id: int = 0,
        alarm: rpc_pb2.AlarmType = rpc_pb2.NONE,
    ) -> rpc_pb2.AlarmResponse:
        req = rpc_pb2.AlarmRequest(action=action, memberID=member_id, alarm=alarm)
        return await self._unary(lambda c: c.alarm, req, retry=False)

    async def alarm_list(self) -> rpc_pb2.AlarmResponse:
        return await self.alarm(rpc_pb2.AlarmRequest.GET)

    async def move_leader(self, target_id: int) -> rpc_pb2.MoveLeaderResponse:
        req = rpc_pb2.MoveLeaderRequest(targetID=target_id)
        return await self._unary(lambda c: c.move_leader, req, retry=False)

    async def health(self, service: str = "") -> health_pb2.HealthCheckResponse:
        req = health_pb2.HealthCheckRequest(service=service)
        return await self._unary(lambda c: c.health_check, req, retry=True)

    async def snapshot(self) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        """The backend snapshot, chunk by chunk (no command timeout: it may be large)."""
        ch = await self._connected_channel()
        call = ch.snapshot(rpc_pb2.SnapshotRequest(), timeout=None, wait_for_ready=False)
        try:
            async for chunk in call:
                yield chunk
        except Exception as exc:
            raise self._stream_error(ch, exc) from None
        finally:
            call.cancel()

    # -- Cluster -----------------------------------------------------------

    async def member_list(self) -> rpc_pb2.MemberListResponse:
        req = rpc_pb2.MemberListRequest()
        return await self._unary(lambda c: c.member_list, req, retry=True)

    async def member_add(
        self, peer_urls: Sequence[str], *, is_learner: bool = False
    ) -> rpc_pb2.MemberAddResponse:
        req = rpc_pb2.MemberAddRequest(peerURLs=list(peer_urls), isLearner=is_learner)
        return await self._unary(lambda c: c.member_add, req, retry=False)

    async def member_remove(self, member_id: int) -> rpc_pb2.MemberRemoveResponse:
        req = rpc_pb2.MemberRemoveRequest(ID=member_id)
        return await self._unary(lambda c: c.member_remove, req, retry=False)

    async def member_update(
        self, member_id: int, peer_urls: Sequence[str]
    ) -> rpc_pb2.MemberUpdateResponse:
        req = rpc_pb2.MemberUpdateRequest(ID=member_id, peerURLs=list(peer_urls))
        return await self._unary(lambda c: c.member_update, req, retry=False)

    async def member_promote(self, member_id: int) -> rpc_pb2.MemberPromoteResponse:
        req = rpc_pb2.MemberPromoteRequest(ID=member_id)
        return await self._unary(lambda c: c.member_promote, req, retry=False)

    # -- Lease -------------------------------------------------------------

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> rpc_pb2.LeaseGrantResponse:
        req = rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=lease_id)
        return await self._unary(lambda c: c.lease_grant, req, retry=False)

    async def lease_revoke(self, lease_id: int) -> rpc_pb2.LeaseRevokeResponse:
        req = rpc_pb2.LeaseRevokeRequest(ID=lease_id)
        return await self._unary(lambda c: c.lease_revoke, req, retry=False)

    async def lease_time_to_live(
        self, lease_id: int, *, keys: bool = False
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        req = rpc_pb2.LeaseTimeToLiveRequest(ID=lease_id, keys=keys)
        return await self._unary(lambda c: c.lease_time_to_live, req, retry=True)

    async def lease_leases(self) -> rpc_pb2.LeaseLeasesResponse:
        req = rpc_pb2.LeaseLeasesRequest()
        return await self._unary(lambda c: c.lease_leases, req, retry=True)

    async def lease_keep_alive_once(self, lease_id: int) -> rpc_pb2.LeaseKeepAliveResponse:
        async for resp in self._keep_alive(lease_id, once=True):
            return resp
        raise RequestFailed(self.endpoints[self._preferred], "UNAVAILABLE", "keepalive closed")

    async def lease_keep_alive(
        self, lease_id: int
    ) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        """Refresh the lease every TTL/3 seconds, yielding each answer; ends
        after an answer with TTL <= 0 (the lease expired or was revoked)."""
        async for resp in self._keep_alive(lease_id, once=False):
            yield resp

    async def _keep_alive(
        self, lease_id: int, *, once: bool
    ) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        ch = await self._connected_channel()
        call = ch.lease_keep_alive(wait_for_ready=False)
        try:
            while True:
                try:
                    await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
                    msg = await asyncio.wait_for(call.read(), self.command_timeout)
                except TimeoutError:
                    raise RequestTimeout(ch.target, self.command_timeout) from None
                except ClientError:
                    raise
                except Exception as exc:
                    raise self._stream_error(ch, exc) from None
                if msg is EOF or not isinstance(msg, rpc_pb2.LeaseKeepAliveResponse):
                    return
                yield msg
                if once or msg.TTL <= 0:
                    return
                # A refresh timer, as etcd's client: a third of the TTL.
                await asyncio.sleep(max(msg.TTL / 3.0, 0.5))
        finally:
            call.cancel()

    # -- Watch -------------------------------------------------------------

    async def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
        progress_notify: bool = False,
        no_put: bool = False,
        no_delete: bool = False,
    ) -> AsyncIterator[rpc_pb2.WatchResponse]:
        """Yield the watch responses with events (and progress notifications)
        until the caller stops iterating; raises WatchCanceled if the server
        cancels the watch."""
        filters: list[rpc_pb2.WatchCreateRequest.FilterType] = []
        if no_put:
            filters.append(rpc_pb2.WatchCreateRequest.NOPUT)
        if no_delete:
            filters.append(rpc_pb2.WatchCreateRequest.NODELETE)
        create = rpc_pb2.WatchCreateRequest(
            key=key,
            range_end=range_end,
            start_revision=start_revision,
            prev_kv=prev_kv,
            progress_notify=progress_notify,
            filters=filters,
        )
        ch = await self._connected_channel()
        call = ch.watch(wait_for_ready=False)
        try:
            try:
                await call.write(rpc_pb2.WatchRequest(create_request=create))
            except Exception as exc:
                raise self._stream_error(ch, exc) from None
            while True:
                try:
                    msg = await call.read()
                except Exception as exc:
                    raise self._stream_error(ch, exc) from None
                if msg is EOF or not isinstance(msg, rpc_pb2.WatchResponse):
                    raise RequestFailed(ch.target, "UNAVAILABLE", "watch stream closed")
                if msg.canceled:
                    raise WatchCanceled(msg.cancel_reason, msg.compact_revision)
                if msg.created and not msg.events:
                    continue
                yield msg
        finally:
            call.cancel()
