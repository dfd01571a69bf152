"""RawNode: the Ready/advance contract between the Raft core and a runtime.

The runtime loops:

    node.tick() / node.step(msg) / node.propose(data) / ...
    if node.has_ready():
        rd = node.ready()
        1. persist rd.snapshot, rd.entries and rd.hard_state in one batch,
           fsync'd when rd.must_sync;
        2. send rd.messages (only now: they may promise what step 1 stored);
        3. apply rd.snapshot (if any), then rd.committed_entries, in order;
           serve rd.read_states once applied >= their index;
        4. node.advance(rd).

Calls to step() and friends may happen between ready() and advance(); they
are reflected in the next Ready. Only one Ready may be outstanding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kvstore.raft.config import Config
from kvstore.raft.core import Raft
from kvstore.raft.errors import RaftUsageError
from kvstore.raft.storage import Storage
from kvstore.raft.types import (
    LOCAL_MESSAGES,
    ConfChange,
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


@dataclass(frozen=True, slots=True)
class Ready:
    soft_state: SoftState | None
    """New leader/role, or None if unchanged since the last Ready."""
    hard_state: HardState | None
    """New term/vote/commit to persist, or None if unchanged."""
    entries: tuple[Entry, ...]
    """Entries to append to stable storage (truncating any conflict)."""
    snapshot: Snapshot | None
    """A snapshot from the leader, to persist and then apply."""
    committed_entries: tuple[Entry, ...]
    """Entries to apply to the state machine, in order."""
    messages: tuple[Message, ...]
    read_states: tuple[ReadState, ...]
    must_sync: bool
    """Whether step 1 must be fsync'd before step 2."""


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    role: Role
    leader: int
    term: int
    vote: int
    commit: int
    applied: int
    last_index: int
    lead_transferee: int


class RawNode:
    def __init__(self, config: Config, storage: Storage, rng: random.Random) -> None:
        self.raft = Raft(config, storage, rng)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()
        self._outstanding = False

    # -- inputs ------------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()

    def step(self, m: Message) -> None:
        """Feed a message received from a peer."""
        if m.type in LOCAL_MESSAGES:
            raise RaftUsageError(f"{m.type.value} is a local message and cannot be stepped")
        if m.type in (MessageType.PROP, MessageType.READ_INDEX) and m.frm == self.raft.id:
            raise RaftUsageError("use propose()/read_index() for local requests")
        self.raft.step(m)

    def campaign(self) -> None:
        """Start an election now (it still goes through pre-vote if enabled)."""
        self.raft.step(Message(MessageType.HUP, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose a normal entry. Raises ProposalDropped if it cannot be
        taken (no leader known, leadership transfer in progress...). An
        accepted proposal may still be lost; the caller watches for it."""
        entry = Entry(term=0, index=0, type=EntryType.NORMAL, data=data)
        self.raft.step(Message(MessageType.PROP, frm=self.raft.id, entries=(entry,)))

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a membership change. Raises ConfChangeRejected on a leader
        that cannot take it now, and ProposalDropped without a leader."""
        entry = Entry(term=0, index=0, type=EntryType.CONF_CHANGE, data=cc.encode())
        self.raft.step(Message(MessageType.PROP, frm=self.raft.id, entries=(entry,)))

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read point; the answer arrives as a
        ReadState carrying `context` (which must be unique). Raises
        ReadIndexDropped when no leader is known."""
        if not context:
            raise RaftUsageError("read_index needs a non-empty context")
        self.raft.step(Message(MessageType.READ_INDEX, frm=self.raft.id, context=context))

    def transfer_leader(self, target: int) -> None:
        self.raft.step(Message(MessageType.TRANSFER_LEADER, frm=target))

    def report_unreachable(self, node: int) -> None:
        self.raft.step(Message(MessageType.UNREACHABLE, frm=node))

    def report_snapshot(self, node: int, ok: bool) -> None:
        self.raft.step(Message(MessageType.SNAP_STATUS, frm=node, reject=not ok))

    # -- outputs -----------------------------------------------------------------

    def has_ready(self) -> bool:
        r = self.raft
        return bool(
            r.soft_state() != self._prev_soft
            or r.hard_state() != self._prev_hard
            or r.log.unstable.entries
            or r.log.unstable.snapshot is not None
            or r.msgs
            or r.read_states
            or r.log.has_next_committed_entries()
        )

    def ready(self) -> Ready:
        if self._outstanding:
            raise RaftUsageError("ready() called again before advance()")
        r = self.raft
        soft = r.soft_state()
        hard = r.hard_state()
        entries = tuple(r.log.unstable_entries())
        snapshot = r.log.unstable.snapshot
        committed = tuple(r.log.next_committed_entries())
        vote_changed = hard.term != self._prev_hard.term or hard.vote != self._prev_hard.vote
        if r.cfg.bugs.vote_without_sync:
            vote_changed = False
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard else None,
            entries=entries,
            snapshot=snapshot,
            committed_entries=committed,
            messages=tuple(r.msgs),
            read_states=tuple(r.read_states),
            must_sync=bool(entries) or snapshot is not None or vote_changed,
        )
        r.msgs = []
        r.read_states = []
        self._prev_soft = soft
        self._prev_hard = hard
        if committed:
            r.log.applying = committed[-1].index
        self._outstanding = True
        return rd

    def advance(self, rd: Ready) -> None:
        if not self._outstanding:
            raise RaftUsageError("advance() without an outstanding ready()")
        self._outstanding = False
        log = self.raft.log
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.meta.index)
            log.applied_to(rd.snapshot.meta.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
        self.raft.on_persisted()

    def status(self) -> Status:
        r = self.raft
        return Status(
            id=r.id,
            role=r.role,
            leader=r.lead,
            term=r.term,
            vote=r.vote,
            commit=r.log.committed,
            applied=r.log.applied,
            last_index=r.log.last_index(),
            lead_transferee=r.lead_transferee,
        )
