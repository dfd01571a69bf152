"""Log replication and the commit rule (Raft §5.3, §5.4.2), proposals, and
the leader's flow control toward each follower."""

from __future__ import annotations

import pytest

from kvstore.raft.config import PlantedBugs
from kvstore.raft.errors import ProposalDropped
from kvstore.raft.progress import ProgressState
from kvstore.raft.types import Entry, Message, MessageType, Role
from tests.unit.raft_harness import Network, founder_storage

MT = MessageType


def test_leader_never_overwrites_or_deletes_entries_in_its_log() -> None:
    # Node 3 will lead; node 1 holds a longer log of an older term (3).
    net = Network(
        [1, 2, 3],
        storages={
            1: founder_storage([1, 2, 3], terms=[2, 3, 3, 3]),
            2: founder_storage([1, 2, 3], terms=[2]),
            3: founder_storage([1, 2, 3], terms=[2, 4]),
        },
    )
    before = net.log(3)
    net.elect(3)
    assert net.term(3) == 5
    # Node 1 first rejects: its log conflicts at index 5.
    assert any(m.reject for m in net.messages(MT.APP_RESP, frm=1, to=3))
    after = net.log(3)
    assert after[: len(before)] == before
    assert [(e.index, e.term) for e in after[len(before) :]] == [(6, 5)]
    assert net.log(1) == after
    assert net.commit(3) == 6


def test_follower_deletes_conflicting_entries_and_all_that_follow() -> None:
    net = Network([1, 2, 3], storages={3: founder_storage([1, 2, 3], terms=[2, 2, 2])})
    old = net.log(3)
    # A delayed append whose entries all match deletes nothing.
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=1, term=2, index=3, log_term=1, entries=(old[3],), commit=3)
    )
    net.process(3)
    assert net.log(3) == old
    # An entry of term 3 at index 5 conflicts: 5 and 6 go, 5 is replaced.
    new = Entry(term=3, index=5, data=b"new")
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=2, term=3, index=4, log_term=2, entries=(new,), commit=3)
    )
    out = net.process(3)
    assert net.log(3) == [*old[:4], new]
    assert net.stored_log(3) == [*old[:4], new]
    assert [(m.type, m.index, m.reject) for m in out] == [(MT.APP_RESP, 5, False)]


def test_append_entries_consistency_check_rejects_a_mismatched_previous_entry() -> None:
    net = Network([1, 2, 3], storages={3: founder_storage([1, 2, 3], terms=[2])})
    old = net.log(3)
    extra = (Entry(term=3, index=5, data=b"x"),)
    # Index 4 exists, but with term 2, not 3.
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=1, term=3, index=4, log_term=3, entries=extra, commit=3)
    )
    # Index 6 does not exist at all.
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=1, term=3, index=6, log_term=3, entries=extra, commit=3)
    )
    out = net.process(3)
    assert net.log(3) == old
    assert [(m.type, m.index, m.reject, m.reject_hint) for m in out] == [
        (MT.APP_RESP, 4, True, 4),
        (MT.APP_RESP, 6, True, 4),
    ]
    # The matching previous entry is accepted.
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=1, term=3, index=4, log_term=2, entries=extra, commit=3)
    )
    assert [(m.index, m.reject) for m in net.process(3)] == [(5, False)]
    assert net.log(3) == [*old, *extra]


def test_leader_commits_an_entry_once_replicated_on_a_majority() -> None:
    net = Network([1, 2, 3, 4, 5])
    net.elect(1)
    assert net.commit(1) == 6
    for i in (3, 4, 5):
        net.isolate(i)
    net.propose(1, b"a")
    assert net.last_index(2) == 7  # two of five hold it: not enough
    assert net.commit(1) == 6
    assert net.data(1) == []
    net.recover(3)
    net.tick(1)  # the heartbeat response from 3 makes the leader resend
    assert net.last_index(3) == 7
    assert net.commit(1) == 7
    for i in (1, 2, 3):
        assert net.data(i) == [b"a"]
    assert net.data(4) == []


def _figure8(bugs: PlantedBugs) -> Network:
    """Raft paper, figure 8, with five nodes (bootstrap at 1-5, S1's no-op at 6).

    (a) S1 leads term 2 and gets index 7 onto S2 only.
    (b) S1 crashes; S5 wins term 3 (votes of S3, S4) and appends its no-op at
        7 locally only; S5 crashes.
    (c) S1 restarts and wins term 4 (S2, S3); it replicates its term-2 entry
        at 7 to S3, but not its term-4 no-op at 8. Index 7 is now on a
        majority (S1, S2, S3).
    The network stops right after S3's acknowledgement of index 7 reaches S1.
    """
    net = Network([1, 2, 3, 4, 5], pre_vote=False, check_quorum=False, max_msg_bytes=1, bugs=bugs)
    net.elect(1)
    for i in (3, 4, 5):
        net.cut(1, i)
    net.propose(1, b"term2")
    assert [(e.index, e.term) for e in net.log(2)[-2:]] == [(6, 2), (7, 2)]
    net.crash(1)

    net.drop_if(lambda m: m.frm == 5 and m.type is MT.APP)
    net.elect(5)
    assert net.term(5) == 3
    assert [(e.index, e.term) for e in net.log(5)[-1:]] == [(7, 3)]
    net.crash(5)

    net.recover()
    net.restart(1)
    net.isolate(4)
    net.nodes[1].campaign()  # term 3: S3 already voted for S5, no majority
    net.deliver_all()
    assert net.role(1) is Role.CANDIDATE
    net.nodes[1].campaign()  # term 4
    net.deliver_until(lambda m: net.role(1) is Role.LEADER)
    assert net.term(1) == 4
    net.deliver_until(
        lambda m: m.type is MT.APP_RESP and m.frm == 3 and m.index == 7 and not m.reject
    )
    assert [(e.index, e.term) for e in net.log(3)[-2:]] == [(6, 2), (7, 2)]
    assert net.raft(1).prs[2].match == 8  # S1, S2 hold the no-op; S3 does not
    return net


