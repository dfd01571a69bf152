"""Cluster and member IDs, derived deterministically from the bootstrap
flags so that every founding member computes the same numbers on its own.

A member's ID hashes its sorted peer URLs with the cluster token; the
cluster ID hashes the sorted member IDs. Both are non-zero 64-bit integers.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable


def _h64(data: bytes) -> int:
    value = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    return value or 1


def member_id(peer_urls: Iterable[str], token: str) -> int:
    return _h64(("\n".join(sorted(peer_urls)) + "\n" + token).encode())


def cluster_id(member_ids: Iterable[int], token: str) -> int:
    packed = b"".join(struct.pack(">Q", m) for m in sorted(member_ids))
    return _h64(packed + token.encode())
