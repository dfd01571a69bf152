"""What the gRPC servicers need from a node.

kvstore.server.Node implements this; tests may substitute a fake. Every
method raises the typed domain errors of kvstore.mvcc.errors and
kvstore.server.errors, which kvstore/api/errors.py maps to gRPC statuses.
"""

from __future__ import annotations

from typing import Protocol

from kvstore.mvcc.types import (
    CompactResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    HashKVResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)
from kvstore.server.views import Header, Member, NodeStatus


class KVBackend(Protocol):
    def header(self, revision: int | None = None) -> Header:
        """The response header; revision None means the current revision."""
        ...

    async def range(self, req: RangeRequest, serializable: bool) -> RangeResponse:
        """A linearizable read (ReadIndex) unless serializable."""
        ...

    async def put(self, req: PutRequest) -> PutResponse: ...

    async def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse: ...

    async def txn(self, req: TxnRequest) -> TxnResponse:
        """A txn with writes goes through Raft; a read-only txn is served
        like a linearizable range."""
        ...

    async def compact(self, revision: int, physical: bool) -> CompactResponse: ...

    async def hash_kv(self, revision: int) -> HashKVResponse: ...

    async def hash(self) -> int:
        """Maintenance.Hash: a hash of the whole key space (all revisions)."""
        ...

    def status(self) -> NodeStatus: ...

    def members(self) -> list[Member]: ...

    @property
    def max_request_bytes(self) -> int: ...
