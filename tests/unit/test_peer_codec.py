"""Round trips through kvstore/transport/codec.py and proto/peer.proto."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from kvstore.transport import codec

U64 = st.integers(min_value=0, max_value=2**64 - 1)
NODE_IDS = st.frozensets(U64, max_size=7)

entries = st.builds(
    Entry,
    term=U64,
    index=U64,
    type=st.sampled_from(EntryType),
    data=st.binary(max_size=64),
)
conf_states = st.builds(ConfState, voters=NODE_IDS, learners=NODE_IDS)
snapshot_metas = st.builds(SnapshotMeta, index=U64, term=U64, conf_state=conf_states)
snapshots = st.builds(Snapshot, meta=snapshot_metas, data=st.binary(max_size=256))
messages = st.builds(
    Message,
    type=st.sampled_from(MessageType),
    to=U64,
    frm=U64,
    term=U64,
    log_term=U64,
    index=U64,
    entries=st.lists(entries, max_size=5).map(tuple),
    commit=U64,
    snapshot=st.none() | snapshots,
    reject=st.booleans(),
    reject_hint=U64,
    context=st.binary(max_size=32),
)


def over_the_wire(msg: pb.Message) -> pb.Message:
    return pb.Message.FromString(msg.SerializeToString())


@given(entries)
def test_entry_round_trip(entry: Entry) -> None:
    wire = pb.Entry.FromString(codec.entry_to_pb(entry).SerializeToString())
    assert codec.entry_from_pb(wire) == entry


@given(snapshots)
def test_snapshot_round_trip(snapshot: Snapshot) -> None:
    wire = pb.Snapshot.FromString(codec.snapshot_to_pb(snapshot).SerializeToString())
    assert codec.snapshot_from_pb(wire) == snapshot


@given(messages)
def test_message_round_trip(message: Message) -> None:
    assert codec.message_from_pb(over_the_wire(codec.message_to_pb(message))) == message


def test_absent_and_empty_snapshot_stay_distinct() -> None:
    none = Message(type=MessageType.APP)
    empty = Message(type=MessageType.SNAP, snapshot=Snapshot())
    assert codec.message_from_pb(over_the_wire(codec.message_to_pb(none))).snapshot is None
    assert codec.message_from_pb(over_the_wire(codec.message_to_pb(empty))).snapshot == Snapshot()


@given(st.lists(messages, max_size=4), U64)
def test_batch_round_trip(batch: list[Message], cluster_id: int) -> None:
    wire = pb.MessageBatch.FromString(codec.batch_to_pb(batch, cluster_id).SerializeToString())
    assert wire.cluster_id == cluster_id
    assert codec.batch_from_pb(wire) == tuple(batch)


def test_every_message_type_has_its_own_wire_value() -> None:
    values = {codec.message_to_pb(Message(type=t)).type for t in MessageType}
    assert len(values) == len(MessageType)
    assert pb.MESSAGE_TYPE_UNSPECIFIED not in values


def test_unspecified_or_unknown_message_type_is_rejected() -> None:
    with pytest.raises(codec.CodecError):
        codec.message_from_pb(pb.Message())
    unknown = pb.Message.FromString(b"\x08\x63")  # field 1 (type) = 99: from a newer peer
    with pytest.raises(codec.CodecError):
        codec.message_from_pb(unknown)


def test_unknown_entry_type_is_rejected() -> None:
    with pytest.raises(codec.CodecError):
        codec.entry_from_pb(pb.Entry.FromString(b"\x18\x07"))  # field 3 (type) = 7


# ------------------------------------------------------ snapshot transfers


@given(
    messages.filter(lambda m: m.snapshot is not None),
    U64,
    st.integers(min_value=1, max_value=64),
)
def test_snapshot_chunks_reassemble(message: Message, cluster_id: int, chunk_size: int) -> None:
    chunks = [
        pb.SnapshotChunk.FromString(c.SerializeToString())
        for c in codec.snapshot_chunks(message, cluster_id, chunk_size=chunk_size)
    ]
    assert chunks[0].WhichOneof("chunk") == "header"
    assert chunks[0].header.message.snapshot.data == b""
    assert all(c.WhichOneof("chunk") == "data" for c in chunks[1:])
    assert all(len(c.data) <= chunk_size for c in chunks[1:])
    assembler = codec.SnapshotAssembler()
    for chunk in chunks:
        assembler.feed(chunk)
    assert assembler.cluster_id == cluster_id
    assert message.snapshot is not None
    assert assembler.received_bytes == len(message.snapshot.data)
    assert assembler.finish() == message


def _snap_message(data: bytes) -> Message:
    return Message(
        type=MessageType.SNAP,
        to=2,
        frm=1,
        term=3,
        snapshot=Snapshot(
            SnapshotMeta(index=10, term=3, conf_state=ConfState(frozenset({1, 2}))), data
        ),
    )


def test_snapshot_chunks_need_a_snapshot() -> None:
    with pytest.raises(ValueError, match="snapshot"):
        next(codec.snapshot_chunks(Message(type=MessageType.SNAP), cluster_id=1))


def test_assembler_rejects_data_before_header() -> None:
    with pytest.raises(codec.CodecError, match="before the header"):
        codec.SnapshotAssembler().feed(pb.SnapshotChunk(data=b"x"))


def test_assembler_rejects_a_second_header() -> None:
    header, *_ = codec.snapshot_chunks(_snap_message(b"abc"), cluster_id=1)
    assembler = codec.SnapshotAssembler()
    assembler.feed(header)
    with pytest.raises(codec.CodecError, match="second"):
        assembler.feed(header)


def test_assembler_rejects_too_much_or_too_little_data() -> None:
    header, *data = codec.snapshot_chunks(_snap_message(b"abcdef"), cluster_id=1, chunk_size=4)
    short = codec.SnapshotAssembler()
    short.feed(header)
    short.feed(data[0])
    with pytest.raises(codec.CodecError, match="4 of 6"):
        short.finish()
    long = codec.SnapshotAssembler()
    long.feed(header)
    for chunk in [*data, *data]:
        if long.received_bytes + len(chunk.data) > 6:
            with pytest.raises(codec.CodecError, match="exceeds"):
                long.feed(chunk)
            break
        long.feed(chunk)
    else:
        pytest.fail("never exceeded")


def test_assembler_rejects_an_empty_chunk_and_a_missing_header() -> None:
    assembler = codec.SnapshotAssembler()
    with pytest.raises(codec.CodecError, match="empty"):
        assembler.feed(pb.SnapshotChunk())
    with pytest.raises(codec.CodecError, match="header"):
        assembler.finish()
