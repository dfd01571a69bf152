"""Typed domain errors of the lessor.

kvstore/api/errors.py maps each class to etcd's gRPC status code and message
(api/v3rpc/rpctypes/error.go); `etcd_message` records that string here too.

`LeaseNotFound` lives in kvstore.mvcc.errors because the MVCC store raises it
for a put naming an unknown lease; it is re-exported here so lessor callers
need one import. Every error is raised before the lessor changes anything.
"""

from __future__ import annotations

from kvstore.mvcc.errors import LeaseNotFound

__all__ = ["LeaseError", "LeaseExists", "LeaseNotFound", "LeaseTTLTooLarge", "NotPrimary"]


class LeaseError(Exception):
    """Base class of the errors raised by kvstore.lease (LeaseNotFound aside)."""

    etcd_message = ""


class LeaseExists(LeaseError):
    """A grant named an ID that is already in use."""

    etcd_message = "etcdserver: lease already exists"

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id:x} already exists")
        self.lease_id = lease_id


class LeaseTTLTooLarge(LeaseError):
    """A grant asked for more than MAX_LEASE_TTL seconds."""

    etcd_message = "etcdserver: too large lease TTL"

    def __init__(self, ttl: int) -> None:
        super().__init__(f"lease TTL {ttl} is too large")
        self.ttl = ttl


class NotPrimary(LeaseError):
    """A leader-only question (renew, time to live) was asked of a lessor
    that is not promoted: the node must forward it to the leader. Not an
    etcd client error (etcd's lessor.ErrNotPrimary never leaves the server)."""

    etcd_message = "etcdserver: not primary"
