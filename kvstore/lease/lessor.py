"""The lessor: which leases exist, which keys they hold, and (on the leader
only) when each one expires.

Two kinds of state, kept strictly apart:

* **Replicated** - the leases (ID, granted TTL, remaining TTL at the last
  checkpoint) and the keys attached to them. It changes only when the node
  applies a committed Raft entry (`apply_grant`, `apply_revoke`,
  `apply_checkpoint`) or an MVCC write (`attach`, `detach`), so every member
  holds the same. Leases are persisted under the `e` prefix in the caller's
  batch (the same batch as the entry's other effects and the applied index);
  attachments are not persisted: they are a function of the live MVCC keys
  and are rebuilt from them at open (`rebuild_attachments`).

* **Leader-only, in memory** - each lease's expiry time. Only a promoted
  lessor (`promote`) has expiries; it decides which leases expired
  (`expired`) and which remaining TTLs to checkpoint (`checkpoints`), and the
  node turns both into Raft proposals. A follower never expires anything by
  itself; it deletes a lease's keys when the leader's revoke entry applies,
  so every member deletes the same keys at the same revision.

Nothing here reads a clock: every time-dependent method takes `now`
(monotonic seconds, the node's clock). No asyncio, no gRPC.

What a failover does to TTLs (etcd's semantics, with checkpoints on):

* The new leader's lessor is promoted at time `now`; each lease then expires
  at `now + extend + R`, where R is the remaining TTL of the last checkpoint
  that lease had replicated, or its full TTL if none since its grant or its
  last keepalive. A lease is never expired EARLY by a failover: R is at most
  what was left when the checkpoint was taken, measured by the old leader.
  It may live LONGER: by the time since its last checkpoint (at most
  `checkpoint_interval`, or up to its full TTL if it had none), plus
  `extend`, plus the time the election took.
* Leases whose remaining TTL is not above `checkpoint_interval` are never
  checkpointed (as in etcd); a failover restarts them at their full TTL.
* A keepalive after a checkpoint resets the replicated remaining TTL to
  "none" (a checkpoint with remaining 0), so a failover after a keepalive
  does not use the older, smaller checkpoint: at most two checkpoint entries
  per lease per interval.
* A whole-cluster restart behaves like a failover: remaining TTLs are
  persisted, so leases resume from their last checkpoint, not their full TTL.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from kvstore.lease import record
from kvstore.lease.errors import LeaseExists, LeaseNotFound, LeaseTTLTooLarge, NotPrimary
from kvstore.lease.queue import DeadlineQueue
from kvstore.mvcc.types import Event, EventType
from kvstore.storage import keys
from kvstore.storage.db import Batch, Database

MAX_LEASE_TTL = 9_000_000_000
"""etcd's MaxLeaseTTL (seconds): a longer grant fails with LeaseTTLTooLarge."""

NO_LEASE = 0

FOREVER = math.inf


