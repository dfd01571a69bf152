"""The Ready/advance contract of RawNode (see rawnode.py): what a Ready
holds, when it must be fsync'd, and loud errors for a runtime that misuses
the API."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kvstore.raft.config import Config, PlantedBugs
from kvstore.raft.errors import RaftUsageError
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryStorage
from kvstore.raft.types import (
    LOCAL_MESSAGES,
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)
from tests.unit.raft_harness import Network, founder_storage

MT = MessageType


def make(node_id: int = 1, voters: tuple[int, ...] = (1, 2, 3), **cfg: Any) -> RawNode:
    return RawNode(Config(id=node_id, **cfg), founder_storage(voters), random.Random(0))


def persist(raw: RawNode, rd: Ready) -> None:
    """Carry out a Ready on the node's MemoryStorage, then advance."""
    storage = raw.raft.log.storage
    assert isinstance(storage, MemoryStorage)
    if rd.snapshot is not None:
        storage.apply_snapshot(rd.snapshot)
    if rd.entries:
        storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)
    raw.advance(rd)


def drain(raw: RawNode) -> list[Ready]:
    readies = []
    while raw.has_ready():
        rd = raw.ready()
        persist(raw, rd)
        readies.append(rd)
    return readies


def test_the_first_ready_hands_out_the_bootstrap_entries_without_sync() -> None:
    raw = make()
    rd = raw.ready()
    assert [e.index for e in rd.committed_entries] == [1, 2, 3]
    assert (rd.entries, rd.messages, rd.hard_state, rd.soft_state) == ((), (), None, None)
    assert not rd.must_sync
    persist(raw, rd)
    assert not raw.has_ready()


def test_must_sync_only_when_entries_snapshot_term_or_vote_change() -> None:
    raw = make()
    drain(raw)
    # A pre-vote changes the role only: its messages need no sync.
    raw.campaign()
    rd = raw.ready()
    assert rd.soft_state == SoftState(0, Role.PRE_CANDIDATE)
    assert [m.type for m in rd.messages] == [MT.PRE_VOTE, MT.PRE_VOTE]
    assert (rd.hard_state, rd.must_sync) == (None, False)
    persist(raw, rd)
    # Winning the pre-vote starts a real campaign: term and vote change.
    raw.step(Message(MT.PRE_VOTE_RESP, to=1, frm=2, term=2))
    rd = raw.ready()
    assert rd.hard_state == HardState(term=2, vote=1, commit=3)
    assert rd.must_sync and rd.entries == ()
    persist(raw, rd)
    # Winning the vote appends the no-op: entries change.
    raw.step(Message(MT.VOTE_RESP, to=1, frm=2, term=2))
    rd = raw.ready()
    assert [(e.index, e.term) for e in rd.entries] == [(4, 2)]
    assert rd.hard_state is None
    assert rd.must_sync
    persist(raw, rd)
    # An acknowledgement that only moves the commit index needs no sync.
    raw.step(Message(MT.APP_RESP, to=1, frm=2, term=2, index=4))
    rd = raw.ready()
    assert rd.hard_state == HardState(term=2, vote=1, commit=4)
    assert rd.entries == () and rd.snapshot is None
    assert not rd.must_sync


def test_a_snapshot_must_be_synced() -> None:
    raw = make(node_id=3)
    drain(raw)
    snap = Snapshot(SnapshotMeta(10, 2, ConfState(frozenset({1, 2, 3}))), b"")
    raw.step(Message(MT.SNAP, to=3, frm=1, term=2, snapshot=snap))
    rd = raw.ready()
    assert rd.snapshot == snap
    assert rd.must_sync
    persist(raw, rd)
    assert raw.status().applied == 10


def test_a_granted_vote_leaves_in_the_same_ready_as_the_vote_it_promises() -> None:
    raw = make(node_id=2)
    drain(raw)
    raw.step(Message(MT.VOTE, to=2, frm=3, term=2, index=3, log_term=1))
    assert raw.raft.msgs  # decided in memory...
    rd = raw.ready()  # ...but only handed out with the state to persist first
    assert [(m.type, m.to, m.reject) for m in rd.messages] == [(MT.VOTE_RESP, 3, False)]
    assert rd.hard_state == HardState(term=2, vote=3, commit=3)
    assert rd.must_sync
    assert raw.raft.msgs == []
    persist(raw, rd)
    assert not raw.has_ready()  # and never handed out twice


def test_the_planted_vote_without_sync_bug_skips_the_sync() -> None:
    raw = make(node_id=2, bugs=PlantedBugs(vote_without_sync=True))
    drain(raw)
    raw.step(Message(MT.VOTE, to=2, frm=3, term=2, index=3, log_term=1))
    rd = raw.ready()
    assert rd.hard_state == HardState(term=2, vote=3, commit=3)
    assert not rd.must_sync


def test_advance_without_ready_raises() -> None:
    raw = make()
    with pytest.raises(RaftUsageError):
        raw.advance(Ready(None, None, (), None, (), (), (), False))


def test_ready_twice_without_advance_raises() -> None:
    raw = make()
    rd = raw.ready()
    with pytest.raises(RaftUsageError):
        raw.ready()
    raw.advance(rd)
    raw.ready()


