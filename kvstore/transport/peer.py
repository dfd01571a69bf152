"""Raft messages between members over gRPC (proto/peer.proto).

Sending. Each peer has one `_PeerSender`: a bounded FIFO queue and one task
that keeps ONE client-streaming `Stream` RPC open to that peer. The task
drains everything queued (up to max_batch messages, and under
max_message_bytes) into one MessageBatch per gRPC write, so a burst of Raft
messages costs one write, and messages to one peer keep their order.
`PeerTransport.send` only appends to queues and never awaits: a dead or slow
peer fills its own queue and nobody else's.

    send(msgs) ──> queue[peer] ──> sender task ──write(MessageBatch)──> Stream
               └─ MSG_SNAP ──> snapshot task ──SendSnapshot(header, chunks...)

Loss, not back-pressure. Raft tolerates lost messages, so the transport
drops instead of blocking:

- a full queue (queue_limit) drops the new message and reports the peer
  unreachable;
- when a stream fails (or cannot be opened), everything queued at that
  moment is dropped: by the time a connection is back those heartbeats and
  appends are stale, and the leader re-probes the follower after
  report_unreachable anyway. Messages sent during the backoff wait are kept
  (up to queue_limit) and go out on the next connection.

Reconnecting. A fresh channel per connection attempt (with a channel-local
subchannel pool, so gRPC's own reconnect backoff never hides a peer that
came back); between failed attempts the sender sleeps an exponential backoff
from backoff_initial to backoff_max with "equal jitter" (half fixed, half
random, from the transport's own random.Random). The backoff resets only
once a stream has carried writes for STABLE_AFTER, so a peer that accepts
and then rejects every stream (another cluster) is not hammered. Every failed attempt
calls report_unreachable; the log gets one warning when a peer is lost and
one when it is back, debug lines in between.

Snapshots. A MSG_SNAP message leaves the queue path: its own task opens a
dedicated channel and streams it with SendSnapshot (header, then chunks), so
a large snapshot never delays heartbeats. The outcome is reported with
report_snapshot(to, ok).

Keepalive pings on both sides notice a peer that vanished without closing
its connections (power loss, SIGSTOP).

Handler callbacks are never made from inside `send`: those are deferred
with loop.call_soon, so the node may call `send` while it holds Raft state.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from kvstore.api.pb import peer_pb2 as pb
from kvstore.raft.types import LOCAL_MESSAGES, Message, MessageType
from kvstore.transport import codec
from kvstore.transport._grpc import (
    RPC_ERRORS,
    Channel,
    ChannelOptions,
    PeerClient,
    Server,
    StreamUnaryCall,
    describe_error,
    insecure_channel,
    new_server,
)
from kvstore.transport.receiver import PeerService, RaftHandler, ReceiveStats

__all__ = ["PeerTransport", "RaftHandler", "TransportStats", "peer_target"]

logger = logging.getLogger(__name__)

KEEPALIVE_INTERVAL: Final = 10.0
"""Seconds between keepalive pings on a connection..."""
KEEPALIVE_TIMEOUT: Final = 5.0
"""...which is dropped when a ping is not answered within this. (gRPC sends
pings at most once a second, whatever the interval.)"""
STABLE_AFTER: Final = 1.0
"""Seconds a stream must stay up, writing, to count as a recovery: only then
is the backoff reset and "reachable again" logged."""
CONNECT_TIMEOUT: Final = 5.0
"""Seconds the first write of a new stream may wait for the connection."""
STOP_GRACE: Final = 1.0
"""Seconds stop() lets inbound RPCs (a snapshot being received) finish."""
_BATCH_SLACK: Final = 1024
"""Bytes kept free under max_message_bytes for a batch's own framing."""
_PER_MESSAGE_FRAMING: Final = 11
"""Upper bound of a repeated field's tag and length prefix."""