def min_lease_ttl(election_ticks: int, heartbeat_ms: int) -> int:
    """etcd's minimum lease TTL in seconds: 1.5 election timeouts, rounded up
    (ceil(((3 * election_ticks) // 2) * heartbeat)). A grant below it is
    raised to it, not refused. Integer maths: no float rounding surprises."""
    ms = ((3 * election_ticks) // 2) * heartbeat_ms
    return max(1, -(-ms // 1000))


@dataclass(frozen=True, slots=True)
class LessorConfig:
    min_ttl: int = 2
    """Grants below this many seconds get this TTL (see min_lease_ttl)."""
    checkpoint_interval: float = 300.0
    """Seconds between checkpoints of a lease's remaining TTL (etcd: 5 min)."""
    revoke_retry_interval: float = 3.0
    """An expired lease whose revoke has not applied after this many seconds
    is offered by `expired` again (etcd: expiredLeaseRetryInterval, 3 s)."""


@dataclass(slots=True)
class Lease:
    """One lease. `ttl` and `remaining` are replicated; `expiry` is the
    leader's alone (FOREVER on a lessor that is not promoted)."""

    id: int
    ttl: int
    remaining: int = 0
    keys: set[bytes] = field(default_factory=set)
    expiry: float = FOREVER


def check_grant(lease_id: int, ttl: int) -> None:
    """The checks a grant can fail before it is proposed (apply repeats them):
    ID 0 is not a lease (the server must have picked one), and the TTL has a
    maximum. Any other ID, negative ones too, is accepted, as etcd does."""
    if lease_id == NO_LEASE:
        raise LeaseNotFound(lease_id)
    if ttl > MAX_LEASE_TTL:
        raise LeaseTTLTooLarge(ttl)


class Lessor:
    def __init__(self, db: Database, config: LessorConfig | None = None) -> None:
        self._db = db
        self.config = config or LessorConfig()
        self._leases: dict[int, Lease] = {}
        self._key_lease: dict[bytes, int] = {}
        self._primary = False
        self._expiries = DeadlineQueue()
        """Leader: when each lease expires, or (after `expired` offered it)
        when to offer it again if its revoke has not applied."""
        self._due_checkpoints = DeadlineQueue()
        self._cp_in_flight: set[int] = set()
        """Leader: leases with a nonzero checkpoint proposed but not applied."""
        self._cp_resets: dict[int, None] = {}
        """Leader: leases kept alive since their last nonzero checkpoint,
        awaiting a reset checkpoint (remaining 0). A dict keeps the order."""
        self.reload()

    # -- loading ---------------------------------------------------------------------

    def reload(self) -> None:
        """Read every lease from the database, as at open (also after a
        snapshot replaced the applied state). Attachments are dropped: call
        `rebuild_attachments` next. A promoted lessor is demoted."""
        self.demote()
        self._leases.clear()
        self._key_lease.clear()
        for k, v in self._db.iterate(record.START, record.END):
            lease_id = record.lease_id_of(k)
            ttl, remaining = record.decode(v)
            self._leases[lease_id] = Lease(lease_id, ttl, remaining)

    def rebuild_attachments(self, live: Iterable[tuple[bytes, int]]) -> None:
        """Attach every (key, lease) pair of the live MVCC keys (those with a
        lease). Replaces all current attachments."""
        for lease in self._leases.values():
            lease.keys.clear()
        self._key_lease.clear()
        for key, lease_id in live:
            if lease_id != NO_LEASE:
                self.attach(lease_id, key)

    # -- replicated state: called when committed entries apply ------------------------

    def apply_grant(self, lease_id: int, ttl: int, batch: Batch, now: float) -> int:
        """Create the lease; return its TTL (raised to min_ttl if below).
        `now` only starts the lease's clock on the leader; followers ignore it."""
        check_grant(lease_id, ttl)
        if lease_id in self._leases:
            raise LeaseExists(lease_id)
        ttl = max(ttl, self.config.min_ttl)
        lease = Lease(lease_id, ttl)
        self._leases[lease_id] = lease
        batch.put(keys.lease_key(lease_id), record.encode(ttl, 0))
        if self._primary:
            self._start_clock(lease, now, ttl)
        return ttl

    def apply_revoke(self, lease_id: int, batch: Batch) -> list[bytes]:
        """Delete the lease; return its keys, sorted (so every member deletes
        them in the same order). The node must delete them through MVCC in
        the same apply, as one revision."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise LeaseNotFound(lease_id)
        batch.delete(keys.lease_key(lease_id))
        for key in lease.keys:
            if self._key_lease.get(key) == lease_id:
                del self._key_lease[key]
        self._forget_clock(lease_id)
        return sorted(lease.keys)

    def apply_checkpoint(self, lease_id: int, remaining: int, batch: Batch) -> None:
        """Record the leader's measure of the lease's remaining TTL (0: reset,
        use the full TTL). A lease revoked meanwhile is ignored, as in etcd.
        The leader's own expiry is not changed: its clock is the truth."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return
        lease.remaining = max(0, remaining)
        batch.put(keys.lease_key(lease_id), record.encode(lease.ttl, lease.remaining))
        self._cp_in_flight.discard(lease_id)

    def attach(self, lease_id: int, key: bytes) -> None:
        """`key` was written with lease `lease_id` (0: no lease): it leaves
        any lease it had. Call for every put MVCC applies, with the lease the
        stored key-value ended up with (ignore_lease keeps the previous one).
        A lease that does not exist is ignored (MVCC refuses such puts)."""
        old = self._key_lease.pop(key, NO_LEASE)
        if old != NO_LEASE and old != lease_id:
            prev = self._leases.get(old)
            if prev is not None:
                prev.keys.discard(key)
        if lease_id == NO_LEASE:
            return
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.add(key)
            self._key_lease[key] = lease_id

    def detach(self, key: bytes) -> int:
        """`key` was deleted: it leaves its lease. Returns that lease (0: none)."""
        old = self._key_lease.pop(key, NO_LEASE)
        if old != NO_LEASE:
            lease = self._leases.get(old)
            if lease is not None:
                lease.keys.discard(key)
        return old

    def observe(self, events: Iterable[Event]) -> None:
        """`attach` / `detach` for each change of an MVCC write (the store's
        events: a put carries the key's new lease, a delete just the key).
        Call it after EACH applied entry, before the next one applies, so a
        revoke later in the same batch sees the keys put before it."""
        for event in events:
            if event.type is EventType.PUT:
                self.attach(event.kv.lease, event.kv.key)
            else:
                self.detach(event.kv.key)

    # -- reads any member may answer --------------------------------------------------

    def exists(self, lease_id: int) -> bool:
        """For StoreOptions.lease_exists: a put naming an unknown lease fails."""
        return lease_id in self._leases

    def get(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def lease_of(self, key: bytes) -> int:
        return self._key_lease.get(key, NO_LEASE)

    def __len__(self) -> int:
        return len(self._leases)

    def leases(self) -> list[int]:
        """Every lease ID: soonest expiry first on the leader (as etcd lists
        them), then by ID; by ID alone elsewhere."""
        return sorted(self._leases, key=lambda i: (self._leases[i].expiry, i))

    def next_id(self, rng: random.Random) -> int:
        """A positive 63-bit ID not in use, for a grant that asked for ID 0.
        Two members may still pick the same ID concurrently: the second grant
        to apply then fails with LeaseExists (vanishingly rare at 63 bits)."""
        while True:
            # Like etcd's, the IDs print as 16 hex digits: the top nibble of
            # the 63 bits is never zero.
            lease_id = (1 << 60) | rng.getrandbits(62)
            if lease_id not in self._leases:
                return lease_id

    # -- leader only ------------------------------------------------------------------

    @property
    def is_primary(self) -> bool:
        return self._primary

    def promote(self, now: float, extend: float = 0.0) -> None:
        """This member became leader: start every lease's clock at `now +
        extend` with its checkpointed remaining TTL, or its full TTL if none.
        `extend` gives clients time to find the new leader (etcd passes about
        one election timeout)."""
        self.demote()
        self._primary = True
        for lease in self._leases.values():
            self._start_clock(lease, now + extend, lease.remaining or lease.ttl)

    def demote(self) -> None:
        """This member is no longer leader: forget every expiry and pending
        proposal; leases never expire on a follower."""
        self._primary = False
        self._expiries.clear()
        self._due_checkpoints.clear()
        self._cp_in_flight.clear()
        self._cp_resets.clear()
        for lease in self._leases.values():
            lease.expiry = FOREVER

    def renew(self, lease_id: int, now: float) -> int:
        """A keepalive: the lease now expires `ttl` seconds from `now`;
        returns the TTL. An unknown lease, or one that expired and awaits its
        revoke, raises LeaseNotFound (etcd's KeepAlive then answers TTL 0)."""
        lease = self._live(lease_id, now)
        self._start_clock(lease, now, lease.ttl)
        if lease.remaining > 0 or lease_id in self._cp_in_flight:
            self._cp_resets[lease_id] = None
        return lease.ttl

    def time_to_live(self, lease_id: int, now: float, keys: bool) -> tuple[int, int, list[bytes]]:
        """(granted TTL, remaining whole seconds, sorted keys if asked)."""
        lease = self._primary_lease(lease_id)
        remaining = max(0, int(lease.expiry - now))
        return lease.ttl, remaining, sorted(lease.keys) if keys else []

    def expired(self, now: float, limit: int) -> list[int]:
        """Up to `limit` leases that expired and need a revoke proposal,
        soonest first. Each is offered once; if its revoke has not applied
        `revoke_retry_interval` seconds later (the proposal was lost), it is
        offered again. Empty unless promoted."""
        if not self._primary:
            return []
        due = self._expiries.pop_due(now, limit)
        retry = now + self.config.revoke_retry_interval
        for lease_id in due:
            self._expiries.set(lease_id, retry)
        return due

    def checkpoints(self, now: float, limit: int = 1000) -> list[tuple[int, int]]:
        """Up to `limit` (lease ID, remaining TTL) checkpoints to propose (one
        entry may carry them all): first resets (remaining 0) of leases kept
        alive since their last checkpoint, then leases whose checkpoint is due
        (every checkpoint_interval seconds while their remaining TTL exceeds
        it). Empty unless promoted."""
        if not self._primary:
            return []
        out: list[tuple[int, int]] = []
        while self._cp_resets and len(out) < limit:
            lease_id = next(iter(self._cp_resets))
            del self._cp_resets[lease_id]
            self._cp_in_flight.discard(lease_id)
            if lease_id in self._leases:
                out.append((lease_id, 0))
        if len(out) >= limit:
            return out
        for lease_id in self._due_checkpoints.pop_due(now, limit - len(out)):
            lease = self._leases[lease_id]
            remaining = math.ceil(lease.expiry - now)
            if remaining <= 0:
                continue  # expiring: the revoke will take care of it
            out.append((lease_id, remaining))
            self._cp_in_flight.add(lease_id)
            self._schedule_checkpoint(lease, now, remaining)
        return out

    # -- internals ----------------------------------------------------------------------

    def _live(self, lease_id: int, now: float) -> Lease:
        lease = self._primary_lease(lease_id)
        if lease.expiry <= now:
            raise LeaseNotFound(lease_id)
        return lease

    def _primary_lease(self, lease_id: int) -> Lease:
        if not self._primary:
            raise NotPrimary(f"lease {lease_id:x}: this member is not the leader")
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound(lease_id)
        return lease

    def _start_clock(self, lease: Lease, now: float, seconds: int) -> None:
        lease.expiry = now + seconds
        self._expiries.set(lease.id, lease.expiry)
        self._schedule_checkpoint(lease, now, seconds)

    def _schedule_checkpoint(self, lease: Lease, now: float, remaining: int) -> None:
        interval = self.config.checkpoint_interval
        if remaining > interval:
            self._due_checkpoints.set(lease.id, now + interval)
        else:
            self._due_checkpoints.remove(lease.id)

    def _forget_clock(self, lease_id: int) -> None:
        self._expiries.remove(lease_id)
        self._due_checkpoints.remove(lease_id)
        self._cp_in_flight.discard(lease_id)
        self._cp_resets.pop(lease_id, None)
