"""In-process watch fan-out benchmark: MVCCStore + WatchHub, no gRPC.

    python benchmarks/bench_watch.py            # 1,000 watchers, 5,000 puts
    python benchmarks/bench_watch.py --quick    # 1,000 watchers, 500 puts

Phases (each prints events delivered per second and CPU microseconds per
delivered event, from time.process_time):
- fan-out: 1,000 synced watchers on one prefix; every put is one event for
  each of them (store write, take_events, notify, a sink that appends);
- fan-out + render: the same, and each delivery is also turned into the
  WatchResponse protobuf the API would send (kvstore.api.watch);
- catch-up: 1,000 watchers created at revision 1 read the whole history
  from LevelDB through sync_pending;
- unrelated watchers: 10,000 watchers on other keys; the cost of a put with
  them present (should match the cost with none);
- capture overhead: puts with event capture on vs off, no watchers.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable

from kvstore.api.pb import rpc_pb2
from kvstore.api.watch import event
from kvstore.mvcc.store import MVCCStore, StoreOptions
from kvstore.mvcc.types import PutRequest
from kvstore.mvcc.watch import WatchHub
from kvstore.mvcc.watch_types import Delivery, Watcher
from kvstore.storage.db import Database

PREFIX = b"/registry/pods/"
VALUE = b"x" * 128


def measure(label: str, delivered: Callable[[], int], fn: Callable[[], None]) -> None:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    n = delivered()
    print(
        f"{label:<44} {n / wall:>12,.0f} events/s  {cpu / max(n, 1) * 1e6:>7.2f} CPU µs/event"
        f"   ({n:,} events, {wall:.2f} s)"
    )


class Counter:
    def __init__(self, render: bool = False) -> None:
        self.events = 0
        self.render = render

    def __call__(self, w: Watcher, d: Delivery) -> bool:
        self.events += len(d.events)
        if self.render:
            rpc_pb2.WatchResponse(watch_id=w.watch_id, events=[event(e) for e in d.events])
        return True


def fresh(root: str, name: str) -> tuple[Database, MVCCStore]:
    db = Database(f"{root}/{name}")
    return db, MVCCStore(db, StoreOptions(sync=False))


def put_all(store: MVCCStore, hub: WatchHub | None, n: int, prefix: bytes = PREFIX) -> None:
    for i in range(n):
        store.put(PutRequest(prefix + b"pod-%06d" % (i % 1000), VALUE))
        if hub is not None:
            hub.notify(store.take_events(), store.current_revision)


def fan_out(root: str, watchers: int, puts: int, render: bool) -> None:
    db, store = fresh(root, f"fanout-{render}")
    hub = WatchHub(store)
    sink = Counter(render)
    for i in range(watchers):
        hub.watch(PREFIX, PREFIX[:-1] + b"0", 0, sink=sink, watch_id=i)
    label = f"fan-out{' + render' if render else ''}: {watchers:,} watchers"
    measure(label, lambda: sink.events, lambda: put_all(store, hub, puts))
    db.close()


def catch_up(root: str, watchers: int, puts: int) -> None:
    db, store = fresh(root, "catchup")
    put_all(store, None, puts)
    hub = WatchHub(store)
    sink = Counter()
    for i in range(watchers):
        hub.watch(PREFIX, PREFIX[:-1] + b"0", 1, sink=sink, watch_id=i)

    def run() -> None:
        while hub.unsynced:
            hub.sync_pending()

    measure(f"catch-up: {watchers:,} watchers from rev 1", lambda: sink.events, run)
    db.close()


def unrelated(root: str, watchers: int, puts: int) -> None:
    for present in (0, watchers):
        db, store = fresh(root, f"unrelated-{present}")
        hub = WatchHub(store)
        sink = Counter()
        for i in range(present):
            hub.watch(b"/other/%06d" % i, b"", 0, sink=sink)
        start = time.process_time()
        put_all(store, hub, puts)
        cpu = time.process_time() - start
        print(
            f"{f'put + notify, {present:,} unrelated watchers':<44} "
            f"{cpu / puts * 1e6:>8.2f} CPU µs/put   (visits {hub.visits})"
        )
        db.close()


def capture_overhead(root: str, puts: int) -> None:
    for capture in (False, True):
        db, store = fresh(root, f"capture-{capture}")
        if capture:
            store.capture_events()
        start = time.process_time()
        for i in range(puts):
            store.put(PutRequest(PREFIX + b"pod-%06d" % (i % 1000), VALUE))
            store.take_events()
        cpu = time.process_time() - start
        label = f"put, capture {'on' if capture else 'off'}"
        print(f"{label:<44} {cpu / puts * 1e6:>8.2f} CPU µs/put")
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 puts instead of 5,000")
    parser.add_argument("--watchers", type=int, default=1000)
    args = parser.parse_args()
    puts = 500 if args.quick else 5000
    root = tempfile.mkdtemp(prefix="bench-watch-")
    try:
        fan_out(root, args.watchers, puts, render=False)
        fan_out(root, args.watchers, puts, render=True)
        catch_up(root, args.watchers, puts)
        unrelated(root, 10_000, puts * 4)
        capture_overhead(root, puts * 4)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
