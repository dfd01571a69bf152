"""A member's identity on disk: check it on restart, create it on first start."""

from __future__ import annotations

from kvstore.raft.storage import bootstrap_entries
from kvstore.raft.types import HardState
from kvstore.server.config import ServerConfig
from kvstore.server.members import MemberTable, read_identity, write_identity
from kvstore.server.views import Member
from kvstore.storage.db import Database
from kvstore.storage.log_store import LogStore


class IdentityMismatch(Exception):
    """The data dir belongs to another member or cluster than the flags say."""


def check_or_bootstrap(
    db: Database,
    cfg: ServerConfig,
    founders: dict[int, tuple[str, tuple[str, ...]]],
    cluster_id: int,
    member_id: int,
) -> None:
    """Refuse a data dir of another member or cluster without touching it;
    give a new data dir the founding log, member table and identity in one
    synced batch."""
    stored = read_identity(db)
    if stored is not None:
        cid, mid = stored
        if (cid, mid) != (cluster_id, member_id):
            raise IdentityMismatch(
                f"data dir {cfg.resolved_data_dir!r} belongs to member {mid:x} of "
                f"cluster {cid:x}, but the flags describe member {member_id:x} of "
                f"cluster {cluster_id:x}; check --name, --initial-cluster, "
                "--initial-advertise-peer-urls and --initial-cluster-token"
            )
        return
    if cfg.initial_cluster_state != "new":
        raise IdentityMismatch(
            "joining an existing cluster (--initial-cluster-state existing) needs member "
            "add, which this version does not support yet"
        )
    voters = sorted(founders)
    store = LogStore(db)
    table = MemberTable(db)
    with db.batch(sync=True) as batch:
        store.append(bootstrap_entries(voters), batch)
        store.set_hard_state(HardState(term=1, commit=len(voters)), batch)
        for mid, (name, urls) in founders.items():
            table.put(Member(mid, name, urls, ()), batch)
        write_identity(batch, cluster_id, member_id)
