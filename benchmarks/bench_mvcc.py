"""In-process MVCC benchmark on LevelDB: the ceiling for the replicated path.

    python benchmarks/bench_mvcc.py            # full run (1M keys)
    python benchmarks/bench_mvcc.py --quick    # 100k keys, fewer ops

Prints puts/s (fsync per put, group commit, no fsync), txns/s, ranges of
1,000 keys, point gets over the big key space, and the time to open it.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable

from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import (
    Compare,
    CompareResult,
    CompareTarget,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from kvstore.storage.db import Database


def rate(label: str, n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    per_s = n / elapsed
    print(f"{label:<46} {per_s:>12,.0f} /s   ({n:,} in {elapsed:.2f} s)")
    return per_s


def key(i: int) -> bytes:
    return b"/registry/pods/ns%03d/pod-%08d" % (i % 1000, i)


def bench_writes(root: str, n_sync: int, n_batched: int) -> None:
    db = Database(os.path.join(root, "writes"))
    synced = MVCCStore(db, StoreOptions(sync=True))
    value = b"x" * 128

    def puts_synced() -> None:
        for i in range(n_sync):
            synced.put(PutRequest(key(i), value))

    rate("put, one fsync'd batch per put", n_sync, puts_synced)

    def puts_grouped(sync: bool, per_batch: int = 1000) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, n_batched, per_batch):
                with db.batch(sync=sync) as batch, synced.writing(batch):
                    for i in range(start, start + per_batch):
                        synced.put(PutRequest(key(i), value))

        return run

    rate("put, group commit (1000 per fsync'd batch)", n_batched, puts_grouped(True))
    rate("put, group commit, no fsync", n_batched, puts_grouped(False))

    def txns(per_batch: int = 100) -> None:
        for start in range(0, n_batched, per_batch):
            with db.batch(sync=True) as batch, synced.writing(batch):
                for i in range(start, start + per_batch):
                    k = key(i)
                    cur = synced.range(RangeRequest(k)).kvs
                    mod = cur[0].mod_revision if cur else 0
                    synced.txn(
                        TxnRequest(
                            (Compare(k, CompareTarget.MOD, CompareResult.EQUAL, mod_revision=mod),),
                            (PutRequest(k, value), PutRequest(k + b"/status", value)),
                            (RangeRequest(k),),
                        )
                    )

    rate("txn: get + CAS txn of 2 puts, 100/batch", n_batched, txns)
    db.close()


def bench_reads(root: str, n_keys: int, n_gets: int, n_ranges: int) -> None:
    path = os.path.join(root, "big")
    db = Database(path)
    store = MVCCStore(db, StoreOptions(sync=False))
    value = b"v" * 64
    order = list(range(n_keys))
    random.Random(1).shuffle(order)

    def load() -> None:
        for start in range(0, n_keys, 10_000):
            with db.batch() as batch, store.writing(batch):
                for i in order[start : start + 10_000]:
                    store.put(PutRequest(key(i), value))

    rate(f"load {n_keys:,} keys (random order, 10k/batch)", n_keys, load)
    db.close()

    start = time.perf_counter()
    db = Database(path)
    store = MVCCStore(db, StoreOptions(sync=False))
    opened = time.perf_counter() - start
    print(f"{'open + rebuild index of ' + format(n_keys, ',') + ' keys':<46} {opened:>12.2f} s")

    rng = random.Random(2)
    picks = [key(rng.randrange(n_keys)) for _ in range(n_gets)]

    def gets() -> None:
        for k in picks:
            store.range(RangeRequest(k))

    rate(f"point get over {n_keys:,} keys", n_gets, gets)

    ordered = sorted(key(i) for i in range(n_keys))
    spans = []
    for _ in range(n_ranges):
        i = rng.randrange(n_keys - 1000)
        spans.append((ordered[i], ordered[i + 1000]))

    def ranges() -> None:
        for lo, hi in spans:
            assert len(store.range(RangeRequest(lo, hi)).kvs) == 1000

    rate("range of 1,000 keys (64 B values)", n_ranges, ranges)

    def ranges_keys_only() -> None:
        for lo, hi in spans:
            store.range(RangeRequest(lo, hi, keys_only=True))

    rate("range of 1,000 keys, keys_only", n_ranges, ranges_keys_only)

    def count_all() -> None:
        store.range(RangeRequest(b"\0", b"\0", count_only=True))

    rate(f"count_only over all {n_keys:,} keys", 1, count_all)
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k keys, fewer ops")
    parser.add_argument("--dir", help="where to create the databases (default: a temp dir)")
    args = parser.parse_args()
    n_keys = 100_000 if args.quick else 1_000_000
    root = tempfile.mkdtemp(prefix="bench-mvcc-", dir=args.dir)
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, data in {root}")
    try:
        bench_writes(
            root,
            n_sync=300 if args.quick else 2000,
            n_batched=20_000 if args.quick else 100_000,
        )
        bench_reads(
            root,
            n_keys,
            n_gets=20_000 if args.quick else 200_000,
            n_ranges=100 if args.quick else 500,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
