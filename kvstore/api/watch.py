"""etcdserverpb.Watch: one bidirectional stream carrying many watchers.

Each stream has a reader task (create / cancel / progress requests, handled
at once against the node's WatchHub) and a writer (this handler), joined by
an outbox: a deque of ready responses and (watcher, Delivery) pairs. The
hub calls a stream's sink on the event loop thread during notify or
catch-up; the sink only appends, never awaits. When the outbox holds more
than `max_queued_events` events the sink says "full", and the hub moves the
watcher to its unsynced group; once the writer has drained the outbox to
half, it resumes the stream's paused watchers and asks the hub to catch up.

etcd 3.4 behaviour kept here (checked against etcd 3.4.23):
- watch_id 0 asks the server for an id: the lowest unused id counting up
  from 0 on this stream; an id in use answers created=true, canceled=true,
  watch_id=-1, cancel_reason "mvcc: duplicate watch ID provided on the
  WatchStream"; key >= range_end answers the same with "mvcc: watcher range
  is empty"; an empty key means "\\0".
- the created response carries the hub's revision; an event response the
  notified revision (for history catch-up: the revision when it was read).
- a start revision below the compaction point: created, then a separate
  response with canceled=true, compact_revision and a header revision of 0.
- cancel of an unknown id is ignored; of a known one answers canceled=true.
- progress_request answers watch_id=-1 with no events; its header revision
  promises that every later event on the stream is above it.
- fragment=true splits a response over max_request_bytes into several, all
  but the last marked fragment=true, each holding at least one event.
- the stream ends when the client closes its side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from kvstore.api import convert
from kvstore.api.errors import Context
from kvstore.api.pb import kv_pb2, rpc_pb2, rpc_pb2_grpc
from kvstore.mvcc.types import Event, EventType
from kvstore.mvcc.watch import WatchHub
from kvstore.mvcc.watch_types import (
    Delivery,
    DuplicateWatchID,
    State,
    Watcher,
    WatchError,
    WatchFilter,
)
from kvstore.server.views import Header

DEFAULT_MAX_QUEUED_EVENTS = 8192
NO_WATCH = -1
_FILTER_VALUES = frozenset(f.value for f in WatchFilter)
_EVENT_TYPES = {EventType.PUT: kv_pb2.Event.PUT, EventType.DELETE: kv_pb2.Event.DELETE}


@runtime_checkable
class WatchBackend(Protocol):
    """What the Watch servicer needs from a node; every call happens on the
    event loop thread that also drives the node."""

    @property
    def watch_hub(self) -> WatchHub: ...

    def header(self, revision: int | None = None) -> Header: ...

    @property
    def max_request_bytes(self) -> int: ...


Item = rpc_pb2.WatchResponse | tuple[Watcher, Delivery]


class WatchStream:
    """The state of one Watch RPC: its watchers by id and its outbox."""

    def __init__(self, backend: WatchBackend, max_queued_events: int) -> None:
        self._backend = backend
        self._hub = backend.watch_hub
        self._ids: dict[int, Watcher] = {}
        self._next_id = 0
        self._out: deque[Item] = deque()
        self._queued = 0
        self._limit = max_queued_events
        self._refused = False
        self._wake = asyncio.Event()
        self._ended = False

    # -- requests (reader side) ---------------------------------------------------------

    async def read(self, requests: AsyncIterator[rpc_pb2.WatchRequest]) -> None:
        try:
            async for req in requests:
                self.handle(req)
        finally:
            self._ended = True
            self._wake.set()

    def handle(self, req: rpc_pb2.WatchRequest) -> None:
        which = req.WhichOneof("request_union")
        if which == "create_request":
            self._create(req.create_request)
        elif which == "cancel_request":
            wid = req.cancel_request.watch_id
            w = self._ids.pop(wid, None)
            if w is not None:
                self._hub.cancel(w)
                self._control(self._hub.revision, watch_id=wid, canceled=True)
        elif which == "progress_request":
            rev = self._hub.progress_revision(self._ids.values())
            self._control(rev, watch_id=NO_WATCH)

    def _create(self, c: rpc_pb2.WatchCreateRequest) -> None:
        hub = self._hub
        wid = c.watch_id
        if wid != 0 and wid in self._ids:
            self._refuse(DuplicateWatchID())
            return
        next_id = self._next_id
        if wid == 0:
            while next_id in self._ids:
                next_id += 1
            wid = next_id
            next_id += 1
        filters = [WatchFilter(f) for f in c.filters if f in _FILTER_VALUES]
        try:
            w = hub.watch(
                c.key,
                c.range_end,
                c.start_revision,
                sink=self._sink,
                watch_id=wid,
                prev_kv=c.prev_kv,
                filters=filters,
                progress_notify=c.progress_notify,
                fragment=c.fragment,
            )
        except WatchError as exc:
            self._refuse(exc)
            return
        if c.watch_id == 0:
            self._next_id = next_id
        self._ids[wid] = w
        self._control(hub.revision, watch_id=wid, created=True)
        if w.state is State.UNSYNCED:
            hub.sync_pending()

    def _refuse(self, exc: WatchError) -> None:
        self._control(
            self._hub.revision,
            watch_id=NO_WATCH,
            created=True,
            canceled=True,
            cancel_reason=exc.etcd_message,
        )

    def _control(
        self,
        revision: int,
        *,
        watch_id: int,
        created: bool = False,
        canceled: bool = False,
        cancel_reason: str = "",
    ) -> None:
        self._out.append(
            rpc_pb2.WatchResponse(
                header=convert.header(self._backend.header(revision)),
                watch_id=watch_id,
                created=created,
                canceled=canceled,
                cancel_reason=cancel_reason,
            )
        )
        self._wake.set()

    def _sink(self, w: Watcher, d: Delivery) -> bool:
        """The hub's callback: enqueue, or say full. Never blocks."""
        if d.events and self._queued >= self._limit:
            self._refused = True
            return False
        self._out.append((w, d))
        self._queued += len(d.events)
        self._wake.set()
        return True

    # -- responses (writer side) ------------------------------------------------------------

    async def responses(self) -> AsyncIterator[rpc_pb2.WatchResponse]:
        out = self._out
        while True:
            while not out:
                if self._ended:
                    return
                self._wake.clear()
                await self._wake.wait()
            item = out.popleft()
            if isinstance(item, rpc_pb2.WatchResponse):
                yield item
                continue
            w, d = item
            self._queued -= len(d.events)
            if self._ids.get(w.watch_id) is w:
                if d.compact_revision:
                    del self._ids[w.watch_id]
                for resp in self._render(w, d):
                    yield resp
            if self._refused and self._queued <= self._limit // 2:
                self._resume()

    def _resume(self) -> None:
        self._refused = False
        for w in self._ids.values():
            if w.paused:
                self._hub.resume(w)
        self._hub.sync_pending()

    def _render(self, w: Watcher, d: Delivery) -> list[rpc_pb2.WatchResponse]:
        header = convert.header(self._backend.header(d.revision))
        if d.compact_revision:
            return [
                rpc_pb2.WatchResponse(
                    header=header,
                    watch_id=w.watch_id,
                    canceled=True,
                    compact_revision=d.compact_revision,
                )
            ]
        events = [event(e) for e in d.events]
        resp = rpc_pb2.WatchResponse(header=header, watch_id=w.watch_id, events=events)
        if not w.fragment:
            return [resp]
        return fragments(resp, events, self._backend.max_request_bytes)

    def close(self) -> None:
        for w in self._ids.values():
            self._hub.cancel(w)
        self._ids.clear()
        self._out.clear()


