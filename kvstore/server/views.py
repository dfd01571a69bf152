"""Read-only views of a node that the API layer renders into responses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What Maintenance.Status reports (etcd's StatusResponse fields)."""

    version: str
    db_size: int
    db_size_in_use: int
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    is_learner: bool = False
    errors: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Header:
    """etcd's ResponseHeader: who answered, at which revision and term."""

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int
