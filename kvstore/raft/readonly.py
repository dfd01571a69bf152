"""The leader's queue of ReadIndex requests awaiting a quorum of heartbeats.

A request records the commit index at the moment it arrived. It is safe to
serve once a quorum of voters has acknowledged a heartbeat that carried the
request's context (or any later request's context), since then no other
leader can have committed anything the request does not see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvstore.raft.types import NONE


@dataclass(slots=True)
class ReadRequest:
    index: int
    context: bytes
    frm: int
    """Who asked: NONE for a local read, or the follower's id."""
    acks: set[int] = field(default_factory=set)


class ReadOnlyQueue:
    def __init__(self) -> None:
        self._pending: dict[bytes, ReadRequest] = {}

    def add(self, index: int, context: bytes, frm: int = NONE) -> ReadRequest | None:
        """Queue a request; a duplicate context is ignored (returns None)."""
        if context in self._pending:
            return None
        req = ReadRequest(index, context, frm)
        self._pending[context] = req
        return req

    def ack(self, context: bytes, node: int) -> ReadRequest | None:
        req = self._pending.get(context)
        if req is None:
            return None
        req.acks.add(node)
        return req

    def release_through(self, context: bytes) -> list[ReadRequest]:
        """Pop every request queued up to and including `context`."""
        if context not in self._pending:
            return []
        released: list[ReadRequest] = []
        for ctx in list(self._pending):
            released.append(self._pending.pop(ctx))
            if ctx == context:
                break
        return released

    def last_context(self) -> bytes | None:
        if not self._pending:
            return None
        return next(reversed(self._pending))

    def __len__(self) -> int:
        return len(self._pending)

    def clear(self) -> None:
        self._pending.clear()
