"""Conversion between the Raft core's value types and the peer protocol.

The Raft core (kvstore/raft/types.py) knows nothing of protobuf; this module
is the one place where its frozen dataclasses meet the generated classes of
proto/peer.proto. Each `*_to_pb` / `*_from_pb` pair round-trips exactly:
`x_from_pb(x_to_pb(v)) == v` for every value the core can produce whose
integers fit in uint64 (node ids, terms and indexes always do).

Snapshots travel apart from the message stream, in chunks:

    chunks = snapshot_chunks(message, cluster_id=cid)     # sender
    assembler = SnapshotAssembler()                       # receiver
    for chunk in chunks:
        assembler.feed(chunk)
    message = assembler.finish()

The first chunk carries the MSG_SNAP message with the snapshot's metadata
(its data emptied) and the total data size; the following chunks carry the
data. The assembler checks that order and the size, and rebuilds the message
with its data in place.

The generated classes are typed through the .pyi stubs protoc writes next to
them (see proto/generate.py); only the enum wrappers' lookups are untyped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from kvstore.api.pb import peer_pb2 as pb
from kvstore.raft.types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMeta,
)

DEFAULT_CHUNK_SIZE: Final = 1 << 20
"""Snapshot data bytes per chunk: well under gRPC's default 4 MiB limit."""


class CodecError(ValueError):
    """A peer sent something that does not decode to a valid Raft value."""


# Tables built by name, so that a member added to a Python enum without a
# proto counterpart fails at import, not at the first message of its kind.
# (The enum wrappers' Value() is untyped: this is the one Any edge.)
_MESSAGE_TYPE_TO_PB: Final[dict[MessageType, pb.MessageType]] = {
    t: pb.MessageType.Value(f"MESSAGE_TYPE_{t.name}") for t in MessageType
}
_MESSAGE_TYPE_FROM_PB: Final[dict[int, MessageType]] = {
    v: t for t, v in _MESSAGE_TYPE_TO_PB.items()
}
_ENTRY_TYPE_TO_PB: Final[dict[EntryType, pb.EntryType]] = {
    t: pb.EntryType.Value(f"ENTRY_TYPE_{t.name}") for t in EntryType
}
_ENTRY_TYPE_FROM_PB: Final[dict[int, EntryType]] = {v: t for t, v in _ENTRY_TYPE_TO_PB.items()}


# ----------------------------------------------------------------- entries


def entry_to_pb(entry: Entry) -> pb.Entry:
    return pb.Entry(
        term=entry.term,
        index=entry.index,
        type=_ENTRY_TYPE_TO_PB[entry.type],
        data=entry.data,
    )


def entry_from_pb(msg: pb.Entry) -> Entry:
    try:
        kind = _ENTRY_TYPE_FROM_PB[msg.type]
    except KeyError:
        raise CodecError(f"unknown entry type {msg.type}") from None
    return Entry(term=msg.term, index=msg.index, type=kind, data=msg.data)


# --------------------------------------------------------------- snapshots


def conf_state_to_pb(conf: ConfState) -> pb.ConfState:
    return pb.ConfState(voters=sorted(conf.voters), learners=sorted(conf.learners))


def conf_state_from_pb(msg: pb.ConfState) -> ConfState:
    return ConfState(voters=frozenset(msg.voters), learners=frozenset(msg.learners))


def snapshot_meta_to_pb(meta: SnapshotMeta) -> pb.SnapshotMeta:
    return pb.SnapshotMeta(
        index=meta.index, term=meta.term, conf_state=conf_state_to_pb(meta.conf_state)
    )


def snapshot_meta_from_pb(msg: pb.SnapshotMeta) -> SnapshotMeta:
    return SnapshotMeta(
        index=msg.index, term=msg.term, conf_state=conf_state_from_pb(msg.conf_state)
    )


def snapshot_to_pb(snapshot: Snapshot) -> pb.Snapshot:
    return pb.Snapshot(meta=snapshot_meta_to_pb(snapshot.meta), data=snapshot.data)


def snapshot_from_pb(msg: pb.Snapshot) -> Snapshot:
    return Snapshot(meta=snapshot_meta_from_pb(msg.meta), data=msg.data)


# ---------------------------------------------------------------- messages


