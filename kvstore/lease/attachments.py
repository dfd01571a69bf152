"""Rebuilding the key -> lease attachments at open from the live MVCC keys.

Attachments are not persisted: the `lease` field of each live key-value is
already the truth, so the node reads it once after opening the store (and
after installing a snapshot):

    lessor.rebuild_attachments(leased_keys(store))
"""

from __future__ import annotations

from kvstore.mvcc.store import MVCCStore
from kvstore.mvcc.types import RangeRequest

_EVERYTHING = RangeRequest(key=b"\0", range_end=b"\0", keys_only=True)


def leased_keys(store: MVCCStore) -> list[tuple[bytes, int]]:
    """(key, lease) for every live key that has a lease, at the current revision."""
    return [(kv.key, kv.lease) for kv in store.range(_EVERYTHING).kvs if kv.lease]
