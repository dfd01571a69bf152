"""How a lease is stored: one LevelDB pair under the `e` prefix.

    key    e + (lease id + 2^63) as u64     (kvstore.storage.keys.lease_key)
    value  ttl i64 | remaining_ttl i64

`remaining_ttl` is the remaining TTL in seconds at the last checkpoint the
leader replicated; 0 means "none since the last grant or reset": a new
leader then starts the lease with its full TTL.
"""

from __future__ import annotations

import struct

from kvstore.storage import keys

_VALUE = struct.Struct(">qq")
_ID = struct.Struct(">Q")
_BIAS = 1 << 63

START = keys.LEASE
END = bytes([keys.LEASE[0] + 1])


def encode(ttl: int, remaining: int) -> bytes:
    return _VALUE.pack(ttl, remaining)


def decode(value: bytes) -> tuple[int, int]:
    """(ttl, remaining_ttl)."""
    ttl, remaining = _VALUE.unpack(value)
    return int(ttl), int(remaining)


def lease_id_of(key: bytes) -> int:
    """The lease ID a `lease_key` names (the inverse of keys.lease_key)."""
    return int(_ID.unpack_from(key, 1)[0]) - _BIAS
