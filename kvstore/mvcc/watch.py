"""The watch hub: hands the store's changes to watchers, etcd's way.

Pure logic: no asyncio, no gRPC, no clock (time comes in as `now`). The
owner (the node) drives it from one thread:

    hub = WatchHub(store)                  # turns on store.capture_events()
    ...after each Ready's batch is durable:
    hub.notify(store.take_events(), store.current_revision)
    hub.sync_pending()                     # also on a timer, e.g. every tick
    hub.progress_all(now)                  # on a timer, for progress_notify
    ...after installing a snapshot (a new MVCCStore):
    hub.restore(new_store)

Two groups of watchers, as in etcd's watchable store:

- synced: has been sent every event up to the hub's notified revision.
  `notify` visits only the synced watchers whose key or range covers a
  changed key (kvstore.mvcc.watch_index), and hands each one revision's
  events in one Delivery. A sink that reports "full" moves its watcher to
  the unsynced group, paused, with next_rev = the revision it refused.
- unsynced: started in the past, or was slow. `sync_pending` reads committed
  records from LevelDB in bounded batches (whole revisions only) and serves
  every unsynced watcher that batch can advance; a watcher that reaches the
  notified revision joins the synced group. No gap, no duplicate: a watcher
  is in exactly one group and next_rev only moves past what its sink took.

Example: the store is at revision 10, compacted at 4.
    watch(b"a", b"", 0)   -> synced, next_rev 11: sees writes from 11 on
    watch(b"a", b"", 6)   -> unsynced, next_rev 6: sync_pending reads 6..10,
                             hands over the events on "a", joins synced
    watch(b"a", b"", 3)   -> unsynced; sync_pending finds 3 < 4 and sends
                             Delivery(compact_revision=4): cancelled
    watch(b"a", b"", 15)  -> synced, but events below 15 are not sent
As in etcd, a start revision equal to the compact revision is accepted,
although a delete made at exactly that revision is no longer on disk.
"""

from __future__ import annotations

from collections.abc import Iterable

from kvstore.mvcc.errors import RevisionError
from kvstore.mvcc.store import MVCCStore
from kvstore.mvcc.types import Event, KeyValue, RangeRequest
from kvstore.mvcc.watch_index import WatcherGroup
from kvstore.mvcc.watch_types import (
    Delivery,
    EmptyWatcherRange,
    Sink,
    State,
    Watcher,
    WatchFilter,
)

DEFAULT_BATCH_EVENTS = 1000
DEFAULT_PROGRESS_INTERVAL = 600.0
"""etcd's default progress notify interval: ten minutes."""

PrevCache = dict[int, Event]


