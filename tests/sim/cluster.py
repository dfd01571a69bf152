"""A deterministic, seeded simulation of a Raft cluster.

One `random.Random(seed)` decides everything: cluster size, fault rates,
message delays, crashes, partitions, client requests and membership changes.
Time is an integer; each node ticks at its own period. Events sit in one
heap ordered by (time, sequence number), so a seed always replays the same
run.

Durability model: the runtime contract fsyncs every Ready that carries
entries or a snapshot, so a node's log on "disk" always equals its log in
memory. What can be lost is a hard state written without a sync (a commit
index, or a vote if a planted bug skips the sync) and everything volatile:
the core's unstable state, and the applied state machine, which restarts
from the last snapshot and re-applies the log.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kvstore.raft.confchange import apply_conf_change
from kvstore.raft.config import Config, PlantedBugs
from kvstore.raft.errors import ConfChangeRejected, ProposalDropped, ReadIndexDropped
from kvstore.raft.rawnode import RawNode
from kvstore.raft.storage import MemoryStorage, bootstrap_entries
from kvstore.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Role,
)
from tests.sim.checker import Checker, InvariantViolation

ELECTION_TICK = 10
HEARTBEAT_TICK = 2


@dataclass
class Params:
    """Everything a seed decides about a run."""

    seed: int
    n_voters: int
    n_spares: int
    drop: float
    duplicate: float
    max_delay: int
    tick_periods: dict[int, int]
    crash_rate: float
    step_crash_rate: float
    partition_rate: float
    conf_change_rate: float
    transfer_rate: float
    snapshot_every: int
    max_msg_bytes: int
    max_inflight: int
    fault_time: int
    isolate_new_leader: float = 0.0
    """Chance that a newly elected leader is cut off soon after winning."""
    event_period: int = 15

    @classmethod
    def from_seed(cls, seed: int, rng: random.Random, profile: str = "mixed") -> Params:
        if profile == "mixed":
            roll = rng.random()
            profile = "turbulent" if roll < 0.25 else "figure8" if roll < 0.35 else "standard"
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose from {PROFILES}")
        make: Callable[[int, random.Random], Params] = getattr(cls, profile)
        return make(seed, rng)

    @classmethod
    def standard(cls, seed: int, rng: random.Random) -> Params:
        """Every kind of fault and operation, at rates drawn per seed."""
        n_voters = rng.choice((3, 3, 5, 5, 7))
        n_spares = rng.choice((0, 1, 2))
        ids = range(1, n_voters + n_spares + 1)
        return cls(
            seed=seed,
            n_voters=n_voters,
            n_spares=n_spares,
            drop=rng.choice((0.0, 0.02, 0.05, 0.15)),
            duplicate=rng.choice((0.0, 0.02, 0.05)),
            max_delay=rng.choice((2, 5, 15, 40)),
            tick_periods={i: rng.choice((8, 10, 10, 12, 15)) for i in ids},
            crash_rate=rng.choice((0.0, 0.05, 0.1, 0.2)),
            step_crash_rate=rng.choice((0.0, 0.0, 0.002, 0.01, 0.03)),
            partition_rate=rng.choice((0.0, 0.05, 0.1, 0.2)),
            conf_change_rate=rng.choice((0.0, 0.03, 0.08)) if n_spares else 0.02,
            transfer_rate=rng.choice((0.0, 0.02, 0.05)),
            snapshot_every=rng.choice((5, 15, 40, 10_000)),
            max_msg_bytes=rng.choice((1, 40, 1 << 20)),
            max_inflight=rng.choice((1, 2, 4, 256)),
            fault_time=rng.choice((2000, 3000, 4000)),
        )


    @classmethod
    def turbulent(cls, seed: int, rng: random.Random) -> Params:
        """Frequent leader changes with entries trickling out one at a time:
        the histories (Raft paper, figure 8) where commit rules matter."""
        n_voters = 5
        ids = range(1, n_voters + 1)
        return cls(
            seed=seed,
            n_voters=n_voters,
            n_spares=0,
            drop=rng.choice((0.02, 0.05, 0.1)),
            duplicate=0.02,
            max_delay=rng.choice((5, 15, 40)),
            tick_periods={i: rng.choice((8, 10, 12)) for i in ids},
            crash_rate=rng.choice((0.1, 0.2)),
            step_crash_rate=rng.choice((0.01, 0.03)),
            partition_rate=rng.choice((0.1, 0.2, 0.3)),
            conf_change_rate=0.0,
            transfer_rate=0.02,
            snapshot_every=10_000,
            max_msg_bytes=1,
            max_inflight=1,
            fault_time=4000,
            isolate_new_leader=rng.choice((0.3, 0.6)),
        )


    @classmethod
    def figure8(cls, seed: int, rng: random.Random) -> Params:
        """Three voters whose leaders are cut off early and often, most
        tellingly while they are still bringing followers up to date."""
        ids = range(1, 4)
        return cls(
            seed=seed,
            n_voters=3,
            n_spares=0,
            drop=rng.choice((0.0, 0.05)),
            duplicate=0.0,
            max_delay=rng.choice((5, 15, 30)),
            tick_periods={i: rng.choice((8, 10, 12)) for i in ids},
            crash_rate=0.1,
            step_crash_rate=rng.choice((0.0, 0.01)),
            partition_rate=0.3,
            conf_change_rate=0.0,
            transfer_rate=0.0,
            snapshot_every=10_000,
            max_msg_bytes=1,
            max_inflight=1,
            fault_time=4000,
            isolate_new_leader=rng.choice((0.3, 0.6)),
        )


PROFILES = ("mixed", "standard", "turbulent", "figure8")


@dataclass
class App:
    """The replicated state machine: a running digest of applied entries,
    plus the membership as of the applied index (for snapshots)."""

    index: int = 0
    digest: int = 0
    conf: ConfState = field(default_factory=ConfState)


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    durable_hard_state: HardState
    tick_period: int
    raw: RawNode | None = None
    app: App = field(default_factory=App)
    incarnation: int = 0
    checked_commit: int = 0
    applied_since_snapshot: int = 0


class Cluster:
    def __init__(
        self, seed: int, bugs: PlantedBugs | None = None, profile: str = "mixed"
    ) -> None:
        self.rng = random.Random(seed)
        self.p = Params.from_seed(seed, self.rng, profile)
        self.bugs = bugs or PlantedBugs()
        self.check = Checker()
        self.now = 0
        self._seq = 0
        self._events: list[tuple[int, int, str, object]] = []
        self.blocked: set[tuple[int, int]] = set()
        self.faults_on = True
        self.trace: deque[str] = deque(maxlen=60)
        self.proposed = 0
        self.read_counter = 0

        voters = list(range(1, self.p.n_voters + 1))
        self.nodes: dict[int, SimNode] = {}
        for node_id in range(1, self.p.n_voters + self.p.n_spares + 1):
            storage = MemoryStorage()
            hs = HardState()
            if node_id in voters:
                # Founders share a bootstrap log that is committed by fiat.
                storage.append(bootstrap_entries(voters))
                hs = HardState(term=1, commit=len(voters))
                storage.set_hard_state(hs)
            node = SimNode(node_id, storage, hs, self.p.tick_periods[node_id])
            self.nodes[node_id] = node
            self._start(node)

    # -- event plumbing -------------------------------------------------------------

    def _at(self, time: int, kind: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._events, (time, self._seq, kind, payload))

    def _config(self, node_id: int, applied: int = 0) -> Config:
        return Config(
            id=node_id,
            applied=applied,
            election_tick=ELECTION_TICK,
            heartbeat_tick=HEARTBEAT_TICK,
            max_msg_bytes=self.p.max_msg_bytes,
            max_inflight_msgs=self.p.max_inflight,
            max_apply_bytes=None,
            bugs=self.bugs,
        )

    def _start(self, node: SimNode) -> None:
        node.incarnation += 1
        node.storage.set_hard_state(node.durable_hard_state)
        snap = node.storage.snapshot()
        if snap.is_empty:
            node.app = App()
        else:
            index, digest = (int(x) for x in snap.data.split(b":"))
            self.check.on_restore(node.id, index, digest)
            node.app = App(index, digest, snap.meta.conf_state)
        node.applied_since_snapshot = 0
        node_rng = random.Random(self.p.seed * 7919 + node.id * 131 + node.incarnation)
        node.raw = RawNode(self._config(node.id, node.app.index), node.storage, node_rng)
        node.checked_commit = 0
        # Stagger first ticks so nodes are not in lockstep.
        self._at(self.now + 1 + self.rng.randrange(node.tick_period), "tick", node)
        self.trace.append(f"t={self.now} start {node.id} (incarnation {node.incarnation})")

    def crash(self, node: SimNode) -> None:
        # Power cut: unsynced hard state and all volatile state are lost.
        node.raw = None
        node.storage.set_hard_state(node.durable_hard_state)
        self.trace.append(f"t={self.now} crash {node.id}")

    # -- carrying out Readies -------------------------------------------------------------

    def _process(self, node: SimNode) -> None:
        raw = node.raw
        while raw is not None and raw.has_ready():
            rd = raw.ready()
            raft = raw.raft
            storage = node.storage
            # 1. Persist (the sync covers every write so far).
            if rd.snapshot is not None:
                storage.apply_snapshot(rd.snapshot)
            if rd.entries:
                self.check.on_append(raft, rd.entries, self._stored_term(storage))
                storage.append(rd.entries)
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
            if rd.must_sync:
                node.durable_hard_state = storage.hard_state
            # 2. Send.
            for m in rd.messages:
                self._send(node, m)
            if self.faults_on and self.rng.random() < self.p.step_crash_rate:
                # Power cut between sending and applying: the worst moment.
                self.crash(node)
                self._at(self.now + 10 + self.rng.randrange(200), "restart", node)
                return
            # 3. Apply.
            if rd.snapshot is not None:
                index, digest = (int(x) for x in rd.snapshot.data.split(b":"))
                self.check.on_restore(node.id, index, digest)
                node.app = App(index, digest, rd.snapshot.meta.conf_state)
            for e in rd.committed_entries:
                self._apply(node, e)
            for rs in rd.read_states:
                self.check.on_read_state(node.id, rs)
            raw.advance(rd)
            node.checked_commit = self.check.on_commit(raft, node.checked_commit)
            if raft.role is Role.LEADER and self.check.on_leader(raft):
                self._nemesis_new_leader(node)
            self._maybe_snapshot(node)

    @staticmethod
    def _stored_term(storage: MemoryStorage) -> Callable[[int], int | None]:
        def term(index: int) -> int | None:
            if index < storage.first_index() or index > storage.last_index():
                return None
            return storage.term(index)

        return term

    def _nemesis_new_leader(self, node: SimNode) -> None:
        if self.faults_on and self.rng.random() < self.p.isolate_new_leader:
            self._at(self.now + self.rng.randrange(25), "isolate", node.id)

    def _nemesis_leader_startup(self, node: SimNode) -> None:
        """Cut off a leader while it is still bringing followers up to date,
        before it has committed an entry of its own term: the window in
        which the commit rules of Raft §5.4.2 matter most."""
        raw = node.raw
        if (
            self.faults_on
            and raw is not None
            and raw.raft.role is Role.LEADER
            and not raw.raft.committed_in_term()
            and self.rng.random() < self.p.isolate_new_leader
        ):
            self._isolate(node.id, "leader in start-up")

    def _isolate(self, victim: int, why: str) -> None:
        self.blocked |= {(victim, o) for o in self.nodes} | {(o, victim) for o in self.nodes}
        self.trace.append(f"t={self.now} isolate {victim} ({why})")

    def _apply(self, node: SimNode, e: Entry) -> None:
        app = node.app
        if e.index != app.index + 1:
            raise InvariantViolation(
                "apply order", f"node {node.id} applies {e.index} after {app.index}"
            )
        app.digest = self.check.on_apply(node.id, e, app.digest)
        app.index = e.index
        if e.type is EntryType.CONF_CHANGE:
            app.conf = apply_conf_change(app.conf, ConfChange.decode(e.data))
        node.applied_since_snapshot += 1

    def _maybe_snapshot(self, node: SimNode) -> None:
        if node.applied_since_snapshot < self.p.snapshot_every:
            return
        app = node.app
        if app.index <= node.storage.snapshot().meta.index:
            return
        data = f"{app.index}:{app.digest}".encode()
        node.storage.create_snapshot(app.index, app.conf, data)
        # Keep a few entries behind the snapshot so slow followers can still
        # be served from the log.
        node.storage.compact(max(node.storage.first_index() - 1, app.index - 3))
        node.applied_since_snapshot = 0

    # -- the network -----------------------------------------------------------------------

    def _send(self, sender: SimNode, m: Message) -> None:
        if self.faults_on and self.rng.random() < self.p.drop:
            self._dropped(sender, m)
            return
        copies = 2 if self.faults_on and self.rng.random() < self.p.duplicate else 1
        for _ in range(copies):
            delay = 1 + self.rng.randrange(self.p.max_delay)
            self._at(self.now + delay, "deliver", (m, sender.incarnation))

    def _dropped(self, sender: SimNode, m: Message) -> None:
        # A real transport notices a failed snapshot stream and says so.
        if m.type is MessageType.SNAP and sender.raw is not None:
            self._at(self.now + 1, "snap_failed", (sender, sender.incarnation, m.to))

    def _deliver(self, m: Message, sender_incarnation: int) -> None:
        target = self.nodes.get(m.to)
        sender = self.nodes[m.frm]
        if target is None or target.raw is None or (m.frm, m.to) in self.blocked:
            if sender.incarnation == sender_incarnation:
                self._dropped(sender, m)
            return
        target.raw.step(m)
        if m.type is MessageType.APP_RESP and not m.reject:
            self._nemesis_leader_startup(target)
        if m.type is MessageType.SNAP and sender.raw is not None:
            # The snapshot stream completed: the transport reports success.
            self._at(self.now + 1, "snap_done", (sender, sender_incarnation, m.to))
        self._process(target)

    # -- client and operator actions ------------------------------------------------------------

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.raw is not None]

    def leader(self) -> SimNode | None:
        leaders = [
            n for n in self.live() if n.raw is not None and n.raw.raft.role is Role.LEADER
        ]
        return max(leaders, key=lambda n: n.raw.raft.term if n.raw else 0, default=None)

    def propose(self, node: SimNode, data: bytes) -> bool:
        assert node.raw is not None
        try:
            node.raw.propose(data)
        except ProposalDropped:
            return False
        self._process(node)
        return True

    def _client_action(self) -> None:
        live = self.live()
        if not live:
            return
        node = self.rng.choice(live)
        assert node.raw is not None
        roll = self.rng.random()
        if roll < 0.6:
            self.proposed += 1
            self.propose(node, f"v{self.proposed}".encode())
        else:
            self.read_counter += 1
            ctx = f"r{self.read_counter}".encode()
            self.check.on_read_start(ctx)
            try:
                node.raw.read_index(ctx)
            except ReadIndexDropped:
                return
            self._process(node)

    def _fault_action(self) -> None:
        p, rng = self.p, self.rng
        ids = list(self.nodes)
        if rng.random() < p.crash_rate:
            node = self.nodes[rng.choice(ids)]
            if node.raw is not None:
                self.crash(node)
            else:
                self._start(node)
        if rng.random() < p.partition_rate:
            self._partition(ids)
        if rng.random() < p.conf_change_rate:
            self._conf_change(ids)
        if rng.random() < p.transfer_rate:
            lead = self.leader()
            if lead is not None and lead.raw is not None:
                target = rng.choice(sorted(lead.raw.raft.conf.voters))
                self.trace.append(f"t={self.now} transfer {lead.id} -> {target}")
                lead.raw.transfer_leader(target)
                self._process(lead)

    def _partition(self, ids: list[int]) -> None:
        rng = self.rng
        kind = rng.choice(("heal", "heal", "split", "one-way", "isolate-leader", "flap"))
        if kind == "heal":
            self.blocked.clear()
        elif kind == "split":
            rng.shuffle(ids)
            cut = rng.randrange(1, len(ids))
            a, b = ids[:cut], ids[cut:]
            self.blocked = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        elif kind == "one-way":
            x, y = rng.sample(ids, 2)
            self.blocked.add((x, y))
        elif kind == "isolate-leader":
            lead = self.leader()
            if lead is not None:
                self.blocked |= {(lead.id, o) for o in ids} | {(o, lead.id) for o in ids}
        else:
            x, y = rng.sample(ids, 2)
            link = {(x, y), (y, x)}
            if link <= self.blocked:
                self.blocked -= link
            else:
                self.blocked |= link
        self.trace.append(f"t={self.now} partition {kind}: {sorted(self.blocked)}")

    def _conf_change(self, ids: list[int]) -> None:
        lead = self.leader()
        if lead is None or lead.raw is None:
            return
        conf = lead.raw.raft.conf
        rng = self.rng
        outsiders = [i for i in ids if i not in conf.members()]
        choices: list[ConfChange] = []
        if outsiders:
            o = rng.choice(outsiders)
            choices += [
                ConfChange(ConfChangeType.ADD_LEARNER, o),
                ConfChange(ConfChangeType.ADD_VOTER, o),
            ]
        if conf.learners:
            choices.append(ConfChange(ConfChangeType.ADD_VOTER, rng.choice(sorted(conf.learners))))
        if len(conf.voters) > 1:
            # Any member, the leader included.
            victim = rng.choice(sorted(conf.members()))
            choices.append(ConfChange(ConfChangeType.REMOVE_NODE, victim))
        if not choices:
            return
        cc = rng.choice(choices)
        try:
            lead.raw.propose_conf_change(cc)
        except (ConfChangeRejected, ProposalDropped):
            return
        self.trace.append(f"t={self.now} conf change {cc.type.name} {cc.node_id} via {lead.id}")
        self._process(lead)

    # -- running ----------------------------------------------------------------------------------

    def run_until(self, end: int) -> None:
        events = self._events
        while events and events[0][0] <= end:
            time, _, kind, payload = heapq.heappop(events)
            self.now = time
            if kind == "tick":
                node = payload
                assert isinstance(node, SimNode)
                if node.raw is None:
                    continue  # the node crashed; restart schedules new ticks
                node.raw.tick()
                self._process(node)
                self._at(time + node.tick_period, "tick", node)
            elif kind == "deliver":
                m, inc = payload  # type: ignore[misc]
                self._deliver(m, inc)
            elif kind in ("snap_failed", "snap_done"):
                sender, inc, to = payload  # type: ignore[misc]
                if sender.raw is not None and sender.incarnation == inc:
                    sender.raw.report_snapshot(to, ok=kind == "snap_done")
                    self._process(sender)
            elif kind == "isolate":
                if self.faults_on:
                    assert isinstance(payload, int)
                    self._isolate(payload, "new leader")
            elif kind == "restart":
                node = payload
                assert isinstance(node, SimNode)
                if node.raw is None:
                    self._start(node)
            elif kind == "chaos" and self.faults_on:
                self._client_action()
                self._fault_action()
                self._at(time + self.p.event_period, "chaos", None)
        self.now = end

    def run(self) -> None:
        """The fault phase, then healing and the liveness check."""
        self._at(self.p.event_period, "chaos", None)
        self.run_until(self.p.fault_time)
        self.heal_and_check_liveness()

    def liveness_bound(self) -> int:
        """Time within which a healed cluster must commit a new proposal:
        a few election rounds at the slowest node's tick rate."""
        slowest = max(self.p.tick_periods.values())
        return 8 * 2 * ELECTION_TICK * slowest

    def heal_and_check_liveness(self) -> None:
        self.faults_on = False
        self.blocked.clear()
        for node in self.nodes.values():
            if node.raw is None:
                self._start(node)
        self.trace.append(f"t={self.now} healed")
        start = self.now
        deadline = start + self.liveness_bound()
        marker = b"liveness-marker"
        proposed_to: tuple[int, int] | None = None
        while self.now < deadline:
            lead = self.leader()
            if (
                lead is not None
                and lead.raw is not None
                and lead.raw.raft.committed_in_term()
                and proposed_to != (lead.id, lead.raw.raft.term)
                and self.propose(lead, marker)
            ):
                proposed_to = (lead.id, lead.raw.raft.term)
            if any(v == (EntryType.NORMAL, marker) for v in self._recent_applied()):
                return
            self.run_until(self.now + 10)
        raise InvariantViolation(
            "liveness",
            f"no proposal committed within {self.liveness_bound()} time units after healing",
        )

    def _recent_applied(self) -> list[tuple[EntryType, bytes]]:
        applied = self.check.applied
        top = max(applied, default=0)
        return [applied[i] for i in range(max(1, top - 20), top + 1) if i in applied]

    def describe(self) -> str:
        return "\n".join(self.trace)
