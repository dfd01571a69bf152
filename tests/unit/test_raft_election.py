"""Leader election (Raft §5.2, §5.4.1) and its guards: pre-vote, check-quorum
and the leader lease (Raft dissertation §4.2.3, §9.6)."""

from __future__ import annotations

import random

from kvstore.raft.config import Config, PlantedBugs
from kvstore.raft.core import CAMPAIGN_TRANSFER
from kvstore.raft.rawnode import RawNode
from kvstore.raft.types import NONE, Entry, Message, MessageType, Role
from tests.unit.raft_harness import Network, founder_storage

MT = MessageType
ELECTION_TICK = 10


def test_a_candidate_wins_an_election_if_it_receives_votes_from_a_majority() -> None:
    net = Network([1, 2, 3, 4, 5])
    net.isolate(4)
    net.isolate(5)
    net.nodes[1].campaign()
    net.deliver_all()
    assert net.role(1) is Role.LEADER
    assert net.term(1) == 2
    granted = {m.frm for m in net.messages(MT.VOTE_RESP, to=1) if not m.reject}
    assert granted == {2, 3}
    assert all(net.raft(i).lead == 1 for i in (2, 3))


def test_a_candidate_without_a_majority_does_not_win() -> None:
    net = Network([1, 2, 3, 4, 5], pre_vote=False)
    for i in (3, 4, 5):
        net.isolate(i)
    net.nodes[1].campaign()
    net.deliver_all()
    # Votes from itself and node 2 only: 2 of 5 is no majority.
    assert net.role(1) is Role.CANDIDATE
    assert net.term(1) == 2
    assert net.leader() is None


def test_each_server_votes_for_at_most_one_candidate_in_a_given_term() -> None:
    net = Network([1, 2, 3], pre_vote=False)
    # Two candidates for term 2 at the same moment; node 1 hears 2 first.
    net.nodes[2].campaign()
    net.process(2)
    net.nodes[3].campaign()
    net.process(3)
    net.deliver_all()
    answers = [(m.to, m.reject) for m in net.messages(MT.VOTE_RESP, frm=1) if m.term == 2]
    assert answers == [(2, False), (3, True)]
    assert net.raft(1).vote == 2
    assert net.role(2) is Role.LEADER
    assert net.role(3) is Role.FOLLOWER
    assert [i for i in (1, 2, 3) if net.role(i) is Role.LEADER] == [2]
    # Asking again in the same term changes nothing.
    net.nodes[1].step(Message(MT.VOTE, to=1, frm=3, term=2, index=3, log_term=1))
    assert [m.reject for m in net.process(1) if m.type is MT.VOTE_RESP] == [True]
    assert net.raft(1).vote == 2


def test_a_voter_denies_its_vote_if_its_own_log_is_more_up_to_date() -> None:
    net = Network([1, 2, 3], pre_vote=False, check_quorum=False)
    net.elect(1)
    net.isolate(3)
    net.propose(1, b"x")  # node 3 never sees index 5
    net.recover()
    assert net.last_index(3) == 4 and net.last_index(2) == 5
    net.nodes[3].campaign()
    net.deliver_all()
    answers = {m.frm: m.reject for m in net.messages(MT.VOTE_RESP, to=3) if m.term == 3}
    assert answers == {1: True, 2: True}
    assert net.role(3) is not Role.LEADER
    assert net.raft(2).vote == NONE


def test_a_vote_for_a_stale_log_is_granted_only_with_the_planted_bug() -> None:
    # Same check, one node, both ways: the up-to-date rule is what refuses.
    for bugs, rejected in ((PlantedBugs(), True), (PlantedBugs(vote_for_stale_log=True), False)):
        storage = founder_storage([1, 2, 3], terms=[2, 2])
        raw = RawNode(Config(id=1, bugs=bugs), storage, random.Random(0))
        raw.step(Message(MT.VOTE, to=1, frm=2, term=3, index=4, log_term=2))
        votes = [m for m in raw.ready().messages if m.type is MT.VOTE_RESP]
        assert [m.reject for m in votes] == [rejected]


def test_a_server_that_receives_a_request_with_a_stale_term_number_rejects_it() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    assert net.term(2) == 2
    before = net.log(2)
    stale = Entry(term=1, index=5, data=b"stale")
    net.nodes[2].step(
        Message(MT.APP, to=2, frm=3, term=1, index=4, log_term=2, entries=(stale,), commit=5)
    )
    net.nodes[2].step(Message(MT.VOTE, to=2, frm=3, term=1, index=9, log_term=9))
    out = net.process(2)
    assert net.log(2) == before
    assert net.commit(2) == 4
    assert net.raft(2).vote == 1
    # The stale sender is told the current term so that it steps down.
    assert [(m.type, m.to, m.term) for m in out] == [(MT.APP_RESP, 3, 2)]


def test_if_a_server_discovers_a_higher_term_it_reverts_to_follower() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(1)
    net.elect(2)
    assert net.term(2) == 3
    assert net.role(1) is Role.LEADER and net.term(1) == 2  # stale, does not know yet
    net.recover()
    net.tick(1)  # its heartbeats meet term 3
    assert net.role(1) is Role.FOLLOWER
    assert net.term(1) == 3
    net.tick(2)
    assert net.raft(1).lead == 2


