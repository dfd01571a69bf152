"""The Raft state machine: roles, elections, replication, reads, transfer.

`Raft` holds one node's volatile and persistent state and reacts to
messages. It never performs I/O: outgoing messages accumulate in `msgs`,
confirmed reads in `read_states`, and the log's unstable tail waits for the
runtime to persist it (see rawnode.py for the Ready/advance contract).

Roles and transitions (illegal transitions raise AssertionError):

    follower --timeout--> pre-candidate --pre-vote quorum--> candidate
        ^                      |                                 |
        |<----- higher term / lost pre-vote ---------------------|
        |<----- higher term / lost vote ------------- candidate -+--vote quorum--> leader
        |<----- higher term / check-quorum failure / removed ---------------------- leader

Each role has its own step function, swapped in by the become_* methods.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from kvstore.raft.confchange import apply_conf_change
from kvstore.raft.config import Config
from kvstore.raft.errors import (
    LogCompacted,
    ProposalDropped,
    RaftUsageError,
)
from kvstore.raft.follower import step_candidate, step_follower
from kvstore.raft.leader import release_pending_reads, step_leader
from kvstore.raft.log import RaftLog
from kvstore.raft.progress import Progress, ProgressState
from kvstore.raft.quorum import VoteResult, vote_result
from kvstore.raft.quorum import committed_index as quorum_committed_index
from kvstore.raft.readonly import ReadOnlyQueue
from kvstore.raft.storage import Storage
from kvstore.raft.types import (
    NONE,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Role,
    Snapshot,
    SoftState,
)

MT = MessageType

CAMPAIGN_TRANSFER = b"campaign-transfer"
"""Context of a vote request caused by leadership transfer: voters honour it
even while they believe a leader is alive (it bypasses the leader lease)."""

_RESPONSE_TYPE = {MT.VOTE: MT.VOTE_RESP, MT.PRE_VOTE: MT.PRE_VOTE_RESP}


class Raft:
    def __init__(self, config: Config, storage: Storage, rng: random.Random) -> None:
        self.id = config.id
        self.cfg = config
        self.rng = rng
        self.log = RaftLog(storage, config.max_apply_bytes)
        self.log.on_append = self._on_log_append

        hard_state, snap_conf = storage.initial_state()
        # Membership is derived from the log: the snapshot's ConfState plus
        # every conf-change entry after it, in index order.
        self._base_conf: ConfState = snap_conf
        self._conf_entries: list[tuple[int, ConfChange]] = []
        self._prev_conf: ConfState = snap_conf
        first, last = storage.first_index(), storage.last_index()
        if last >= first:
            for e in storage.entries(first, last + 1):
                if e.type is EntryType.CONF_CHANGE:
                    self._conf_entries.append((e.index, ConfChange.decode(e.data)))
        self.conf: ConfState = self._fold_conf()

        self.term = hard_state.term
        self.vote = hard_state.vote
        if hard_state.commit:
            self.log.commit_to(hard_state.commit)
        if config.applied:
            if config.applied > self.log.last_index():
                raise RaftUsageError(
                    f"applied {config.applied} is beyond the last index {self.log.last_index()}"
                )
            # Applied implies committed; the persisted commit may lag because
            # a commit-only change to the hard state is written without fsync.
            self.log.commit_to(config.applied)
            self.log.applied_to(config.applied)

        self.lead = NONE
        self.role = Role.FOLLOWER
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnlyQueue()
        self.pending_reads: list[Message] = []
        self.pending_conf_index = 0
        self.lead_transferee = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_tick
        self._step: Callable[[Message], None] = partial(step_follower, self)
        self._tick: Callable[[], None] = self._tick_election
        self.become_follower(self.term, NONE)

    # -- state views --------------------------------------------------------------

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)

    def promotable(self) -> bool:
        """May this node campaign? A voter of its current configuration may.
        So may a voter whose removal is appended but not yet committed: it
        then counts votes in the new configuration only (which excludes it),
        so it can still commit its own removal, as a removed leader does.
        Without this, a cluster whose only up-to-date log belongs to such a
        node could never elect a leader."""
        if self.id in self.conf.voters:
            return True
        return self.id in self._prev_conf.voters and self.last_conf_index() > self.log.committed

    def committed_in_term(self) -> bool:
        return self.log.term(self.log.committed) == self.term

    def persisted_index(self) -> int:
        """The last index of the prefix of our log that is known durable."""
        return min(self.log.storage.last_index(), self.log.unstable.offset - 1)

    # -- membership ------------------------------------------------------------

    def _fold_conf(self) -> ConfState:
        """Recompute the configuration from the log; also remember the one
        before the latest change (see promotable())."""
        cs = prev = self._base_conf
        for _, cc in self._conf_entries:
            prev, cs = cs, apply_conf_change(cs, cc)
        self._prev_conf = prev
        return cs

    def conf_state_at(self, index: int) -> ConfState:
        """The configuration in force at `index` (for a snapshot taken there).
        Only indexes at or after the last restored snapshot are known."""
        cs = self._base_conf
        for i, cc in self._conf_entries:
            if i > index:
                break
            cs = apply_conf_change(cs, cc)
        return cs

    def last_conf_index(self) -> int:
        return self._conf_entries[-1][0] if self._conf_entries else 0

    def _on_log_append(self, entries: list[Entry]) -> None:
        first = entries[0].index
        changed = bool(self._conf_entries) and self._conf_entries[-1][0] >= first
        self._conf_entries = [(i, cc) for i, cc in self._conf_entries if i < first]
        for e in entries:
            if e.type is EntryType.CONF_CHANGE:
                self._conf_entries.append((e.index, ConfChange.decode(e.data)))
                changed = True
        if changed:
            self._set_conf(self._fold_conf())

    def _set_conf(self, cs: ConfState) -> None:
        self.conf = cs
        if self.role is not Role.LEADER:
            return
        for node in cs.members() | {self.id}:
            pr = self.prs.get(node)
            if pr is None:
                self.prs[node] = Progress(
                    match=0,
                    next=self.log.last_index() + 1,
                    max_inflight=self.cfg.max_inflight_msgs,
                    is_learner=node in cs.learners,
                )
            else:
                pr.is_learner = node in cs.learners
        for node in list(self.prs):
            if node != self.id and node not in cs.members():
                del self.prs[node]
        if self.lead_transferee != NONE and self.lead_transferee not in cs.voters:
            self.abort_leader_transfer()
        # A smaller quorum may commit at once.
        if self.maybe_commit():
            self.bcast_append()

    # -- sending -----------------------------------------------------------------

    def send(self, to: int, mtype: MessageType, term: int | None = None, **fields: object) -> None:
        if term is None:
            # Forwarded proposals and reads carry no term: they are local
            # requests that merely travel to the leader.
            term = 0 if mtype in (MT.PROP, MT.READ_INDEX) else self.term
        self.msgs.append(Message(mtype, to=to, frm=self.id, term=term, **fields))  # type: ignore[arg-type]

    def send_append(self, to: int, send_if_empty: bool = True) -> bool:
        """Send the follower what it lacks, or a snapshot if that is
        compacted. Returns whether a message was sent."""
        pr = self.prs[to]
        if pr.is_paused():
            return False
        prev_index = pr.next - 1
        prev_term = self.log.term(prev_index)
        entries: list[Entry] | None
        try:
            entries = self.log.entries_from(pr.next, self.cfg.max_msg_bytes)
        except LogCompacted:
            entries = None
        if prev_term is None or entries is None:
            if not pr.recent_active:
                return False
            snap = self.log.snapshot()
            if snap.is_empty:
                raise AssertionError(f"entries for {to} are compacted but there is no snapshot")
            pr.become_snapshot(snap.meta.index)
            self.send(to, MT.SNAP, snapshot=snap)
            return True
        if not entries and not send_if_empty:
            return False
        self.send(
            to,
            MT.APP,
            index=prev_index,
            log_term=prev_term,
            entries=tuple(entries),
            commit=self.log.committed,
        )
        if pr.state is ProgressState.REPLICATE and entries:
            last = entries[-1].index
            pr.next = last + 1
            pr.inflights.add(last)
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def bcast_append(self) -> None:
        for node in self.prs:
            if node != self.id:
                self.send_append(node)

    def bcast_heartbeat(self, context: bytes = b"") -> None:
        for node, pr in self.prs.items():
            if node != self.id:
                commit = min(pr.match, self.log.committed)
                self.send(node, MT.HEARTBEAT, commit=commit, context=context)

    # -- role transitions ----------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.cfg.election_tick + self.rng.randrange(
            self.cfg.election_tick
        )
        self.abort_leader_transfer()
        self.votes = {}
        self.prs = {}
        last = self.log.last_index()
        for node in self.conf.members() | {self.id}:
            match = self.persisted_index() if node == self.id else 0
            self.prs[node] = Progress(
                match=match,
                next=last + 1,
                max_inflight=self.cfg.max_inflight_msgs,
                is_learner=node in self.conf.learners,
            )
        self.pending_conf_index = 0
        self.read_only = ReadOnlyQueue()
        self.pending_reads = []

    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self._step = partial(step_follower, self)
        self._tick = self._tick_election
        self.lead = lead
        self.role = Role.FOLLOWER

    def become_pre_candidate(self) -> None:
        if self.role is Role.LEADER:
            raise AssertionError("invalid transition: leader -> pre-candidate")
        # A pre-candidate changes neither its term nor its vote.
        self._step = partial(step_candidate, self)
        self._tick = self._tick_election
        self.votes = {}
        self.lead = NONE
        self.role = Role.PRE_CANDIDATE

    def become_candidate(self) -> None:
        if self.role is Role.LEADER:
            raise AssertionError("invalid transition: leader -> candidate")
        self._reset(self.term + 1)
        self._step = partial(step_candidate, self)
        self._tick = self._tick_election
        self.vote = self.id
        self.role = Role.CANDIDATE

    def become_leader(self) -> None:
        if self.role is Role.FOLLOWER:
            raise AssertionError("invalid transition: follower -> leader")
        self._reset(self.term)
        self._step = partial(step_leader, self)
        self._tick = self._tick_heartbeat
        self.lead = self.id
        self.role = Role.LEADER
        self.prs[self.id].recent_active = True
        # No conf change until everything in the log now is committed.
        self.pending_conf_index = self.log.last_index()
        # An empty entry of our term lets us commit (and so learn) the
        # true commit index (Raft §8).
        self.append_entries([Entry(term=0, index=0)])

    # -- ticks ----------------------------------------------------------------------

    def tick(self) -> None:
        self._tick()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.step(Message(MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                self.step(Message(MT.CHECK_QUORUM, frm=self.id))
            if self.role is Role.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.role is not Role.LEADER:
            return
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self.step(Message(MT.BEAT, frm=self.id))

    # -- elections ----------------------------------------------------------------

    def hup(self, transfer: bool) -> None:
        if self.role is Role.LEADER or not self.promotable():
            return
        if self.cfg.pre_vote and not transfer:
            self.campaign(pre_vote=True, transfer=False)
        else:
            self.campaign(pre_vote=False, transfer=transfer)

    def campaign(self, pre_vote: bool, transfer: bool) -> None:
        if pre_vote:
            self.become_pre_candidate()
            mtype, term = MT.PRE_VOTE, self.term + 1
        else:
            self.become_candidate()
            mtype, term = MT.VOTE, self.term
        if self.poll(self.id, granted=True) == VoteResult.WON:
            # A single-voter cluster wins at once.
            if pre_vote:
                self.campaign(pre_vote=False, transfer=transfer)
            else:
                self.become_leader()
            return
        context = CAMPAIGN_TRANSFER if transfer else b""
        for node in sorted(self.conf.voters):
            if node != self.id:
                self.send(
                    node,
                    mtype,
                    term=term,
                    index=self.log.last_index(),
                    log_term=self.log.last_term(),
                    context=context,
                )

    def poll(self, node: int, granted: bool) -> str:
        self.votes.setdefault(node, granted)
        return vote_result(self.conf.voters, self.votes)

    def _handle_vote_request(self, m: Message) -> None:
        resp = _RESPONSE_TYPE[m.type]
        can_vote = (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type is MT.PRE_VOTE and m.term > self.term)
        )
        up_to_date = self.cfg.bugs.vote_for_stale_log or self.log.is_up_to_date(m.index, m.log_term)
        if can_vote and up_to_date:
            # A granted (pre-)vote answers in the candidate's term.
            self.send(m.frm, resp, term=m.term)
            if m.type is MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self.send(m.frm, resp, term=self.term, reject=True)

    # -- the step entry point ---------------------------------------------------------

    def step(self, m: Message) -> None:
        if m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.cfg.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.cfg.election_tick
                )
                if in_lease and not force:
                    # We heard from a live leader recently: ignore a
                    # disruptive candidate (Raft dissertation §4.2.3).
                    return
            if m.type is MT.PRE_VOTE or (m.type is MT.PRE_VOTE_RESP and not m.reject):
                # Pre-votes never change our term: a granted pre-vote
                # answer carries the term the candidate will campaign in.
                pass
            elif m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif 0 < m.term < self.term:
            if (self.cfg.check_quorum or self.cfg.pre_vote) and m.type in (
                MT.HEARTBEAT,
                MT.APP,
            ):
                # Tell a stale leader about our term so it steps down; with
                # check-quorum or pre-vote it might otherwise never learn.
                self.send(m.frm, MT.APP_RESP)
            elif m.type is MT.PRE_VOTE:
                self.send(m.frm, MT.PRE_VOTE_RESP, term=self.term, reject=True)
            return

        if m.type is MT.HUP:
            self.hup(transfer=False)
        elif m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote_request(m)
        else:
            self._step(m)
        self._maybe_step_down_removed()

    def _maybe_step_down_removed(self) -> None:
        """A leader that removed itself leads until that change commits,
        then steps down (Raft dissertation §4.2.2)."""
        if (
            self.role is Role.LEADER
            and self.id not in self.conf.voters
            and self.last_conf_index() <= self.log.committed
        ):
            self.become_follower(self.term, NONE)

    # -- leader ------------------------------------------------------------------------

    def append_entries(self, entries: list[Entry]) -> None:
        last = self.log.last_index()
        stamped = [
            Entry(term=self.term, index=last + 1 + i, type=e.type, data=e.data)
            for i, e in enumerate(entries)
        ]
        self.log.append(stamped)
        # Our own replica counts toward commit only once it is persisted: see
        # on_persisted().

    def maybe_commit(self) -> bool:
        match = {node: pr.match for node, pr in self.prs.items()}
        index = quorum_committed_index(self.conf.voters, match)
        if index <= self.log.committed:
            return False
        # Raft §5.4.2: only an entry of the current term is committed by
        # counting replicas; earlier ones commit with it.
        if self.log.term(index) != self.term and not self.cfg.bugs.commit_previous_term:
            return False
        self.log.commit_to(index)
        release_pending_reads(self)
        return True

    def on_persisted(self) -> None:
        """Called after the runtime persisted a Ready: our own log now counts."""
        if self.role is not Role.LEADER:
            return
        pr = self.prs.get(self.id)
        if pr is not None and pr.maybe_update(self.persisted_index()) and self.maybe_commit():
            self.bcast_append()
        self._maybe_step_down_removed()

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    def drop(self, local: bool, reason: str) -> None:
        if local:
            raise ProposalDropped(reason)

    # -- candidate and follower ---------------------------------------------------------

    def restore(self, snap: Snapshot) -> bool:
        meta = snap.meta
        if meta.index <= self.log.committed:
            return False
        if self.log.match_term(meta.index, meta.term):
            # We already have the snapshot's last entry: just fast-forward.
            self.log.commit_to(meta.index)
            return False
        self.log.restore(snap)
        self._base_conf = meta.conf_state
        self._conf_entries = []
        self._set_conf(self._fold_conf())
        return True
