"""The leader's side of Raft: proposals, replication responses, commit
tracking for reads (ReadIndex), check-quorum and leadership transfer.

These are the leader's step function and its handlers, written as functions
of the Raft state (etcd's stepLeader style); core.py swaps `step_leader` in
when a node becomes leader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvstore.raft.confchange import apply_conf_change, validate_conf_change
from kvstore.raft.errors import ConfChangeRejected
from kvstore.raft.progress import ProgressState
from kvstore.raft.quorum import majority
from kvstore.raft.types import (
    NONE,
    ConfChange,
    Entry,
    EntryType,
    Message,
    ReadState,
)
from kvstore.raft.types import MessageType as MT

if TYPE_CHECKING:
    from kvstore.raft.core import Raft


def step_leader(r: Raft, m: Message) -> None:
    t = m.type
    if t is MT.BEAT:
        r.bcast_heartbeat()
    elif t is MT.CHECK_QUORUM:
        if not quorum_active(r):
            r.become_follower(r.term, NONE)
    elif t is MT.PROP:
        leader_propose(r, m)
    elif t is MT.READ_INDEX:
        if r.committed_in_term() or r.cfg.bugs.read_index_without_quorum:
            start_read(r, m)
        else:
            # Raft §8: a new leader does not know the commit index until
            # it commits an entry of its own term; hold reads until then.
            r.pending_reads.append(m)
    elif t is MT.APP_RESP:
        handle_append_response(r, m)
    elif t is MT.HEARTBEAT_RESP:
        handle_heartbeat_response(r, m)
    elif t is MT.SNAP_STATUS:
        pr = r.prs.get(m.frm)
        if pr is not None and pr.state is ProgressState.SNAPSHOT:
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for a heartbeat response before probing again.
            pr.probe_sent = True
    elif t is MT.UNREACHABLE:
        pr = r.prs.get(m.frm)
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()
    elif t is MT.TRANSFER_LEADER:
        handle_transfer_leader(r, m.frm)


def leader_propose(r: Raft, m: Message) -> None:
    local = m.frm == r.id
    if r.id not in r.conf.members() or not m.entries:
        return r.drop(local, "this node is no longer a member")
    if r.lead_transferee != NONE:
        return r.drop(local, "leadership transfer in progress")
    entries = list(m.entries)
    cs = r.conf
    for i, e in enumerate(entries):
        if e.type is not EntryType.CONF_CHANGE:
            continue
        cc = ConfChange.decode(e.data)
        try:
            if r.pending_conf_index > r.log.committed:
                raise ConfChangeRejected("another membership change is in progress")
            if not r.committed_in_term():
                raise ConfChangeRejected("leader has not yet committed in its term")
            validate_conf_change(cs, cc)
        except ConfChangeRejected:
            if local:
                raise
            entries[i] = Entry(term=0, index=0)  # a forwarded change is voided
            continue
        cs = apply_conf_change(cs, cc)
        r.pending_conf_index = r.log.last_index() + i + 1
    r.append_entries(entries)
    r.bcast_append()


def handle_append_response(r: Raft, m: Message) -> None:
    pr = r.prs.get(m.frm)
    if pr is None:
        return
    pr.recent_active = True
    if m.reject:
        if pr.maybe_decr_to(m.index, m.reject_hint):
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
            r.send_append(m.frm)
        return
    was_paused = pr.is_paused()
    if not pr.maybe_update(m.index):
        return
    if pr.state is ProgressState.PROBE:
        pr.become_replicate()
    elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
        pr.become_probe()
        pr.become_replicate()
    elif pr.state is ProgressState.REPLICATE:
        pr.inflights.free_le(m.index)
    if r.maybe_commit():
        r.bcast_append()
    elif was_paused:
        r.send_append(m.frm)
    if m.frm not in r.prs:
        return
    while r.send_append(m.frm, send_if_empty=False):
        pass
    if m.frm == r.lead_transferee and pr.match == r.log.last_index():
        r.send(m.frm, MT.TIMEOUT_NOW)


def handle_heartbeat_response(r: Raft, m: Message) -> None:
    pr = r.prs.get(m.frm)
    if pr is None:
        return
    pr.recent_active = True
    pr.probe_sent = False
    if pr.state is ProgressState.REPLICATE and pr.inflights.full():
        # Some appends were lost: free one slot so replication resumes
        # (the follower will reject a gap and we fall back to probing).
        pr.inflights.free_first()
    if pr.match < r.log.last_index():
        r.send_append(m.frm)
    if m.context:
        ack_read(r, m.context, m.frm)


def handle_transfer_leader(r: Raft, target: int) -> None:
    if target == r.id or target not in r.conf.voters or target not in r.prs:
        return
    if r.lead_transferee == target:
        return
    r.abort_leader_transfer()
    # The transfer must finish within one election timeout.
    r.election_elapsed = 0
    r.lead_transferee = target
    if r.prs[target].match == r.log.last_index():
        r.send(target, MT.TIMEOUT_NOW)
    else:
        r.send_append(target)


def release_pending_reads(r: Raft) -> None:
    if not r.pending_reads or not r.committed_in_term():
        return
    waiting, r.pending_reads = r.pending_reads, []
    for m in waiting:
        start_read(r, m)


def start_read(r: Raft, m: Message) -> None:
    if r.cfg.bugs.read_index_without_quorum or r.conf.voters <= {r.id}:
        answer_read(r, m.frm, r.log.committed, m.context)
        return
    req = r.read_only.add(r.log.committed, m.context, m.frm)
    if req is None:
        return
    ack_read(r, m.context, r.id)
    r.bcast_heartbeat(m.context)


def ack_read(r: Raft, context: bytes, node: int) -> None:
    req = r.read_only.ack(context, node)
    if req is None:
        return
    if len(req.acks & r.conf.voters) >= majority(len(r.conf.voters)):
        for done in r.read_only.release_through(context):
            answer_read(r, done.frm, done.index, done.context)


def answer_read(r: Raft, frm: int, index: int, context: bytes) -> None:
    if frm in (NONE, r.id):
        r.read_states.append(ReadState(index, context))
    else:
        r.send(frm, MT.READ_INDEX_RESP, index=index, context=context)


def quorum_active(r: Raft) -> bool:
    active = sum(
        1 for node in r.conf.voters if node == r.id or (node in r.prs and r.prs[node].recent_active)
    )
    for node, pr in r.prs.items():
        if node != r.id:
            pr.recent_active = False
    return active >= majority(len(r.conf.voters))
