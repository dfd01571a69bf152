"""Membership changes, one node at a time (Raft dissertation §4.1-4.2): a
configuration takes effect when appended, one change is in flight at a
time, learners neither vote nor count, and a removed leader steps down."""

from __future__ import annotations

import pytest

from kvstore.raft.errors import ConfChangeRejected
from kvstore.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Role,
)
from tests.unit.raft_harness import Network

MT = MessageType
CT = ConfChangeType
ELECTION_TICK = 10


def conf(voters: set[int], learners: set[int] | None = None) -> ConfState:
    return ConfState(frozenset(voters), frozenset(learners or set()))


def test_add_learner_then_promote_to_voter() -> None:
    net = Network([1, 2, 3], blank=[4])
    net.elect(1)
    net.propose(1, b"before")
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 4))
    for i in (1, 2, 3, 4):
        assert net.raft(i).conf == conf({1, 2, 3}, {4})
    assert net.data(4) == [b"before"]  # the learner got the whole log
    assert net.app_conf[4] == conf({1, 2, 3}, {4})

    net.propose_conf_change(1, ConfChange(CT.ADD_VOTER, 4))
    for i in (1, 2, 3, 4):
        assert net.raft(i).conf == conf({1, 2, 3, 4})
    # Now 4 counts: with 2 and 3 gone, 1 and 4 are not a majority of four...
    net.isolate(2)
    net.isolate(3)
    net.propose(1, b"needs-three")
    assert net.data(1) == [b"before"]
    # ...but 1, 4 and 2 are.
    net.recover(2)
    net.tick(1)
    assert net.data(4) == [b"before", b"needs-three"]
    # And it may lead.
    net.recover()
    net.nodes[1].transfer_leader(4)
    net.deliver_all()
    assert net.role(4) is Role.LEADER


def _with_learners() -> Network:
    net = Network([1, 2, 3], blank=[4, 5])
    net.elect(1)
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 4))
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 5))
    assert net.raft(1).conf == conf({1, 2, 3}, {4, 5})
    return net


def test_learner_does_not_vote_or_count_for_commit() -> None:
    net = _with_learners()
    # Counting: the leader and both learners hold the entry, three of five
    # members, but only one of three voters.
    net.isolate(2)
    net.isolate(3)
    commit = net.commit(1)
    net.propose(1, b"x")
    assert net.last_index(4) == net.last_index(5) == commit + 1
    assert net.commit(1) == commit
    assert net.data(4) == []
    # Voting: a learner never campaigns...
    net.recover()
    net.isolate(1)
    net.tick(4, 5 * ELECTION_TICK)
    assert net.role(4) is Role.FOLLOWER
    assert net.messages(frm=4, mtype=MT.PRE_VOTE) == []
    # ...and candidates do not ask learners.
    net.nodes[2].campaign()
    net.deliver_all()
    asked = {m.to for m in net.sent if m.type in (MT.PRE_VOTE, MT.VOTE) and m.frm == 2}
    assert asked == {1, 3}


def test_a_learner_s_answer_does_not_elect_a_candidate() -> None:
    net = _with_learners()
    net.isolate(1)
    net.isolate(3)
    net.nodes[2].campaign()
    net.process(2)
    # Even if a learner's grant reached the candidate, it is not counted.
    for learner in (4, 5):
        net.nodes[2].step(Message(MT.PRE_VOTE_RESP, to=2, frm=learner, term=3))
    assert net.role(2) is Role.PRE_CANDIDATE


def test_only_one_membership_change_is_in_flight() -> None:
    net = Network([1, 2, 3], blank=[4, 5])
    net.elect(1)
    net.isolate(2)
    net.isolate(3)
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 4))
    with pytest.raises(ConfChangeRejected):
        net.nodes[1].propose_conf_change(ConfChange(CT.ADD_LEARNER, 5))
    net.recover()
    net.tick(1)
    assert net.app_conf[1] == conf({1, 2, 3}, {4})
    # A forwarded change that arrives while another is pending is voided:
    # its slot in the log becomes an empty normal entry.
    net.isolate(3)
    net.drop_if(lambda m: m.type is MT.APP and m.frm == 1)
    net.nodes[1].propose_conf_change(ConfChange(CT.ADD_LEARNER, 5))
    net.nodes[2].propose_conf_change(ConfChange(CT.REMOVE_NODE, 4))
    net.deliver_all()
    net.recover()
    net.tick(1)
    accepted, voided = net.log(1)[-2:]
    assert ConfChange.decode(accepted.data) == ConfChange(CT.ADD_LEARNER, 5)
    assert (voided.type, voided.data, voided.term) == (EntryType.NORMAL, b"", 2)
    assert net.app_conf[1] == conf({1, 2, 3}, {4, 5})
    # Once committed, the next change is accepted.
    net.propose_conf_change(1, ConfChange(CT.REMOVE_NODE, 5))
    assert net.app_conf[2] == conf({1, 2, 3}, {4})


