"""A deterministic in-memory network of RawNodes for unit tests of the Raft core.

Nothing here uses the wall clock or threads. Time passes only when a test
calls `tick`; messages move only when a test calls `deliver_all` (or a helper
that does). Each node runs the runtime contract of rawnode.py exactly:

    rd = node.ready()
    persist  (MemoryStorage: apply_snapshot, append, set_hard_state)
    send     (messages join the network's FIFO queue)
    apply    (snapshot, then committed entries; read states are collected)
    node.advance(rd)

Faults are explicit: `drop(frm, to)` blocks one direction, `cut(a, b)` both,
`isolate(id)` cuts a node from everyone, `drop_if(pred)` drops any message
the predicate matches, `crash(id)`/`restart(id)` lose and rebuild a node's
volatile state from its storage, and `recover()` heals every link and
filter. Every message that leaves a node is recorded in `sent`, so tests can
assert on what was said, not only on the outcome.

The replicated "state machine" of each node is the list of the payloads of
the non-empty normal entries it applied (`data(id)`); a snapshot carries
that list, so a node restored from a snapshot has the same data.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from kvstore.raft.confchange import apply_conf_change
from kvstore.raft.config import Config
from kvstore.raft.core import Raft
from kvstore.raft.rawnode import RawNode
from kvstore.raft.storage import MemoryStorage, bootstrap_entries
from kvstore.raft.types import (
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
)

MessageFilter = Callable[[Message], bool]


def founder_storage(voters: Iterable[int], terms: Iterable[int] = ()) -> MemoryStorage:
    """The storage of a founding member: the bootstrap log (committed by fiat
    at term 1), followed by one uncommitted normal entry per term in `terms`
    (payload b"i<index>t<term>"). The hard state's term is the highest term
    in the log."""
    voter_list = sorted(voters)
    entries = bootstrap_entries(voter_list)
    for term in terms:
        index = len(entries) + 1
        entries.append(Entry(term=term, index=index, data=f"i{index}t{term}".encode()))
    storage = MemoryStorage()
    storage.append(entries)
    storage.set_hard_state(HardState(term=max(e.term for e in entries), commit=len(voter_list)))
    return storage


def encode_state(data: list[bytes]) -> bytes:
    return json.dumps([d.decode("latin-1") for d in data]).encode()


def decode_state(raw: bytes) -> list[bytes]:
    if not raw:
        return []
    return [s.encode("latin-1") for s in json.loads(raw)]


class Network:
    """RawNodes `voters` (founders) plus `blank` nodes with empty storage
    (future members), all built with `Config(id, **overrides)`.

    `storages` replaces the default founder storage of some nodes (see
    founder_storage for crafting divergent logs)."""

    def __init__(
        self,
        voters: Iterable[int],
        *,
        blank: Iterable[int] = (),
        storages: dict[int, MemoryStorage] | None = None,
        seed: int = 0,
        **overrides: Any,
    ) -> None:
        self.voters = sorted(voters)
        self.seed = seed
        self.overrides = overrides
        self.storages: dict[int, MemoryStorage] = {}
        for node_id in self.voters:
            self.storages[node_id] = founder_storage(self.voters)
        for node_id in blank:
            self.storages[node_id] = MemoryStorage()
        self.storages.update(storages or {})
        self.ids = sorted(self.storages)

        self.nodes: dict[int, RawNode] = {}
        self.applied: dict[int, list[Entry]] = {}
        """Entries each node applied since it (re)started or restored a snapshot."""
        self.applied_index: dict[int, int] = {}
        self.state: dict[int, list[bytes]] = {}
        self.app_conf: dict[int, ConfState] = {}
        """Membership as of each node's applied index (what a snapshot records)."""
        self.read_states: dict[int, list[ReadState]] = {i: [] for i in self.ids}
        self.incarnation: dict[int, int] = dict.fromkeys(self.ids, 0)
        self.down: set[int] = set()

        self.queue: deque[Message] = deque()
        self.sent: list[Message] = []
        self.dropped: list[Message] = []
        self.blocked: set[tuple[int, int]] = set()
        self.filters: list[MessageFilter] = []
        for node_id in self.ids:
            self._start(node_id)

    # -- building nodes -----------------------------------------------------------

    def config(self, node_id: int, applied: int = 0) -> Config:
        return Config(id=node_id, applied=applied, **self.overrides)

    def _start(self, node_id: int) -> None:
        storage = self.storages[node_id]
        snap = storage.snapshot()
        self.incarnation[node_id] += 1
        rng = random.Random(self.seed * 1_000_003 + node_id * 7_919 + self.incarnation[node_id])
        self.nodes[node_id] = RawNode(self.config(node_id, snap.meta.index), storage, rng)
        self.applied[node_id] = []
        self.applied_index[node_id] = snap.meta.index
        self.state[node_id] = decode_state(snap.data)
        self.app_conf[node_id] = snap.meta.conf_state

    def crash(self, node_id: int) -> None:
        """Lose the node's volatile state; its storage (everything it was
        handed, all synced) survives. Messages to it are dropped."""
        self.down.add(node_id)
        self.queue = deque(m for m in self.queue if m.to != node_id)

    def restart(self, node_id: int) -> None:
        """Start a fresh RawNode over the node's storage."""
        self.down.discard(node_id)
        self._start(node_id)

    # -- views ------------------------------------------------------------------------

    def raft(self, node_id: int) -> Raft:
        return self.nodes[node_id].raft

    def role(self, node_id: int) -> Role:
        return self.raft(node_id).role

    def term(self, node_id: int) -> int:
        return self.raft(node_id).term

    def commit(self, node_id: int) -> int:
        return self.raft(node_id).log.committed

    def last_index(self, node_id: int) -> int:
        return self.raft(node_id).log.last_index()

    def leader(self) -> int | None:
        """The live leader of the highest term, if any."""
        leaders = [i for i in self.ids if i not in self.down and self.role(i) is Role.LEADER]
        return max(leaders, key=self.term, default=None)

    def log(self, node_id: int) -> list[Entry]:
        """The node's whole log as the core sees it (stable + unstable)."""
        log = self.raft(node_id).log
        return log.slice(log.first_index(), log.last_index() + 1)

    def stored_log(self, node_id: int) -> list[Entry]:
        s = self.storages[node_id]
        return s.entries(s.first_index(), s.last_index() + 1)

    def data(self, node_id: int) -> list[bytes]:
        """The node's replicated state: payloads of the normal entries applied."""
        return list(self.state[node_id])

    def messages(
        self,
        mtype: MessageType | None = None,
        *,
        frm: int | None = None,
        to: int | None = None,
    ) -> list[Message]:
        """Messages that left nodes (delivered or not), oldest first."""
        return [
            m
            for m in self.sent
            if (mtype is None or m.type is mtype)
            and (frm is None or m.frm == frm)
            and (to is None or m.to == to)
        ]

    # -- running the Ready loop ---------------------------------------------------------

    def process(self, node_id: int) -> list[Message]:
        """Carry out every Ready the node has; return the messages it sent
        (which are queued for delivery)."""
        if node_id in self.down:
            return []
        raw = self.nodes[node_id]
        storage = self.storages[node_id]
        out: list[Message] = []
        while raw.has_ready():
            rd = raw.ready()
            # 1. Persist.
            if rd.snapshot is not None:
                storage.apply_snapshot(rd.snapshot)
            if rd.entries:
                storage.append(rd.entries)
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
            # 2. Send.
            out.extend(rd.messages)
            self.sent.extend(rd.messages)
            self.queue.extend(rd.messages)
            # 3. Apply.
            if rd.snapshot is not None:
                self._restore(node_id, rd.snapshot)
            for e in rd.committed_entries:
                self._apply(node_id, e)
            self.read_states[node_id].extend(rd.read_states)
            # 4. Advance.
            raw.advance(rd)
        return out

    def _restore(self, node_id: int, snap: Snapshot) -> None:
        self.applied[node_id] = []
        self.applied_index[node_id] = snap.meta.index
        self.state[node_id] = decode_state(snap.data)
        self.app_conf[node_id] = snap.meta.conf_state

    def _apply(self, node_id: int, e: Entry) -> None:
        expected = self.applied_index[node_id] + 1
        if e.index != expected:
            raise AssertionError(f"node {node_id} applies {e.index}, expected {expected}")
        self.applied[node_id].append(e)
        self.applied_index[node_id] = e.index
        if e.type is EntryType.CONF_CHANGE:
            cc = ConfChange.decode(e.data)
            self.app_conf[node_id] = apply_conf_change(self.app_conf[node_id], cc)
        elif e.data:
            self.state[node_id].append(e.data)

    def process_all(self) -> None:
        for node_id in self.ids:
            self.process(node_id)

    def _blocked(self, m: Message) -> bool:
        return (
            m.to in self.down
            or m.frm in self.down
            or (m.frm, m.to) in self.blocked
            or any(f(m) for f in self.filters)
        )

    def deliver(self, m: Message) -> bool:
        """Deliver one message now (unless a fault drops it). Returns
        whether it arrived."""
        if self._blocked(m):
            self.dropped.append(m)
            if m.type is MessageType.SNAP and m.frm not in self.down:
                # A real transport notices a failed snapshot stream.
                self.nodes[m.frm].report_snapshot(m.to, ok=False)
            return False
        self.nodes[m.to].step(m)
        if m.type is MessageType.SNAP:
            self.nodes[m.frm].report_snapshot(m.to, ok=True)
        return True

    def deliver_all(self, max_messages: int = 100_000) -> int:
        """Run Ready loops and deliver messages, FIFO, until no node has
        anything to do. Returns how many messages were delivered."""
        delivered = 0
        for _ in range(max_messages):
            self.process_all()
            if not self.queue:
                return delivered
            if self.deliver(self.queue.popleft()):
                delivered += 1
        raise AssertionError(f"network not quiescent after {max_messages} messages")

    def deliver_until(self, pred: MessageFilter, max_messages: int = 100_000) -> Message:
        """Like deliver_all, but stop right after delivering the first message
        that `pred` matches (everything else stays queued)."""
        for _ in range(max_messages):
            self.process_all()
            if not self.queue:
                break
            m = self.queue.popleft()
            if self.deliver(m) and pred(m):
                self.process(m.to)
                return m
        raise AssertionError("no matching message was delivered")

    def discard_queue(self) -> list[Message]:
        """Throw away (and return) every message in flight."""
        lost = list(self.queue)
        self.dropped.extend(lost)
        self.queue.clear()
        return lost

    # -- faults -------------------------------------------------------------------------

    def drop(self, frm: int, to: int) -> None:
        self.blocked.add((frm, to))

    def cut(self, a: int, b: int) -> None:
        self.drop(a, b)
        self.drop(b, a)

    def isolate(self, node_id: int) -> None:
        for other in self.ids:
            if other != node_id:
                self.cut(node_id, other)

    def drop_if(self, pred: MessageFilter) -> MessageFilter:
        """Drop every message `pred` matches (until recover/remove_filter)."""
        self.filters.append(pred)
        return pred

    def remove_filter(self, pred: MessageFilter) -> None:
        self.filters.remove(pred)

    def recover(self, node_id: int | None = None) -> None:
        """Heal everything, or only the links of one node."""
        if node_id is None:
            self.blocked.clear()
            self.filters.clear()
        else:
            self.blocked = {(a, b) for a, b in self.blocked if node_id not in (a, b)}

    # -- time and client actions -----------------------------------------------------------

    def tick(self, node_id: int, n: int = 1, *, deliver: bool = True) -> None:
        """Tick one node n times; by default the network delivers everything
        between ticks (messages are fast compared to ticks)."""
        for _ in range(n):
            self.nodes[node_id].tick()
            if deliver:
                self.deliver_all()
            else:
                self.process(node_id)

    def tick_all(self, n: int = 1) -> None:
        """Tick every live node n times, in lockstep, delivering between rounds."""
        for _ in range(n):
            for node_id in self.ids:
                if node_id not in self.down:
                    self.nodes[node_id].tick()
            self.deliver_all()

    def expire_lease(self, node_id: int) -> None:
        """Let one election timeout pass on a follower without letting it
        campaign, so it stops honouring its leader's lease (the knob etcd's
        tests call setRandomizedElectionTimeout)."""
        raft = self.raft(node_id)
        if raft.role is not Role.FOLLOWER:
            return
        saved = raft.randomized_election_timeout
        raft.randomized_election_timeout = 1 << 30
        while raft.election_elapsed < raft.cfg.election_tick:
            self.nodes[node_id].tick()
        raft.randomized_election_timeout = saved
        self.process(node_id)

    def elect(self, node_id: int) -> None:
        """Make node_id the leader: it campaigns; if the voters are inside a
        leader's lease (or a first round is lost on a stale term), one
        election timeout passes on the other followers and it tries again."""
        for attempt in range(3):
            self.nodes[node_id].campaign()
            self.deliver_all()
            if self.role(node_id) is Role.LEADER:
                return
            if attempt == 0:
                for other in self.ids:
                    if other != node_id and other not in self.down:
                        self.expire_lease(other)
        raise AssertionError(
            f"node {node_id} did not become leader: role {self.role(node_id)}, "
            f"term {self.term(node_id)}"
        )

    def propose(self, node_id: int, data: bytes, *, deliver: bool = True) -> None:
        self.nodes[node_id].propose(data)
        if deliver:
            self.deliver_all()
        else:
            self.process(node_id)

    def propose_conf_change(self, node_id: int, cc: ConfChange, *, deliver: bool = True) -> None:
        self.nodes[node_id].propose_conf_change(cc)
        if deliver:
            self.deliver_all()
        else:
            self.process(node_id)

    def read_index(self, node_id: int, context: bytes, *, deliver: bool = True) -> None:
        self.nodes[node_id].read_index(context)
        if deliver:
            self.deliver_all()
        else:
            self.process(node_id)

    def compact(self, node_id: int) -> Snapshot:
        """Snapshot the node's applied state and drop its log up to there."""
        index = self.applied_index[node_id]
        storage = self.storages[node_id]
        snap = storage.create_snapshot(
            index, self.app_conf[node_id], encode_state(self.state[node_id])
        )
        storage.compact(index)
        return snap
