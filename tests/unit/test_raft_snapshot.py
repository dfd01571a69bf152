"""Log compaction and InstallSnapshot (Raft §7): a follower whose next
entries are compacted away on the leader receives a snapshot instead."""

from __future__ import annotations

from kvstore.raft.progress import ProgressState
from kvstore.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Message,
    MessageType,
    Role,
    Snapshot,
    SnapshotMeta,
)
from tests.unit.raft_harness import Network, encode_state

MT = MessageType
CT = ConfChangeType


def _lagging_follower() -> Network:
    """Node 3 misses x0..x4; the leader then compacts its log through them."""
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(3)
    for i in range(5):
        net.propose(1, f"x{i}".encode())
    assert net.commit(1) == 9
    snap = net.compact(1)
    assert (snap.meta.index, net.storages[1].first_index()) == (9, 10)
    net.recover()
    return net


def test_slow_follower_receives_a_snapshot_after_compaction() -> None:
    net = _lagging_follower()
    net.tick(1)
    snaps = net.messages(MT.SNAP, frm=1)
    assert [(m.to, m.snapshot.meta.index if m.snapshot else None) for m in snaps] == [(3, 9)]
    assert net.storages[3].snapshot().meta.index == 9
    assert net.commit(3) == 9
    assert net.data(3) == [f"x{i}".encode() for i in range(5)]
    pr = net.raft(1).prs[3]
    assert (pr.state, pr.match) == (ProgressState.REPLICATE, 9)
    # Replication carries on from the snapshot.
    net.propose(1, b"after")
    assert net.data(3)[-1] == b"after"
    assert [e.index for e in net.applied[3]] == [10]


def test_a_lost_snapshot_is_sent_again_after_a_heartbeat_response() -> None:
    net = _lagging_follower()
    lossy = net.drop_if(lambda m: m.type is MT.SNAP)
    net.tick(1)
    pr = net.raft(1).prs[3]
    assert pr.state is ProgressState.PROBE  # the transport reported the failure
    assert net.storages[3].snapshot().is_empty
    net.remove_filter(lossy)
    net.tick(1)
    assert len(net.messages(MT.SNAP, frm=1, to=3)) == 2
    assert net.data(3) == [f"x{i}".encode() for i in range(5)]


def test_snapshot_restores_membership() -> None:
    net = Network([1, 2, 3], blank=[4])
    net.elect(1)
    net.isolate(4)
    net.propose(1, b"a")
    net.propose_conf_change(1, ConfChange(CT.ADD_LEARNER, 4))
    net.propose(1, b"b")
    expected = ConfState(frozenset({1, 2, 3}), frozenset({4}))
    snap = net.compact(1)
    assert snap.meta.conf_state == expected
    net.recover()
    net.tick(1)
    assert [m.to for m in net.messages(MT.SNAP, frm=1)] == [4]
    assert net.raft(4).conf == expected
    assert net.data(4) == [b"a", b"b"]
    # The membership survives a restart from the snapshot in storage.
    net.crash(4)
    net.restart(4)
    assert net.raft(4).conf == expected
    assert net.raft(4).log.applied == snap.meta.index
    assert net.data(4) == [b"a", b"b"]


def test_a_snapshot_older_than_the_commit_index_is_ignored() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.propose(1, b"a")
    log = net.log(2)
    old = Snapshot(SnapshotMeta(3, 1, ConfState(frozenset({1, 2, 3}))), encode_state([]))
    net.nodes[2].step(Message(MT.SNAP, to=2, frm=1, term=2, snapshot=old))
    out = net.process(2)
    assert [(m.type, m.index) for m in out] == [(MT.APP_RESP, 5)]
    assert net.storages[2].snapshot().is_empty
    assert net.log(2) == log


def test_a_snapshot_of_entries_already_held_only_advances_commit() -> None:
    net = Network([1, 2, 3])
    net.elect(1)
    net.isolate(2)
    net.propose(1, b"a")
    net.recover()
    net.nodes[2].step(
        Message(
            MT.APP,
            to=2,
            frm=1,
            term=2,
            index=4,
            log_term=2,
            entries=tuple(net.log(1)[4:]),
            commit=4,
        )
    )
    net.process(2)
    assert (net.last_index(2), net.commit(2)) == (5, 4)
    snap = Snapshot(SnapshotMeta(5, 2, ConfState(frozenset({1, 2, 3}))), encode_state([b"a"]))
    net.nodes[2].step(Message(MT.SNAP, to=2, frm=1, term=2, snapshot=snap))
    net.process(2)
    assert net.commit(2) == 5
    assert net.storages[2].snapshot().is_empty  # the log was kept, not replaced
    assert net.data(2) == [b"a"]


def test_a_follower_restarted_from_a_snapshot_keeps_serving() -> None:
    net = _lagging_follower()
    net.tick(1)
    net.crash(3)
    net.restart(3)
    assert net.raft(3).log.first_index() == 10
    assert net.role(3) is Role.FOLLOWER
    net.tick(1)
    net.propose(1, b"y")
    assert net.data(3) == [*(f"x{i}".encode() for i in range(5)), b"y"]