def message_to_pb(message: Message) -> pb.Message:
    out = pb.Message(
        type=_MESSAGE_TYPE_TO_PB[message.type],
        to=message.to,
        frm=message.frm,
        term=message.term,
        log_term=message.log_term,
        index=message.index,
        entries=[entry_to_pb(e) for e in message.entries],
        commit=message.commit,
        reject=message.reject,
        reject_hint=message.reject_hint,
        context=message.context,
    )
    if message.snapshot is not None:
        out.snapshot.CopyFrom(snapshot_to_pb(message.snapshot))
    return out


def message_from_pb(msg: pb.Message) -> Message:
    try:
        kind = _MESSAGE_TYPE_FROM_PB[msg.type]
    except KeyError:
        raise CodecError(f"unknown message type {msg.type}") from None
    return Message(
        type=kind,
        to=msg.to,
        frm=msg.frm,
        term=msg.term,
        log_term=msg.log_term,
        index=msg.index,
        entries=tuple(entry_from_pb(e) for e in msg.entries),
        commit=msg.commit,
        snapshot=snapshot_from_pb(msg.snapshot) if msg.HasField("snapshot") else None,
        reject=msg.reject,
        reject_hint=msg.reject_hint,
        context=msg.context,
    )


def batch_to_pb(messages: Iterable[Message], cluster_id: int) -> pb.MessageBatch:
    return pb.MessageBatch(messages=[message_to_pb(m) for m in messages], cluster_id=cluster_id)


def batch_from_pb(batch: pb.MessageBatch) -> tuple[Message, ...]:
    """The batch's messages in order. Checking batch.cluster_id is the
    receiver's business."""
    return tuple(message_from_pb(m) for m in batch.messages)


# ------------------------------------------------------ snapshot transfers


def snapshot_chunks(
    message: Message, cluster_id: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[pb.SnapshotChunk]:
    """Split a message carrying a snapshot into SendSnapshot chunks."""
    if message.snapshot is None:
        raise ValueError("snapshot_chunks needs a message that carries a snapshot")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    data = message.snapshot.data
    header = message_to_pb(message)
    header.snapshot.data = b""
    yield pb.SnapshotChunk(
        header=pb.SnapshotHeader(message=header, data_size=len(data), cluster_id=cluster_id)
    )
    for start in range(0, len(data), chunk_size):
        yield pb.SnapshotChunk(data=data[start : start + chunk_size])


class SnapshotAssembler:
    """Rebuilds a snapshot message from SendSnapshot chunks (sans-IO: the
    caller reads the stream and feeds each chunk in)."""

    __slots__ = ("_cluster_id", "_expected", "_header", "_parts", "_received")

    def __init__(self) -> None:
        self._header: Message | None = None
        self._cluster_id = 0
        self._expected = 0
        self._received = 0
        self._parts: list[bytes] = []

    @property
    def cluster_id(self) -> int:
        """The sender's cluster id, known once the header has arrived."""
        if self._header is None:
            raise CodecError("no snapshot header received yet")
        return self._cluster_id

    @property
    def received_bytes(self) -> int:
        return self._received

    def feed(self, chunk: pb.SnapshotChunk) -> None:
        kind = chunk.WhichOneof("chunk")
        if kind == "header":
            if self._header is not None:
                raise CodecError("second snapshot header in one transfer")
            message = message_from_pb(chunk.header.message)
            if message.snapshot is None:
                raise CodecError("snapshot header message carries no snapshot")
            self._header = message
            self._cluster_id = chunk.header.cluster_id
            self._expected = chunk.header.data_size
        elif kind == "data":
            if self._header is None:
                raise CodecError("snapshot data before the header")
            self._received += len(chunk.data)
            if self._received > self._expected:
                raise CodecError(f"snapshot data exceeds the announced {self._expected} bytes")
            self._parts.append(chunk.data)
        else:
            raise CodecError("empty snapshot chunk")

    def finish(self) -> Message:
        """The complete message, once every announced byte has arrived."""
        header = self._header
        if header is None or header.snapshot is None:
            raise CodecError("snapshot transfer ended before its header")
        if self._received != self._expected:
            raise CodecError(
                f"snapshot transfer ended after {self._received} of {self._expected} bytes"
            )
        snapshot = Snapshot(meta=header.snapshot.meta, data=b"".join(self._parts))
        return Message(
            type=header.type,
            to=header.to,
            frm=header.frm,
            term=header.term,
            log_term=header.log_term,
            index=header.index,
            entries=header.entries,
            commit=header.commit,
            snapshot=snapshot,
            reject=header.reject,
            reject_hint=header.reject_hint,
            context=header.context,
        )