def peer_target(url: str) -> str:
    """The gRPC target ("host:port") of a peer URL like http://10.0.0.1:2380."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"peer URL {url!r}: only http:// is supported")
    if not parts.hostname or parts.port is None:
        raise ValueError(f"peer URL {url!r} needs a host and a port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"peer URL {url!r} must not have a path, query or fragment")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}"


@dataclass(slots=True)
class TransportStats:
    """Counters for metrics and tests; all only ever grow."""

    batches_sent: int = 0
    """Stream writes, each one MessageBatch."""
    messages_sent: int = 0
    messages_dropped: int = 0
    """Lost before a write: full queue, stream failure, unknown peer, too big."""
    snapshots_sent: int = 0
    snapshots_failed: int = 0
    connection_failures: int = 0


@dataclass(frozen=True, slots=True)
class _Config:
    member_id: int
    cluster_id: int
    max_batch: int
    queue_limit: int
    backoff_initial: float
    backoff_max: float
    max_message_bytes: int
    channel_options: ChannelOptions


class _PeerSender:
    """One peer's queue and the task that streams it (see the module doc)."""

    def __init__(
        self,
        node_id: int,
        url: str,
        config: _Config,
        handler: RaftHandler,
        rng: random.Random,
        stats: TransportStats,
    ) -> None:
        self.node_id = node_id
        self.url = url
        self.target = peer_target(url)
        self._config = config
        self._handler = handler
        self._rng = rng
        self._stats = stats
        self._queue: deque[Message] = deque()
        self._wakeup = asyncio.Event()
        self._backoff = config.backoff_initial
        self._lost = False
        """A loss has been logged at warning and no recovery since."""
        self.task: asyncio.Task[None] | None = None

    def enqueue(self, message: Message) -> bool:
        """Queue a message; False (and nothing queued) when the queue is full."""
        if len(self._queue) >= self._config.queue_limit:
            return False
        self._queue.append(message)
        self._wakeup.set()
        return True

    # ------------------------------------------------------------ the task

    async def run(self) -> None:
        while True:
            await self._wait(None)
            try:
                reason = await self._connect_and_stream()
            except Exception as error:  # a bug, not a network failure: keep going
                logger.exception("sender to peer %x failed unexpectedly", self.node_id)
                reason = describe_error(error)
            self._on_failure(reason)
            delay = self._backoff * (0.5 + 0.5 * self._rng.random())
            self._backoff = min(self._backoff * 2, self._config.backoff_max)
            await asyncio.sleep(delay)

    async def _wait(self, call: StreamUnaryCall[pb.MessageBatch, pb.StreamResponse] | None) -> None:
        """Until something is queued or the call has ended."""
        while not self._queue and not (call is not None and call.done()):
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _connect_and_stream(self) -> str:
        """Stream batches until the RPC fails; returns why it failed."""
        loop = asyncio.get_running_loop()
        channel = insecure_channel(self.target, self._config.channel_options)
        call = PeerClient(channel).stream()
        call.add_done_callback(lambda _call: self._wakeup.set())
        opened = loop.time()
        delivered = 0
        stable = False
        try:
            while True:
                await self._wait(call)
                if call.done():
                    await call  # raises the RPC's error status
                    return "stream ended by the peer"
                batch, count = self._take_batch()
                if count == 0:
                    continue
                if delivered == 0:
                    # The first write waits for the connection to be set up.
                    await asyncio.wait_for(call.write(batch), CONNECT_TIMEOUT)
                else:
                    await call.write(batch)
                delivered += 1
                self._stats.batches_sent += 1
                self._stats.messages_sent += count
                logger.debug("sent %d messages to %x", count, self.node_id)
                if not stable and loop.time() - opened >= STABLE_AFTER:
                    stable = True
                    self._on_stable()
        except RPC_ERRORS as error:
            return describe_error(error)
        except TimeoutError:
            return f"no connection within {CONNECT_TIMEOUT}s"
        finally:
            call.cancel()
            await _close(channel)

    def _take_batch(self) -> tuple[pb.MessageBatch, int]:
        """Dequeue the next batch: in order, up to max_batch messages and
        under max_message_bytes on the wire."""
        limit = self._config.max_message_bytes - _BATCH_SLACK
        encoded: list[pb.Message] = []
        size = 0
        queue = self._queue
        while queue and len(encoded) < self._config.max_batch:
            message = queue[0]
            try:
                wire = codec.message_to_pb(message)
            except (ValueError, TypeError, KeyError):
                queue.popleft()
                self._stats.messages_dropped += 1
                logger.exception("cannot encode %s to %x; dropped", message.type.name, message.to)
                continue
            wire_size = wire.ByteSize() + _PER_MESSAGE_FRAMING
            if wire_size > limit:
                queue.popleft()
                self._stats.messages_dropped += 1
                logger.error(
                    "%s to %x is %d bytes, over max_message_bytes %d; dropped",
                    message.type.name,
                    message.to,
                    wire_size,
                    self._config.max_message_bytes,
                )
                continue
            if size + wire_size > limit:
                break  # stays queued for the next batch
            queue.popleft()
            encoded.append(wire)
            size += wire_size
        batch = pb.MessageBatch(messages=encoded, cluster_id=self._config.cluster_id)
        return batch, len(encoded)

    def _on_stable(self) -> None:
        """The stream has carried writes for STABLE_AFTER: a real recovery,
        not a peer that accepts a stream only to fail it (another cluster)."""
        self._backoff = self._config.backoff_initial
        if self._lost:
            self._lost = False
            logger.warning("peer %x (%s) is reachable again", self.node_id, self.url)

    def _on_failure(self, reason: str) -> None:
        dropped = len(self._queue)
        self._queue.clear()
        self._stats.messages_dropped += dropped
        self._stats.connection_failures += 1
        if not self._lost:
            self._lost = True
            logger.warning(
                "peer %x (%s) unreachable: %s; retrying with backoff",
                self.node_id,
                self.url,
                reason,
            )
        else:
            logger.debug(
                "peer %x still unreachable: %s (%d dropped)", self.node_id, reason, dropped
            )
        self._handler.report_unreachable(self.node_id)


