"""In-process lessor benchmark on LevelDB: the ceiling of lease bookkeeping.

    python benchmarks/bench_lease.py            # 10,000 leases, 1M keepalives
    python benchmarks/bench_lease.py --quick    # 10,000 leases, 100k keepalives

Measures, with a simulated clock (no sleeping):
  - grants applied (one LevelDB batch per 1,000 grants, as a Ready would hold);
  - keepalives (`renew`) on the leader, round-robin over every lease;
  - the expiry scan `expired(now, limit)` when nothing is due (the leader
    loop's common case), and when every lease is due (a mass expiry);
  - the checkpoint scan, and promote (a failover) over every lease;
  - reopening: loading every lease from LevelDB.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable

from kvstore.lease.lessor import Lessor, LessorConfig
from kvstore.storage.db import Database

CONFIG = LessorConfig(min_ttl=2, checkpoint_interval=300.0)


def rate(label: str, n: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    per_s = n / elapsed if elapsed > 0 else float("inf")
    print(f"{label:<52} {per_s:>12,.0f} /s   ({n:,} in {elapsed * 1000:.1f} ms)")
    return per_s


def once(label: str, fn: Callable[[], object]) -> None:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<52} {elapsed * 1e6:>12,.0f} us")


def run(root: str, n_leases: int, n_renews: int) -> None:
    path = os.path.join(root, "db")
    db = Database(path)
    lessor = Lessor(db, CONFIG)
    lessor.promote(0.0)
    ttls = [60 + (i % 600) for i in range(n_leases)]  # 1 to 11 minutes

    def grants() -> None:
        for start in range(0, n_leases, 1000):
            with db.batch() as batch:
                for i in range(start, min(start + 1000, n_leases)):
                    lessor.apply_grant(i + 1, ttls[i], batch, 0.0)

    rate(f"grant (applied, batches of 1,000), {n_leases:,} leases", n_leases, grants)

    for i in range(0, n_leases, 10):  # a key on every tenth lease
        lessor.attach(i + 1, b"/leases/key-%08d" % i)

    clock = [1.0]

    def renews() -> None:
        now = clock[0]
        for j in range(n_renews):
            lessor.renew(j % n_leases + 1, now + j * 1e-6)
        clock[0] = now + n_renews * 1e-6

    rate("keepalive (renew), round-robin", n_renews, renews)

    n_scans = 10_000

    def idle_scans() -> None:
        now = clock[0]
        for _ in range(n_scans):
            lessor.expired(now, 1000)

    rate("expiry scan, nothing due", n_scans, idle_scans)
    once("checkpoint scan, nothing due", lambda: lessor.checkpoints(clock[0]))

    far = clock[0] + 10_000.0

    def mass_expiry() -> None:
        while lessor.expired(far, 1000):
            pass

    rate(f"expiry scan, all {n_leases:,} due (batches of 1,000)", n_leases, mass_expiry)

    once(f"promote (failover) over {n_leases:,} leases", lambda: lessor.promote(far))

    def all_checkpoints() -> None:
        while lessor.checkpoints(far + 300.0):
            pass

    rate("checkpoint scan, one interval after promote", n_leases, all_checkpoints)

    db.close()
    db = Database(path)
    once(f"reopen: load {n_leases:,} leases from LevelDB", lambda: Lessor(db, CONFIG))
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k keepalives instead of 1M")
    parser.add_argument("--leases", type=int, default=10_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}")
    root = tempfile.mkdtemp(prefix="bench-lease-")
    try:
        run(root, args.leases, 100_000 if args.quick else 1_000_000)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
