"""Assemble the client-facing grpc.aio server.

    server = build_grpc_server(backend, ["127.0.0.1:2379"], max_request_bytes)
    await server.start()
    ...
    await server.stop(grace)

`create_grpc_server` + `bind` do the same in two steps for callers that need
the ports actually bound (listen on port 0, then read the port).

gRPC's own receive limit is set to max_request_bytes plus 512 KiB of room
for gRPC overhead (etcd's choice), so a request somewhat over the limit still
reaches our check and gets etcd's "request is too large" rather than a gRPC
RESOURCE_EXHAUSTED from the transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information

from kvstore.api.backend import KVBackend
from kvstore.api.cluster import ClusterService
from kvstore.api.errors import Context
from kvstore.api.health import HealthService
from kvstore.api.kv import DEFAULT_MAX_TXN_OPS, KVService
from kvstore.api.lease import LeaseBackend, LeaseService
from kvstore.api.maintenance import MaintenanceService
from kvstore.api.pb import health_pb2_grpc, rpc_pb2_grpc
from kvstore.api.watch import WatchBackend, WatchService
from kvstore.server.errors import NotSupported

GRPC_OVERHEAD_BYTES = 512 * 1024
MAX_SEND_BYTES = 2**31 - 1
"""etcd sends responses of any size (math.MaxInt32 in Go)."""

SERVICES = (
    "etcdserverpb.KV",
    "etcdserverpb.Watch",
    "etcdserverpb.Lease",
    "etcdserverpb.Cluster",
    "etcdserverpb.Maintenance",
    "etcdserverpb.Auth",
)

Server = Any
"""grpc.aio.Server (Any: grpcio has no stubs)."""


async def _unimplemented(service: str, context: Context) -> None:
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED, f"etcdserver: {service} is not supported by kvstore yet"
    )


class _NoWatchService(rpc_pb2_grpc.WatchServicer):
    """The Watch service of a server built without a WatchBackend."""

    async def Watch(self, request_iterator: object, context: Context) -> None:
        await _unimplemented("watch", context)


class _NoLeaseService(rpc_pb2_grpc.LeaseServicer):
    """The Lease service of a server built without a LeaseBackend."""

    async def LeaseGrant(self, request: object, context: Context) -> None:
        await _unimplemented("lease", context)

    async def LeaseRevoke(self, request: object, context: Context) -> None:
        await _unimplemented("lease", context)

    async def LeaseKeepAlive(self, request_iterator: object, context: Context) -> None:
        await _unimplemented("lease", context)

    async def LeaseTimeToLive(self, request: object, context: Context) -> None:
        await _unimplemented("lease", context)

    async def LeaseLeases(self, request: object, context: Context) -> None:
        await _unimplemented("lease", context)


_AUTH_METHODS = (
    "AuthEnable",
    "AuthDisable",
    "AuthStatus",
    "Authenticate",
    "UserAdd",
    "UserGet",
    "UserList",
    "UserDelete",
    "UserChangePassword",
    "UserGrantRole",
    "UserRevokeRole",
    "RoleAdd",
    "RoleGet",
    "RoleList",
    "RoleDelete",
    "RoleGrantPermission",
    "RoleRevokePermission",
)


class AuthService(rpc_pb2_grpc.AuthServicer):
    """Every Auth method (17 of them) answers UNIMPLEMENTED. The generated
    base class does too, but its synchronous methods run on a thread and
    the client reads "Unexpected <class 'NotImplementedError'>: Method not
    implemented!"; these say what is missing."""


async def _auth_unimplemented(self: AuthService, request: object, context: Context) -> None:
    await _unimplemented("auth", context)


for _name in _AUTH_METHODS:
    setattr(AuthService, _name, _auth_unimplemented)


def _add(register: Any, servicer: object, server: Server) -> None:
    """Call a generated add_*Servicer_to_server (untyped: the *_pb2_grpc
    modules have no stubs); the one place this module touches them."""
    register(servicer, server)


def _leader_known(backend: KVBackend) -> Callable[[], bool]:
    return lambda: backend.status().leader != 0


def create_grpc_server(
    backend: KVBackend,
    max_request_bytes: int,
    *,
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
    is_serving: Callable[[], bool] | None = None,
    health_watch_interval: float = 1.0,
    lease: LeaseBackend | None = None,
    watch: WatchBackend | None = None,
) -> Server:
    """A grpc.aio server with every servicer registered and no port bound.
    Without a `lease` (`watch`) backend the Lease (Watch) service answers
    UNIMPLEMENTED."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_request_bytes + GRPC_OVERHEAD_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            # gRPC binds with SO_REUSEPORT by default: a second server on a
            # port already in use would then share it silently. Refuse it.
            ("grpc.so_reuseport", 0),
        ]
    )
    _add(rpc_pb2_grpc.add_KVServicer_to_server, KVService(backend, max_txn_ops), server)
    _add(rpc_pb2_grpc.add_MaintenanceServicer_to_server, MaintenanceService(backend), server)
    _add(rpc_pb2_grpc.add_ClusterServicer_to_server, ClusterService(backend), server)
    watch_servicer = WatchService(watch) if watch is not None else _NoWatchService()
    _add(rpc_pb2_grpc.add_WatchServicer_to_server, watch_servicer, server)
    lease_servicer = LeaseService(lease) if lease is not None else _NoLeaseService()
    _add(rpc_pb2_grpc.add_LeaseServicer_to_server, lease_servicer, server)
    _add(rpc_pb2_grpc.add_AuthServicer_to_server, AuthService(), server)
    health = HealthService(
        is_serving if is_serving is not None else _leader_known(backend),
        SERVICES,
        health_watch_interval,
    )
    _add(health_pb2_grpc.add_HealthServicer_to_server, health, server)
    return server


def listen_address(url: str) -> str:
    """ "host:port" from "host:port" or "http://host:port" (as in
    --listen-client-urls); TLS is not offered yet."""
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    if scheme != "http":
        raise NotSupported(f"listen URL {url!r}: only http:// is supported")
    return rest.rstrip("/")


def bind(server: Server, addresses: Iterable[str]) -> list[int]:
    """Bind each address (plaintext); the ports actually bound, in order."""
    ports: list[int] = []
    for address in addresses:
        addr = listen_address(address)
        port: int = server.add_insecure_port(addr)
        if port == 0:
            raise OSError(f"cannot listen on {addr}")
        ports.append(port)
    return ports


def build_grpc_server(
    backend: KVBackend,
    listen_addresses: Iterable[str],
    max_request_bytes: int,
    *,
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
    is_serving: Callable[[], bool] | None = None,
    lease: LeaseBackend | None = None,
    watch: WatchBackend | None = None,
) -> Server:
    """`create_grpc_server` bound to `listen_addresses`, not yet started."""
    server = create_grpc_server(
        backend,
        max_request_bytes,
        max_txn_ops=max_txn_ops,
        is_serving=is_serving,
        lease=lease,
        watch=watch,
    )
    bind(server, listen_addresses)
    return server
