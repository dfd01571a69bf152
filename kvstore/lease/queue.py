"""A deadline queue: a min-heap of (deadline, lease id) with lazy deletion.

`set` replaces an ID's deadline by pushing a new entry; the superseded one
stays in the heap until it reaches the top, where it is recognised as stale
(its deadline is no longer the one recorded for its ID) and dropped. The
heap is rebuilt when stale entries outnumber live ones, so its size stays
O(live IDs) however often deadlines move (every keepalive moves one).
Ties break on the ID, so the order is deterministic.
"""

from __future__ import annotations

import heapq


class DeadlineQueue:
    __slots__ = ("_at", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._at: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._at

    def deadline(self, lease_id: int) -> float | None:
        return self._at.get(lease_id)

    def set(self, lease_id: int, deadline: float) -> None:
        if self._at.get(lease_id) == deadline:
            return
        self._at[lease_id] = deadline
        heapq.heappush(self._heap, (deadline, lease_id))
        if len(self._heap) > 2 * len(self._at) + 64:
            self._heap = [(at, i) for i, at in self._at.items()]
            heapq.heapify(self._heap)

    def remove(self, lease_id: int) -> None:
        self._at.pop(lease_id, None)

    def clear(self) -> None:
        self._heap.clear()
        self._at.clear()

    def pop_due(self, now: float, limit: int) -> list[int]:
        """Remove and return up to `limit` IDs whose deadline is <= now,
        earliest first."""
        heap, at = self._heap, self._at
        out: list[int] = []
        while heap and len(out) < limit and heap[0][0] <= now:
            deadline, lease_id = heapq.heappop(heap)
            if at.get(lease_id) != deadline:
                continue  # superseded or removed
            del at[lease_id]
            out.append(lease_id)
        return out
