"""The on-disk key layout of a node's single LevelDB database.

Every key starts with a one-byte prefix naming its keyspace; integers are
big-endian so that LevelDB's bytewise order is numeric order.

    prefix  key                           value
    ------  ----------------------------  ---------------------------------------
    b"l"    l + index (u64)                one Raft log entry: term u64, type u8, data
    b"t"    t                              log truncation point: index u64, term u64
    b"h"    h                              Raft hard state: term, vote, commit (3 x u64)
    b"s"    s                              snapshot metadata: index, term, conf state
    b"S"    S                              snapshot data (opaque bytes)
    b"k"    k + main (u64) + sub (u64)     one MVCC record (see kvstore.mvcc.record)
    b"m"    m + name                       meta: applied index, MVCC revisions, format
    b"e"    e + lease id (i64, biased)     leases (reserved for the lessor)
    b"n"    n + member id (u64)            cluster members (reserved for the server)

Docs: docs/storage.md has the same table and a worked example.
"""

from __future__ import annotations

import struct

LOG = b"l"
LOG_TRUNCATION = b"t"
HARD_STATE = b"h"
SNAPSHOT_META = b"s"
SNAPSHOT_DATA = b"S"
MVCC = b"k"
META = b"m"
LEASE = b"e"
MEMBER = b"n"

META_FORMAT = META + b"format"
META_APPLIED_INDEX = META + b"applied_index"
META_CURRENT_REV = META + b"mvcc_current_rev"
META_COMPACT_REV = META + b"mvcc_compact_rev"

FORMAT_VERSION = b"1"

_U64 = struct.Struct(">Q")
_U64x2 = struct.Struct(">QQ")

LOG_KEY_LEN = 1 + 8
MVCC_KEY_LEN = 1 + 16


def log_key(index: int) -> bytes:
    return LOG + _U64.pack(index)


def log_index(key: bytes) -> int:
    return int(_U64.unpack_from(key, 1)[0])


def mvcc_key(main: int, sub: int) -> bytes:
    return MVCC + _U64x2.pack(main, sub)


def mvcc_rev(key: bytes) -> tuple[int, int]:
    main, sub = _U64x2.unpack_from(key, 1)
    return int(main), int(sub)


def lease_key(lease_id: int) -> bytes:
    # Lease ids are signed 64-bit in etcd; bias them so the order is numeric.
    return LEASE + _U64.pack(lease_id + (1 << 63))


def member_key(member_id: int) -> bytes:
    return MEMBER + _U64.pack(member_id)


def encode_u64(value: int) -> bytes:
    return _U64.pack(value)


def decode_u64(data: bytes) -> int:
    return int(_U64.unpack(data)[0])
