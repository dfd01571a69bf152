"""The cluster's member table, persisted under the `n` key prefix.

Rows are small and change rarely, so each is stored as compact JSON. The
table changes only by applying Raft entries (bootstrap, published client
URLs, membership changes), so every member holds the same table.
"""

from __future__ import annotations

import json

from kvstore.server.views import Member
from kvstore.storage import keys
from kvstore.storage.db import Batch, Database

_META_CLUSTER_ID = keys.META + b"cluster_id"
_META_MEMBER_ID = keys.META + b"member_id"


class MemberTable:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._members: dict[int, Member] = {}
        for _, value in db.iterate(keys.MEMBER, keys.MEMBER + b"\xff"):
            m = _decode(value)
            self._members[m.id] = m

    def list(self) -> list[Member]:
        return sorted(self._members.values(), key=lambda m: m.id)

    def get(self, member_id: int) -> Member | None:
        return self._members.get(member_id)

    def put(self, member: Member, batch: Batch) -> None:
        batch.put(keys.member_key(member.id), _encode(member))
        self._members[member.id] = member

    def remove(self, member_id: int, batch: Batch) -> None:
        batch.delete(keys.member_key(member_id))
        self._members.pop(member_id, None)


def read_identity(db: Database) -> tuple[int, int] | None:
    """(cluster id, member id) recorded at bootstrap, or None for a new dir."""
    cid, mid = db.get(_META_CLUSTER_ID), db.get(_META_MEMBER_ID)
    if cid is None or mid is None:
        return None
    return keys.decode_u64(cid), keys.decode_u64(mid)


def write_identity(batch: Batch, cluster_id: int, member_id: int) -> None:
    batch.put(_META_CLUSTER_ID, keys.encode_u64(cluster_id))
    batch.put(_META_MEMBER_ID, keys.encode_u64(member_id))


def _encode(m: Member) -> bytes:
    return json.dumps(
        {
            "id": m.id,
            "name": m.name,
            "peer_urls": list(m.peer_urls),
            "client_urls": list(m.client_urls),
            "is_learner": m.is_learner,
        },
        separators=(",", ":"),
    ).encode()


def _decode(data: bytes) -> Member:
    d = json.loads(data)
    return Member(
        id=int(d["id"]),
        name=str(d["name"]),
        peer_urls=tuple(d["peer_urls"]),
        client_urls=tuple(d["client_urls"]),
        is_learner=bool(d["is_learner"]),
    )
