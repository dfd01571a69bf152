"""Domain errors of the node runtime.

The API layer maps each to etcd's gRPC status and message in ONE table
(kvstore/api/errors.py); `etcd_message` records etcd's string for reference.
"""

from __future__ import annotations


class ServerError(Exception):
    """Base class of every error raised by kvstore.server."""

    etcd_message = ""


class NoLeader(ServerError):
    """No leader is known, so the request cannot be ordered (Unavailable)."""

    etcd_message = "etcdserver: no leader"


class LeaderChanged(ServerError):
    """The leader changed while the request was in flight; its fate is
    unknown until the new leader's log is read (Unavailable)."""

    etcd_message = "etcdserver: leader changed"


class RequestTimeout(ServerError):
    """The request was not applied within the request timeout (Unavailable)."""

    etcd_message = "etcdserver: request timed out"


class TooManyRequests(ServerError):
    """Too many proposals are waiting to be applied (ResourceExhausted)."""

    etcd_message = "etcdserver: too many requests"


class RequestTooLarge(ServerError):
    """The encoded request exceeds --max-request-bytes (InvalidArgument)."""

    etcd_message = "etcdserver: request is too large"


class Stopped(ServerError):
    """The node is shutting down (Unavailable)."""

    etcd_message = "etcdserver: server stopped"


class MemberNotFound(ServerError):
    etcd_message = "etcdserver: member not found"


class NotSupported(ServerError):
    """A feature this version does not provide yet (Unimplemented)."""