async def _close(channel: Channel) -> None:
    # grace=None closes synchronously inside the coroutine, so a cancellation
    # cannot leave the channel half closed.
    await channel.close(None)


class PeerTransport:
    """Sends this member's Raft messages to its peers and serves theirs.

    `send`, `add_peer` and `remove_peer` are plain functions for the node's
    event loop; `start` and `stop` bracket the transport's life.
    """

    def __init__(
        self,
        member_id: int,
        cluster_id: int,
        handler: RaftHandler,
        peers: dict[int, str],
        listen_url: str,
        *,
        max_batch: int = 512,
        queue_limit: int = 4096,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        max_message_bytes: int = 64 << 20,
        rng: random.Random | None = None,
        stop_grace: float = STOP_GRACE,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
    ) -> None:
        if max_batch < 1 or queue_limit < 1:
            raise ValueError("max_batch and queue_limit must be positive")
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        if max_message_bytes < codec.DEFAULT_CHUNK_SIZE + 2 * _BATCH_SLACK:
            raise ValueError(f"max_message_bytes must be over {codec.DEFAULT_CHUNK_SIZE} bytes")
        self._member_id = member_id
        self._handler = handler
        self._listen_address = peer_target(listen_url)
        self._rng = rng if rng is not None else random.Random()
        self._stop_grace = stop_grace
        interval_ms = max(1, round(keepalive_interval * 1000))
        timeout_ms = max(1, round(keepalive_timeout * 1000))
        common: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", interval_ms),
            ("grpc.keepalive_timeout_ms", timeout_ms),
            # gRPC 1.85 times a keepalive ping out by this one (default 60 s),
            # not by keepalive_timeout_ms alone: without it a stopped peer
            # (SIGSTOP, a hung host) holds the stream for a minute.
            ("grpc.http2.ping_timeout_ms", timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
        self._server_options: ChannelOptions = (
            *common,
            # Accept the peers' keepalive pings however idle the link is
            # (they use the same interval), instead of answering GOAWAY
            # "too_many_pings".
            ("grpc.http2.min_recv_ping_interval_without_data_ms", interval_ms // 2),
            ("grpc.http2.max_ping_strikes", 0),
            # Never share the peer port with another process (SO_REUSEPORT).
            ("grpc.so_reuseport", 0),
        )
        self._config = _Config(
            member_id=member_id,
            cluster_id=cluster_id,
            max_batch=max_batch,
            queue_limit=queue_limit,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            max_message_bytes=max_message_bytes,
            channel_options=(
                *common,
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.enable_retries", 0),
            ),
        )
        self.stats = TransportStats()
        self._senders: dict[int, _PeerSender] = {}
        self._snapshot_tasks: dict[int, set[asyncio.Task[None]]] = {}
        self._retired: set[asyncio.Task[None]] = set()
        self._service = PeerService(member_id, cluster_id, handler)
        self._server: Server | None = None
        self._port: int | None = None
        self._started = False
        self._stop_task: asyncio.Task[None] | None = None
        for node_id, url in peers.items():
            self.add_peer(node_id, url)

    # ------------------------------------------------------------ lifecycle

    @property
    def bound_port(self) -> int:
        """The port the Peer server listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("the transport is not started")
        return self._port

    @property
    def receive_stats(self) -> ReceiveStats:
        return self._service.stats

    async def start(self) -> None:
        if self._started or self._stop_task is not None:
            raise RuntimeError("a PeerTransport starts once")
        self._started = True
        server = new_server(self._service, self._server_options)
        try:
            port = server.add_insecure_port(self._listen_address)
        except RuntimeError as error:
            raise OSError(f"cannot listen on {self._listen_address}: {error}") from error
        if port == 0:
            raise OSError(f"cannot listen on {self._listen_address}")
        await server.start()
        self._server = server
        self._port = port
        logger.info("peer transport of %x listening on port %d", self._member_id, port)
        for sender in self._senders.values():
            self._start_sender(sender)

    async def stop(self) -> None:
        """Stop sending and serving. Idempotent; concurrent calls all wait
        for the one shutdown."""
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._shutdown())
        await asyncio.shield(self._stop_task)

    async def _shutdown(self) -> None:
        tasks = [s.task for s in self._senders.values() if s.task is not None]
        tasks.extend(self._retired)
        for group in self._snapshot_tasks.values():
            tasks.extend(group)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.stop(self._stop_grace)
        logger.info("peer transport of %x stopped", self._member_id)

    @property
    def _stopped(self) -> bool:
        return self._stop_task is not None

    # ------------------------------------------------------------ membership

    def add_peer(self, node_id: int, url: str) -> None:
        """Start sending to node_id at url. Re-adding with the same URL does
        nothing; a new URL replaces the old connection. This member's own id
        is ignored, so a whole membership list may be passed."""
        if node_id == self._member_id:
            return
        current = self._senders.get(node_id)
        if current is not None:
            if current.url == url:
                return
            self.remove_peer(node_id)
        sender = _PeerSender(node_id, url, self._config, self._handler, self._rng, self.stats)
        self._senders[node_id] = sender
        if self._started and not self._stopped:
            self._start_sender(sender)

    def remove_peer(self, node_id: int) -> None:
        """Stop sending to node_id; queued messages and snapshots are dropped."""
        sender = self._senders.pop(node_id, None)
        retiring = list(self._snapshot_tasks.pop(node_id, ()))
        if sender is not None and sender.task is not None:
            retiring.append(sender.task)
        for task in retiring:
            task.cancel()
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    def _start_sender(self, sender: _PeerSender) -> None:
        sender.task = asyncio.get_running_loop().create_task(
            sender.run(), name=f"peer-sender-{sender.node_id:x}"
        )

    # --------------------------------------------------------------- sending

    def send(self, messages: Sequence[Message]) -> None:
        """Queue messages for their recipients; never blocks or awaits.

        A message to an unknown peer is dropped. When a peer's queue is full
        the message is dropped and the peer reported unreachable (once per
        call). MSG_SNAP messages are streamed on a task of their own.
        """
        if self._stopped:
            logger.debug("transport stopped; dropping %d messages", len(messages))
            return
        unreachable: set[int] = set()
        for message in messages:
            if message.type in LOCAL_MESSAGES:
                logger.error("local-only %s passed to send(); dropped", message.type.name)
                continue
            sender = self._senders.get(message.to)
            if sender is None:
                self.stats.messages_dropped += 1
                logger.debug("no peer %x for %s; dropped", message.to, message.type.name)
                if message.type is MessageType.SNAP:
                    self._defer_snapshot_report(message.to, False)
                continue
            if message.type is MessageType.SNAP:
                self._start_snapshot(sender, message)
            elif not sender.enqueue(message):
                self.stats.messages_dropped += 1
                unreachable.add(message.to)
        if unreachable:
            loop = asyncio.get_running_loop()
            for node_id in sorted(unreachable):
                logger.debug("queue to %x full; dropping", node_id)
                loop.call_soon(self._report_unreachable, node_id)

    def _report_unreachable(self, node_id: int) -> None:
        if not self._stopped:
            self._handler.report_unreachable(node_id)

    def _defer_snapshot_report(self, node_id: int, ok: bool) -> None:
        self.stats.snapshots_failed += not ok
        asyncio.get_running_loop().call_soon(self._report_snapshot, node_id, ok)

    def _report_snapshot(self, node_id: int, ok: bool) -> None:
        if not self._stopped:
            self._handler.report_snapshot(node_id, ok)

    def _start_snapshot(self, sender: _PeerSender, message: Message) -> None:
        if not self._started or message.snapshot is None:
            logger.error(
                "cannot send snapshot to %x (%s)",
                message.to,
                "no snapshot in MSG_SNAP" if self._started else "transport not started",
            )
            self._defer_snapshot_report(message.to, False)
            return
        task = asyncio.get_running_loop().create_task(
            self._send_snapshot(sender.target, message), name=f"peer-snapshot-{message.to:x}"
        )
        group = self._snapshot_tasks.setdefault(message.to, set())
        group.add(task)
        task.add_done_callback(group.discard)

    async def _send_snapshot(self, target: str, message: Message) -> None:
        assert message.snapshot is not None
        size = len(message.snapshot.data)
        ok = False
        channel = insecure_channel(target, self._config.channel_options)
        try:
            call = PeerClient(channel).send_snapshot()
            try:
                for chunk in codec.snapshot_chunks(message, self._config.cluster_id):
                    await call.write(chunk)
                await call.done_writing()
                response = await call
            finally:
                call.cancel()
            ok = response.received_bytes == size
            if not ok:
                logger.warning(
                    "peer %x took %d of %d snapshot bytes",
                    message.to,
                    response.received_bytes,
                    size,
                )
        except RPC_ERRORS as error:
            logger.warning("snapshot to %x failed: %s", message.to, describe_error(error))
        finally:
            await _close(channel)
        if ok:
            self.stats.snapshots_sent += 1
            logger.info(
                "sent snapshot at index %d (%d bytes) to %x",
                message.snapshot.meta.index,
                size,
                message.to,
            )
        else:
            self.stats.snapshots_failed += 1
        self._report_snapshot(message.to, ok)
