"""Watch fan-out and many leases, kvstore vs etcd 3.4, 3 members each.

    .venv/bin/python benchmarks/compare_watch_lease.py            # full run, ~3.5 min
    .venv/bin/python benchmarks/compare_watch_lease.py --quick    # ~1.5 min
    # options: --only kvstore|etcd --watchers N --put-rate 10,50 --leases N --keep ...

Starts a 3-member kvstore cluster on loopback (benchmarks/launcher.py: free
ports, tmp data dirs, --heartbeat-interval 100 --election-timeout 1000),
runs the phases below, stops it by PID; then does the same with etcd. Only
one cluster runs at a time. The load generator runs in this process (asyncio,
grpc.aio, kvstore/api/pb stubs), so it shares the cores with the cluster.

1. puts alone: the paced put stream of phase 2 with no watcher, for the
   server CPU a put costs by itself (subtracted in "net CPU per event").
2. watch fan-out: W watchers on one prefix, spread over S Watch streams
   (round-robin over the 3 members), all created before the first put; then,
   for each rate R in turn, puts at R/s for a fixed time through the 3
   members. Each value is the sender's
   time.perf_counter_ns(); an event's latency is its receive time minus
   that. Every watcher must see every acknowledged put exactly once, in
   revision order (checked by count and strictly increasing mod_revision).
3. many leases: grant L leases (TTL T) with 64 concurrent LeaseGrant calls,
   then keep them all alive for D seconds over K LeaseKeepAlive streams
   (round-robin over the members; each stream renews its own share in a
   loop, paced to a bounded total rate, a few requests in flight); at the
   end every member's LeaseLeases must list all L.

Server CPU is utime+stime of the 3 member processes from /proc/<pid>/stat,
read before and after each phase. Not a test: nothing is asserted, the
checks are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import signal
import sys
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import grpc.aio
from compare_etcd import fmt, machine, ratio
from launcher import Cluster, Kind
from loadgen import CHANNEL_OPTIONS, REQUEST_TIMEOUT_S

from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc

HEARTBEAT_MS = 100
ELECTION_MS = 1000
PREFIX = b"/bench/watch/"
GRANT_CONCURRENCY = 64
KEEPALIVE_WINDOW = 8  # requests in flight per keepalive stream
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- helpers ---------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / CLK_TCK


def idle_cpu(pids: list[int], seconds: float) -> float:
    """Server CPU seconds per second of the cluster doing nothing."""
    cpu0, t0 = cpu_seconds(pids), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pids) - cpu0) / (time.perf_counter() - t0)


def percentile(sorted_data: list[int] | list[float], q: float) -> float:
    """Nearest-rank percentile of sorted data; nan when empty."""
    if not sorted_data:
        return float("nan")
    rank = max(1, min(len(sorted_data), round(q / 100.0 * len(sorted_data) + 0.5)))
    return float(sorted_data[rank - 1])


def range_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


class Channels:
    """One grpc.aio channel per member endpoint."""

    def __init__(self, endpoints: list[str]) -> None:
        self.channels = [
            grpc.aio.insecure_channel(ep, options=CHANNEL_OPTIONS) for ep in endpoints
        ]

    async def __aenter__(self) -> Channels:
        await asyncio.wait_for(
            asyncio.gather(*(ch.channel_ready() for ch in self.channels)), REQUEST_TIMEOUT_S
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(ch.close() for ch in self.channels), return_exceptions=True)

    def kv(self) -> list[rpc_pb2_grpc.KVStub]:
        return [rpc_pb2_grpc.KVStub(ch) for ch in self.channels]

    def watch(self) -> list[rpc_pb2_grpc.WatchStub]:
        return [rpc_pb2_grpc.WatchStub(ch) for ch in self.channels]

    def lease(self) -> list[rpc_pb2_grpc.LeaseStub]:
        return [rpc_pb2_grpc.LeaseStub(ch) for ch in self.channels]


# -- puts --------------------------------------------------------------------------------------


@dataclass
class PutResult:
    sent: int = 0
    acked: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def cpu_us_per_put(self) -> float:
        return self.cpu_s / self.acked * 1e6 if self.acked else float("nan")

    @property
    def cpu_cores(self) -> float:
        """Server CPU seconds per second while the puts ran."""
        return self.cpu_s / self.elapsed_s if self.elapsed_s > 0 else float("nan")


async def paced_puts(
    stubs: list[rpc_pb2_grpc.KVStub], count: int, rate: float, tag: bytes
) -> PutResult:
    """`count` puts at `rate`/s, round-robin over the stubs, open loop (a slow
    put does not delay the next one; at most 256 in flight). Keys are
    PREFIX<tag><n>, values the send time from perf_counter_ns."""
    res = PutResult()
    sem = asyncio.Semaphore(256)

    async def one(n: int) -> None:
        try:
            value = b"%d" % time.perf_counter_ns()
            await stubs[n % len(stubs)].Put(
                rpc_pb2.PutRequest(key=PREFIX + tag + b"%08d" % n, value=value),
                timeout=REQUEST_TIMEOUT_S,
            )
            res.acked += 1
        except grpc.aio.AioRpcError as exc:
            res.errors[exc.code().name] += 1
        finally:
            sem.release()

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    try:
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            res.sent += 1
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT_S + 5.0)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    res.elapsed_s = time.perf_counter() - start
    return res


# -- watch fan-out -------------------------------------------------------------------------------


@dataclass
class WatchResult:
    """One put rate of the fan-out phase."""

    rate: float
    watchers: int = 0
    puts: PutResult = field(default_factory=PutResult)
    baseline: PutResult = field(default_factory=PutResult)
    delivered: int = 0
    responses: int = 0
    expected: int = 0
    complete: int = 0  # watchers that saw every acked put exactly once
    duplicates_or_reordered: int = 0
    foreign: int = 0  # events not from this rate's puts
    elapsed_s: float = 0.0  # first put sent .. last event received
    cpu_s: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.delivered * 1e6 if self.delivered else float("nan")

    @property
    def events_per_response(self) -> float:
        return self.delivered / self.responses if self.responses else float("nan")

    @property
    def net_cpu_us_per_event(self) -> float:
        """CPU per event after taking out what the cluster burns with the same
        puts and no watcher (the puts-alone phase's CPU per second, times
        this phase's duration): the cost of watching itself."""
        if not self.delivered or math.isnan(self.baseline.cpu_cores):
            return float("nan")
        net = self.cpu_s - self.baseline.cpu_cores * self.elapsed_s
        return max(0.0, net) / self.delivered * 1e6

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies_ns, q) / 1e6

    def summary(self) -> str:
        errs = f", put errors {dict(self.puts.errors)}" if self.puts.errors else ""
        return (
            f"fan-out: {self.puts.acked:,} puts at {self.rate:g}/s -> {self.delivered:,}/"
            f"{self.expected:,} events ({self.events_per_response:.2f} per response), "
            f"{self.events_per_s:,.0f} events/s, p50 "
            f"{self.latency_ms(50):.2f} ms p99 {self.latency_ms(99):.2f} ms, "
            f"{self.cpu_us_per_event:.1f} server CPU us/event (net of puts "
            f"{self.net_cpu_us_per_event:.1f}); {self.complete:,}/{self.watchers:,} watchers "
            f"complete, {self.duplicates_or_reordered} dup/reordered{errs}"
        )


