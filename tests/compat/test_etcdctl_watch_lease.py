"""etcdctl 3.4's watch and lease commands print the same against kvstore as
against etcd 3.4 for the same history (see compare.py for what is
normalised: IDs, and remaining TTLs, which depend on timing)."""

from __future__ import annotations

import re
import selectors
import subprocess
import time
from collections.abc import Sequence

import pytest

from tests.compat.compare import Pair, normalise, start_pair
from tests.procs import ETCDCTL, Cluster, CtlResult, Launcher, child_env, hostport, require_binary

WATCH_DEADLINE_S = 15.0


@pytest.fixture
def pair(launch: Launcher) -> Pair:
    require_binary("etcdctl", "etcd-client")
    require_binary("etcd", "etcd-server")
    return start_pair(launch)


def run_until(
    cluster: Cluster, args: Sequence[str], sentinel: str, stdin_line: str | None = None
) -> CtlResult:
    """Run a long-running etcdctl command (watch, keep-alive) until its
    output shows `sentinel`, then stop it. With `stdin_line`, the line is
    typed and stdin stays open (interactive watch exits at end of input)."""
    assert ETCDCTL is not None
    argv = [ETCDCTL, "--endpoints=" + ",".join(hostport(e) for e in cluster.endpoints())]
    argv += args
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env({"ETCDCTL_API": "3"}),
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = b""
    try:
        if stdin_line is not None:
            proc.stdin.write(stdin_line.encode() + b"\n")
            proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + WATCH_DEADLINE_S
        # Stop only once the sentinel's whole line has been printed.
        while not _printed(out, sentinel.encode()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"watch never printed {sentinel!r}; got:\n{out.decode()}")
            if sel.select(timeout=left):
                chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
                if not chunk:
                    break
                out += chunk
    finally:
        proc.kill()
        _, err = proc.communicate()
    return CtlResult(tuple(args), 0, out.decode(), err.decode())


def _printed(out: bytes, sentinel: bytes) -> bool:
    at = out.find(sentinel)
    return at >= 0 and b"\n" in out[at:]


def watch_until(
    cluster: Cluster, args: Sequence[str], sentinel: str, stdin_line: str | None = None
) -> CtlResult:
    return run_until(cluster, ("watch", *args), sentinel, stdin_line)


HISTORY: tuple[tuple[str, ...], ...] = (
    ("put", "w/a", "1"),
    ("put", "w/b", "2"),
    ("put", "other", "x"),
    ("put", "w/a", "3"),
    ("del", "w/b"),
    ("put", "w/c", "4"),
)


def write_history(pair: Pair) -> None:
    for cmd in HISTORY:
        pair.check(*cmd)
    pair.check("txn", stdin='\nput w/d 5\nput w/e 6\n\n\n')
    pair.check("put", "w/zz", "END")


@pytest.mark.parametrize(
    ("args", "sentinel"),
    [
        (("w/", "--prefix", "--rev", "2"), "END"),
        (("w/", "--prefix", "--rev", "2", "--prev-kv"), "END"),
        (("w/a", "--rev", "1"), "3"),
        (("w/", "--prefix", "--rev", "3", "-w", "json"), "RU5E"),
        (("w/b", "w/zzz", "--rev", "2"), "END"),
    ],
)
def test_watch_history_prints_as_etcd_does(
    pair: Pair, args: tuple[str, ...], sentinel: str
) -> None:
    write_history(pair)
    ref = watch_until(pair.etcd, args, sentinel)
    sub = watch_until(pair.subject, args, sentinel)
    assert normalise(sub, pair.subject) == normalise(ref, pair.etcd), (
        f"etcd:\n{ref.stdout}\nkvstore:\n{sub.stdout}"
    )


def test_interactive_watch_prints_as_etcd_does(pair: Pair) -> None:
    write_history(pair)
    line = "watch w/ --prefix --rev 2 --prev-kv"
    ref = watch_until(pair.etcd, ("-i",), "END", stdin_line=line)
    sub = watch_until(pair.subject, ("-i",), "END", stdin_line=line)
    assert normalise(sub, pair.subject) == normalise(ref, pair.etcd), (
        f"etcd:\n{ref.stdout}\nkvstore:\n{sub.stdout}"
    )


def lease_session(cluster: Cluster) -> list[CtlResult]:
    """Grant, attach, inspect, keep alive, list, revoke, then ask about the
    revoked lease: every step's output, for comparison."""
    from tests.procs import etcdctl

    eps = cluster.endpoints()
    out = [etcdctl(eps, "lease", "grant", "100")]
    match = re.search(r"lease ([0-9a-f]+) granted", out[0].stdout)
    assert match, out[0].describe()
    lease = match.group(1)
    out.append(etcdctl(eps, "put", "lk", "v", "--lease=" + lease))
    out.append(etcdctl(eps, "put", "lk2", "v", "--lease=" + lease))
    out.append(etcdctl(eps, "get", "lk", "-w", "json"))
    out.append(etcdctl(eps, "lease", "timetolive", lease, "--keys"))
    out.append(etcdctl(eps, "lease", "timetolive", lease, "--keys", "-w", "json"))
    out.append(etcdctl(eps, "lease", "keep-alive", "--once", lease))
    out.append(etcdctl(eps, "lease", "list"))
    out.append(run_until(cluster, ("lease", "keep-alive", lease), "keepalived"))
    out.append(etcdctl(eps, "lease", "revoke", lease))
    out.append(etcdctl(eps, "get", "lk", "--prefix"))
    out.append(etcdctl(eps, "lease", "timetolive", lease))
    out.append(etcdctl(eps, "lease", "keep-alive", "--once", lease))
    out.append(etcdctl(eps, "lease", "revoke", lease))
    out.append(etcdctl(eps, "put", "lk", "v", "--lease=" + lease))
    out.append(etcdctl(eps, "lease", "list"))
    return out


def test_lease_commands_print_as_etcd_does(pair: Pair) -> None:
    ref = lease_session(pair.etcd)
    sub = lease_session(pair.subject)
    printed = "".join(r.stdout for r in sub)
    for step in ("granted with TTL(100s)", "attached keys([lk lk2])", "keepalived with TTL(100)"):
        assert step in printed, printed
    assert "revoked" in sub[9].stdout and not sub[10].stdout.strip()
    for r, s in zip(ref, sub, strict=True):
        assert normalise(s, pair.subject) == normalise(r, pair.etcd), (
            f"$ etcdctl {' '.join(r.args)}\netcd:\n{r.stdout}{r.error_lines}\n"
            f"kvstore:\n{s.stdout}{s.error_lines}"
        )
