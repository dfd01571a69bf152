"""Asyncio load generator for the etcd v3 KV API (kvstore or etcd).

N concurrent clients, spread round-robin over the members' endpoints (one
grpc.aio channel per endpoint, shared by that endpoint's clients), each
sending one request at a time. A phase warms up for `warmup_s` without
recording, then measures for `duration_s` or until `max_requests` have been
sent, whichever comes first; every request has a deadline, and the whole
phase is bounded by asyncio.wait_for, so a phase always ends by itself.

Keys are bench/<n> for n in [0, keyspace), values are `value_size` bytes.
Latency is measured per request with time.perf_counter.

Stand-alone use (against a running cluster):

    python benchmarks/loadgen.py --endpoints 127.0.0.1:2379,... --op put
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import grpc
import grpc.aio

from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc

Op = Literal["put", "get", "get-serializable"]
OPS: tuple[Op, ...] = ("put", "get", "get-serializable")

REQUEST_TIMEOUT_S = 5.0
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


def key_of(n: int) -> bytes:
    return b"bench/%d" % n


@dataclass
class PhaseResult:
    op: Op
    clients: int
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    keys_written: int = 0  # puts only: bench/0 .. bench/<keys_written-1> were sent

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def ops_per_s(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile (q in [0, 100]) of the latencies, in ms."""
        if not self.latencies_s:
            return float("nan")
        data = sorted(self.latencies_s)
        rank = max(1, min(len(data), round(q / 100.0 * len(data) + 0.5)))
        return data[rank - 1] * 1000.0

    def summary(self) -> str:
        errs = sum(self.errors.values())
        detail = f" errors={errs} {dict(self.errors)}" if errs else ""
        return (
            f"{self.op:<17} {self.ops_per_s:>9,.0f} ops/s  p50 {self.percentile_ms(50):7.2f} ms"
            f"  p99 {self.percentile_ms(99):7.2f} ms  ({self.ok:,} ok in {self.elapsed_s:.1f} s,"
            f" {self.clients} clients){detail}"
        )


class _Phase:
    """Shared state of one phase: the clock and the request budget."""

    def __init__(self, op: Op, clients: int, warmup_s: float, duration_s: float,
                 max_requests: int) -> None:
        self.op = op
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.max_requests = max_requests
        self.sent = 0
        self.result = PhaseResult(op, clients)
        self.start = 0.0
        self.measure_from = 0.0
        self.stop_at = 0.0

    def begin(self) -> None:
        self.start = time.perf_counter()
        self.measure_from = self.start + self.warmup_s
        self.stop_at = self.measure_from + self.duration_s

    def take(self, now: float) -> bool:
        """May a client send another request? (False once time or budget is up.)"""
        if now >= self.stop_at or self.sent >= self.max_requests:
            return False
        if now >= self.measure_from:
            self.sent += 1
        return True


async def _client(
    stub: rpc_pb2_grpc.KVStub,
    phase: _Phase,
    keys: itertools.count[int],
    keyspace: int,
    readable: int,
    value: bytes,
    rng: random.Random,
) -> None:
    res = phase.result
    while True:
        start = time.perf_counter()
        if not phase.take(start):
            return
        try:
            if phase.op == "put":
                await stub.Put(
                    rpc_pb2.PutRequest(key=key_of(next(keys) % keyspace), value=value),
                    timeout=REQUEST_TIMEOUT_S,
                )
            else:
                await stub.Range(
                    rpc_pb2.RangeRequest(
                        key=key_of(rng.randrange(readable)),
                        serializable=phase.op == "get-serializable",
                    ),
                    timeout=REQUEST_TIMEOUT_S,
                )
        except grpc.aio.AioRpcError as exc:
            if start >= phase.measure_from:
                res.errors[exc.code().name] += 1
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                await asyncio.sleep(0.05)  # do not spin on a member that is down
            continue
        end = time.perf_counter()
        if start >= phase.measure_from:
            res.latencies_s.append(end - start)


async def run_phase(
    endpoints: list[str],
    op: Op,
    *,
    clients: int = 32,
    warmup_s: float = 2.0,
    duration_s: float = 10.0,
    max_requests: int = 1_000_000,
    keyspace: int = 10_000,
    readable: int | None = None,
    value_size: int = 256,
    seed: int = 1,
) -> PhaseResult:
    """Run one phase of `op` and return its result. Gets pick keys uniformly
    from bench/0 .. bench/<readable-1> (default: the whole keyspace)."""
    channels = [grpc.aio.insecure_channel(ep, options=CHANNEL_OPTIONS) for ep in endpoints]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(ch.channel_ready() for ch in channels)), REQUEST_TIMEOUT_S
        )
        stubs = [rpc_pb2_grpc.KVStub(ch) for ch in channels]
        phase = _Phase(op, clients, warmup_s, duration_s, max_requests)
        keys = itertools.count()
        value = os.urandom(value_size // 2).hex().encode()[:value_size].ljust(value_size, b"x")
        rng = random.Random(seed)
        phase.begin()
        tasks = [
            asyncio.create_task(
                _client(stubs[i % len(stubs)], phase, keys, keyspace, readable or keyspace,
                        value, random.Random(rng.random()))
            )
            for i in range(clients)
        ]
        bound = warmup_s + duration_s + REQUEST_TIMEOUT_S + 5.0
        try:
            await asyncio.wait(tasks, timeout=bound)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        end = min(time.perf_counter(), phase.stop_at + REQUEST_TIMEOUT_S)
        # The measured window ends at the clock or when the budget ran out,
        # whichever came first; in-flight requests finish inside it.
        phase.result.elapsed_s = max(1e-9, end - phase.measure_from)
        if op == "put":
            phase.result.keys_written = min(keyspace, next(keys))
        return phase.result
    finally:
        await asyncio.gather(*(ch.close() for ch in channels), return_exceptions=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoints", required=True, help="host:port,host:port,...")
    ap.add_argument("--op", choices=OPS, action="append", help="repeatable; default all")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--keyspace", type=int, default=10_000)
    ap.add_argument("--value-size", type=int, default=256)
    args = ap.parse_args()
    eps = [e.strip() for e in args.endpoints.split(",") if e.strip()]

    async def go() -> None:
        for op in args.op or OPS:
            res = await run_phase(
                eps, op, clients=args.clients, warmup_s=args.warmup,
                duration_s=args.duration, keyspace=args.keyspace,
                value_size=args.value_size,
            )
            print(res.summary(), flush=True)

    asyncio.run(go())


if __name__ == "__main__":
    main()
