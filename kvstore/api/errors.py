"""The ONE table from domain errors to etcd's gRPC status codes and messages.

Every servicer funnels its failures through `abort_with`, so a client sees
exactly what etcd would send: the same gRPC code and the same message string
(etcd's Go client, and etcdctl, match on the message to rebuild its typed
errors). The codes and strings follow etcd's api/v3rpc/rpctypes/error.go.

An exception that is not in the table (nor a subclass of an entry) is a bug
on our side: it is logged with its traceback and answered as UNKNOWN with the
exception's text, which is what etcd does with an unexpected error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information

from kvstore.lease import errors as lease
from kvstore.mvcc import errors as mvcc
from kvstore.server import errors as server
from kvstore.storage.db import StorageClosed

log = logging.getLogger(__name__)

Context = Any
"""grpc.aio.ServicerContext; grpcio has no stubs, so it is Any at this edge."""

Code = Any
"""A grpc.StatusCode member."""


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    message: str | None
    """etcd's exact string; None means the exception's own text (for errors
    that etcd does not have, or whose etcd message carries details)."""
    unexpected: bool = False
    """A bug, not a client's or a cluster's condition: log it with its traceback."""


_C = grpc.StatusCode

TABLE: dict[type[BaseException], Status] = {
    # -- malformed requests (etcd checks these before proposing) -------------------
    mvcc.EmptyKey: Status(_C.INVALID_ARGUMENT, "etcdserver: key is not provided"),
    mvcc.TooManyOps: Status(_C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
    mvcc.DuplicateKeyInTxn: Status(
        _C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"
    ),
    mvcc.ValueProvided: Status(_C.INVALID_ARGUMENT, "etcdserver: value is provided"),
    mvcc.LeaseProvided: Status(_C.INVALID_ARGUMENT, "etcdserver: lease is provided"),
    server.RequestTooLarge: Status(_C.INVALID_ARGUMENT, "etcdserver: request is too large"),
    # Not an etcd error (etcd answers such a range with no keys); only raised
    # when the store runs with strict_range_end.
    mvcc.InvalidRangeEnd: Status(_C.INVALID_ARGUMENT, "etcdserver: range_end is below key"),
    # Any other malformed request (an unknown enum value, say): our own text.
    mvcc.InvalidRequest: Status(_C.INVALID_ARGUMENT, None),
    # -- the key space ----------------------------------------------------------------
    # etcd's ErrGRPCKeyNotFound is InvalidArgument, not NotFound: it is raised
    # by ignore_value/ignore_lease on an absent key and by an empty RequestOp.
    mvcc.KeyNotFound: Status(_C.INVALID_ARGUMENT, "etcdserver: key not found"),
    mvcc.Compacted: Status(
        _C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"
    ),
    mvcc.FutureRevision: Status(
        _C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"
    ),
    # No other subclass exists; a future one is still a revision out of range.
    mvcc.RevisionError: Status(_C.OUT_OF_RANGE, None),
    mvcc.LeaseNotFound: Status(_C.NOT_FOUND, "etcdserver: requested lease not found"),
    # -- leases (mvcc.LeaseNotFound above is the lessor's too) -------------------------
    lease.LeaseExists: Status(_C.FAILED_PRECONDITION, "etcdserver: lease already exists"),
    lease.LeaseTTLTooLarge: Status(_C.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
    # A leader-only lease question reached a member that is not (or no longer)
    # the leader and could not be forwarded: retryable, like "no leader".
    lease.NotPrimary: Status(_C.UNAVAILABLE, None),
    lease.LeaseError: Status(_C.UNKNOWN, None, unexpected=True),
    mvcc.StoreUsageError: Status(_C.UNKNOWN, None, unexpected=True),
    mvcc.MVCCError: Status(_C.UNKNOWN, None, unexpected=True),
    # -- the cluster ---------------------------------------------------------------------
    server.NoLeader: Status(_C.UNAVAILABLE, "etcdserver: no leader"),
    server.LeaderChanged: Status(_C.UNAVAILABLE, "etcdserver: leader changed"),
    server.RequestTimeout: Status(_C.UNAVAILABLE, "etcdserver: request timed out"),
    server.Stopped: Status(_C.UNAVAILABLE, "etcdserver: server stopped"),
    # The database closed under a request: the node is stopping.
    StorageClosed: Status(_C.UNAVAILABLE, "etcdserver: server stopped"),
    server.TooManyRequests: Status(_C.RESOURCE_EXHAUSTED, "etcdserver: too many requests"),
    server.MemberNotFound: Status(_C.NOT_FOUND, "etcdserver: member not found"),
    server.NotSupported: Status(_C.UNIMPLEMENTED, None),
    server.ServerError: Status(_C.UNKNOWN, None, unexpected=True),
}

_UNEXPECTED = Status(_C.UNKNOWN, None, unexpected=True)


def status_of(exc: BaseException) -> Status:
    """The table's entry for `exc`: its own class, else its nearest listed base."""
    for cls in type(exc).__mro__:
        status = TABLE.get(cls)
        if status is not None:
            return status
    return _UNEXPECTED


def details_of(exc: BaseException) -> tuple[Code, str]:
    """(gRPC status code, message) for `exc`, exactly as sent to the client."""
    status = status_of(exc)
    message = status.message if status.message is not None else (str(exc) or type(exc).__name__)
    return status.code, message


async def abort_with(context: Context, exc: BaseException) -> NoReturn:
    """End the RPC with the status the table gives `exc` (never returns)."""
    status = status_of(exc)
    code, message = details_of(exc)
    if status.unexpected:
        log.error("unexpected error in an API call: %s", message, exc_info=exc)
    await context.abort(code, message)
    # context.abort always raises; this keeps the NoReturn promise if it ever did not.
    raise AssertionError("grpc context.abort returned")  # pragma: no cover


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def rpc(
    fn: Callable[[S, Req, Context], Awaitable[Resp]],
) -> Callable[[S, Req, Context], Coroutine[Any, Any, Resp]]:
    """Decorate a servicer method: any exception it raises ends the RPC
    through `abort_with`. CancelledError (a BaseException) passes through,
    and so does an abort the method made itself."""

    @functools.wraps(fn)
    async def handle(self: S, request: Req, context: Context) -> Resp:
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_with(context, exc)

    return handle
