"""Linearizable reads, batched over ReadIndex.

Reads queue here. The node's driver asks the Raft core for one ReadIndex at
a time for every read queued so far; when the answer (a ReadState) arrives,
those reads wait until the applied index reaches it, then run. Reads that
queue while a ReadIndex is in flight share the next one, so a burst costs
two heartbeat rounds rather than one per read.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from kvstore.raft.errors import ReadIndexDropped
from kvstore.raft.rawnode import RawNode
from kvstore.raft.types import ReadState

Waiter = asyncio.Future[None]


@dataclass(slots=True)
class _InFlight:
    waiters: list[Waiter] = field(default_factory=list)
    issued_at: float = 0.0


class ReadBatcher:
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        """Seconds after which an unanswered ReadIndex is asked again (its
        answer may have been lost with a leader change or a message)."""
        self._queue: list[Waiter] = []
        self._in_flight: dict[bytes, _InFlight] = {}
        self._confirmed: list[tuple[int, list[Waiter]]] = []
        self._ctx = itertools.count(1)

    def add(self, waiter: Waiter) -> None:
        self._queue.append(waiter)

    def issue(self, raw: RawNode, now: float, retry: bool) -> None:
        """Ask for a ReadIndex covering every queued read, if none is in
        flight; with `retry`, first requeue reads whose answer is overdue."""
        if retry:
            for ctx, batch in list(self._in_flight.items()):
                if now - batch.issued_at > self.retry_after:
                    del self._in_flight[ctx]
                    self._queue.extend(w for w in batch.waiters if not w.done())
        waiters = [w for w in self._queue if not w.done()]
        self._queue = waiters
        if not waiters or self._in_flight:
            return
        ctx = next(self._ctx).to_bytes(8, "big")
        try:
            raw.read_index(ctx)
        except ReadIndexDropped:
            return  # no leader known: try again next round
        self._queue = []
        self._in_flight[ctx] = _InFlight(waiters, now)

    def confirmed(self, rs: ReadState) -> None:
        batch = self._in_flight.pop(rs.context, None)
        if batch is not None:
            self._confirmed.append((rs.index, batch.waiters))

    def release(self, applied: int) -> None:
        """Let run every read whose ReadIndex the applied index has reached."""
        if not self._confirmed:
            return
        keep: list[tuple[int, list[Waiter]]] = []
        for index, waiters in self._confirmed:
            if index <= applied:
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
            else:
                keep.append((index, waiters))
        self._confirmed = keep

    def drain(self) -> list[Waiter]:
        """Remove and return every waiting read (the node is stopping)."""
        waiters = list(self._queue)
        for batch in self._in_flight.values():
            waiters += batch.waiters
        for _, ws in self._confirmed:
            waiters += ws
        self._queue, self._in_flight, self._confirmed = [], {}, []
        return waiters
