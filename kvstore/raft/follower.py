"""The candidate's and the follower's step functions.

A (pre-)candidate tallies votes and yields to any leader of its term; a
follower forwards proposals and reads to its leader, appends what the leader
sends, and campaigns at once on TimeoutNow. core.py swaps these in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvstore.raft.errors import ProposalDropped, ReadIndexDropped
from kvstore.raft.quorum import VoteResult
from kvstore.raft.types import NONE, Message, ReadState, Role
from kvstore.raft.types import MessageType as MT

if TYPE_CHECKING:
    from kvstore.raft.core import Raft


def step_candidate(r: Raft, m: Message) -> None:
    t = m.type
    expected = MT.PRE_VOTE_RESP if r.role is Role.PRE_CANDIDATE else MT.VOTE_RESP
    if t is MT.PROP:
        r.drop(m.frm == r.id, "no leader")
    elif t is MT.READ_INDEX:
        if m.frm == r.id:
            raise ReadIndexDropped("no leader")
    elif t in (MT.APP, MT.HEARTBEAT, MT.SNAP):
        r.become_follower(m.term, m.frm)
        step_follower(r, m)
    elif t is expected:
        result = r.poll(m.frm, granted=not m.reject)
        if result == VoteResult.WON:
            if r.role is Role.PRE_CANDIDATE:
                r.campaign(pre_vote=False, transfer=False)
            else:
                r.become_leader()
                r.bcast_append()
        elif result == VoteResult.LOST:
            r.become_follower(r.term, NONE)


def step_follower(r: Raft, m: Message) -> None:
    t = m.type
    if t is MT.PROP:
        if m.frm != r.id:
            return  # only our own proposals are forwarded
        if r.lead == NONE:
            raise ProposalDropped("no leader")
        r.send(r.lead, MT.PROP, entries=m.entries)
    elif t is MT.APP:
        r.election_elapsed = 0
        r.lead = m.frm
        handle_append(r, m)
    elif t is MT.HEARTBEAT:
        r.election_elapsed = 0
        r.lead = m.frm
        r.log.commit_to(m.commit)
        r.send(m.frm, MT.HEARTBEAT_RESP, context=m.context)
    elif t is MT.SNAP:
        r.election_elapsed = 0
        r.lead = m.frm
        handle_snapshot(r, m)
    elif t is MT.TRANSFER_LEADER:
        if r.lead != NONE:
            # Forward as is: `frm` names the transferee.
            r.msgs.append(Message(MT.TRANSFER_LEADER, to=r.lead, frm=m.frm, term=r.term))
    elif t is MT.TIMEOUT_NOW:
        r.hup(transfer=True)
    elif t is MT.READ_INDEX:
        if m.frm != r.id:
            return
        if r.lead == NONE:
            raise ReadIndexDropped("no leader")
        r.send(r.lead, MT.READ_INDEX, context=m.context)
    elif t is MT.READ_INDEX_RESP:
        r.read_states.append(ReadState(m.index, m.context))


def handle_append(r: Raft, m: Message) -> None:
    if m.index < r.log.committed:
        r.send(m.frm, MT.APP_RESP, index=r.log.committed)
        return
    last_new = r.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
    if last_new is not None:
        r.send(m.frm, MT.APP_RESP, index=last_new)
    else:
        r.send(
            m.frm,
            MT.APP_RESP,
            index=m.index,
            reject=True,
            reject_hint=min(m.index, r.log.last_index()),
        )


def handle_snapshot(r: Raft, m: Message) -> None:
    snap = m.snapshot
    if snap is not None and r.restore(snap):
        r.send(m.frm, MT.APP_RESP, index=r.log.last_index())
    else:
        r.send(m.frm, MT.APP_RESP, index=r.log.committed)
