"""Revisions: (main, sub) pairs packed into one int for the in-memory index.

`main` counts writes to the store (one per Put, DeleteRange or Txn that
changed something); `sub` numbers the changes inside that write. The index
keeps a revision as the single int `main << 32 | sub`, which compares like the
pair and avoids one tuple per revision (1M keys mean millions of them).
On disk a revision is 16 big-endian bytes (see kvstore.storage.keys).
"""

from __future__ import annotations

SUB_BITS = 32
SUB_MASK = (1 << SUB_BITS) - 1


def pack(main: int, sub: int) -> int:
    return main << SUB_BITS | sub


def main_of(rev: int) -> int:
    return rev >> SUB_BITS


def sub_of(rev: int) -> int:
    return rev & SUB_MASK


def upper(main: int) -> int:
    """The smallest packed revision above every (main, *): `rev < upper(m)`
    is `rev.main <= m`."""
    return (main + 1) << SUB_BITS
