"""An asyncio client for the etcd v3 API: kvstore's own CLI, tests and
benchmarks use it, and it works against real etcd too."""

from kvstore.client.client import Client, WatchCanceled, grpc_target, prefix_end
from kvstore.client.errors import (
    ClientError,
    EndpointFailure,
    RequestFailed,
    RequestTimeout,
    Unavailable,
)

__all__ = [
    "Client",
    "ClientError",
    "EndpointFailure",
    "RequestFailed",
    "RequestTimeout",
    "Unavailable",
    "WatchCanceled",
    "grpc_target",
    "prefix_end",
]
