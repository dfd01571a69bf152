"""Full-state snapshots of a member: what a lagging follower installs.

The leader compacts its Raft log every --snapshot-count entries, keeping
only metadata of the compaction point. When a follower needs entries that
were compacted away, the leader sends the whole applied state as it is at
that moment (MVCC records, MVCC meta, leases, members) with the applied
index as the snapshot index, so the data and the index always agree.

Format: a sequence of u32-length-prefixed (key, value) pairs, raw LevelDB
keys of the keyspaces below.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from kvstore.storage import keys
from kvstore.storage.db import Batch, Database

_U32 = struct.Struct(">I")

# Keyspaces that make up the applied state (the Raft log and hard state are
# the receiver's own and are never part of a snapshot).
_SPACES = (keys.MVCC, keys.LEASE, keys.MEMBER)
_META_KEYS = (keys.META_CURRENT_REV, keys.META_COMPACT_REV)


def _end(prefix: bytes) -> bytes:
    return bytes([prefix[0] + 1])


def dump(db: Database) -> bytes:
    parts: list[bytes] = []
    for prefix in _SPACES:
        for k, v in db.iterate(prefix, _end(prefix)):
            parts += (_U32.pack(len(k)), k, _U32.pack(len(v)), v)
    for k in _META_KEYS:
        meta = db.get(k)
        if meta is not None:
            parts += (_U32.pack(len(k)), k, _U32.pack(len(meta)), meta)
    return b"".join(parts)


def _pairs(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    view, pos = memoryview(data), 0
    while pos < len(view):
        (n,) = _U32.unpack_from(view, pos)
        k = bytes(view[pos + 4 : pos + 4 + n])
        pos += 4 + n
        (n,) = _U32.unpack_from(view, pos)
        v = bytes(view[pos + 4 : pos + 4 + n])
        pos += 4 + n
        if not k or (k[:1] not in _SPACES and k not in _META_KEYS):
            raise ValueError(f"snapshot holds a key outside the applied state: {k!r}")
        yield k, v


def restore(db: Database, batch: Batch, data: bytes, applied_index: int) -> None:
    """Stage the replacement of the applied state by the snapshot's."""
    for prefix in _SPACES:
        for k in db.iterate_keys(prefix, _end(prefix)):
            batch.delete(k)
    for k in _META_KEYS:
        batch.delete(k)
    for k, v in _pairs(data):
        batch.put(k, v)
    batch.put(keys.META_APPLIED_INDEX, keys.encode_u64(applied_index))