def test_a_candidate_that_hears_from_a_leader_of_its_term_returns_to_follower() -> None:
    net = Network([1, 2, 3], pre_vote=False)
    net.elect(1)
    net.isolate(3)
    net.nodes[3].campaign()
    net.process(3)
    assert net.role(3) is Role.CANDIDATE and net.term(3) == 3
    net.recover()
    # A heartbeat of term 3 from a leader makes the candidate a follower.
    net.nodes[3].step(Message(MT.HEARTBEAT, to=3, frm=2, term=3, commit=4))
    assert net.role(3) is Role.FOLLOWER
    assert net.raft(3).lead == 2


def test_the_leader_appends_a_noop_entry_of_its_term_on_election() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    last = net.log(1)[-1]
    assert (last.index, last.term, last.data) == (4, 2, b"")
    for i in (1, 2, 3):
        assert net.commit(i) == 4
        assert net.applied[i][-1] == last


def test_election_timeouts_are_randomized_within_one_to_two_election_timeouts() -> None:
    timeouts = []
    for seed in range(200):
        raw = RawNode(Config(id=1), founder_storage([1, 2, 3]), random.Random(seed))
        ticks = 0
        while raw.raft.role is Role.FOLLOWER:
            raw.tick()
            ticks += 1
            assert ticks < 100
        timeouts.append(ticks)
    assert min(timeouts) == ELECTION_TICK
    assert max(timeouts) == 2 * ELECTION_TICK - 1
    assert len(set(timeouts)) == ELECTION_TICK


def test_a_follower_does_not_campaign_before_one_election_timeout() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(1)
    net.tick(2, ELECTION_TICK - 1)
    assert net.role(2) is Role.FOLLOWER
    assert net.messages(MT.PRE_VOTE, frm=2) == []


def test_prevote_does_not_increase_the_term_of_a_partitioned_node() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(3)
    net.tick(3, 10 * ELECTION_TICK)
    assert net.term(3) == 2
    assert net.role(3) is Role.PRE_CANDIDATE
    pre_votes = net.messages(MT.PRE_VOTE, frm=3)
    assert len(pre_votes) >= 2 * 5  # it kept trying...
    assert {m.term for m in pre_votes} == {3}  # ...always for term 3
    assert net.messages(MT.VOTE, frm=3) == []


def test_a_pre_vote_changes_neither_the_voter_s_term_nor_its_vote() -> None:
    net = Network([1, 2, 3])
    net.nodes[2].step(Message(MT.PRE_VOTE, to=2, frm=3, term=5, index=3, log_term=1))
    out = net.process(2)
    assert [(m.type, m.term, m.reject) for m in out] == [(MT.PRE_VOTE_RESP, 5, False)]
    assert (net.term(2), net.raft(2).vote) == (1, NONE)
    assert net.storages[2].hard_state.term == 1


def test_without_prevote_a_partitioned_node_inflates_its_term() -> None:
    net = Network([1, 2, 3], pre_vote=False)
    net.elect(1)
    net.isolate(3)
    net.tick(3, 10 * ELECTION_TICK)
    assert net.term(3) >= 2 + 5


def test_a_rejoining_partitioned_node_does_not_disrupt_a_stable_leader() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(3)
    net.tick(3, 5 * ELECTION_TICK)
    assert net.role(3) is Role.PRE_CANDIDATE
    net.recover()
    net.tick_all(5 * ELECTION_TICK)
    assert net.role(1) is Role.LEADER
    assert [net.term(i) for i in (1, 2, 3)] == [2, 2, 2]
    assert net.role(3) is Role.FOLLOWER
    assert net.raft(3).lead == 1


def test_check_quorum_leader_steps_down_without_a_quorum() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.tick(1, 5 * ELECTION_TICK)  # a connected leader keeps its quorum
    assert net.role(1) is Role.LEADER
    net.isolate(1)
    net.tick(1, ELECTION_TICK - 1)
    assert net.role(1) is Role.LEADER
    net.tick(1, ELECTION_TICK + 1)
    assert net.role(1) is Role.FOLLOWER
    assert net.term(1) == 2
    assert net.raft(1).lead == NONE


def test_voters_ignore_vote_requests_within_the_leader_lease() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    disruptive = Message(MT.VOTE, to=2, frm=3, term=9, index=100, log_term=9)
    net.nodes[2].step(disruptive)
    net.nodes[2].step(Message(MT.PRE_VOTE, to=2, frm=3, term=9, index=100, log_term=9))
    assert net.process(2) == []
    assert (net.term(2), net.raft(2).vote, net.raft(2).lead) == (2, 1, 1)
    # A transfer's campaign is honoured even within the lease.
    net.nodes[2].step(
        Message(MT.VOTE, to=2, frm=3, term=9, index=100, log_term=9, context=CAMPAIGN_TRANSFER)
    )
    assert [(m.type, m.reject) for m in net.process(2)] == [(MT.VOTE_RESP, False)]
    assert (net.term(2), net.raft(2).vote) == (9, 3)


def test_without_check_quorum_there_is_no_lease() -> None:
    net = Network([1, 2, 3], check_quorum=False)
    net.elect(1)
    net.nodes[2].step(Message(MT.VOTE, to=2, frm=3, term=9, index=100, log_term=9))
    assert [(m.type, m.reject) for m in net.process(2)] == [(MT.VOTE_RESP, False)]
    assert net.term(2) == 9


def test_a_single_voter_elects_itself_at_once() -> None:
    net = Network([1])
    net.nodes[1].campaign()
    net.deliver_all()
    assert net.role(1) is Role.LEADER
    net.propose(1, b"solo")
    assert net.data(1) == [b"solo"]
