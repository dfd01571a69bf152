"""SIGKILL a writer at random points; every acknowledged write must survive.

The child (tests/unit/mvcc_crash_child.py) acknowledges a step only after its
synced batch is committed. After each kill the parent reopens the database
and checks: every acked write is readable at its revision, the three keys a
txn writes always agree (no half-applied txn), the Raft log, hard state and
applied index moved together, and the revision never went back. Then it
starts the child again on the same database.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from kvstore.mvcc.store import MVCCStore
from kvstore.mvcc.types import RangeRequest
from kvstore.storage.db import Database
from kvstore.storage.log_store import LogStore
from tests.unit.mvcc_crash_child import TXN_KEYS

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 5
READ_BOUND_S = 20.0


class _Lines:
    """Complete lines from the child's stdout, read from the raw pipe so that
    select() sees every byte (no hidden userspace buffer)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.lines: list[str] = []

    def _split(self) -> None:
        *done, self.buf = self.buf.split(b"\n")
        self.lines.extend(line.decode() for line in done)

    def wait_for(self, want: int) -> None:
        """Poll with a bound (no sleeps) until `want` lines have arrived."""
        deadline = time.monotonic() + READ_BOUND_S
        while len(self.lines) < want:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"child acked only {len(self.lines)} of {want} in time"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                chunk = os.read(self.fd, 65536)
                assert chunk, "child exited early"
                self.buf += chunk
                self._split()

    def drain(self) -> None:
        """After the child is dead: whatever complete lines remain."""
        while chunk := os.read(self.fd, 65536):
            self.buf += chunk
        self._split()  # a trailing partial line was never acknowledged


def _check(path: Path, acks: list[tuple[int, int, str]], floor: int) -> int:
    db = Database(str(path))
    try:
        log, store = LogStore(db), MVCCStore(db)
        last_index, last_rev = (acks[-1][0], acks[-1][1]) if acks else (0, 1)
        rev = store.current_revision
        assert rev >= max(last_rev, floor), "revision went back"
        # The log, hard state and applied index were written in one batch.
        applied = store.applied_index
        assert applied >= last_index
        assert log.last_index() == applied == log.hard_state.commit
        for index, ack_rev, kind in acks:
            if kind == "put":
                key = b"p/%d" % (index % 17)
                kvs = store.range(RangeRequest(key, revision=ack_rev)).kvs
                assert kvs and kvs[0].value == b"%d" % index and kvs[0].mod_revision == ack_rev
            elif kind == "txn":
                kvs = store.range(RangeRequest(b"t/", b"t0", revision=ack_rev)).kvs
                assert [kv.key for kv in kvs] == list(TXN_KEYS)
                assert {(kv.value, kv.mod_revision) for kv in kvs} == {(b"%d" % index, ack_rev)}
            else:
                assert store.range(RangeRequest(b"p/", b"p0", revision=ack_rev)).kvs == []
        latest = store.range(RangeRequest(b"t/", b"t0")).kvs
        assert len({(kv.value, kv.mod_revision, kv.version) for kv in latest}) <= 1
        return rev
    finally:
        db.close()


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    path = tmp_path / "db"
    floor = 1
    all_acks: list[tuple[int, int, str]] = []
    for _ in range(ROUNDS):
        seed = rng.randrange(1 << 30)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.mvcc_crash_child", str(path), str(seed)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        lines = _Lines(proc)
        try:
            lines.wait_for(rng.randint(3, 40))
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # only the child we started
            proc.wait()
            lines.drain()
            assert proc.stdout is not None
            proc.stdout.close()
        all_acks.extend(_parse(line) for line in lines.lines)
        floor = _check(path, all_acks, floor)


def _parse(line: str) -> tuple[int, int, str]:
    _, index, rev, kind = line.split()
    return int(index), int(rev), kind
