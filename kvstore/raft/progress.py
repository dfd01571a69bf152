"""What the leader knows of each follower's log, and how it paces appends.

A follower's Progress is in one of three states:

- PROBE: the leader does not know where the follower's log matches. It sends
  one append at a time and waits for the answer (or a heartbeat response)
  before sending the next, walking `next` back on each rejection.
- REPLICATE: the logs match up to `match`. The leader streams appends
  optimistically, advancing `next` as it sends, bounded by an in-flight
  window of unacknowledged append messages.
- SNAPSHOT: the entries the follower needs are compacted away; a snapshot
  is on its way and nothing else is sent until it is reported done.

Invariant: match < next.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """A FIFO of the last indexes of append messages not yet acknowledged."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[int] = deque()

    def full(self) -> bool:
        return len(self._queue) >= self.capacity

    def add(self, last_index: int) -> None:
        if self.full():
            raise AssertionError("inflights: add to a full window")
        self._queue.append(last_index)

    def free_le(self, index: int) -> None:
        """Release every message whose last index is <= index."""
        while self._queue and self._queue[0] <= index:
            self._queue.popleft()

    def free_first(self) -> None:
        if self._queue:
            self._queue.popleft()

    def reset(self) -> None:
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


@dataclass(slots=True)
class Progress:
    match: int
    next: int
    max_inflight: int
    is_learner: bool = False
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    pending_snapshot: int = 0
    recent_active: bool = False
    inflights: Inflights = field(init=False)

    def __post_init__(self) -> None:
        self.inflights = Inflights(self.max_inflight)

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, index: int) -> bool:
        """An append up to `index` was accepted. Returns False if stale."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, hint: int) -> bool:
        """An append at `rejected` was refused; the follower's last index is
        `hint`. Returns False if the rejection is stale (out of order)."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint + 1), self.match + 1, 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True
