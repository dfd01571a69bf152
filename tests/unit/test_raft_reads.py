"""Linearizable reads through ReadIndex (Raft §8, dissertation §6.4): the
leader records its commit index and serves the read only after a quorum
acknowledges a heartbeat sent after the request arrived."""

from __future__ import annotations

import pytest

from kvstore.raft.config import PlantedBugs
from kvstore.raft.errors import ReadIndexDropped
from kvstore.raft.types import Message, MessageType, ReadState, Role
from tests.unit.raft_harness import Network

MT = MessageType
ELECTION_TICK = 10


def test_read_index_on_leader_is_confirmed_by_a_quorum_heartbeat() -> None:
    net = Network([1, 2, 3, 4, 5])
    net.elect(1)
    net.propose(1, b"a")
    assert net.commit(1) == 7
    net.read_index(1, b"r1", deliver=False)
    beats = [m for m in net.queue if m.type is MT.HEARTBEAT]
    assert sorted(m.to for m in beats) == [2, 3, 4, 5]
    assert {m.context for m in beats} == {b"r1"}
    assert net.read_states[1] == []

    net.deliver_until(lambda m: m.type is MT.HEARTBEAT_RESP and m.frm == 2)
    assert net.read_states[1] == []  # leader + 1 of 5 is no quorum
    net.deliver_until(lambda m: m.type is MT.HEARTBEAT_RESP and m.frm == 3)
    assert net.read_states[1] == [ReadState(7, b"r1")]
    net.deliver_all()
    assert net.read_states[1] == [ReadState(7, b"r1")]  # answered once


def test_read_index_on_follower_is_forwarded_and_answered() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(1, b"a")
    net.read_index(2, b"f1")
    assert [(m.to, m.term, m.context) for m in net.messages(MT.READ_INDEX, frm=2)] == [
        (1, 0, b"f1")
    ]
    assert {m.context for m in net.messages(MT.HEARTBEAT, frm=1)} >= {b"f1"}
    answers = net.messages(MT.READ_INDEX_RESP, frm=1)
    assert [(m.to, m.index, m.context) for m in answers] == [(2, 5, b"f1")]
    assert net.read_states[2] == [ReadState(5, b"f1")]
    assert net.read_states[1] == []


def test_read_index_without_a_known_leader_raises() -> None:
    net = Network([1, 2, 3])
    with pytest.raises(ReadIndexDropped):
        net.nodes[2].read_index(b"x")
    net.nodes[2].campaign()
    net.process(2)
    assert net.role(2) is Role.PRE_CANDIDATE
    with pytest.raises(ReadIndexDropped):
        net.nodes[2].read_index(b"x")


def test_new_leader_serves_no_read_index_before_committing_in_its_term() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(1, b"a")
    net.isolate(1)
    hold = net.drop_if(lambda m: m.type is MT.APP and m.frm == 2)
    net.elect(2)
    assert net.term(2) == 3
    net.tick(2)  # a heartbeat tells node 3 who leads; the no-op still cannot pass
    assert (net.last_index(2), net.commit(2)) == (6, 5)  # its no-op is not committed
    assert net.raft(3).lead == 2
    net.read_index(2, b"n1")
    net.read_index(3, b"n2")
    assert net.read_states[2] == [] and net.read_states[3] == []
    assert [m for m in net.messages(MT.HEARTBEAT, frm=2) if m.context] == []
    net.remove_filter(hold)
    net.tick(2)
    assert net.commit(2) == 6
    assert net.read_states[2] == [ReadState(6, b"n1")]
    assert net.read_states[3] == [ReadState(6, b"n2")]


def _stale_leader_read(bugs: PlantedBugs) -> Network:
    """Node 1 leads term 2 and is cut off; 2 and 3 elect 2, which commits
    b"b" at index 6. Then a client asks the old leader for a read."""
    net = Network([1, 2, 3], bugs=bugs)
    net.elect(1)
    net.propose(1, b"a")
    net.isolate(1)
    net.elect(2)
    net.propose(2, b"b")
    assert net.commit(2) == 7 and net.data(2) == [b"a", b"b"]
    assert net.role(1) is Role.LEADER
    net.read_index(1, b"old")
    net.tick(1, ELECTION_TICK - 1)
    return net


def test_isolated_leader_cannot_confirm_read_index() -> None:
    net = _stale_leader_read(PlantedBugs())
    assert net.read_states[1] == []
    # It did ask: the heartbeats carrying the read never came back.
    assert {m.to for m in net.messages(MT.HEARTBEAT, frm=1) if m.context == b"old"} == {2, 3}
    net.tick(1, ELECTION_TICK + 1)
    assert net.role(1) is Role.FOLLOWER  # check-quorum ends the stale leadership
    assert net.read_states[1] == []


def test_an_unconfirmed_read_index_returns_stale_data() -> None:
    # With the quorum check planted away, the old leader answers at index 5,
    # missing b"b" that was committed before the read began.
    net = _stale_leader_read(PlantedBugs(read_index_without_quorum=True))
    assert net.read_states[1] == [ReadState(5, b"old")]


def test_reads_queued_behind_a_confirmed_read_are_released_with_it() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.nodes[1].read_index(b"r1")
    net.nodes[1].read_index(b"r2")
    net.drop_if(lambda m: m.type is MT.HEARTBEAT_RESP and m.context == b"r1")
    net.deliver_all()
    assert net.read_states[1] == [ReadState(4, b"r1"), ReadState(4, b"r2")]


def test_a_single_voter_answers_read_index_at_once() -> None:
    net = Network([1])
    net.elect(1)
    net.read_index(1, b"solo")
    assert net.read_states[1] == [ReadState(2, b"solo")]
    assert net.messages(MT.HEARTBEAT) == []


def test_heartbeat_responses_for_unknown_reads_are_ignored() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.nodes[1].step(Message(MT.HEARTBEAT_RESP, to=1, frm=2, term=2, context=b"nobody"))
    net.deliver_all()
    assert net.read_states[1] == []
    assert net.role(1) is Role.LEADER