@dataclass
class WatchReport:
    watchers: int = 0
    streams: int = 0
    create_s: float = 0.0
    rates: list[WatchResult] = field(default_factory=list)


class WatchSink:
    """What every watcher got during one put rate: per-watcher event count and
    last mod_revision (by slot), and every event's latency."""

    def __init__(self, watchers: int, tag: bytes) -> None:
        self.tag = tag
        self.counts = array("q", bytes(8 * watchers))
        self.last_rev = array("q", bytes(8 * watchers))
        self.latencies = array("q")
        self.delivered = 0
        self.responses = 0  # WatchResponses that carried events
        self.foreign = 0
        self.bad = 0
        self.target = 1 << 62
        self.done = asyncio.Event()


class WatchStreamClient:
    """One Watch stream holding `n` watchers on PREFIX; hands what it gets to
    the current sink."""

    def __init__(self, stub: rpc_pb2_grpc.WatchStub, n: int, first_slot: int,
                 sink: WatchSink) -> None:
        self.call: Any = stub.Watch()
        self.n = n
        self.next_slot = first_slot
        self.sink = sink
        self.slots: dict[int, int] = {}  # watch_id -> slot in the sink's arrays
        self.created = asyncio.Event()

    async def create(self) -> None:
        req = rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(key=PREFIX, range_end=range_end(PREFIX))
        )
        for _ in range(self.n):
            await self.call.write(req)

    async def run(self) -> None:
        slots = self.slots
        while True:
            resp = await self.call.read()
            if resp is grpc.aio.EOF:
                return
            if resp.created:
                if resp.canceled:
                    raise RuntimeError(f"watch refused: {resp.cancel_reason}")
                slots[resp.watch_id] = self.next_slot
                self.next_slot += 1
                if len(slots) == self.n:
                    self.created.set()
                continue
            if not resp.events:
                continue
            now = time.perf_counter_ns()
            sink = self.sink
            sink.responses += 1
            slot = slots[resp.watch_id]
            last = sink.last_rev
            for ev in resp.events:
                kv = ev.kv
                if not kv.key.startswith(sink.tag):
                    sink.foreign += 1
                    continue
                sink.latencies.append(now - int(kv.value))
                if kv.mod_revision <= last[slot]:
                    sink.bad += 1
                last[slot] = kv.mod_revision
                sink.counts[slot] += 1
                sink.delivered += 1
            if sink.delivered >= sink.target:
                sink.done.set()

    def cancel(self) -> None:
        self.call.cancel()