def test_leader_never_commits_a_previous_term_entry_by_counting_replicas() -> None:
    net = _figure8(PlantedBugs())
    assert net.commit(1) == 6  # index 7 is on a majority, but of term 2
    # Once the leader's own term-4 entry is on a majority, 7 commits with it.
    net.deliver_all()
    assert net.commit(1) == 8
    for i in (1, 2, 3):
        assert net.data(i) == [b"term2"]


def test_committing_a_previous_term_entry_by_counting_replicas_loses_it() -> None:
    # The same history with the rule broken: S1 commits index 7 ...
    net = _figure8(PlantedBugs(commit_previous_term=True))
    assert net.commit(1) == 7
    assert net.applied[1][-1].data == b"term2"
    # ... and (d) when S1 crashes, S5 is elected (S3, S4) and overwrites it.
    net.crash(1)
    net.recover()
    net.restart(5)
    net.elect(5)
    net.deliver_all()
    assert net.commit(5) == 8
    index7 = next(e for e in net.applied[3] if e.index == 7)
    assert (index7.term, index7.data) == (3, b"")


def test_proposal_on_follower_is_forwarded_to_leader() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(2, b"via-2")
    forwarded = net.messages(MT.PROP, frm=2)
    assert [(m.to, m.term, [e.data for e in m.entries]) for m in forwarded] == [(1, 0, [b"via-2"])]
    assert net.log(1)[-1].term == 2
    for i in (1, 2, 3):
        assert net.data(i) == [b"via-2"]


def test_proposal_without_leader_raises_proposal_dropped() -> None:
    net = Network([1, 2, 3])
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose(b"x")
    net.isolate(1)
    net.nodes[1].campaign()
    net.process(1)
    assert net.role(1) is Role.PRE_CANDIDATE
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose(b"x")
    assert net.last_index(1) == 3


def test_a_follower_learns_commits_from_the_leader() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    for i in range(5):
        net.propose(1, f"v{i}".encode())
    expected = [f"v{i}".encode() for i in range(5)]
    assert [net.commit(i) for i in (1, 2, 3)] == [9, 9, 9]
    assert all(net.data(i) == expected for i in (1, 2, 3))


def test_replicate_state_pauses_at_the_inflight_window() -> None:
    net = Network([1, 2, 3], max_inflight_msgs=2)
    net.elect(1)
    pr = net.raft(1).prs[2]
    assert pr.state is ProgressState.REPLICATE
    net.drop_if(lambda m: m.type is MT.APP_RESP and m.frm == 2)

    def appends_to_2() -> int:
        return sum(1 for m in net.messages(MT.APP, frm=1, to=2) if m.entries)

    sent = appends_to_2()
    for i in range(5):
        net.propose(1, f"p{i}".encode())
    assert appends_to_2() - sent == 2
    assert pr.inflights.full() and pr.is_paused()
    assert net.commit(1) == 9  # node 3 keeps the quorum going
    # A heartbeat response frees one slot: one more append goes out.
    net.tick(1)
    assert appends_to_2() - sent == 3
    net.recover()
    net.tick(1)
    assert net.data(2) == [f"p{i}".encode() for i in range(5)]
    assert not pr.is_paused()


def test_lost_appends_are_recovered_through_heartbeat_responses() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    lossy = net.drop_if(lambda m: m.type is MT.APP and m.to == 2)
    net.propose(1, b"x")
    net.remove_filter(lossy)
    net.deliver_all()
    assert net.last_index(2) == 4  # nothing resends without time passing
    net.tick(1)
    # The heartbeat promises only what node 2 is known to hold.
    beats = net.messages(MT.HEARTBEAT, frm=1, to=2)
    assert beats[-1].commit == 4
    assert net.last_index(2) == 5
    assert net.data(2) == [b"x"]


def test_appends_are_cut_to_max_msg_bytes() -> None:
    net = Network([1, 2, 3], max_msg_bytes=1)
    net.elect(1)
    net.isolate(2)
    for i in range(3):
        net.propose(1, f"b{i}".encode())
    net.recover()
    first = len(net.sent)
    net.tick(1)
    catch_up = [m for m in net.sent[first:] if m.type is MT.APP and m.to == 2 and m.entries]
    assert [len(m.entries) for m in catch_up] == [1, 1, 1]
    assert net.data(2) == [b"b0", b"b1", b"b2"]
