"""The receiving side of the peer transport: the gRPC Peer service.

Two RPCs arrive from the other members:

- `Stream`: one long-lived client stream per sending member, each request a
  MessageBatch. Every batch is checked for this cluster's id (a mismatch
  fails the stream with FAILED_PRECONDITION, so a member of another cluster
  can never inject messages), decoded, filtered, and handed to the node in
  one `handler.receive(messages)` call, in arrival order.
- `SendSnapshot`: header, then data chunks; reassembled by the codec's
  SnapshotAssembler and delivered as one complete MSG_SNAP message.

Filtering drops messages addressed to another member (a stale peer URL
table) and the local-only message kinds (HUP, BEAT, ...), which never cross
the network: a peer must not be able to make this node campaign.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Final, NoReturn, Protocol

from kvstore.api.pb import peer_pb2 as pb
from kvstore.raft.types import LOCAL_MESSAGES, Message
from kvstore.transport import codec
from kvstore.transport._grpc import Code, ServicerContext, abort

logger = logging.getLogger(__name__)

_MAX_WARNED: Final = 64
"""Distinct rejection reasons logged at warning level (later: debug)."""


class RaftHandler(Protocol):
    """What the transport needs from the node (implemented by kvstore/server).

    Every method is called on the event loop and must not block. The
    transport never calls them from inside `PeerTransport.send`.
    """

    def receive(self, messages: list[Message]) -> None:
        """Messages from one peer, in the order that peer sent them."""

    def report_unreachable(self, node_id: int) -> None:
        """Messages to node_id were (or will be) lost: it is down or slow."""

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        """The snapshot sent to node_id was installed by its transport (ok)
        or could not be delivered."""


@dataclass(slots=True)
class ReceiveStats:
    batches: int = 0
    """Stream requests (gRPC writes) accepted, each one MessageBatch."""
    messages: int = 0
    """Messages handed to the handler, snapshots included."""
    dropped: int = 0
    """Messages filtered out (wrong recipient or a local-only kind)."""
    snapshots: int = 0
    """Complete snapshots handed to the handler."""
    snapshot_chunks: int = 0
    """SendSnapshot requests taken in (header and data chunks)."""
    rejected: int = 0
    """RPCs failed for a wrong cluster id or undecodable input."""


class PeerService:
    """Implements proto/peer.proto's Peer service for one member."""

    def __init__(self, member_id: int, cluster_id: int, handler: RaftHandler) -> None:
        self._member_id = member_id
        self._cluster_id = cluster_id
        self._handler = handler
        self.stats = ReceiveStats()
        self._warned: set[str] = set()

    async def _reject(self, context: ServicerContext, code: Code, details: str) -> NoReturn:
        self.stats.rejected += 1
        # A rejected sender retries with backoff: warn once per distinct
        # reason (bounded), not once per attempt.
        if details not in self._warned and len(self._warned) < _MAX_WARNED:
            self._warned.add(details)
            logger.warning("rejecting peer RPC from %s: %s", context.peer(), details)
        else:
            logger.debug("rejecting peer RPC from %s: %s", context.peer(), details)
        await abort(context, code, details)

    def _check_cluster(self, cluster_id: int) -> str | None:
        if cluster_id == self._cluster_id:
            return None
        return (
            f"cluster id mismatch: sender has {cluster_id:x}, this member has {self._cluster_id:x}"
        )

    def _accept(self, messages: Iterable[Message]) -> list[Message]:
        accepted: list[Message] = []
        for message in messages:
            if message.to != self._member_id:
                logger.debug(
                    "dropping %s for member %x (this is %x)",
                    message.type.name,
                    message.to,
                    self._member_id,
                )
            elif message.type in LOCAL_MESSAGES:
                logger.debug("dropping local-only %s from %x", message.type.name, message.frm)
            else:
                accepted.append(message)
                continue
            self.stats.dropped += 1
        return accepted

    async def Stream(
        self, request_iterator: AsyncIterator[pb.MessageBatch], context: ServicerContext
    ) -> pb.StreamResponse:
        async for batch in request_iterator:
            mismatch = self._check_cluster(batch.cluster_id)
            if mismatch is not None:
                await self._reject(context, Code.FAILED_PRECONDITION, mismatch)
            try:
                decoded = codec.batch_from_pb(batch)
            except (codec.CodecError, ValueError) as error:
                await self._reject(context, Code.INVALID_ARGUMENT, f"bad message batch: {error}")
            self.stats.batches += 1
            messages = self._accept(decoded)
            if messages:
                self.stats.messages += len(messages)
                logger.debug("received %d messages from %x", len(messages), messages[0].frm)
                self._handler.receive(messages)
        return pb.StreamResponse()

    async def SendSnapshot(
        self, request_iterator: AsyncIterator[pb.SnapshotChunk], context: ServicerContext
    ) -> pb.SendSnapshotResponse:
        assembler = codec.SnapshotAssembler()
        first = True
        async for chunk in request_iterator:
            if first:
                first = False
                # Refuse before any data is buffered: header fields checked raw.
                if chunk.WhichOneof("chunk") == "header":
                    mismatch = self._check_cluster(chunk.header.cluster_id)
                    if mismatch is not None:
                        await self._reject(context, Code.FAILED_PRECONDITION, mismatch)
                    to = chunk.header.message.to
                    if to != self._member_id:
                        await self._reject(
                            context,
                            Code.FAILED_PRECONDITION,
                            f"snapshot for member {to:x} sent to member {self._member_id:x}",
                        )
            self.stats.snapshot_chunks += 1
            try:
                assembler.feed(chunk)
            except (codec.CodecError, ValueError) as error:
                await self._reject(context, Code.INVALID_ARGUMENT, f"bad snapshot chunk: {error}")
        try:
            message = assembler.finish()
        except codec.CodecError as error:
            await self._reject(context, Code.INVALID_ARGUMENT, f"incomplete snapshot: {error}")
        if message.type in LOCAL_MESSAGES:
            await self._reject(context, Code.INVALID_ARGUMENT, "snapshot in a local-only message")
        self.stats.snapshots += 1
        self.stats.messages += 1
        logger.info(
            "received snapshot at index %d (%d bytes) from %x",
            message.snapshot.meta.index if message.snapshot else 0,
            assembler.received_bytes,
            message.frm,
        )
        self._handler.receive([message])
        return pb.SendSnapshotResponse(received_bytes=assembler.received_bytes)
