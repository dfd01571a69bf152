"""Safety invariants checked by the simulator after every step.

Each check is incremental: it looks only at what the step changed (the
entries a Ready appended, the commit index that moved, the entries applied,
a new leader), so it can run after every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kvstore.raft.core import Raft
from kvstore.raft.types import Entry, EntryType, ReadState


class InvariantViolation(AssertionError):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant


def chain_digest(prev: int, entry: Entry) -> int:
    """A running digest of an applied sequence: equal digests at an index
    mean (with overwhelming probability) equal histories up to it."""
    return hash((prev, entry.index, entry.type.value, entry.data)) & 0xFFFFFFFFFFFF


@dataclass
class Checker:
    leaders: dict[int, int] = field(default_factory=dict)
    """term -> the one node that led in it (election safety)."""
    entries: dict[tuple[int, int], tuple[EntryType, bytes, int | None]] = field(
        default_factory=dict
    )
    """(index, term) -> (type, data, term at index-1): log matching."""
    committed: dict[int, int] = field(default_factory=dict)
    """index -> term of every entry known committed anywhere."""
    committed_max: int = 0
    applied: dict[int, tuple[EntryType, bytes]] = field(default_factory=dict)
    digests: dict[int, int] = field(default_factory=lambda: {0: 0})
    """index -> digest of the one applied history up to it."""
    reads: dict[bytes, int] = field(default_factory=dict)
    """read context -> commit index known anywhere when the read began."""
    reads_served: int = 0

    # -- election safety and leader completeness ---------------------------------

    def on_leader(self, raft: Raft) -> bool:
        """Check a node that is leader now; returns True if it is newly so."""
        term, node = raft.term, raft.id
        holder = self.leaders.get(term)
        if holder is not None:
            if holder != node:
                raise InvariantViolation(
                    "election safety", f"term {term} has two leaders: {holder} and {node}"
                )
            return False
        self.leaders[term] = node
        # Leader completeness: a new leader holds every committed entry.
        first = raft.log.first_index()
        for index in range(max(first, 1), self.committed_max + 1):
            t = raft.log.term(index)
            if t != self.committed[index]:
                raise InvariantViolation(
                    "leader completeness",
                    f"leader {node} of term {term} has term {t} at committed index "
                    f"{index} (committed term {self.committed[index]})",
                )
        return True

    # -- log matching and durability of commitment -----------------------------------

    def on_append(
        self, raft: Raft, entries: tuple[Entry, ...], stored_term: Callable[[int], int | None]
    ) -> None:
        """Check entries about to be written; stored_term(i) reads the term
        the node's storage holds at i now (None if it holds nothing)."""
        for e in entries:
            prev = raft.log.term(e.index - 1)
            key = (e.index, e.term)
            seen = self.entries.setdefault(key, (e.type, e.data, prev))
            if seen[0] != e.type or seen[1] != e.data or (
                prev is not None and seen[2] is not None and seen[2] != prev
            ):
                raise InvariantViolation(
                    "log matching",
                    f"node {raft.id} holds a different entry at index {e.index} term {e.term}",
                )
            # A lagging node may take a stale leader's uncommitted entries at
            # an index committed elsewhere; what must never happen is that a
            # node holding a committed entry replaces it.
            committed_term = self.committed.get(e.index)
            if (
                committed_term is not None
                and committed_term != e.term
                and stored_term(e.index) == committed_term
            ):
                raise InvariantViolation(
                    "committed entry lost",
                    f"node {raft.id} overwrote committed index {e.index} "
                    f"(term {committed_term}) with term {e.term}",
                )

    def on_commit(self, raft: Raft, since: int) -> int:
        """Record the entries in (since, commit]; returns the new commit."""
        commit = raft.log.committed
        for index in range(max(since + 1, raft.log.first_index()), commit + 1):
            t = raft.log.term(index)
            if t is None:
                continue
            known = self.committed.setdefault(index, t)
            if known != t:
                raise InvariantViolation(
                    "committed entry lost",
                    f"node {raft.id} commits term {t} at index {index}, "
                    f"but term {known} was committed there",
                )
        if commit > self.committed_max:
            for index in range(self.committed_max + 1, commit + 1):
                if index not in self.committed:
                    raise InvariantViolation(
                        "commit gap", f"index {index} committed without a known term"
                    )
            self.committed_max = commit
        return commit

    # -- state machine safety -----------------------------------------------------

    def on_apply(self, node: int, entry: Entry, prev_digest: int) -> int:
        seen = self.applied.setdefault(entry.index, (entry.type, entry.data))
        if seen != (entry.type, entry.data):
            raise InvariantViolation(
                "state machine safety",
                f"node {node} applied a different entry at index {entry.index}",
            )
        digest = chain_digest(prev_digest, entry)
        known = self.digests.setdefault(entry.index, digest)
        if known != digest:
            raise InvariantViolation(
                "state machine safety",
                f"node {node}'s applied history diverges at index {entry.index}",
            )
        return digest

    def on_restore(self, node: int, index: int, digest: int) -> None:
        known = self.digests.get(index)
        if known is not None and known != digest:
            raise InvariantViolation(
                "state machine safety",
                f"node {node} restored a snapshot at {index} of another history",
            )

    # -- linearizable reads -------------------------------------------------------

    def on_read_start(self, context: bytes) -> None:
        self.reads[context] = self.committed_max

    def on_read_state(self, node: int, rs: ReadState) -> None:
        floor = self.reads.get(rs.context)
        if floor is None:
            raise InvariantViolation("read index", f"node {node} got an unknown read {rs}")
        if rs.index < floor:
            raise InvariantViolation(
                "read index",
                f"read {rs.context!r} on node {node} got index {rs.index}, but {floor} "
                "was committed before it began (a stale read)",
            )
        self.reads_served += 1
