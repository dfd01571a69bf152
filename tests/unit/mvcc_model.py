"""A deliberately naive reference model of etcd's MVCC semantics for tests.

Each key maps to its full list of versions (revision, KeyValue or None for a
delete); nothing is ever forgotten, compaction only moves the floor below
which reads fail. Reads replay the lists, so the model is obviously right
and slow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvstore.mvcc.types import KeyValue

History = list[tuple[int, KeyValue | None]]


@dataclass
class Model:
    rev: int = 1
    compacted: int = 0
    history: dict[bytes, History] = field(default_factory=dict)

    def state_at(self, at: int) -> dict[bytes, KeyValue]:
        out: dict[bytes, KeyValue] = {}
        for key, versions in self.history.items():
            live: KeyValue | None = None
            for rev, kv in versions:
                if rev > at:
                    break
                live = kv
            if live is not None:
                out[key] = live
        return out

    def range(self, lo: bytes, hi: bytes | None, at: int) -> list[KeyValue]:
        state = self.state_at(at)
        return [
            state[k] for k in sorted(state) if lo <= k and (hi is None or k < hi)
        ]


@dataclass
class ModelTxn:
    """Changes made by one write; all share the revision model.rev + 1."""

    model: Model
    state: dict[bytes, KeyValue] = field(init=False)
    changes: list[tuple[bytes, KeyValue | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.model.state_at(self.model.rev)

    @property
    def new_rev(self) -> int:
        return self.model.rev + 1

    def put(self, key: bytes, value: bytes, lease: int) -> KeyValue | None:
        prev = self.state.get(key)
        kv = KeyValue(
            key,
            prev.create_revision if prev else self.new_rev,
            self.new_rev,
            prev.version + 1 if prev else 1,
            value,
            lease,
        )
        self.state[key] = kv
        self.changes.append((key, kv))
        return prev

    def delete(self, lo: bytes, hi: bytes | None) -> list[KeyValue]:
        gone = [
            self.state[k] for k in sorted(self.state) if lo <= k and (hi is None or k < hi)
        ]
        for kv in gone:
            del self.state[kv.key]
            self.changes.append((kv.key, None))
        return gone

    def read(self, lo: bytes, hi: bytes | None) -> list[KeyValue]:
        return [
            self.state[k] for k in sorted(self.state) if lo <= k and (hi is None or k < hi)
        ]

    def commit(self) -> int:
        if self.changes:
            self.model.rev += 1
            for key, kv in self.changes:
                self.model.history.setdefault(key, []).append((self.model.rev, kv))
        return self.model.rev