async def wait_created(clients: list[WatchStreamClient], readers: list[asyncio.Task[None]],
                       timeout: float) -> None:
    """Until every stream has all its watchers; a reader that fails (a
    refused watch, a broken stream) raises here."""
    waits: list[asyncio.Task[Any]] = [asyncio.create_task(c.created.wait()) for c in clients]
    pending: list[asyncio.Task[Any]] = [*waits, *readers]
    deadline = time.perf_counter() + timeout
    try:
        while not all(t.done() for t in waits):
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"watchers not all created in {timeout:g} s")
            await asyncio.wait(pending, timeout=left,
                               return_when=asyncio.FIRST_COMPLETED)
            for r in readers:
                if r.done():
                    r.result()
                    raise RuntimeError("a Watch stream ended before its watchers were created")
    finally:
        for w in waits:
            w.cancel()


def tag_of(rate: float) -> bytes:
    return b"fan-%g/" % rate


async def watch_phase(cluster: Cluster, args: argparse.Namespace, out: WatchReport) -> None:
    async with Channels(cluster.endpoints) as chans:
        kv = chans.kv()
        pids = cluster.pids()

        # 1. each put stream with no watcher: the CPU the puts cost by themselves
        for rate in args.put_rate:
            res = WatchResult(rate)
            n_base = max(1, int(args.baseline_s * rate))
            cpu0 = cpu_seconds(pids)
            res.baseline = await paced_puts(kv, n_base, rate, b"base-%g/" % rate)
            res.baseline.cpu_s = cpu_seconds(pids) - cpu0
            out.rates.append(res)
            print(f"  puts alone: {res.baseline.acked:,} puts at {rate:g}/s, "
                  f"server CPU {res.baseline.cpu_cores * 100:.0f}% of a core", flush=True)

        # 2. the watchers, then each put stream in turn
        w = args.watchers
        out.watchers, out.streams = w, args.streams
        sink = WatchSink(w, PREFIX + tag_of(args.put_rate[0]))
        wstubs = chans.watch()
        per = [w // args.streams + (i < w % args.streams) for i in range(args.streams)]
        firsts = [sum(per[:i]) for i in range(args.streams)]
        clients = [WatchStreamClient(wstubs[i % len(wstubs)], per[i], firsts[i], sink)
                   for i in range(args.streams)]
        readers = [asyncio.create_task(c.run()) for c in clients]
        try:
            t0 = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(c.create() for c in clients)), 30.0)
            await wait_created(clients, readers, 60.0)
            out.create_s = time.perf_counter() - t0
            print(f"  {w:,} watchers on {args.streams} streams created in "
                  f"{out.create_s:.1f} s", flush=True)
            for res in out.rates:
                await fan_out(kv, pids, clients, readers, res, args)
        finally:
            for c in clients:
                c.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def fan_out(kv: list[rpc_pb2_grpc.KVStub], pids: list[int],
                  clients: list[WatchStreamClient], readers: list[asyncio.Task[None]],
                  res: WatchResult, args: argparse.Namespace) -> None:
    res.watchers = args.watchers
    sink = WatchSink(args.watchers, PREFIX + tag_of(res.rate))
    for c in clients:
        c.sink = sink
    cpu0 = cpu_seconds(pids)
    start = time.perf_counter()
    res.puts = await paced_puts(kv, int(args.fan_out_s * res.rate), res.rate, tag_of(res.rate))
    sink.target = res.puts.acked * args.watchers
    if sink.delivered < sink.target:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.done.wait(), args.drain_s)
    res.elapsed_s = time.perf_counter() - start
    res.cpu_s = cpu_seconds(pids) - cpu0
    for t in readers:
        if t.done():
            t.result()
    res.delivered = sink.delivered
    res.responses = sink.responses
    res.expected = sink.target
    res.complete = sum(1 for c in sink.counts if c == res.puts.acked)
    res.duplicates_or_reordered = sink.bad
    res.foreign = sink.foreign
    res.latencies_ns = sorted(sink.latencies)
    print(f"  {res.summary()}", flush=True)
    await asyncio.sleep(1.0)  # let a backlog drain before the next rate


