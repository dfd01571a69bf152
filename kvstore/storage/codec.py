"""Compact struct encodings of the Raft values kept on disk (never pickle)."""

from __future__ import annotations

import struct

from kvstore.raft.types import ConfState, Entry, EntryType, HardState, SnapshotMeta

_ENTRY_HEAD = struct.Struct(">QB")
_HARD_STATE = struct.Struct(">QQQ")
_U64x2 = struct.Struct(">QQ")
_U32x2 = struct.Struct(">II")
_U64 = struct.Struct(">Q")

_ENTRY_TYPES = tuple(EntryType)


def encode_entry(entry: Entry) -> bytes:
    """Term and type in 9 bytes, then the payload; the index lives in the key."""
    return _ENTRY_HEAD.pack(entry.term, entry.type.value) + entry.data


def decode_entry(index: int, data: bytes) -> Entry:
    term, kind = _ENTRY_HEAD.unpack_from(data)
    return Entry(term, index, _ENTRY_TYPES[kind], data[_ENTRY_HEAD.size :])


def decode_entry_term(data: bytes) -> int:
    return int(_ENTRY_HEAD.unpack_from(data)[0])


def encode_hard_state(hs: HardState) -> bytes:
    return _HARD_STATE.pack(hs.term, hs.vote, hs.commit)


def decode_hard_state(data: bytes) -> HardState:
    term, vote, commit = _HARD_STATE.unpack(data)
    return HardState(term, vote, commit)


def encode_index_term(index: int, term: int) -> bytes:
    return _U64x2.pack(index, term)


def decode_index_term(data: bytes) -> tuple[int, int]:
    index, term = _U64x2.unpack(data)
    return int(index), int(term)


def encode_snapshot_meta(meta: SnapshotMeta) -> bytes:
    voters = sorted(meta.conf_state.voters)
    learners = sorted(meta.conf_state.learners)
    parts = [_U64x2.pack(meta.index, meta.term), _U32x2.pack(len(voters), len(learners))]
    parts.extend(_U64.pack(n) for n in voters + learners)
    return b"".join(parts)


def decode_snapshot_meta(data: bytes) -> SnapshotMeta:
    index, term = _U64x2.unpack_from(data, 0)
    n_voters, n_learners = _U32x2.unpack_from(data, 16)
    ids = struct.unpack_from(f">{n_voters + n_learners}Q", data, 24)
    conf = ConfState(frozenset(ids[:n_voters]), frozenset(ids[n_voters:]))
    return SnapshotMeta(int(index), int(term), conf)