def test_a_new_leader_accepts_no_change_before_committing_in_its_term() -> None:
    net = Network([1, 2, 3], blank=[4])
    net.nodes[1].campaign()
    net.deliver_until(lambda m: net.role(1) is Role.LEADER)
    with pytest.raises(ConfChangeRejected):
        net.nodes[1].propose_conf_change(ConfChange(CT.ADD_LEARNER, 4))
    net.deliver_all()
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 4))
    assert net.raft(1).conf == conf({1, 2, 3}, {4})


@pytest.mark.parametrize(
    "change",
    [
        ConfChange(CT.ADD_VOTER, 2),
        ConfChange(CT.ADD_LEARNER, 2),
        ConfChange(CT.REMOVE_NODE, 7),
        ConfChange(CT.ADD_VOTER, 0),
    ],
)
def test_a_change_that_makes_no_sense_is_rejected(change: ConfChange) -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    last = net.last_index(1)
    with pytest.raises(ConfChangeRejected):
        net.nodes[1].propose_conf_change(change)
    assert net.last_index(1) == last


def test_the_last_voter_cannot_be_removed() -> None:
    net = Network([1])
    net.elect(1)
    with pytest.raises(ConfChangeRejected):
        net.nodes[1].propose_conf_change(ConfChange(CT.REMOVE_NODE, 1))


def test_leader_that_removes_itself_steps_down_once_the_change_commits() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose_conf_change(1, ConfChange(CT.REMOVE_NODE, 1), deliver=False)
    assert net.raft(1).conf == conf({2, 3})  # in effect at once...
    assert net.role(1) is Role.LEADER  # ...but it leads until it commits
    net.deliver_until(lambda m: m.type is MT.APP_RESP and m.frm == 2)
    assert net.commit(1) == 4  # its own copy does not count any more
    assert net.role(1) is Role.LEADER
    net.deliver_until(lambda m: m.type is MT.APP_RESP and m.frm == 3)
    assert net.commit(1) == 5
    assert net.role(1) is Role.FOLLOWER
    net.deliver_all()
    assert net.app_conf[2] == net.app_conf[3] == conf({2, 3})
    mark = len(net.sent)
    net.tick_all(3 * ELECTION_TICK)
    lead = net.leader()
    assert lead in (2, 3)
    assert net.role(1) is Role.FOLLOWER  # it never campaigns again
    assert [m for m in net.sent[mark:] if m.frm == 1 and m.type is MT.PRE_VOTE] == []


def test_removed_voter_with_uncommitted_removal_can_still_be_elected_to_commit_it() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    # Leader 1 removes itself; only node 2 receives the change, then 1
    # restarts (as a follower) before the change commits.
    net.cut(1, 3)
    net.propose_conf_change(1, ConfChange(CT.REMOVE_NODE, 1))
    assert net.log(2)[-1].type is EntryType.CONF_CHANGE
    assert net.commit(1) == 4
    net.crash(1)
    net.restart(1)
    net.recover()
    assert net.raft(1).conf == conf({2, 3})
    # Node 1 is no voter of its configuration, yet it may campaign, and the
    # votes of 2 and 3 (not its own) make it leader...
    net.expire_lease(2)
    net.expire_lease(3)
    net.nodes[1].campaign()
    net.deliver_until(lambda m: net.role(1) is Role.LEADER)
    assert net.term(1) == 3
    assert {m.to for m in net.messages(MT.VOTE, frm=1)} == {2, 3}
    # ...so that it commits its removal (with its no-op) and steps down.
    net.deliver_all()
    for i in (2, 3):
        assert net.commit(i) == 6
        assert net.app_conf[i] == conf({2, 3})
    assert net.role(1) is Role.FOLLOWER
    # Committed, the removal leaves it unable to campaign again.
    net.nodes[1].campaign()
    assert net.process(1) == []
    assert net.role(1) is Role.FOLLOWER


def test_configuration_takes_effect_when_appended_and_rolls_back_when_truncated() -> None:
    net = Network([1, 2, 3])
    add4 = Entry(
        term=2, index=4, type=EntryType.CONF_CHANGE, data=ConfChange(CT.ADD_LEARNER, 4).encode()
    )
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=1, term=2, index=3, log_term=1, entries=(add4,), commit=3)
    )
    assert net.raft(3).conf == conf({1, 2, 3}, {4})  # appended, not committed
    net.process(3)
    assert net.commit(3) == 3
    # A leader of term 3 never had it: the entry is truncated, and with it
    # the configuration.
    other = Entry(term=3, index=4, data=b"other")
    net.nodes[3].step(
        Message(MT.APP, to=3, frm=2, term=3, index=3, log_term=1, entries=(other,), commit=4)
    )
    assert net.raft(3).conf == conf({1, 2, 3})
    net.process(3)
    assert net.log(3)[-1] == other
    # A restart reads the same configuration back from the log.
    net.restart(3)
    assert net.raft(3).conf == conf({1, 2, 3})


def test_leader_configuration_takes_effect_on_append() -> None:
    net = Network([1, 2, 3], blank=[4])
    net.elect(1)
    net.isolate(2)
    net.isolate(3)
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 4))
    assert net.raft(1).conf == conf({1, 2, 3}, {4})
    assert 4 in net.raft(1).prs
    assert net.commit(1) == 4