# -- many leases ----------------------------------------------------------------------------------


@dataclass
class LeaseResult:
    leases: int = 0
    granted: int = 0
    grant_errors: Counter[str] = field(default_factory=Counter)
    grant_s: float = 0.0
    grant_cpu_s: float = 0.0
    keepalives: int = 0
    keepalive_errors: Counter[str] = field(default_factory=Counter)
    expired_answers: int = 0  # keepalive answered TTL 0: the lease was gone
    keepalive_s: float = 0.0
    keepalive_cpu_s: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    idle_cores: float = float("nan")  # server CPU s/s with no load, before the phase
    max_gap_s: float = 0.0  # longest time between two renewals of one lease
    alive_at_end: list[int] = field(default_factory=list)  # LeaseLeases per member

    @property
    def grants_per_s(self) -> float:
        return self.granted / self.grant_s if self.grant_s > 0 else 0.0

    @property
    def keepalives_per_s(self) -> float:
        return self.keepalives / self.keepalive_s if self.keepalive_s > 0 else 0.0

    @property
    def cpu_us_per_grant(self) -> float:
        return self.grant_cpu_s / self.granted * 1e6 if self.granted else float("nan")

    @property
    def cpu_us_per_keepalive(self) -> float:
        return self.keepalive_cpu_s / self.keepalives * 1e6 if self.keepalives else float("nan")

    @property
    def net_cpu_us_per_keepalive(self) -> float:
        """Net of the idle cluster's CPU over the same time."""
        if not self.keepalives or math.isnan(self.idle_cores):
            return float("nan")
        net = self.keepalive_cpu_s - self.idle_cores * self.keepalive_s
        return max(0.0, net) / self.keepalives * 1e6

    def latency_ms(self, q: float) -> float:
        return percentile(self.latencies_ns, q) / 1e6


async def grant_all(stubs: list[rpc_pb2_grpc.LeaseStub], n: int, ttl: int,
                    res: LeaseResult) -> list[int]:
    ids: list[int] = []
    todo = itertools.count()

    async def worker(w: int) -> None:
        stub = stubs[w % len(stubs)]
        while next(todo) < n:
            try:
                resp = await stub.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl),
                                             timeout=REQUEST_TIMEOUT_S)
                ids.append(resp.ID)
            except grpc.aio.AioRpcError as exc:
                res.grant_errors[exc.code().name] += 1

    await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(GRANT_CONCURRENCY))),
                           max(60.0, n / 50))
    return ids


