"""The value of one MVCC record in LevelDB (its key is the revision).

    flags u8 | create_revision i64 | version i64 | lease i64 | key_len u32 | key | value

flags bit 0 marks a tombstone (a delete); a tombstone carries only the key.
"""

from __future__ import annotations

import struct

from kvstore.mvcc.types import KeyValue

_HEAD = struct.Struct(">BqqqI")
HEAD_SIZE = _HEAD.size
TOMBSTONE = 1


def encode(key: bytes, value: bytes, create_revision: int, version: int, lease: int) -> bytes:
    return _HEAD.pack(0, create_revision, version, lease, len(key)) + key + value


def encode_tombstone(key: bytes) -> bytes:
    return _HEAD.pack(TOMBSTONE, 0, 0, 0, len(key)) + key


def decode_head(data: bytes) -> tuple[int, int, int, int, int]:
    """(flags, create_revision, version, lease, key_len)."""
    flags, create, version, lease, key_len = _HEAD.unpack_from(data)
    return flags, create, version, lease, key_len


def decode_kv(mod_revision: int, data: bytes) -> KeyValue:
    _, create, version, lease, key_len = _HEAD.unpack_from(data)
    end = HEAD_SIZE + key_len
    return KeyValue(data[HEAD_SIZE:end], create, mod_revision, version, data[end:], lease)