_converted: dict[int, tuple[Event, kv_pb2.Event]] = {}
"""The protobuf of recent events, by id(): a write watched by a thousand
watchers is converted once (each response still copies it in). Entries hold
their Event, so an id is not reused while cached; event-loop thread only."""


def event(e: Event) -> kv_pb2.Event:
    hit = _converted.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    pb = kv_pb2.Event(type=_EVENT_TYPES[e.type], kv=convert.key_value(e.kv))
    if e.prev_kv is not None:
        pb.prev_kv.CopyFrom(convert.key_value(e.prev_kv))
    if len(_converted) >= 4096:
        _converted.clear()
    _converted[id(e)] = (e, pb)
    return pb


def _varint_len(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def fragments(
    whole: rpc_pb2.WatchResponse, events: list[kv_pb2.Event], max_bytes: int
) -> list[rpc_pb2.WatchResponse]:
    """etcd's rule: a response under max_bytes, or with one event, goes whole;
    otherwise fill fragments while they stay under max_bytes (at least one
    event each), all but the last marked fragment=true."""
    if len(events) < 2 or whole.ByteSize() < max_bytes:
        return [whole]
    header, wid = whole.header, whole.watch_id
    base = rpc_pb2.WatchResponse(header=header, watch_id=wid, fragment=True).ByteSize()
    parts: list[list[kv_pb2.Event]] = [[]]
    size = base
    for ev in events:
        n = ev.ByteSize()
        add = 1 + _varint_len(n) + n
        if parts[-1] and size + add >= max_bytes:
            parts.append([])
            size = base
        parts[-1].append(ev)
        size += add
    last = len(parts) - 1
    return [
        rpc_pb2.WatchResponse(header=header, watch_id=wid, events=p, fragment=i != last)
        for i, p in enumerate(parts)
    ]


class WatchService(rpc_pb2_grpc.WatchServicer):
    def __init__(
        self, backend: WatchBackend, max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS
    ) -> None:
        self._backend = backend
        self._max_queued_events = max_queued_events

    async def Watch(
        self, request_iterator: AsyncIterator[rpc_pb2.WatchRequest], context: Context
    ) -> AsyncIterator[rpc_pb2.WatchResponse]:
        stream = WatchStream(self._backend, self._max_queued_events)
        reader = asyncio.create_task(stream.read(request_iterator))
        try:
            async for resp in stream.responses():
                yield resp
            await reader  # surfaces a reader failure
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            stream.close()
