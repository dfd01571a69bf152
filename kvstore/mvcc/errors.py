"""Typed domain errors of the MVCC store.

The API layer maps each class to a gRPC status code and etcd's message in ONE
table; `etcd_message` records the string etcd uses, as a reference for it.
Every error is raised before the store changes anything.
"""

from __future__ import annotations


class MVCCError(Exception):
    """Base class of every error raised by kvstore.mvcc."""

    etcd_message = ""


class InvalidRequest(MVCCError):
    """The request is malformed; etcd answers InvalidArgument."""


class EmptyKey(InvalidRequest):
    etcd_message = "etcdserver: key is not provided"


class InvalidRangeEnd(InvalidRequest):
    """range_end sorts below key (only raised with StoreOptions.strict_range_end;
    etcd itself answers such a range with no keys)."""

    etcd_message = "etcdserver: range_end is below key"


class TooManyOps(InvalidRequest):
    etcd_message = "etcdserver: too many operations in txn request"


class DuplicateKeyInTxn(InvalidRequest):
    etcd_message = "etcdserver: duplicate key given in txn request"


class ValueProvided(InvalidRequest):
    """ignore_value was set together with a non-empty value."""

    etcd_message = "etcdserver: value is provided"


class LeaseProvided(InvalidRequest):
    """ignore_lease was set together with a non-zero lease."""

    etcd_message = "etcdserver: lease is provided"


class KeyNotFound(MVCCError):
    """ignore_value / ignore_lease on a key that does not exist (etcd's
    ErrKeyNotFound: the flags need a previous key-value pair)."""

    etcd_message = "etcdserver: key not found"


class LeaseNotFound(MVCCError):
    etcd_message = "etcdserver: requested lease not found"

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id:x} not found")
        self.lease_id = lease_id


class RevisionError(MVCCError):
    """A revision outside what the store can serve; etcd answers OutOfRange."""

    def __init__(self, requested: int, bound: int) -> None:
        super().__init__(f"revision {requested} (bound {bound})")
        self.requested = requested
        self.bound = bound


class Compacted(RevisionError):
    """The revision is below the compaction point; `bound` is the compact revision."""

    etcd_message = "etcdserver: mvcc: required revision has been compacted"


class FutureRevision(RevisionError):
    """The revision is above the current one; `bound` is the current revision."""

    etcd_message = "etcdserver: mvcc: required revision is a future revision"


class StoreUsageError(MVCCError):
    """The caller misused the store (for example hash_kv inside a write batch)."""
