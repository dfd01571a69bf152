"""Start and stop a 3-member kvstore or etcd cluster on loopback for benchmarks.

Ports come from the kernel (bind 127.0.0.1:0), data lives in a temporary
directory, each member logs to <tmp>/<name>.log. Members run in their own
session so a Ctrl-C in the terminal reaches only the benchmark, which then
stops them by PID: SIGTERM, then SIGKILL after a bound. Nothing is ever
signalled by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["kvstore", "etcd"]

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"

_handed_out: set[int] = set()


class LaunchError(RuntimeError):
    """A member did not start or did not become healthy in time."""


def free_port() -> int:
    """A port on 127.0.0.1 the kernel says is free, never handed out twice by
    this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise LaunchError("no free port")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without KVSTORE_/ETCD* settings and without proxies
    (gRPC honours *_proxy even for loopback)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KVSTORE_", "ETCD_", "ETCDCTL_")) and "proxy" not in k.lower()
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


def kvstore_argv(profile_to: Path | None = None) -> list[str]:
    if profile_to is not None:
        return [
            sys.executable, "-m", "cProfile", "-o", str(profile_to),
            "-m", "kvstore.cli.main", "serve",
        ]
    script = Path(sys.executable).with_name("kvstore")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "kvstore.cli.main", "serve"]


def etcdctl(
    endpoints: list[str], *args: str, timeout: float = 30.0, command_timeout: str = "5s"
) -> subprocess.CompletedProcess[str]:
    argv = [
        ETCDCTL,
        "--endpoints=" + ",".join(endpoints),
        "--dial-timeout=2s",
        f"--command-timeout={command_timeout}",
        *args,
    ]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env({"ETCDCTL_API": "3"}),
        check=False,
    )


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    kind: Kind
    heartbeat_ms: int = 100
    election_ms: int = 1000
    profile_dir: Path | None = None
    size: int = 3
    root: Path = field(init=False)
    members: list[Member] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"bench-{self.kind}-"))
        self.members = [
            Member(f"m{i}", free_port(), free_port(), self.root / f"m{i}.log")
            for i in range(self.size)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def pids(self) -> list[int]:
        return [m.proc.pid for m in self.members if m.proc is not None]

    def _argv(self, m: Member, initial_cluster: str) -> list[str]:
        flags = {
            "name": m.name,
            "data-dir": str(self.root / f"{m.name}.data"),
            "listen-client-urls": m.client_url,
            "advertise-client-urls": m.client_url,
            "listen-peer-urls": m.peer_url,
            "initial-advertise-peer-urls": m.peer_url,
            "initial-cluster": initial_cluster,
            "initial-cluster-token": f"bench-{self.kind}-{os.getpid()}",
            "initial-cluster-state": "new",
            "heartbeat-interval": str(self.heartbeat_ms),
            "election-timeout": str(self.election_ms),
        }
        if self.kind == "etcd":
            head = [ETCD]
            flags["logger"] = "zap"
            flags["log-level"] = "warn"
        else:
            prof = self.profile_dir / f"{m.name}.prof" if self.profile_dir else None
            head = kvstore_argv(prof)
            flags["log-level"] = "warning"
        return head + [f"--{k}={v}" for k, v in flags.items()]

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            with m.log_path.open("ab") as log:
                m.proc = subprocess.Popen(
                    self._argv(m, initial),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=child_env(),
                    cwd=self.root,
                    start_new_session=True,
                )
        self.wait_healthy(timeout)

    def check_alive(self) -> None:
        for m in self.members:
            if m.proc is not None and m.proc.poll() is not None:
                raise LaunchError(
                    f"{self.kind} {m.name} exited with {m.proc.returncode}:\n{m.log_tail()}"
                )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            res = etcdctl(self.endpoints, "endpoint", "health", command_timeout="2s")
            if res.returncode == 0:
                return
            last = (res.stderr or res.stdout).strip()[-300:]
            time.sleep(0.2)
        raise LaunchError(f"{self.kind} cluster not healthy after {timeout:.0f}s: {last}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every member by PID, SIGKILL those still alive after
        `timeout`, reap them all."""
        running = [m.proc for m in self.members if m.proc is not None and m.proc.poll() is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in running:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout)

    def cleanup(self, keep: bool = False) -> None:
        """Stop, then remove the data and logs (unless `keep`)."""
        try:
            self.stop()
        finally:
            if not keep:
                shutil.rmtree(self.root, ignore_errors=True)
