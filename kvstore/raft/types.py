"""Value types of the Raft core: entries, state, snapshots and messages.

Everything here is an immutable, slotted dataclass. Protobuf appears only at
the transport edge (kvstore/transport), which converts to and from these.
Node ids are positive integers; 0 means "none" (no vote, no leader).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

NONE = 0
"""The node id that stands for "no node": no vote cast, no leader known."""


class EntryType(enum.Enum):
    NORMAL = 0
    CONF_CHANGE = 1


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before a node answers anyone: term, vote, commit."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership in force: who votes and who only learns."""

    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()

    def members(self) -> frozenset[int]:
        return self.voters | self.learners


class ConfChangeType(enum.Enum):
    ADD_VOTER = 0
    """Add a new voter, or promote an existing learner to voter."""
    REMOVE_NODE = 1
    """Remove a voter or a learner (the leader may remove itself)."""
    ADD_LEARNER = 2
    """Add a non-voting member that receives the log."""


_CONF_CHANGE_FORMAT = struct.Struct(">BQ")


@dataclass(frozen=True, slots=True)
class ConfChange:
    type: ConfChangeType
    node_id: int

    def encode(self) -> bytes:
        return _CONF_CHANGE_FORMAT.pack(self.type.value, self.node_id)

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        kind, node_id = _CONF_CHANGE_FORMAT.unpack(data)
        return cls(ConfChangeType(kind), node_id)


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    data: bytes = b""

    @property
    def is_empty(self) -> bool:
        return self.meta.index == 0


EMPTY_SNAPSHOT = Snapshot()


class MessageType(enum.Enum):
    # Local messages: never sent over the network.
    HUP = "hup"
    BEAT = "beat"
    CHECK_QUORUM = "check_quorum"
    UNREACHABLE = "unreachable"
    SNAP_STATUS = "snap_status"
    # Network messages.
    PROP = "prop"
    APP = "app"
    APP_RESP = "app_resp"
    VOTE = "vote"
    VOTE_RESP = "vote_resp"
    PRE_VOTE = "pre_vote"
    PRE_VOTE_RESP = "pre_vote_resp"
    SNAP = "snap"
    HEARTBEAT = "heartbeat"
    HEARTBEAT_RESP = "heartbeat_resp"
    TRANSFER_LEADER = "transfer_leader"
    TIMEOUT_NOW = "timeout_now"
    READ_INDEX = "read_index"
    READ_INDEX_RESP = "read_index_resp"


LOCAL_MESSAGES = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.CHECK_QUORUM,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
    }
)


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A confirmed read: once the applied index reaches `index`, the read
    identified by `context` may be served from the state machine."""

    index: int
    context: bytes


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the runtime may want to observe; never persisted."""

    leader: int = NONE
    role: Role = Role.FOLLOWER