async def keepalive_stream(
    stub: rpc_pb2_grpc.LeaseStub, ids: list[int], rate: float, stop_at: float,
    res: LeaseResult, last_renewed: dict[int, float],
) -> None:
    """Renew `ids` round-robin at `rate`/s until `stop_at`, at most
    KEEPALIVE_WINDOW requests in flight; responses come back in order."""
    call: Any = stub.LeaseKeepAlive()
    inflight: deque[tuple[int, int]] = deque()
    window = asyncio.Semaphore(KEEPALIVE_WINDOW)
    lat = res.latencies_ns

    async def receive() -> None:
        while True:
            resp = await call.read()
            if resp is grpc.aio.EOF:
                return
            now_ns = time.perf_counter_ns()
            lease_id, sent_ns = inflight.popleft()
            if lease_id != resp.ID:
                raise RuntimeError(f"keepalive answer for {resp.ID}, expected {lease_id}")
            window.release()
            lat.append(now_ns - sent_ns)
            res.keepalives += 1
            if resp.TTL <= 0:
                res.expired_answers += 1
            now = now_ns / 1e9
            prev = last_renewed.get(lease_id)
            if prev is not None:
                res.max_gap_s = max(res.max_gap_s, now - prev)
            last_renewed[lease_id] = now

    receiver = asyncio.create_task(receive())
    try:
        start = time.perf_counter()
        for n, lease_id in enumerate(itertools.cycle(ids)):
            due = start + n / rate
            if due >= stop_at:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await window.acquire()
            if receiver.done():
                receiver.result()
                break
            inflight.append((lease_id, time.perf_counter_ns()))
            await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
        await call.done_writing()
        await asyncio.wait_for(receiver, REQUEST_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        res.keepalive_errors[exc.code().name] += 1
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await receiver
        call.cancel()


async def lease_phase(cluster: Cluster, args: argparse.Namespace, out: LeaseResult) -> None:
    async with Channels(cluster.endpoints) as chans:
        stubs = chans.lease()
        pids = cluster.pids()
        out.leases = args.leases

        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        ids = await grant_all(stubs, args.leases, args.ttl, out)
        out.grant_s = time.perf_counter() - t0
        out.grant_cpu_s = cpu_seconds(pids) - cpu0
        out.granted = len(ids)
        print(f"  granted {out.granted:,} leases (TTL {args.ttl} s) at "
              f"{out.grants_per_s:,.0f}/s, {out.cpu_us_per_grant:,.0f} server CPU us/grant"
              + (f", errors {dict(out.grant_errors)}" if out.grant_errors else ""), flush=True)

        k = args.ka_streams
        shares = [ids[i::k] for i in range(k)]
        last_renewed: dict[int, float] = {}
        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        stop_at = t0 + args.ka_duration
        await asyncio.wait_for(
            asyncio.gather(*(
                keepalive_stream(stubs[i % len(stubs)], shares[i], args.ka_rate / k, stop_at,
                                 out, last_renewed)
                for i in range(k) if shares[i]
            )),
            args.ka_duration + 3 * REQUEST_TIMEOUT_S,
        )
        out.keepalive_s = time.perf_counter() - t0
        out.keepalive_cpu_s = cpu_seconds(pids) - cpu0
        out.latencies_ns.sort()
        never = len(set(ids) - last_renewed.keys())

        for stub in stubs:
            try:
                resp = await stub.LeaseLeases(rpc_pb2.LeaseLeasesRequest(),
                                              timeout=REQUEST_TIMEOUT_S)
                out.alive_at_end.append(len(resp.leases))
            except grpc.aio.AioRpcError:
                out.alive_at_end.append(-1)
        errs = dict(out.keepalive_errors)
        print(
            f"  keepalive: {out.keepalives:,} in {out.keepalive_s:.1f} s on {k} streams, "
            f"{out.keepalives_per_s:,.0f}/s, p50 {out.latency_ms(50):.2f} ms "
            f"p99 {out.latency_ms(99):.2f} ms, {out.cpu_us_per_keepalive:.0f} server CPU "
            f"us/keepalive (net of idle {out.net_cpu_us_per_keepalive:.0f}); "
            f"longest gap between renewals {out.max_gap_s:.1f} s, "
            f"never renewed {never}, TTL-0 answers {out.expired_answers}; "
            f"LeaseLeases per member {out.alive_at_end}" + (f", errors {errs}" if errs else ""),
            flush=True,
        )


# -- driver ----------------------------------------------------------------------------------------


@dataclass
class Report:
    kind: Kind
    watch: WatchReport = field(default_factory=WatchReport)
    lease: LeaseResult = field(default_factory=LeaseResult)
    load_before: str = ""


def bench_one(kind: Kind, args: argparse.Namespace) -> Report:
    profile_dir = Path(args.profile).resolve() if args.profile and kind == "kvstore" else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(kind, HEARTBEAT_MS, ELECTION_MS, profile_dir=profile_dir)
    report = Report(kind)
    report.load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {kind}: 3 members, data and logs in {cluster.root} "
          f"(load average {report.load_before})", flush=True)
    try:
        t0 = time.perf_counter()
        cluster.start()
        print(f"  healthy after {time.perf_counter() - t0:.1f} s, pids {cluster.pids()}",
              flush=True)
        time.sleep(1.0)  # let the members settle after the health check
        report.lease.idle_cores = idle_cpu(cluster.pids(), args.idle_s)
        print(f"  idle: server CPU {report.lease.idle_cores * 100:.0f}% of a core", flush=True)
        if not args.skip_watch:
            asyncio.run(watch_phase(cluster, args, report.watch))
            cluster.check_alive()
        if not args.skip_lease:
            asyncio.run(lease_phase(cluster, args, report.lease))
            cluster.check_alive()
    finally:
        cluster.cleanup(keep=args.keep)
        print(f"  stopped {kind}" + (f" (kept {cluster.root})" if args.keep else ""), flush=True)
    return report


