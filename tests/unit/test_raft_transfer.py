"""Leadership transfer (Raft dissertation §3.10): the leader brings the
target up to date, then tells it to campaign at once with TimeoutNow."""

from __future__ import annotations

import pytest

from kvstore.raft.core import CAMPAIGN_TRANSFER
from kvstore.raft.errors import ProposalDropped
from kvstore.raft.types import NONE, ConfChange, ConfChangeType, MessageType, Role
from tests.unit.raft_harness import Network

MT = MessageType
ELECTION_TICK = 10


def test_leader_transfer_to_up_to_date_follower_sends_timeout_now() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.nodes[1].transfer_leader(2)
    out = net.process(1)
    assert [(m.type, m.to) for m in out] == [(MT.TIMEOUT_NOW, 2)]
    net.deliver_all()
    assert net.role(2) is Role.LEADER
    assert net.term(2) == 3
    assert net.role(1) is Role.FOLLOWER and net.raft(1).lead == 2
    # Its vote requests skip pre-vote and carry the transfer context, so the
    # voters grant them despite the old leader's lease.
    assert {m.context for m in net.messages(MT.VOTE, frm=2)} == {CAMPAIGN_TRANSFER}
    assert net.messages(MT.PRE_VOTE, frm=2) == []


def test_leader_transfer_catches_up_a_lagging_target_first() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(3)
    for i in range(3):
        net.propose(1, f"x{i}".encode())
    net.recover()
    assert net.last_index(3) == 4
    net.nodes[1].transfer_leader(3)
    first = net.process(1)
    assert [m.type for m in first] == [MT.APP]
    assert net.raft(1).lead_transferee == 3
    net.deliver_all()
    timeout_now = [i for i, m in enumerate(net.sent) if m.type is MT.TIMEOUT_NOW]
    assert len(timeout_now) == 1
    # TimeoutNow left only after node 3 acknowledged the leader's last entry.
    caught_up = [
        i
        for i, m in enumerate(net.sent)
        if m.type is MT.APP_RESP and m.frm == 3 and m.index == 7 and not m.reject
    ]
    assert caught_up and caught_up[0] < timeout_now[0]
    assert net.role(3) is Role.LEADER
    assert net.data(3) == [b"x0", b"x1", b"x2"]


def test_leader_transfer_aborts_after_an_election_timeout() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(3)
    net.nodes[1].transfer_leader(3)
    net.deliver_all()
    assert net.raft(1).lead_transferee == 3
    net.tick(1, ELECTION_TICK - 1)
    assert net.raft(1).lead_transferee == 3
    net.tick(1)
    assert net.raft(1).lead_transferee == NONE
    assert net.role(1) is Role.LEADER
    net.propose(1, b"after")
    assert net.data(2) == [b"after"]


def test_proposals_are_dropped_during_leader_transfer() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(3)
    net.nodes[1].transfer_leader(3)
    net.deliver_all()
    last = net.last_index(1)
    with pytest.raises(ProposalDropped) as info:
        net.nodes[1].propose(b"local")
    assert "transfer" in info.value.reason
    net.propose(2, b"forwarded")  # reaches the leader and is dropped silently
    assert [m.to for m in net.messages(MT.PROP, frm=2)] == [1]
    assert net.last_index(1) == last


def test_transfer_requested_on_a_follower_is_forwarded_to_the_leader() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.nodes[2].transfer_leader(3)
    net.deliver_all()
    assert [(m.to, m.frm) for m in net.messages(MT.TRANSFER_LEADER)] == [(1, 3)]
    assert net.role(3) is Role.LEADER


def test_transfer_to_self_or_to_a_non_voter_is_ignored() -> None:
    net = Network([1, 2, 3], blank=[4])
    net.elect(1)
    net.propose_conf_change(1, ConfChange(ConfChangeType.ADD_LEARNER, 4))
    for target in (1, 4, 9):
        net.nodes[1].transfer_leader(target)
        assert net.raft(1).lead_transferee == NONE
    net.deliver_all()
    assert net.messages(MT.TIMEOUT_NOW) == []
    assert net.role(1) is Role.LEADER
