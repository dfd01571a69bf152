"""kvstore vs etcd 3.4: the same load against a 3-member cluster of each.

    .venv/bin/python benchmarks/compare_etcd.py                # full run, ~4-5 min
    .venv/bin/python benchmarks/compare_etcd.py --quick        # < 1 min, no check perf
    .venv/bin/python benchmarks/compare_etcd.py --duration 30 --clients 64

Starts a 3-member kvstore cluster on loopback (free ports, a tmp data dir,
--heartbeat-interval 100 --election-timeout 1000), runs the load generator
(benchmarks/loadgen.py: put, linearizable get, serializable get) and
`etcdctl check perf --load=s`, stops the cluster by PID; then does the same
with etcd. Only one cluster runs at a time. Prints ops/s, p50 and p99 per
operation and the ratio kvstore/etcd. The load generator runs in this
process, so it shares the machine's cores with the cluster under test.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from launcher import ETCD, Cluster, Kind, etcdctl
from loadgen import OPS, Op, PhaseResult, run_phase

CHECK_PERF_TIMEOUT_S = 150.0
HEARTBEAT_MS = 100
ELECTION_MS = 1000


@dataclass
class CheckPerf:
    ok: bool
    lines: list[str]
    writes_per_s: float | None


@dataclass
class Report:
    kind: Kind
    startup_s: float = 0.0
    phases: dict[Op, PhaseResult] = field(default_factory=dict)
    check_perf: CheckPerf | None = None


def check_perf(endpoints: list[str]) -> CheckPerf:
    """`etcdctl check perf --load=s` (60 s of writes at 150/s by design)."""
    try:
        res = etcdctl(
            endpoints, "check", "perf", "--load=s",
            timeout=CHECK_PERF_TIMEOUT_S, command_timeout="10s",
        )
    except subprocess.TimeoutExpired:
        why = f"check perf did not finish in {CHECK_PERF_TIMEOUT_S:.0f} s"
        return CheckPerf(False, [why], None)
    # The progress bar redraws with \r and ANSI escapes: drop them first.
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", res.stdout + "\n" + res.stderr)
    lines = [m.group(0).strip() for m in re.finditer(r"(?:PASS|FAIL)[^\r\n]*", text)]
    if not lines:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()][-3:]
    m = re.search(r"Throughput is (\d+(?:\.\d+)?) writes/s", text)
    return CheckPerf(res.returncode == 0, lines, float(m.group(1)) if m else None)


async def run_load(endpoints: list[str], args: argparse.Namespace) -> dict[Op, PhaseResult]:
    results: dict[Op, PhaseResult] = {}
    readable = args.keyspace
    for op in OPS:
        res = await run_phase(
            endpoints, op, clients=args.clients, warmup_s=args.warmup,
            duration_s=args.duration, max_requests=args.max_requests,
            keyspace=args.keyspace, readable=readable, value_size=256,
        )
        if op == "put":
            readable = max(1, res.keys_written)
        print(f"  {res.summary()}", flush=True)
        results[op] = res
    return results


def bench_one(kind: Kind, args: argparse.Namespace) -> Report:
    profile_dir = Path(args.profile).resolve() if args.profile and kind == "kvstore" else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(kind, HEARTBEAT_MS, ELECTION_MS, profile_dir=profile_dir)
    report = Report(kind)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {kind}: 3 members, data and logs in {cluster.root} (load average {load})",
          flush=True)
    try:
        t0 = time.perf_counter()
        cluster.start()
        report.startup_s = time.perf_counter() - t0
        print(f"  healthy after {report.startup_s:.1f} s, pids {cluster.pids()}", flush=True)
        report.phases = asyncio.run(run_load(cluster.endpoints, args))
        cluster.check_alive()
        if not args.no_check_perf:
            print("  etcdctl check perf --load=s (60 s) ...", flush=True)
            report.check_perf = check_perf(cluster.endpoints)
            for ln in report.check_perf.lines:
                print(f"    {ln}", flush=True)
    finally:
        cluster.cleanup(keep=args.keep)
        print(f"  stopped {kind}" + (f" (kept {cluster.root})" if args.keep else ""), flush=True)
    return report


def fmt(x: float, spec: str) -> str:
    return "-" if math.isnan(x) else format(x, spec)


def ratio(a: float, b: float) -> str:
    return "-" if b == 0 or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}x"


def table(kv: Report, et: Report) -> str:
    rows = [
        "| operation | kvstore ops/s | etcd ops/s | ratio | kvstore p50 ms | etcd p50 ms | ratio"
        " | kvstore p99 ms | etcd p99 ms | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"put": "put", "get": "get (linearizable)", "get-serializable": "get (serializable)"}
    for op in OPS:
        a, b = kv.phases.get(op), et.phases.get(op)
        if a is None or b is None:
            continue
        cells = [
            names[op],
            f"{a.ops_per_s:,.0f}", f"{b.ops_per_s:,.0f}", ratio(a.ops_per_s, b.ops_per_s),
        ]
        for q in (50.0, 99.0):
            pa, pb = a.percentile_ms(q), b.percentile_ms(q)
            cells += [fmt(pa, ".2f"), fmt(pb, ".2f"), ratio(pa, pb)]
        rows.append("| " + " | ".join(cells) + " |")
    errs = [
        f"{r.kind} {op}: {dict(p.errors)}" for r in (kv, et) for op, p in r.phases.items()
        if p.errors
    ]
    if errs:
        rows.append("")
        rows.append("errors (not counted in ops/s): " + "; ".join(errs))
    return "\n".join(rows)


def check_perf_table(kv: Report, et: Report) -> str:
    rows = ["| `etcdctl check perf --load=s` | kvstore | etcd |", "|---|---|---|"]
    a, b = kv.check_perf, et.check_perf
    if a is None or b is None:
        return ""

    def tp(c: CheckPerf) -> str:
        return "-" if c.writes_per_s is None else f"{c.writes_per_s:.0f} writes/s"

    rows.append(f"| throughput | {tp(a)} | {tp(b)} |")
    for i in range(max(len(a.lines), len(b.lines))):
        la = a.lines[i] if i < len(a.lines) else ""
        lb = b.lines[i] if i < len(b.lines) else ""
        rows.append(f"| | {la} | {lb} |")
    return "\n".join(rows)


def machine() -> str:
    model = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    etcd_version = "?"
    try:
        out = subprocess.run([ETCD, "--version"], capture_output=True, text=True, timeout=10)
        etcd_version = out.stdout.splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        pass
    return (
        f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()},"
        f" etcd {etcd_version}, {datetime.date.today().isoformat()}"
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short phases, smaller keyspace, no check perf (< 1 minute)")
    ap.add_argument("--duration", type=float, help="measured seconds per phase [20; quick 4]")
    ap.add_argument("--warmup", type=float, help="warm-up seconds per phase [2; quick 1]")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients [32]")
    ap.add_argument("--keyspace", type=int, help="distinct keys bench/<n> [10000; quick 2000]")
    ap.add_argument("--max-requests", type=int, default=1_000_000,
                    help="most measured requests per phase [1000000]")
    ap.add_argument("--no-check-perf", action="store_true", help="skip etcdctl check perf")
    ap.add_argument("--only", choices=("kvstore", "etcd"), help="run one system only")
    ap.add_argument("--profile", metavar="DIR",
                    help="run the kvstore members under cProfile, write DIR/<member>.prof")
    ap.add_argument("--keep", action="store_true", help="keep the tmp data dirs and logs")
    args = ap.parse_args()
    if args.duration is None:
        args.duration = 4.0 if args.quick else 20.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    if args.keyspace is None:
        args.keyspace = 2_000 if args.quick else 10_000
    if args.quick:
        args.no_check_perf = True

    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored
        signal.signal(sig, _raise_interrupt)
    started = time.perf_counter()
    print(f"machine: {machine()}")
    print(
        f"load: {args.clients} clients over 3 endpoints, 256-byte values, keys bench/<n> "
        f"(n < {args.keyspace}), {args.warmup:g} s warm-up + {args.duration:g} s per phase, "
        f"heartbeat {HEARTBEAT_MS} ms, election {ELECTION_MS} ms",
        flush=True,
    )
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
        cp = check_perf_table(reports["kvstore"], reports["etcd"])
        if cp:
            print()
            print(cp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