class WatchHub:
    def __init__(
        self,
        store: MVCCStore,
        *,
        batch_events: int = DEFAULT_BATCH_EVENTS,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    ) -> None:
        self._store = store
        store.capture_events()
        self._rev = store.current_revision
        self._synced = WatcherGroup()
        self._unsynced = WatcherGroup()
        self._progress: dict[Watcher, None] = {}
        self._next_progress: float | None = None
        self._turn = 0
        self.batch_events = batch_events
        self.progress_interval = progress_interval
        self.visits = 0
        """Synced watchers looked at by notify (indexing tests count these)."""

    # -- state --------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The last notified revision: every synced watcher has been sent
        every event up to it."""
        return self._rev

    @property
    def synced(self) -> int:
        return len(self._synced)

    @property
    def unsynced(self) -> int:
        return len(self._unsynced)

    def delivered_through(self, w: Watcher) -> int:
        """Every event of `w` up to this revision has been handed to its sink."""
        if w.state is State.SYNCED:
            return self._rev
        return min(self._rev, w.next_rev - 1)

    def progress_revision(self, watchers: Iterable[Watcher]) -> int:
        """The revision a progress response covering `watchers` may promise:
        their later events all have higher revisions."""
        rev = self._rev
        for w in watchers:
            if w.state is State.UNSYNCED:
                rev = min(rev, w.next_rev - 1)
        return rev

    # -- watchers -------------------------------------------------------------------------

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        *,
        sink: Sink,
        watch_id: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        progress_notify: bool = False,
        fragment: bool = False,
    ) -> Watcher:
        """A new watcher on [key, range_end) (etcd's conventions: b"" is the
        one key, b"\\0" every key >= key; an empty key means b"\\0").
        start_revision 0: from the next revision. Never calls the sink."""
        if not key:
            key = b"\0"
        if range_end and range_end != b"\0" and key >= range_end:
            raise EmptyWatcherRange(f"{key!r} >= {range_end!r}")
        rev = self._rev
        if start_revision < 0:
            start_revision = 1  # etcd reads "everything" (or finds it compacted)
        w = Watcher(
            key,
            range_end,
            rev + 1 if start_revision == 0 else start_revision,
            sink,
            watch_id=watch_id,
            prev_kv=prev_kv,
            filters=tuple(filters),
            progress_notify=progress_notify,
            fragment=fragment,
        )
        if w.next_rev > rev:
            w.state = State.SYNCED
            self._synced.add(w)
        else:
            self._unsynced.add(w)
        if progress_notify:
            self._progress[w] = None
        return w

    def cancel(self, w: Watcher) -> None:
        """Forget `w`; its sink is not called again. Idempotent."""
        if w.state is State.CANCELLED:
            return
        self._synced.remove(w)
        self._unsynced.remove(w)
        self._progress.pop(w, None)
        w.state = State.CANCELLED

    def resume(self, w: Watcher) -> None:
        """The sink of `w` has room again: let catch-up serve it."""
        w.paused = False

    # -- the write path -------------------------------------------------------------------

    def notify(self, events: list[Event], revision: int) -> None:
        """Hand durable changes to synced watchers; `revision` is the store's
        revision once they are durable. Events are those of revisions
        (previous revision, revision], in order, as take_events() gives them."""
        if revision < self._rev:
            raise ValueError(f"notify({revision}) after revision {self._rev}")
        if events and events[0].kv.mod_revision <= self._rev:
            raise ValueError(f"event at {events[0].kv.mod_revision} already notified")
        self._rev = revision
        if not events or not self._synced:
            return
        n = len(events)
        i = 0
        while i < n:
            r = events[i].kv.mod_revision
            j = i + 1
            while j < n and events[j].kv.mod_revision == r:
                j += 1
            self._notify_revision(events if j - i == n else events[i:j], r)
            i = j

    def _notify_revision(self, events: list[Event], r: int) -> None:
        per: dict[Watcher, list[Event]] = {}
        visits = 0
        for ev in events:
            etype = ev.type
            for members in self._synced.matching(ev.kv.key):
                visits += len(members)
                for w in members:
                    if w.next_rev > r or etype in w.drop:
                        continue
                    got = per.get(w)
                    if got is None:
                        per[w] = [ev]
                    else:
                        got.append(ev)
        self.visits += visits
        cache: PrevCache = {}
        for w, evs in per.items():
            if w.prev_kv:
                evs = self._with_prev(evs, cache)
            if w.sink(w, Delivery(evs, r)):
                w.progress_due = False
            else:
                # Too slow: catch up from disk later, starting at r.
                self._synced.remove(w)
                w.state = State.UNSYNCED
                w.next_rev = r
                w.paused = True
                self._unsynced.add(w)

    # -- catching up -------------------------------------------------------------------

    def sync_pending(self, budget: int | None = None) -> int:
        """Advance unsynced watchers by one batch of at most about `budget`
        events read from LevelDB (whole revisions). Returns the events read."""
        if not self._unsynced:
            return 0
        limit = budget if budget is not None else self.batch_events
        compact = self._store.compact_revision
        rev = self._rev
        ready: list[Watcher] = []
        for w in list(self._unsynced.members):
            if w.paused:
                continue
            if w.next_rev < compact:
                if w.sink(w, Delivery(compact_revision=compact)):
                    self.cancel(w)
                    w.compact_revision = compact
                else:
                    w.paused = True
            elif w.next_rev > rev:
                self._promote(w)
            else:
                ready.append(w)
        if not ready:
            return 0
        # Take turns choosing where the scan starts, so a watcher far behind
        # cannot starve the others; the scan serves every watcher at or
        # above its start.
        start = ready[self._turn % len(ready)].next_rev
        self._turn += 1
        events, covered = self._store.events_between(start, rev, limit)
        chosen = {w: None for w in ready if w.next_rev >= start}
        per: dict[Watcher, list[Event]] = {}
        for ev in events:
            r = ev.kv.mod_revision
            for members in self._unsynced.matching(ev.kv.key):
                for w in members:
                    if w in chosen and w.next_rev <= r and ev.type not in w.drop:
                        per.setdefault(w, []).append(ev)
        cache: PrevCache = {}
        for w in chosen:
            if w.next_rev > covered:
                continue  # the scan stopped below this watcher
            evs = per.get(w)
            if evs:
                if w.prev_kv:
                    evs = self._with_prev(evs, cache)
                if not w.sink(w, Delivery(evs, rev)):
                    w.paused = True
                    continue
                w.progress_due = False
            w.next_rev = covered + 1
            if covered >= rev:
                self._promote(w)
        return len(events)

    def _promote(self, w: Watcher) -> None:
        self._unsynced.remove(w)
        w.state = State.SYNCED
        self._synced.add(w)

    def restore(self, store: MVCCStore) -> None:
        """The node replaced its applied state (a snapshot): every synced
        watcher catches up from the new store, as etcd does on restore."""
        old = self._rev
        self._store = store
        store.capture_events()
        self._rev = store.current_revision
        for w in list(self._synced.members):
            self._synced.remove(w)
            w.state = State.UNSYNCED
            w.next_rev = max(w.next_rev, old + 1)
            self._unsynced.add(w)

    # -- progress --------------------------------------------------------------------------

    def progress_all(self, now: float) -> int:
        """Every progress_interval: a progress Delivery to each synced
        progress_notify watcher that was sent no events since the last round
        (etcd 3.4's rule). Returns how many were sent."""
        if self._next_progress is None:
            self._next_progress = now + self.progress_interval
            return 0
        if now < self._next_progress:
            return 0
        self._next_progress = now + self.progress_interval
        sent = 0
        for w in self._progress:
            if w.progress_due and w.state is State.SYNCED and w.sink(w, Delivery([], self._rev)):
                sent += 1
            w.progress_due = True
        return sent

    # -- prev_kv ----------------------------------------------------------------------------

    def _with_prev(self, events: list[Event], cache: PrevCache) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            full = cache.get(id(ev))
            if full is None:
                full = cache[id(ev)] = Event(ev.type, ev.kv, self._prev(ev.kv))
            out.append(full)
        return out

    def _prev(self, kv: KeyValue) -> KeyValue | None:
        """The key's value just before this change (etcd reads it at
        mod_revision - 1, and sends none when that is compacted)."""
        at = kv.mod_revision - 1
        if at < 1:
            return None
        try:
            kvs = self._store.range(RangeRequest(kv.key, revision=at)).kvs
        except RevisionError:
            return None
        return kvs[0] if kvs else None
