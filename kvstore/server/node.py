"""The asyncio node: one task drives the Raft core, everything else queues.

Client coroutines never touch the Raft core. They put work in queues
(proposals, read barriers) and await a future; peer messages arrive the same
way from the transport. The driver task wakes on any of these or a tick,
feeds everything queued into the core at once, and then carries out each
Ready in the contract's order:

1. persist: the Ready's hard state, entries and snapshot AND the MVCC effects
   of its committed entries go into ONE LevelDB batch (fsync'd when the Ready
   requires it), together with the applied index, so re-applying after a
   crash is a no-op;
2. send the Ready's messages;
3. answer the clients whose entries were applied, and serve reads whose
   ReadIndex the applied index has reached;
4. advance.

Because everything queued since the last Ready goes into the next one, many
client requests share one append, one fsync and one round of replication.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from kvstore import __version__
from kvstore.lease.attachments import leased_keys
from kvstore.lease.errors import LeaseError, NotPrimary
from kvstore.lease.lessor import Lessor, LessorConfig, check_grant, min_lease_ttl
from kvstore.mvcc.errors import LeaseNotFound, MVCCError
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    CompactResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Event,
    HashKVResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)
from kvstore.mvcc.validate import check_op, check_txn
from kvstore.mvcc.watch import WatchHub
from kvstore.raft.config import Config
from kvstore.raft.errors import ProposalDropped
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.types import (
    NONE,
    ConfChange,
    Entry,
    EntryType,
    Message,
    MessageType,
    Role,
    Snapshot,
    SnapshotMeta,
)
from kvstore.server import entries, snapshot
from kvstore.server.bootstrap import check_or_bootstrap
from kvstore.server.config import ServerConfig
from kvstore.server.errors import (
    LeaderChanged,
    NoLeader,
    RequestTimeout,
    Stopped,
    TooManyRequests,
)
from kvstore.server.forward import LeaderForwarder
from kvstore.server.identity import cluster_id as derive_cluster_id
from kvstore.server.identity import member_id as derive_member_id
from kvstore.server.members import MemberTable
from kvstore.server.reads import ReadBatcher
from kvstore.server.views import Header, Member, NodeStatus
from kvstore.storage.db import Database
from kvstore.storage.log_store import LogStore
from kvstore.transport.peer import PeerTransport

log = logging.getLogger(__name__)

T = TypeVar("T")

SLOW_WRITE_S = 0.1
MAX_PENDING_PROPOSALS = 10_000
SNAPSHOT_CATCHUP_ENTRIES = 5_000
LEASE_REVOKES_PER_TICK = 500
_LEADER_EARLY = frozenset({MessageType.APP, MessageType.HEARTBEAT})
VERSION = f"3.4.0+kvstore.{__version__}"
"""What Status reports: the etcd API level we speak, then our own version
as semver build metadata, so version-checking clients accept it."""


@dataclass(slots=True)
class _Proposal:
    data: bytes
    future: asyncio.Future[Any]
    deadline: float


class Node:
    """One kvstore member. Implements kvstore.api.backend.KVBackend and the
    transport's RaftHandler."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        cluster = cfg.cluster_map()
        token = cfg.initial_cluster_token
        self._founders = {
            derive_member_id(urls, token): (name, urls) for name, urls in cluster.items()
        }
        self.member_id = derive_member_id(cfg.initial_advertise_peer_urls, token)
        self.cluster_id = derive_cluster_id(self._founders, token)

        os.makedirs(cfg.resolved_data_dir, exist_ok=True)
        self.db = Database(os.path.join(cfg.resolved_data_dir, "db"))
        try:
            check_or_bootstrap(self.db, cfg, self._founders, self.cluster_id, self.member_id)
        except BaseException:
            self.db.close()
            raise
        self.log_store = LogStore(self.db)
        ticks = max(2, cfg.election_timeout_ms // cfg.heartbeat_interval_ms)
        self.lessor = Lessor(
            self.db, LessorConfig(min_ttl=min_lease_ttl(ticks, cfg.heartbeat_interval_ms))
        )
        self.mvcc = self._open_mvcc()
        self.watch_hub = WatchHub(
            self.mvcc, progress_interval=cfg.watch_progress_notify_interval_ms / 1000
        )
        self.member_table = MemberTable(self.db)
        self._rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        self._forwarder = LeaderForwarder(cfg.request_timeout_ms / 1000)
        self._ready_events: list[Event] = []
        """MVCC events of the Ready being applied; published once durable."""
        self.raw = RawNode(
            Config(
                id=self.member_id,
                election_tick=ticks,
                heartbeat_tick=1,
                applied=self.mvcc.applied_index,
            ),
            self.log_store,
            self._rng,
        )
        self.leader = NONE
        self.transport = PeerTransport(
            self.member_id,
            self.cluster_id,
            self,
            {m.id: m.peer_urls[0] for m in self.member_table.list() if m.id != self.member_id},
            cfg.listen_peer_urls[0],
        )

        self._inbox: list[Message] = []
        self._reports: list[Callable[[], None]] = []
        self._proposals: list[_Proposal] = []
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._seq = itertools.count(1)
        self._reads = ReadBatcher(retry_after=cfg.election_timeout_ms / 1000)
        self._wake = asyncio.Event()
        self._durable = asyncio.Event()
        self._durable.set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvstore-write")
        self._ticks_due = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._last_publish = -float("inf")
        """Loop time of our last attempt to publish our attributes."""
        self.leader_changes = 0
        self.readies = 0
        """Readies carried out; each is one LevelDB batch."""
        self.fsyncs = 0
        """Batches written with sync=True."""

    # -- identity and bootstrap ------------------------------------------------

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self.transport.start()
        if self.raw.raft.conf.voters == {self.member_id}:
            # A lone voter has no one to wait for: elect itself at once.
            self.raw.campaign()
            self._wake.set()
        self._tasks = [
            asyncio.create_task(self._drive(), name="raft-driver"),
            asyncio.create_task(self._ticker(), name="raft-ticker"),
        ]
        log.info(
            "member started",
            extra={"member": f"{self.member_id:x}", "cluster": f"{self.cluster_id:x}"},
        )

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        driver, ticker = self._tasks or (None, None)
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if driver is not None:
            # The driver exits at its next check; it is never cancelled in the
            # middle of a write, so the database is not closed under it.
            with contextlib.suppress(Exception):
                await driver
        self._fail_all(Stopped())
        await self.transport.stop()
        await self._forwarder.close()
        self._writer.shutdown(wait=True)
        self.db.close()
        log.info("member stopped", extra={"member": f"{self.member_id:x}"})

    def _fail_all(self, exc: Exception) -> None:
        futures: list[asyncio.Future[Any]] = [p.future for p in self._proposals]
        futures += self._waiting.values()
        futures += self._reads.drain()
        for f in futures:
            if not f.done():
                f.set_exception(exc)
        self._proposals.clear()
        self._waiting.clear()

    # -- the transport's RaftHandler ------------------------------------------------------

    def receive(self, messages: list[Message]) -> None:
        self._inbox.extend(messages)
        self._wake.set()

    def report_unreachable(self, node_id: int) -> None:
        self._reports.append(lambda: self.raw.report_unreachable(node_id))
        self._wake.set()

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self._reports.append(lambda: self.raw.report_snapshot(node_id, ok))
        self._wake.set()

    # -- the driver ---------------------------------------------------------------------

    async def _ticker(self) -> None:
        interval = self.cfg.heartbeat_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self._ticks_due += 1
            self._wake.set()

    async def _drive(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._feed()
                while self.raw.has_ready() and not self._stopping:
                    await self._handle_ready(self.raw.ready())
                    # Let woken readers run while the state is durable, and
                    # let new requests join the next Ready.
                    await asyncio.sleep(0)
                    self._feed()
            except Exception:
                log.exception("raft driver failed; stopping the member")
                self._fail_all(Stopped())
                raise

    def _feed(self) -> None:
        """Hand everything queued since the last round to the core."""
        raw = self.raw
        for _ in range(self._ticks_due):
            raw.tick()
        ticked = self._ticks_due > 0
        self._ticks_due = 0
        inbox, self._inbox = self._inbox, []
        for m in inbox:
            raw.step(m)
        reports, self._reports = self._reports, []
        for report in reports:
            report()
        if ticked:
            # Slow watchers catch up in bounded batches between Readies.
            self.watch_hub.sync_pending()
            self.watch_hub.progress_all(asyncio.get_running_loop().time())
        if ticked and self.raw.raft.role is Role.LEADER:
            self._lease_duties()
        self._propose_queued()
        self._reads.issue(self.raw, asyncio.get_running_loop().time(), retry=ticked)
        if self.leader != NONE:
            self._publish_attributes()

    def _lease_duties(self) -> None:
        """The leader revokes expired leases and checkpoints remaining TTLs,
        both through Raft so every member makes the same change."""
        now = asyncio.get_running_loop().time()
        for lease_id in self.lessor.expired(now, limit=LEASE_REVOKES_PER_TICK):
            self._propose_internal(entries.LeaseRevoke(lease_id))
        checkpoints = self.lessor.checkpoints(now)
        if checkpoints:
            self._propose_internal(entries.LeaseCheckpoint(tuple(checkpoints)))

    def _propose_internal(self, request: entries.Request) -> None:
        """A proposal no client waits for (sequence 0); lost if no leader."""
        data = entries.encode(entries.Envelope(self.member_id, 0, request))
        with contextlib.suppress(ProposalDropped):
            self.raw.propose(data)

    def _propose_queued(self) -> None:
        if not self._proposals:
            return
        now = asyncio.get_running_loop().time()
        keep: list[_Proposal] = []
        for p in self._proposals:
            if p.future.done():
                continue
            try:
                self.raw.propose(p.data)
            except ProposalDropped:
                if now < p.deadline:
                    keep.append(p)  # no leader yet: retry on the next round
                else:
                    p.future.set_exception(NoLeader())
        self._proposals = keep

    def _publish_attributes(self) -> None:
        """Propose our name and client URLs until the member table (the
        applied log) holds them. A proposal can be lost (forwarded to a
        leader that just stepped down), so this retries once per election
        timeout rather than trusting a single attempt."""
        attrs = entries.MemberAttributes(
            self.member_id, self.cfg.name, tuple(self.cfg.advertise_client_urls)
        )
        me = self.member_table.get(self.member_id)
        if me is not None and me.client_urls == attrs.client_urls and me.name == attrs.name:
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_publish < self.cfg.election_timeout_ms / 1000:
            return
        self._last_publish = now
        self._propose_internal(attrs)

    async def _handle_ready(self, rd: Ready) -> None:
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.leader, rd.soft_state.role)
        messages = rd.messages
        if messages and self.raw.raft.role is Role.LEADER:
            # A leader may replicate before its own write is durable (Raft
            # thesis §10.2.1): the core counts its own replica only after
            # advance(). Everything else waits for the write.
            early = [m for m in messages if m.type in _LEADER_EARLY]
            if early:
                self.transport.send(early)
                messages = tuple(m for m in messages if m.type not in _LEADER_EARLY)
        results: list[tuple[int, object]] = []
        started = time.monotonic()
        incoming = rd.snapshot
        batch = self.db.batch(sync=rd.must_sync)
        # The snapshot's data is the applied state itself: it replaces ours,
        # and only its metadata is kept with the log.
        meta_only = replace(incoming, data=b"") if incoming is not None else None
        self.log_store.save_ready(batch, rd.hard_state, rd.entries, meta_only)
        if incoming is not None:
            snapshot.restore(self.db, batch, incoming.data, incoming.meta.index)
        if rd.committed_entries:
            with self.mvcc.writing(batch):
                for e in rd.committed_entries:
                    self._apply(e, results, batch)
        # The in-memory state is now ahead of the disk: local reads wait
        # until the write is done. The write itself runs off the event loop
        # (LevelDB releases the GIL), so requests arriving meanwhile queue
        # up for the next Ready: that is what makes group commit happen.
        write = batch.seal()
        self._durable.clear()
        try:
            await asyncio.get_running_loop().run_in_executor(self._writer, write)
        finally:
            batch.finish()
            self._durable.set()
        self.readies += 1
        self.fsyncs += rd.must_sync
        elapsed = time.monotonic() - started
        if elapsed > SLOW_WRITE_S:
            log.warning(
                "slow persist and apply",
                extra={
                    "seconds": round(elapsed, 3),
                    "entries": len(rd.entries),
                    "applied": len(rd.committed_entries),
                    "sync": rd.must_sync,
                },
            )
        events, self._ready_events = self._ready_events, []
        if incoming is not None:
            # The applied state jumped: watchers catch up from the new
            # store's history (or learn that it was compacted).
            self._reload_state()
            self.watch_hub.restore(self.mvcc)
            log.info(
                "installed snapshot",
                extra={"index": incoming.meta.index, "bytes": len(incoming.data)},
            )
        if messages:
            self.transport.send([self._with_state(m) for m in messages])
        for seq, result in results:
            fut = self._waiting.pop(seq, None)
            if fut is not None and not fut.done():
                if isinstance(result, Exception):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
        if incoming is None:
            self.watch_hub.notify(events, self.mvcc.current_revision)
            self.watch_hub.sync_pending()
        for rs in rd.read_states:
            self._reads.confirmed(rs)
        self._reads.release(self.mvcc.applied_index)
        self.raw.advance(rd)
        self._maybe_compact_log()

    def _reload_state(self) -> None:
        """Reopen the in-memory views of the applied state after a snapshot."""
        self.lessor.reload()
        self.mvcc = self._open_mvcc()
        self.member_table = MemberTable(self.db)
        for m in self.member_table.list():
            if m.id != self.member_id and m.peer_urls:
                self.transport.add_peer(m.id, m.peer_urls[0])

    def _open_mvcc(self) -> MVCCStore:
        store = MVCCStore(
            self.db,
            StoreOptions(
                max_txn_ops=self.cfg.max_txn_ops, sync=False, lease_exists=self.lessor.exists
            ),
        )
        store.capture_events()
        self.lessor.rebuild_attachments(leased_keys(store))
        return store

    def _with_state(self, m: Message) -> Message:
        """A snapshot message carries the whole applied state as of now."""
        if m.type is not MessageType.SNAP:
            return m
        applied = self.mvcc.applied_index
        term = self.raw.raft.log.term(applied)
        if term is None:
            raise AssertionError(f"no term for applied index {applied}")
        meta = SnapshotMeta(applied, term, self.raw.raft.conf_state_at(applied))
        data = snapshot.dump(self.db)
        log.info(
            "sending snapshot", extra={"to": f"{m.to:x}", "index": applied, "bytes": len(data)}
        )
        return replace(m, snapshot=Snapshot(meta, data))

    def _maybe_compact_log(self) -> None:
        """Every --snapshot-count applied entries, compact the Raft log,
        keeping some entries so slightly slow followers need no snapshot."""
        applied = self.mvcc.applied_index
        snap_index = self.log_store.snapshot().meta.index
        if applied - snap_index < self.cfg.snapshot_count:
            return
        self.log_store.create_snapshot(applied, self.raw.raft.conf_state_at(applied), b"")
        keep = min(SNAPSHOT_CATCHUP_ENTRIES, self.cfg.snapshot_count)
        if applied - keep >= self.log_store.first_index():
            self.log_store.compact(applied - keep)
        log.info("compacted raft log", extra={"snapshot_index": applied})

    def _on_soft_state(self, leader: int, role: Role) -> None:
        if role is Role.LEADER and not self.lessor.is_primary:
            # Expiry is decided by the leader alone; give clients one
            # election timeout to find the new leader and keep alive.
            now = asyncio.get_running_loop().time()
            self.lessor.promote(now, extend=self.cfg.election_timeout_ms / 1000)
        elif role is not Role.LEADER and self.lessor.is_primary:
            self.lessor.demote()
        if leader != self.leader:
            self.leader_changes += 1
            log.info(
                "leader changed",
                extra={
                    "member": f"{self.member_id:x}",
                    "leader": f"{leader:x}" if leader else "none",
                    "term": self.raw.raft.term,
                    "role": role.value,
                },
            )
            self.leader = leader

    def _apply(self, e: Entry, results: list[tuple[int, object]], batch: Any) -> None:
        if e.index <= self.mvcc.applied_index:
            return  # applied before a restart: the effects are already on disk
        if e.type is EntryType.CONF_CHANGE:
            self._apply_conf_change(ConfChange.decode(e.data))
        elif e.data:
            env = entries.decode(e.data)
            result = self._execute(env.request, batch)
            events = self.mvcc.take_events()
            if events:
                # Per entry, so that a revoke later in this Ready sees keys
                # attached earlier in it.
                self.lessor.observe(events)
                self._ready_events.extend(events)
            if env.origin == self.member_id and env.seq:
                results.append((env.seq, result))
        self.mvcc.set_applied_index(e.index)

    def _execute(self, req: entries.Request, batch: Any) -> object:
        try:
            if isinstance(req, PutRequest):
                return self.mvcc.put(req)
            if isinstance(req, DeleteRangeRequest):
                return self.mvcc.delete_range(req)
            if isinstance(req, TxnRequest):
                return self.mvcc.txn(req)
            if isinstance(req, entries.CompactRequest):
                return self.mvcc.compact(req.revision)
            if isinstance(req, entries.LeaseGrant):
                now = asyncio.get_running_loop().time()
                return req.lease_id, self.lessor.apply_grant(req.lease_id, req.ttl, batch, now)
            if isinstance(req, entries.LeaseRevoke):
                # The lease and all its keys go in one revision.
                return self.mvcc.delete_keys(self.lessor.apply_revoke(req.lease_id, batch))
            if isinstance(req, entries.LeaseCheckpoint):
                for lease_id, remaining in req.remaining:
                    self.lessor.apply_checkpoint(lease_id, remaining, batch)
                return None
            member = self.member_table.get(req.member_id)
            if member is not None:
                self.member_table.put(
                    Member(
                        member.id, req.name, member.peer_urls, req.client_urls, member.is_learner
                    ),
                    batch,
                )
            return None
        except (MVCCError, LeaseError) as exc:
            return exc

    def _apply_conf_change(self, cc: ConfChange) -> None:
        # Founders are in the member table from bootstrap; membership changes
        # through the API arrive in a later version.
        log.info(
            "membership entry applied",
            extra={"change": cc.type.name, "node": f"{cc.node_id:x}"},
        )

    # -- waiting for the log ---------------------------------------------------------------

    def _timeout(self) -> float:
        return self.cfg.request_timeout_ms / 1000

    async def _propose(self, request: entries.Request) -> Any:
        if self._stopping:
            raise Stopped()
        if len(self._waiting) >= MAX_PENDING_PROPOSALS:
            raise TooManyRequests()
        loop = asyncio.get_running_loop()
        seq = next(self._seq)
        data = entries.encode(entries.Envelope(self.member_id, seq, request))
        fut: asyncio.Future[Any] = loop.create_future()
        self._waiting[seq] = fut
        self._proposals.append(_Proposal(data, fut, loop.time() + self._timeout()))
        self._wake.set()
        leader_changes = self.leader_changes
        try:
            result = await asyncio.wait_for(asyncio.shield(fut), self._timeout())
        except TimeoutError:
            self._waiting.pop(seq, None)
            if self.leader == NONE:
                raise NoLeader() from None
            if self.leader_changes != leader_changes:
                raise LeaderChanged() from None
            raise RequestTimeout() from None
        if isinstance(result, Exception):
            raise result
        return result

    async def _until_durable(self) -> None:
        """Return at a moment when memory and disk agree (no write in flight).
        The caller must read synchronously right after, with no await."""
        while not self._durable.is_set():
            await self._durable.wait()

    async def _read_barrier(self) -> None:
        """Wait until this member has applied everything committed before now
        (ReadIndex, batched with every other read waiting at the same time)."""
        if self._stopping:
            raise Stopped()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reads.add(fut)
        self._wake.set()
        leader_changes = self.leader_changes
        try:
            await asyncio.wait_for(asyncio.shield(fut), self._timeout())
        except TimeoutError:
            fut.cancel()
            if self.leader == NONE:
                raise NoLeader() from None
            if self.leader_changes != leader_changes:
                raise LeaderChanged() from None
            raise RequestTimeout() from None

    # -- KVBackend ------------------------------------------------------------------------

    def header(self, revision: int | None = None) -> Header:
        rev = self.mvcc.current_revision if revision is None else revision
        return Header(self.cluster_id, self.member_id, rev, self.raw.raft.term)

    @property
    def max_request_bytes(self) -> int:
        return self.cfg.max_request_bytes

    async def range(self, req: RangeRequest, serializable: bool) -> RangeResponse:
        check_op(req, self.cfg.max_txn_ops)
        if not serializable:
            await self._read_barrier()
        await self._until_durable()
        return self.mvcc.range(req)

    async def put(self, req: PutRequest) -> PutResponse:
        check_op(req, self.cfg.max_txn_ops)
        if req.lease and not self.lessor.exists(req.lease):
            raise LeaseNotFound(req.lease)
        result: PutResponse = await self._propose(req)
        return result

    async def delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        check_op(req, self.cfg.max_txn_ops)
        result: DeleteRangeResponse = await self._propose(req)
        return result

    async def txn(self, req: TxnRequest) -> TxnResponse:
        check_txn(req, self.cfg.max_txn_ops)
        if _read_only(req):
            await self._read_barrier()
            await self._until_durable()
            return self.mvcc.txn(req)
        result: TxnResponse = await self._propose(req)
        return result

    async def compact(self, revision: int, physical: bool) -> CompactResponse:
        result: CompactResponse = await self._propose(entries.CompactRequest(revision, physical))
        return result

    async def hash_kv(self, revision: int) -> HashKVResponse:
        await self._until_durable()
        return self.mvcc.hash_kv(revision)

    async def hash(self) -> int:
        await self._until_durable()
        return self.mvcc.hash_kv(0).hash

    def status(self) -> NodeStatus:
        size = _dir_size(self.db.path)
        raft = self.raw.raft
        return NodeStatus(
            version=VERSION,
            db_size=size,
            db_size_in_use=size,
            leader=self.leader,
            raft_index=raft.log.committed,
            raft_term=raft.term,
            raft_applied_index=self.mvcc.applied_index,
            is_learner=self.member_id in raft.conf.learners,
        )

    # -- LeaseBackend ------------------------------------------------------------------

    async def lease_grant(self, ttl: int, lease_id: int) -> tuple[int, int]:
        if lease_id == 0:
            lease_id = self.lessor.next_id(self._rng)
        check_grant(lease_id, ttl)
        result: tuple[int, int] = await self._propose(entries.LeaseGrant(lease_id, ttl))
        return result

    async def lease_revoke(self, lease_id: int) -> None:
        if not self.lessor.exists(lease_id):
            raise LeaseNotFound(lease_id)
        await self._propose(entries.LeaseRevoke(lease_id))

    async def lease_keepalive(self, lease_id: int) -> int:
        """The TTL after renewal, or 0 for an unknown lease (etcd's answer)."""
        if self.raw.raft.role is Role.LEADER:
            try:
                return self.lessor.renew(lease_id, asyncio.get_running_loop().time())
            except NotPrimary:
                raise LeaderChanged() from None
            except LeaseNotFound:
                return 0
        return await self._forwarder.keepalive(await self._leader_client_url(), lease_id)

    async def lease_time_to_live(self, lease_id: int, keys: bool) -> tuple[int, int, list[bytes]]:
        """(granted, remaining, keys); remaining -1 for an unknown lease."""
        if self.raw.raft.role is Role.LEADER:
            try:
                now = asyncio.get_running_loop().time()
                return self.lessor.time_to_live(lease_id, now, keys)
            except NotPrimary:
                raise LeaderChanged() from None
            except LeaseNotFound:
                return 0, -1, []
        return await self._forwarder.time_to_live(await self._leader_client_url(), lease_id, keys)

    async def lease_leases(self) -> list[int]:
        return self.lessor.leases()

    async def _leader_client_url(self) -> str:
        """The leader's client URL. Right after an election the leader may
        not yet have published it through the log: wait for it, within the
        request timeout, as other requests wait for a leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout()
        while True:
            leader = self.member_table.get(self.leader) if self.leader != NONE else None
            if leader is not None and leader.client_urls:
                return leader.client_urls[0]
            if loop.time() > deadline or self._stopping:
                raise NoLeader()
            await asyncio.sleep(self.cfg.heartbeat_interval_ms / 1000)

    def members(self) -> list[Member]:
        return self.member_table.list()


def _read_only(req: TxnRequest) -> bool:
    ops = list(req.success) + list(req.failure)
    return all(
        isinstance(op, RangeRequest) or (isinstance(op, TxnRequest) and _read_only(op))
        for op in ops
    )


def _dir_size(path: str) -> int:
    total = 0
    for entry in os.scandir(path):
        if entry.is_file():
            total += entry.stat().st_size
    return total
