"""A naive model of the events MVCC writes produce, for the watch tests.

The model keeps the live key-value pairs and, per revision, the events that
revision made (etcd's rules: a put carries the new pair, a delete the key and
the deleting revision; a txn's changes share one revision, in op order; a
write that changes nothing makes no revision). Each event also records the
pair it replaced (the prev_kv a watcher asks for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvstore.mvcc.types import Event, EventType, KeyValue


@dataclass(frozen=True)
class Change:
    event: Event
    prev: KeyValue | None


@dataclass
class History:
    rev: int = 1
    live: dict[bytes, KeyValue] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    compactions: list[int] = field(default_factory=list)

    def write(self, ops: list[tuple[str, bytes, bytes | None, bytes]]) -> None:
        """One write: ("put", key, None, value) or ("del", key, range_end or
        None, b""); range_end b"\\0" means every key >= key."""
        new = self.rev + 1
        made: list[Change] = []
        for kind, key, end, value in ops:
            if kind == "put":
                prev = self.live.get(key)
                kv = KeyValue(
                    key,
                    prev.create_revision if prev else new,
                    new,
                    prev.version + 1 if prev else 1,
                    value,
                )
                self.live[key] = kv
                made.append(Change(Event(EventType.PUT, kv), prev))
            else:
                for k in sorted(self.live):
                    if covers(key, end or b"", k):
                        made.append(
                            Change(
                                Event(EventType.DELETE, KeyValue(k, mod_revision=new)),
                                self.live.pop(k),
                            )
                        )
        if made:
            self.rev = new
            self.changes.extend(made)

    def since(self, start: int, key: bytes, range_end: bytes) -> list[Change]:
        return [
            c
            for c in self.changes
            if c.event.kv.mod_revision >= start and covers(key, range_end, c.event.kv.key)
        ]


def covers(key: bytes, range_end: bytes, k: bytes) -> bool:
    if not range_end:
        return k == key
    if range_end == b"\0":
        return k >= key
    return key <= k < range_end
