"""One contract, two implementations: MemoryStorage and the LevelDB LogStore.

Every scenario runs against both; a differential test then drives both with
the same random operations and compares every answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvstore.raft.errors import LogCompacted, LogUnavailable, SnapshotOutOfDate
from kvstore.raft.storage import MemoryStorage
from kvstore.raft.types import ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from kvstore.storage.db import Database
from kvstore.storage.log_store import LogStore

AnyStorage = MemoryStorage | LogStore


@pytest.fixture(params=["memory", "leveldb"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], AnyStorage]]:
    dbs: list[Database] = []

    def factory() -> AnyStorage:
        if request.param == "memory":
            return MemoryStorage()
        db = Database(str(tmp_path / f"db{len(dbs)}"))
        dbs.append(db)
        return LogStore(db)

    yield factory
    for db in dbs:
        db.close()


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    return [Entry(term=t, index=i, data=f"e{i}t{t}".encode()) for i, t in pairs]


def test_empty_storage(make: Callable[[], AnyStorage]) -> None:
    s = make()
    assert s.first_index() == 1
    assert s.last_index() == 0
    assert s.term(0) == 0
    assert s.initial_state() == (HardState(), ConfState())
    assert s.snapshot().is_empty
    assert s.entries(1, 1) == []
    with pytest.raises(LogUnavailable):
        s.term(1)
    with pytest.raises(LogCompacted):
        s.entries(0, 1)


def test_append_and_read(make: Callable[[], AnyStorage]) -> None:
    s = make()
    s.append(ents((1, 1), (2, 1), (3, 2)))
    assert s.last_index() == 3
    assert [e.index for e in s.entries(1, 4)] == [1, 2, 3]
    assert s.term(3) == 2
    with pytest.raises(LogUnavailable):
        s.entries(2, 5)


def test_append_truncates_conflicting_suffix(make: Callable[[], AnyStorage]) -> None:
    s = make()
    s.append(ents((1, 1), (2, 1), (3, 1), (4, 1)))
    s.append(ents((3, 2)))
    assert s.last_index() == 3
    assert s.term(3) == 2
    assert s.entries(1, 4) == ents((1, 1), (2, 1), (3, 2))
    with pytest.raises(LogUnavailable):
        s.term(4)


def test_append_with_gap_is_refused(make: Callable[[], AnyStorage]) -> None:
    s = make()
    s.append(ents((1, 1)))
    with pytest.raises(LogUnavailable):
        s.append(ents((3, 1)))
    assert s.last_index() == 1


def test_max_bytes_keeps_at_least_one(make: Callable[[], AnyStorage]) -> None:
    s = make()
    big = [Entry(1, i, EntryType.NORMAL, b"x" * 100) for i in range(1, 6)]
    s.append(big)
    assert len(s.entries(1, 6, max_bytes=1)) == 1
    assert len(s.entries(1, 6, max_bytes=250)) == 2
    assert len(s.entries(1, 6, max_bytes=None)) == 5


def test_compact(make: Callable[[], AnyStorage]) -> None:
    s = make()
    s.append(ents((1, 1), (2, 1), (3, 2), (4, 3)))
    s.compact(2)
    assert s.first_index() == 3
    assert s.term(2) == 1
    with pytest.raises(LogCompacted):
        s.term(1)
    with pytest.raises(LogCompacted):
        s.entries(2, 4)
    assert [e.index for e in s.entries(3, 5)] == [3, 4]
    s.compact(1)  # below the truncation point: a no-op
    assert s.first_index() == 3
    with pytest.raises(LogUnavailable):
        s.compact(9)
    # Appending entries already covered by the compaction keeps only the rest.
    s.append(ents((2, 1), (3, 2), (4, 3), (5, 3)))
    assert s.last_index() == 5


def test_snapshots(make: Callable[[], AnyStorage]) -> None:
    s = make()
    s.append(ents((1, 1), (2, 1), (3, 2)))
    conf = ConfState(frozenset({1, 2, 3}), frozenset({4}))
    snap = s.create_snapshot(2, conf, b"state@2")
    assert snap.meta == SnapshotMeta(2, 1, conf)
    assert s.snapshot() == snap
    assert s.initial_state()[1] == conf
    with pytest.raises(SnapshotOutOfDate):
        s.create_snapshot(2, conf, b"again")
    incoming = Snapshot(SnapshotMeta(10, 4, ConfState(frozenset({1}))), b"state@10")
    s.apply_snapshot(incoming)
    assert s.snapshot() == incoming
    assert (s.first_index(), s.last_index(), s.term(10)) == (11, 10, 4)
    with pytest.raises(SnapshotOutOfDate):
        s.apply_snapshot(Snapshot(SnapshotMeta(9, 4), b""))
    s.append(ents((11, 4), (12, 5)))
    assert [e.index for e in s.entries(11, 13)] == [11, 12]


def test_hard_state(make: Callable[[], AnyStorage]) -> None:
    s = make()
    s.set_hard_state(HardState(term=3, vote=2, commit=7))
    assert s.initial_state()[0] == HardState(3, 2, 7)


def test_leveldb_log_survives_reopen(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "db"))
    s = LogStore(db)
    s.append(ents((1, 1), (2, 1), (3, 2), (4, 2)))
    s.set_hard_state(HardState(2, 1, 3))
    s.create_snapshot(2, ConfState(frozenset({1})), b"snap")
    s.compact(2)
    s.append(ents((4, 3)))
    db.close()
    db = Database(str(tmp_path / "db"))
    r = LogStore(db)
    assert (r.first_index(), r.last_index(), r.term(2), r.term(4)) == (3, 4, 1, 3)
    assert r.initial_state() == (HardState(2, 1, 3), ConfState(frozenset({1})))
    assert r.entries(3, 5) == ents((3, 2), (4, 3))
    assert r.snapshot().data == b"snap"
    db.close()


def test_one_batch_holds_a_whole_ready(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "db"))
    s = LogStore(db, cache_entries=2)
    with db.batch(sync=True) as batch:
        s.save_ready(batch, HardState(1, 1, 0), ents((1, 1), (2, 1)), None)
        # Staged entries are readable before the batch reaches disk...
        assert s.entries(1, 3) == ents((1, 1), (2, 1))
        assert db.get(b"h") is None
    # ...and the batch is on disk once the block exits.
    assert db.get(b"h") is not None
    db.close()


def _run_ops(s: AnyStorage, rng: random.Random, steps: int) -> list[object]:
    """Apply random operations; return every observable answer."""
    out: list[object] = []
    term = 1
    for _ in range(steps):
        op = rng.random()
        last, first = s.last_index(), s.first_index()
        try:
            if op < 0.45:
                start = rng.randint(max(first - 1, 1), last + 1)
                term += rng.random() < 0.2
                new = [
                    Entry(term, i, data=rng.randbytes(rng.randint(0, 40)))
                    for i in range(start, start + rng.randint(1, 5))
                ]
                s.append(new)
                out.append(("append", start))
            elif op < 0.65:
                lo = rng.randint(max(first - 1, 0), last + 1)
                hi = rng.randint(lo, last + 2)
                out.append(("entries", s.entries(lo, hi, rng.choice([None, 1, 64, 200]))))
            elif op < 0.8:
                out.append(("term", s.term(rng.randint(max(first - 2, 0), last + 1))))
            elif op < 0.9:
                s.compact(rng.randint(first - 1, last))
                out.append(("compact", s.first_index()))
            elif op < 0.95:
                idx = rng.randint(first - 1, last)
                out.append(("snap", s.create_snapshot(idx, ConfState(), b"d%d" % idx)))
            else:
                meta = SnapshotMeta(last + rng.randint(0, 3), term, ConfState(frozenset({1})))
                s.apply_snapshot(Snapshot(meta, b"x"))
                out.append(("apply_snapshot", meta.index))
        except (LogCompacted, LogUnavailable, SnapshotOutOfDate) as exc:
            out.append(type(exc).__name__)
        out.append((s.first_index(), s.last_index(), s.snapshot().meta.index))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_leveldb_matches_memory_under_random_ops(tmp_path: Path, seed: int) -> None:
    db = Database(str(tmp_path / "db"))
    try:
        expected = _run_ops(MemoryStorage(), random.Random(seed), 150)
        actual = _run_ops(LogStore(db, cache_entries=4), random.Random(seed), 150)
        assert actual == expected
    finally:
        db.close()