def table(kv: Report, et: Report) -> str:
    rows = ["| figure | kvstore | etcd | kvstore/etcd |", "|---|---:|---:|---:|"]

    def row(name: str, a: float, b: float, spec: str) -> None:
        rows.append(f"| {name} | {fmt(a, spec)} | {fmt(b, spec)} | {ratio(a, b)} |")

    def check(name: str, a: str, b: str) -> None:
        rows.append(f"| {name} | {a} | {b} | |")

    def wcheck(w: WatchResult) -> str:
        s = f"{w.complete:,}/{w.watchers:,} watchers, {w.delivered:,}/{w.expected:,} events"
        if w.duplicates_or_reordered or w.foreign:
            s += f", {w.duplicates_or_reordered} dup/reordered, {w.foreign} foreign"
        return s

    def lcheck(r: LeaseResult) -> str:
        s = "/".join(f"{n:,}" for n in r.alive_at_end) + f" of {r.leases:,}"
        if r.expired_answers:
            s += f", {r.expired_answers} TTL-0 answers"
        return s

    l1, l2 = kv.lease, et.lease
    row("idle cluster: server CPU (% of a core)", l1.idle_cores * 100, l2.idle_cores * 100,
        ",.0f")
    if kv.watch.watchers and et.watch.watchers:
        row(f"watch: create {kv.watch.watchers:,} watchers on {kv.watch.streams} streams (s)",
            kv.watch.create_s, et.watch.create_s, ",.2f")
        for w1, w2 in zip(kv.watch.rates, et.watch.rates, strict=True):
            r = f"watch @ {w1.rate:g} puts/s:"
            row(f"{r} puts alone, server CPU (% of a core)", w1.baseline.cpu_cores * 100,
                w2.baseline.cpu_cores * 100, ",.0f")
            row(f"{r} events delivered/s", w1.events_per_s, w2.events_per_s, ",.0f")
            row(f"{r} event latency p50 (ms)", w1.latency_ms(50), w2.latency_ms(50), ",.2f")
            row(f"{r} event latency p99 (ms)", w1.latency_ms(99), w2.latency_ms(99), ",.2f")
            row(f"{r} events per WatchResponse", w1.events_per_response,
                w2.events_per_response, ",.2f")
            row(f"{r} server CPU us per delivered event", w1.cpu_us_per_event,
                w2.cpu_us_per_event, ",.1f")
            row(f"{r} same, net of the puts-alone CPU", w1.net_cpu_us_per_event,
                w2.net_cpu_us_per_event, ",.1f")
            check(f"{r} every watcher got every event once", wcheck(w1), wcheck(w2))
    if l1.leases and l2.leases:
        row(f"lease: grants/s ({GRANT_CONCURRENCY} concurrent)", l1.grants_per_s,
            l2.grants_per_s, ",.0f")
        row("lease: server CPU us per grant", l1.cpu_us_per_grant, l2.cpu_us_per_grant, ",.0f")
        row("lease: keepalives/s", l1.keepalives_per_s, l2.keepalives_per_s, ",.0f")
        row("lease: keepalive p50 (ms)", l1.latency_ms(50), l2.latency_ms(50), ",.2f")
        row("lease: keepalive p99 (ms)", l1.latency_ms(99), l2.latency_ms(99), ",.2f")
        row("lease: server CPU us per keepalive", l1.cpu_us_per_keepalive,
            l2.cpu_us_per_keepalive, ",.0f")
        row("lease: same, net of the idle cluster's CPU", l1.net_cpu_us_per_keepalive,
            l2.net_cpu_us_per_keepalive, ",.0f")
        row("lease: longest gap between renewals of a lease (s)", l1.max_gap_s, l2.max_gap_s,
            ",.1f")
        check("lease: LeaseLeases per member at the end", lcheck(l1), lcheck(l2))
    return "\n".join(rows)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer watchers, puts and leases")
    ap.add_argument("--watchers", type=int, help="watchers on the prefix [1000; quick 300]")
    ap.add_argument("--streams", type=int, help="Watch streams [10; quick 3]")
    ap.add_argument("--put-rate", type=rates,
                    help="puts per second while watched, comma-separated [10,50; quick 20]")
    ap.add_argument("--fan-out-s", type=float, help="seconds of puts per rate [15; quick 10]")
    ap.add_argument("--baseline-s", type=float,
                    help="seconds of puts alone per rate [5; quick 4]")
    ap.add_argument("--drain-s", type=float, default=20.0,
                    help="most seconds to wait for the last events after the last put [20]")
    ap.add_argument("--leases", type=int, help="leases granted [10000; quick 2000]")
    ap.add_argument("--ttl", type=int, help="lease TTL in seconds [20; quick 10]")
    ap.add_argument("--ka-streams", type=int, default=20, help="LeaseKeepAlive streams [20]")
    ap.add_argument("--ka-rate", type=float,
                    help="keepalives per second, all streams [1000; quick 500]")
    ap.add_argument("--ka-duration", type=float, help="seconds of keepalives [45; quick 15]")
    ap.add_argument("--idle-s", type=float, default=3.0,
                    help="seconds of measuring the idle cluster's CPU [3]")
    ap.add_argument("--skip-watch", action="store_true")
    ap.add_argument("--skip-lease", action="store_true")
    ap.add_argument("--only", choices=("kvstore", "etcd"), help="run one system only")
    ap.add_argument("--keep", action="store_true", help="keep the tmp data dirs and logs")
    ap.add_argument("--profile", metavar="DIR",
                    help="run the kvstore members under cProfile, write DIR/<member>.prof")
    args = ap.parse_args()
    q = args.quick
    defaults: dict[str, object] = {
        "watchers": 300 if q else 1000,
        "streams": 3 if q else 10,
        "put_rate": [20.0] if q else [10.0, 50.0],
        "fan_out_s": 10.0 if q else 15.0,
        "baseline_s": 4.0 if q else 5.0,
        "leases": 2000 if q else 10_000,
        "ttl": 10 if q else 20,
        "ka_rate": 500.0 if q else 1000.0,
        "ka_duration": 15.0 if q else 45.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main() -> int:
    args = parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    started = time.perf_counter()
    print(f"machine: {machine()}")
    rate_list = ", ".join(f"{r:g}" for r in args.put_rate)
    print(
        f"watch: {args.watchers:,} watchers on {PREFIX.decode()} over {args.streams} streams, "
        f"puts at {rate_list}/s for {args.fan_out_s:g} s each (after {args.baseline_s:g} s "
        f"of the same puts alone); lease: {args.leases:,} leases TTL {args.ttl} s, "
        f"keepalives at {args.ka_rate:g}/s over {args.ka_streams} streams for "
        f"{args.ka_duration:g} s; heartbeat {HEARTBEAT_MS} ms, election {ELECTION_MS} ms",
        flush=True,
    )
    cycle = args.leases / args.ka_rate
    if cycle > args.ttl / 2:
        print(f"warning: each lease is renewed every {cycle:.1f} s, more than TTL/2",
              file=sys.stderr)
    kinds: list[Kind] = [args.only] if args.only else ["kvstore", "etcd"]
    reports: dict[Kind, Report] = {}
    try:
        for kind in kinds:
            reports[kind] = bench_one(kind, args)
    except KeyboardInterrupt:
        print("interrupted; clusters stopped", file=sys.stderr)
        return 130
    print(f"\ntotal {time.perf_counter() - started:.0f} s\n")
    if len(reports) == 2:
        print(table(reports["kvstore"], reports["etcd"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
