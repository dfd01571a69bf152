"""Value types of the watch hub (kvstore.mvcc.watch): watchers, what they
are sent, and the errors a watch create can meet.

A Watcher's `next_rev` is the lowest revision it may still be sent: every
event below it has been handed to its sink (or was never its business). For
a synced watcher the hub's notified revision + 1 is also a lower bound; the
hub does not rewrite `next_rev` of every synced watcher on each write (that
would cost O(all watchers)), so read it through WatchHub, not directly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from kvstore.mvcc.errors import MVCCError
from kvstore.mvcc.types import Event, EventType


class WatchFilter(enum.IntEnum):
    """etcd's WatchCreateRequest.FilterType: which events a watcher drops."""

    NOPUT = 0
    NODELETE = 1


_DROPS = {WatchFilter.NOPUT: EventType.PUT, WatchFilter.NODELETE: EventType.DELETE}


def dropped_types(filters: tuple[WatchFilter, ...]) -> frozenset[EventType]:
    return frozenset(_DROPS[f] for f in filters)


class WatchError(MVCCError):
    """A watch create the hub refuses; etcd answers created=true, canceled=true
    with `cancel_reason` = etcd_message (and watch_id -1)."""


class EmptyWatcherRange(WatchError):
    etcd_message = "mvcc: watcher range is empty"


class DuplicateWatchID(WatchError):
    """Raised by the API layer (ids are per stream), listed here with its kin."""

    etcd_message = "mvcc: duplicate watch ID provided on the WatchStream"


class State(enum.Enum):
    SYNCED = "synced"
    """Notified as writes become durable."""
    UNSYNCED = "unsynced"
    """Behind the notified revision: catches up from LevelDB in sync_pending."""
    CANCELLED = "cancelled"
    """Gone: cancelled by its owner, or by compaction (compact_revision > 0)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One batch for a sink.

    - events non-empty: whole revisions in order (never a split revision);
      `revision` is the hub's revision for the response header.
    - no events, compact_revision 0: a progress notification; every later
      event for this watcher has a revision above `revision`.
    - compact_revision > 0: the watcher needed history below the compaction
      point and is cancelled (revision is 0, as in etcd's response).
    """

    events: list[Event] = field(default_factory=list)
    revision: int = 0
    compact_revision: int = 0


Sink = Callable[["Watcher", Delivery], bool]
"""Takes a delivery without blocking; False means "full, nothing taken"."""


class Watcher:
    """One watch: a key or a range, and where it is in the history."""

    __slots__ = (
        "compact_revision",
        "drop",
        "fragment",
        "hi",
        "key",
        "lo",
        "next_rev",
        "paused",
        "prev_kv",
        "progress_due",
        "progress_notify",
        "range_end",
        "sink",
        "state",
        "watch_id",
    )

    def __init__(
        self,
        key: bytes,
        range_end: bytes,
        next_rev: int,
        sink: Sink,
        *,
        watch_id: int = 0,
        prev_kv: bool = False,
        filters: tuple[WatchFilter, ...] = (),
        progress_notify: bool = False,
        fragment: bool = False,
    ) -> None:
        self.key = key
        self.range_end = range_end
        # The key interval [lo, hi); hi None: unbounded. A single key has
        # range_end b"" and is indexed by key alone.
        self.lo = key
        self.hi: bytes | None = None if range_end == b"\0" else range_end
        self.next_rev = next_rev
        self.sink = sink
        self.watch_id = watch_id
        self.prev_kv = prev_kv
        self.drop = dropped_types(filters)
        self.progress_notify = progress_notify
        self.progress_due = True
        self.fragment = fragment
        self.state = State.UNSYNCED
        self.paused = False
        """The sink said full: skipped by catch-up until WatchHub.resume()."""
        self.compact_revision = 0

    @property
    def single_key(self) -> bool:
        return not self.range_end

    def covers(self, key: bytes) -> bool:
        if self.single_key:
            return key == self.key
        return self.lo <= key and (self.hi is None or key < self.hi)

    def __repr__(self) -> str:
        return (
            f"Watcher(id={self.watch_id}, key={self.key!r}, range_end={self.range_end!r}, "
            f"next_rev={self.next_rev}, state={self.state.value})"
        )
