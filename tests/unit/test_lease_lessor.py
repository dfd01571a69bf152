"""The Lessor under a fake clock (plain floats passed as `now`), over a real
LevelDB in a temporary directory."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvstore.lease.attachments import leased_keys
from kvstore.lease.errors import LeaseExists, LeaseNotFound, LeaseTTLTooLarge, NotPrimary
from kvstore.lease.lessor import (
    FOREVER,
    MAX_LEASE_TTL,
    Lessor,
    LessorConfig,
    check_grant,
    min_lease_ttl,
)
from kvstore.lease.queue import DeadlineQueue
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import Event, EventType, KeyValue, PutRequest
from kvstore.storage import keys
from kvstore.storage.db import Database

CONFIG = LessorConfig(min_ttl=5, checkpoint_interval=60.0, revoke_retry_interval=3.0)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(str(tmp_path / "db"))
    yield d
    d.close()


def grant(le: Lessor, db: Database, lease_id: int, ttl: int, now: float = 0.0) -> int:
    with db.batch() as b:
        return le.apply_grant(lease_id, ttl, b, now)


def revoke(le: Lessor, db: Database, lease_id: int) -> list[bytes]:
    with db.batch() as b:
        return le.apply_revoke(lease_id, b)


def checkpoint(le: Lessor, db: Database, cps: list[tuple[int, int]]) -> None:
    with db.batch() as b:
        for lease_id, remaining in cps:
            le.apply_checkpoint(lease_id, remaining, b)


def leader(db: Database, now: float = 0.0, config: LessorConfig = CONFIG) -> Lessor:
    le = Lessor(db, config)
    le.promote(now)
    return le


# -- limits and errors -----------------------------------------------------------------


def test_min_ttl_is_one_and_a_half_election_timeouts_rounded_up() -> None:
    assert min_lease_ttl(10, 100) == 2  # etcd defaults: 15 ticks of 100 ms = 1.5 s
    assert min_lease_ttl(20, 100) == 3  # exactly 3.0 s: no float rounding up to 4
    assert min_lease_ttl(10, 500) == 8  # 7.5 s
    assert min_lease_ttl(1, 1) == 1


def test_grant_below_min_ttl_is_raised_to_it_not_refused(db: Database) -> None:
    le = Lessor(db, CONFIG)
    assert grant(le, db, 1, 1) == 5
    assert grant(le, db, 2, -7) == 5
    assert grant(le, db, 3, 0) == 5
    assert grant(le, db, 4, 6) == 6
    lease = le.get(1)
    assert lease is not None and lease.ttl == 5


def test_grant_limits_and_errors(db: Database) -> None:
    le = Lessor(db, CONFIG)
    assert grant(le, db, 7, MAX_LEASE_TTL) == MAX_LEASE_TTL
    with pytest.raises(LeaseTTLTooLarge) as too_large:
        grant(le, db, 8, MAX_LEASE_TTL + 1)
    assert too_large.value.etcd_message == "etcdserver: too large lease TTL"
    with pytest.raises(LeaseExists) as exists:
        grant(le, db, 7, 10)
    assert exists.value.etcd_message == "etcdserver: lease already exists"
    with pytest.raises(LeaseNotFound):  # etcd's lessor: ID 0 is "no lease"
        grant(le, db, 0, 10)
    assert grant(le, db, -5, 10) == 10  # etcd accepts negative IDs
    assert sorted(le.leases()) == [-5, 7]
    check_grant(9, 10)
    with pytest.raises(LeaseTTLTooLarge):
        check_grant(9, MAX_LEASE_TTL + 1)


def test_errors_leave_state_and_batch_untouched(db: Database) -> None:
    le = Lessor(db, CONFIG)
    grant(le, db, 1, 10)
    with db.batch() as b:
        with pytest.raises(LeaseExists):
            le.apply_grant(1, 20, b, 0.0)
        with pytest.raises(LeaseNotFound):
            le.apply_revoke(2, b)
        assert len(b) == 0
    lease = le.get(1)
    assert lease is not None and lease.ttl == 10


def test_next_id_is_positive_unused_and_seeded(db: Database) -> None:
    le = Lessor(db, CONFIG)
    a = le.next_id(random.Random(3))
    assert a == le.next_id(random.Random(3))
    assert 0 < a < 2**63
    grant(le, db, a, 10)
    b = le.next_id(random.Random(3))  # the same draw is taken: the next one is used
    assert b != a and 0 < b < 2**63


# -- the leader's clock ----------------------------------------------------------------


def test_follower_never_expires_and_refuses_leader_questions(db: Database) -> None:
    le = Lessor(db, CONFIG)
    grant(le, db, 1, 10)
    assert le.expired(1e9, 100) == []
    assert le.checkpoints(1e9) == []
    with pytest.raises(NotPrimary):
        le.renew(1, 0.0)
    with pytest.raises(NotPrimary):
        le.time_to_live(1, 0.0, keys=False)
    lease = le.get(1)
    assert lease is not None and lease.expiry == FOREVER


def test_grant_renew_expire(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 10, now=100.0)
    grant(le, db, 2, 50, now=100.0)
    assert le.time_to_live(1, 103.5, keys=False) == (10, 6, [])
    assert le.expired(109.9, 10) == []
    assert le.renew(1, 109.0) == 10  # now expires at 119
    assert le.expired(115.0, 10) == []
    assert le.expired(119.0, 10) == [1]
    assert le.expired(119.5, 10) == []  # offered once: its revoke is in flight
    with pytest.raises(LeaseNotFound):  # expired leases cannot be kept alive
        le.renew(1, 119.5)
    assert le.time_to_live(1, 119.5, keys=False) == (10, 0, [])
    assert le.expired(122.0, 10) == [1]  # revoke lost: offered again 3 s later
    revoke(le, db, 1)
    assert le.expired(200.0, 10) == [2]
    with pytest.raises(LeaseNotFound):
        le.renew(1, 200.0)
    with pytest.raises(LeaseNotFound):
        le.time_to_live(1, 200.0, keys=True)


def test_expired_respects_limit_and_order(db: Database) -> None:
    le = leader(db)
    for i in range(1, 11):
        grant(le, db, i, 100 - i)  # lease 10 expires first
    assert le.expired(1000.0, 3) == [10, 9, 8]
    assert le.expired(1000.0, 100) == [7, 6, 5, 4, 3, 2, 1]
    assert sorted(le.leases()) == list(range(1, 11))  # pending revokes: still listed


def test_leases_lists_soonest_expiry_first_on_the_leader(db: Database) -> None:
    le = Lessor(db, CONFIG)
    grant(le, db, 3, 10)
    grant(le, db, 1, 30)
    grant(le, db, 2, 20)
    assert le.leases() == [1, 2, 3]
    le.promote(0.0)
    assert le.leases() == [3, 2, 1]


def test_demote_forgets_the_clock_and_promote_restarts_it(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 10)
    le.demote()
    assert le.expired(1e6, 10) == []
    le.promote(1000.0, extend=2.0)
    assert le.expired(1011.9, 10) == []
    assert le.expired(1012.0, 10) == [1]


# -- checkpoints and failover ----------------------------------------------------------


def test_checkpoints_are_due_every_interval_while_remaining_exceeds_it(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 200)  # remaining 200 > 60: checkpointed at 60, 120; not at 180
    grant(le, db, 2, 50)  # never: it expires before a checkpoint could matter
    assert le.checkpoints(59.0) == []
    assert le.checkpoints(60.0) == [(1, 140)]
    assert le.checkpoints(60.0) == []
    assert le.checkpoints(120.5) == [(1, 80)]  # ceil: never below the truth
    assert le.checkpoints(500.0) == []


def test_failover_keeps_the_checkpointed_remaining_ttl(db: Database, tmp_path: Path) -> None:
    """The same entries applied on a leader and a follower; the follower is
    promoted after the leader dies: the lease keeps its remaining TTL rather
    than starting over at its full TTL, and is not expired early."""
    old = leader(db)
    other_db = Database(str(tmp_path / "follower"))
    try:
        new = Lessor(other_db, CONFIG)
        for le, d in ((old, db), (new, other_db)):
            grant(le, d, 1, 200, now=0.0)
        cps = old.checkpoints(60.0)
        assert cps == [(1, 140)]
        checkpoint(old, db, cps)
        checkpoint(new, other_db, cps)
        # The leader dies at 70; the follower wins the election at 75.
        new.promote(75.0)
        assert new.time_to_live(1, 75.0, keys=False) == (200, 140, [])
        assert new.expired(214.9, 10) == []
        assert new.expired(215.0, 10) == [1]  # 140 s after promotion, not 200
        # The old leader would have expired it at 200: the failover extended
        # it by the time since the checkpoint plus the election (15 s), no more.
    finally:
        other_db.close()


def test_failover_without_checkpoint_restarts_at_full_ttl(db: Database) -> None:
    le = Lessor(db, CONFIG)
    grant(le, db, 1, 30)
    le.promote(100.0)
    assert le.time_to_live(1, 100.0, keys=False) == (30, 30, [])


def test_keepalive_after_a_checkpoint_resets_it(db: Database) -> None:
    """Without the reset, a failover after a keepalive would use the older,
    smaller checkpoint and expire the lease early."""
    le = leader(db)
    grant(le, db, 1, 200)
    cps = le.checkpoints(60.0)
    checkpoint(le, db, cps)
    assert le.renew(1, 70.0) == 200  # no Raft entry per keepalive...
    assert le.checkpoints(70.0) == [(1, 0)]  # ...but one reset after a checkpoint
    checkpoint(le, db, [(1, 0)])
    le.renew(1, 80.0)
    assert le.checkpoints(80.0) == []  # nothing to reset any more
    lease = le.get(1)
    assert lease is not None and lease.remaining == 0
    follower = Lessor(db, CONFIG)  # what a new leader would load
    follower.promote(90.0)
    assert follower.time_to_live(1, 90.0, keys=False)[1] == 200


def test_keepalive_while_a_checkpoint_is_in_flight_resets_after_it(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 200)
    cps = le.checkpoints(60.0)  # proposed...
    le.renew(1, 61.0)  # ...keepalive before it applies
    checkpoint(le, db, cps)  # now applies with the older remaining TTL
    assert le.checkpoints(61.0) == [(1, 0)]  # so a reset follows it in the log


def test_checkpoint_of_a_revoked_lease_is_ignored(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 200)
    cps = le.checkpoints(60.0)
    revoke(le, db, 1)
    checkpoint(le, db, cps)
    assert not le.exists(1)
    assert db.get(keys.lease_key(1)) is None


# -- attachments -----------------------------------------------------------------------


def test_attach_detach_move_and_revoke_returns_sorted_keys(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 10)
    grant(le, db, 2, 10)
    for key in (b"c", b"a", b"b"):
        le.attach(1, key)
    le.attach(2, b"b")  # moved to lease 2
    le.attach(0, b"c")  # put without a lease: detached
    le.attach(99, b"z")  # unknown lease: ignored
    assert le.lease_of(b"b") == 2 and le.lease_of(b"c") == 0 and le.lease_of(b"z") == 0
    assert le.time_to_live(1, 0.0, keys=True) == (10, 10, [b"a"])
    assert le.detach(b"b") == 2
    assert le.detach(b"b") == 0
    le.attach(1, b"d")
    assert revoke(le, db, 1) == [b"a", b"d"]
    assert le.lease_of(b"a") == 0
    assert le.time_to_live(2, 0.0, keys=True) == (10, 10, [])


def test_rebuild_attachments_from_the_mvcc_store(db: Database) -> None:
    le = Lessor(db, CONFIG)
    store = MVCCStore(db, StoreOptions(sync=False, lease_exists=le.exists))
    grant(le, db, 1, 10)
    grant(le, db, 2, 10)
    store.put(PutRequest(b"k1", b"v", lease=1))
    store.put(PutRequest(b"k2", b"v", lease=2))
    store.put(PutRequest(b"k3", b"v", lease=1))
    store.put(PutRequest(b"k3", b"v2", ignore_lease=True))  # keeps lease 1
    store.put(PutRequest(b"k4", b"v"))
    store.put(PutRequest(b"k2", b"v"))  # detached from 2 by a put without lease
    assert leased_keys(store) == [(b"k1", 1), (b"k3", 1)]
    le.rebuild_attachments(leased_keys(store))
    lease1, lease2 = le.get(1), le.get(2)
    assert lease1 is not None and lease1.keys == {b"k1", b"k3"}
    assert lease2 is not None and lease2.keys == set()


# -- persistence -----------------------------------------------------------------------


def test_persistence_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    db = Database(path)
    le = leader(db)
    grant(le, db, 1, 200)
    grant(le, db, -2, 30)
    grant(le, db, 3, 40)
    checkpoint(le, db, le.checkpoints(60.0))  # lease 1: 140 left
    revoke(le, db, 3)
    db.close()

    db = Database(path)
    try:
        again = Lessor(db, CONFIG)
        assert sorted(again.leases()) == [-2, 1]
        l1, l2 = again.get(1), again.get(-2)
        assert l1 is not None and (l1.ttl, l1.remaining) == (200, 140)
        assert l2 is not None and (l2.ttl, l2.remaining) == (30, 0)
        again.promote(0.0)
        assert again.time_to_live(1, 0.0, keys=False)[1] == 140
        assert again.time_to_live(-2, 0.0, keys=False)[1] == 30
    finally:
        db.close()


def test_reload_replaces_state_and_demotes(db: Database) -> None:
    le = leader(db)
    grant(le, db, 1, 10)
    le.attach(1, b"k")
    with db.batch() as b:  # e.g. a snapshot install rewrote the `e` keyspace
        b.delete(keys.lease_key(1))
    le.reload()
    assert not le.is_primary and le.leases() == [] and le.lease_of(b"k") == 0


# -- the deadline queue ----------------------------------------------------------------


def test_deadline_queue_moves_removes_and_stays_small() -> None:
    q = DeadlineQueue()
    for i in range(100):
        q.set(i, float(i))
    for step in range(10_000):
        q.set(step % 100, 1000.0 + step)  # keepalives move deadlines forward
    assert len(q._heap) <= 2 * len(q) + 64
    q.remove(99)
    assert q.pop_due(10_999.0, 1000) == list(range(0, 99))
    assert len(q) == 0 and q.pop_due(1e9, 10) == []


def test_observe_follows_mvcc_events(db: Database) -> None:
    le = Lessor(db, CONFIG)
    grant(le, db, 1, 10)
    grant(le, db, 2, 10)
    put, delete = EventType.PUT, EventType.DELETE
    le.observe(
        [
            Event(put, KeyValue(b"a", lease=1)),
            Event(put, KeyValue(b"b", lease=1)),
            Event(put, KeyValue(b"a", lease=2)),  # moved
            Event(delete, KeyValue(b"b")),  # deleted
            Event(put, KeyValue(b"c", lease=1)),
            Event(put, KeyValue(b"c")),  # put without a lease
        ]
    )
    assert (le.lease_of(b"a"), le.lease_of(b"b"), le.lease_of(b"c")) == (2, 0, 0)
    assert revoke(le, db, 1) == []
    assert revoke(le, db, 2) == [b"a"]
