"""Typed errors of the Raft core.

Two families, as in h11: `RaftUsageError` means the caller broke the API
contract (a bug in the runtime); the rest describe a normal refusal that the
caller reports to its client.
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error raised by kvstore.raft."""


class RaftUsageError(RaftError):
    """The caller misused the core, for example advance() without ready()."""


class ProposalDropped(RaftError):
    """A proposal was not accepted; `reason` says why (no leader, transfer...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReadIndexDropped(RaftError):
    """A ReadIndex request could not be started (no leader is known)."""


class ConfChangeRejected(ProposalDropped):
    """A membership change was refused (another is pending, or it is invalid)."""


class StorageError(RaftError):
    """Base class of the errors a Storage implementation raises."""


class LogCompacted(StorageError):
    """The requested index lies below the first index that is still stored."""


class LogUnavailable(StorageError):
    """The requested index lies above the last index that is stored."""


class SnapshotOutOfDate(StorageError):
    """A snapshot older than the one already held was offered."""