@pytest.mark.parametrize("mtype", sorted(LOCAL_MESSAGES, key=str))
def test_stepping_a_local_message_raises(mtype: MessageType) -> None:
    raw = make()
    with pytest.raises(RaftUsageError):
        raw.step(Message(mtype, to=1, frm=2))


def test_stepping_a_request_that_claims_to_come_from_this_node_raises() -> None:
    raw = make()
    for mtype in (MT.PROP, MT.READ_INDEX):
        with pytest.raises(RaftUsageError):
            raw.step(Message(mtype, to=1, frm=1, context=b"x"))


def test_read_index_needs_a_context() -> None:
    raw = make(voters=(1,))
    raw.campaign()
    with pytest.raises(RaftUsageError):
        raw.read_index(b"")


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Config(id=0)
    with pytest.raises(ValueError):
        Config(id=1, election_tick=2, heartbeat_tick=2)
    with pytest.raises(ValueError):
        Config(id=1, max_inflight_msgs=0)


def test_an_applied_index_beyond_the_log_raises() -> None:
    with pytest.raises(RaftUsageError):
        make(applied=4)


def test_committed_entries_are_not_handed_out_twice_across_ready_calls() -> None:
    raw = make(node_id=3)
    drain(raw)
    new = tuple(Entry(term=2, index=i, data=f"e{i}".encode()) for i in (4, 5, 6))
    raw.step(Message(MT.APP, to=3, frm=1, term=2, index=3, log_term=1, entries=new, commit=4))
    rd1 = raw.ready()
    # Entries may be committed in the Ready that persists them: the runtime
    # persists before it applies.
    assert [e.index for e in rd1.entries] == [4, 5, 6]
    assert [e.index for e in rd1.committed_entries] == [4]
    # The commit index moves while rd1 is being carried out...
    raw.step(Message(MT.HEARTBEAT, to=3, frm=1, term=2, commit=5))
    persist(raw, rd1)
    rd2 = raw.ready()
    # ...and the next Ready starts after what rd1 handed out.
    assert rd2.entries == ()
    assert [e.index for e in rd2.committed_entries] == [5]
    # While rd2 is out, what it holds is not reported as new work.
    assert not raw.has_ready()
    raw.step(Message(MT.HEARTBEAT, to=3, frm=1, term=2, commit=6))
    assert raw.has_ready()
    persist(raw, rd2)
    rd3 = raw.ready()
    assert [e.index for e in rd3.committed_entries] == [6]
    persist(raw, rd3)
    assert not raw.has_ready()
    assert raw.status().applied == 6


def test_a_leader_counts_its_own_entry_only_once_persisted() -> None:
    raw = make(voters=(1,))
    raw.campaign()
    drain(raw)
    assert raw.raft.role is Role.LEADER
    raw.propose(b"x")
    rd = raw.ready()
    assert [e.data for e in rd.entries] == [b"x"]
    assert rd.committed_entries == ()  # not durable yet, so not committed
    assert raw.status().commit == 2
    persist(raw, rd)
    rd = raw.ready()
    assert [e.data for e in rd.committed_entries] == [b"x"]


def test_soft_and_hard_state_appear_only_when_they_change() -> None:
    raw = make()
    drain(raw)
    raw.tick()
    assert not raw.has_ready()
    raw.step(Message(MT.HEARTBEAT, to=1, frm=2, term=1, commit=3))
    rd = raw.ready()
    assert rd.soft_state == SoftState(2, Role.FOLLOWER)  # learned the leader
    assert rd.hard_state is None
    persist(raw, rd)
    raw.step(Message(MT.HEARTBEAT, to=1, frm=2, term=1, commit=3))
    rd = raw.ready()
    assert (rd.soft_state, rd.hard_state) == (None, None)
    assert [m.type for m in rd.messages] == [MT.HEARTBEAT_RESP]


def test_a_restarted_node_keeps_term_vote_and_log_from_storage() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(1, b"a")
    net.propose(1, b"b")
    before = net.nodes[2].status()
    log = net.log(2)
    assert (before.term, before.vote, before.commit) == (2, 1, 6)
    net.crash(2)
    net.restart(2)
    after = net.nodes[2].status()
    assert (after.term, after.vote, after.commit, after.last_index) == (2, 1, 6, 6)
    assert after.role is Role.FOLLOWER
    assert net.log(2) == log
    assert net.raft(2).conf == ConfState(frozenset({1, 2, 3}))
    # The state machine is rebuilt from the log (no snapshot was taken).
    net.deliver_all()
    assert net.data(2) == [b"a", b"b"]
    # Its vote for 1 in term 2 still binds it.
    net.nodes[2].step(Message(MT.VOTE, to=2, frm=3, term=2, index=9, log_term=2))
    answers = [m for m in net.process(2) if m.type is MT.VOTE_RESP]
    assert [m.reject for m in answers] == [True]


def test_status_reports_the_node_s_view() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    s = net.nodes[1].status()
    assert (s.id, s.role, s.leader, s.term, s.vote) == (1, Role.LEADER, 1, 2, 1)
    assert (s.commit, s.applied, s.last_index, s.lead_transferee) == (4, 4, 4, 0)
