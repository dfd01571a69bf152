"""Configuration of one Raft node, and the test-only planted bugs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PlantedBugs:
    """Deliberate safety bugs, switched on only by tests to prove that the
    simulator's checker can fail. Production code never sets these."""

    commit_previous_term: bool = False
    """Commit an entry of an earlier term by counting replicas (Raft §5.4.2)."""
    vote_without_sync: bool = False
    """Answer a vote before the new term and vote are made durable."""
    vote_for_stale_log: bool = False
    """Grant a vote without checking that the candidate's log is up to date."""
    read_index_without_quorum: bool = False
    """Answer ReadIndex at once, without confirming leadership by heartbeat."""

    def any(self) -> bool:
        return (
            self.commit_previous_term
            or self.vote_without_sync
            or self.vote_for_stale_log
            or self.read_index_without_quorum
        )


@dataclass(frozen=True, slots=True)
class Config:
    id: int
    election_tick: int = 10
    """Ticks without hearing from a leader before a follower campaigns. The
    actual timeout is randomized in [election_tick, 2 * election_tick)."""
    heartbeat_tick: int = 1
    """Ticks between leader heartbeats."""
    max_msg_bytes: int = 1 << 20
    """Byte budget of the entries in one append message."""
    max_inflight_msgs: int = 256
    """Append messages a leader may have unacknowledged per follower."""
    max_apply_bytes: int | None = 64 << 20
    """Byte budget of the committed entries handed out in one Ready."""
    applied: int = 0
    """The index the state machine had already applied when the node started."""
    check_quorum: bool = True
    pre_vote: bool = True
    bugs: PlantedBugs = field(default_factory=PlantedBugs)

    def __post_init__(self) -> None:
        if self.id <= 0:
            raise ValueError("node id must be positive")
        if self.heartbeat_tick <= 0 or self.election_tick <= self.heartbeat_tick:
            raise ValueError("need 0 < heartbeat_tick < election_tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max_inflight_msgs must be positive")
