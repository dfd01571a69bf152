"""Real processes for tests: kvstore and etcd clusters on loopback, and etcdctl.

Every port comes from the kernel (bind port 0 on 127.0.0.1) and is then
reserved in a shared directory, so two pytest-xdist workers never hand out
the same port while both are alive. Each process writes its stdout and
stderr to ``<tmp_path>/<name>.log``; `Launcher.log_tails` returns the tail
of every log so a failing test can show what the processes said.

Readiness is always polled with a deadline (`wait_until`); nothing here
sleeps to synchronise. Processes are signalled by PID only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

Kind = Literal["kvstore", "etcd"]

# Fast Raft timing for tests, the same for etcd and kvstore.
HEARTBEAT_MS = 50
ELECTION_MS = 500

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
ETCDCTL_TIMEOUT_S = 30.0

ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")

_PORT_DIR = Path(tempfile.gettempdir()) / "kvstore-test-ports"
_PORT_LEASE_S = 30 * 60.0

T = TypeVar("T")


class ProcError(RuntimeError):
    """A process did not start, stop or answer as the test needed."""


# ---------------------------------------------------------------------------
# Ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on and that no other test
    process of this machine has reserved in the last half hour."""
    _PORT_DIR.mkdir(parents=True, exist_ok=True)
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        marker = _PORT_DIR / str(port)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - marker.stat().st_mtime > _PORT_LEASE_S:
                    marker.unlink()
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return port
    raise ProcError("could not find a free port")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def hostport(url: str) -> str:
    """http://127.0.0.1:1234 -> 127.0.0.1:1234"""
    return url.split("://", 1)[-1].rstrip("/")


# ---------------------------------------------------------------------------
# Polling


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Call `check` until it returns something other than None/False, or
    fail after `timeout` seconds saying what we waited for."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except ProcError:
            raise
        except Exception as exc:  # the condition is not true yet
            last_error = exc
            result = None
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ProcError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# etcdctl


@dataclass(frozen=True, slots=True)
class CtlResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """etcdctl's own error lines ("Error: ..."), without the client
        library's JSON log lines that carry random client IDs."""
        return [ln for ln in self.stderr.splitlines() if ln.startswith("Error")]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"$ etcdctl {' '.join(self.args)}\n"
            f"exit {self.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: no inherited KVSTORE_/ETCD* settings and
    no proxies (gRPC honours *_proxy variables even for loopback)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KVSTORE_", "ETCD_", "ETCDCTL_")) and "proxy" not in k.lower()
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


def etcdctl(
    endpoints: str | Sequence[str],
    *args: str,
    stdin: str | bytes | None = None,
    command_timeout: str = "5s",
    timeout: float = ETCDCTL_TIMEOUT_S,
) -> CtlResult:
    """Run etcdctl (API v3) against `endpoints` (host:port or URLs)."""
    if ETCDCTL is None:
        raise ProcError("etcdctl is not installed")
    eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    argv = [
        ETCDCTL,
        "--endpoints=" + ",".join(hostport(e) for e in eps),
        "--dial-timeout=2s",
        f"--command-timeout={command_timeout}",
        *args,
    ]
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        argv,
        input=data,
        capture_output=True,
        timeout=timeout,
        env=child_env({"ETCDCTL_API": "3"}),
        check=False,
    )
    return CtlResult(
        tuple(args),
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


# ---------------------------------------------------------------------------
# Members and clusters


def kvstore_argv() -> list[str]:
    script = Path(sys.executable).with_name("kvstore")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "kvstore.cli.main", "serve"]


@dataclass
class Member:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    log_path: Path
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def endpoint(self) -> str:
        return hostport(self.client_url)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise ProcError(f"{self.name} is already running")
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"=== start #{self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=self.cwd,
            )

    def signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise ProcError(f"{self.name} is not running")
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        if self.proc is None:
            raise ProcError(f"{self.name} was never started")
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise ProcError(f"{self.name} (pid {self.proc.pid}) did not exit") from exc

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the
        exit code (None if it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    kind: Kind
    members: list[Member]
    token: str

    # -- lookup ------------------------------------------------------------

    def __getitem__(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def endpoints(self, names: Iterable[str] | None = None) -> list[str]:
        chosen = self.names if names is None else list(names)
        return [self[n].endpoint for n in chosen]

    def running(self) -> list[Member]:
        return [m for m in self.members if m.running]

    # -- processes ---------------------------------------------------------

    def start_all(self) -> None:
        for m in self.members:
            m.start()
        self.wait_ready()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to the member's PID and wait for it to exit."""
        member = self[name]
        member.signal(sig)
        return member.wait_exit()

    def restart(self, name: str, wait: bool = True) -> Member:
        member = self[name]
        if member.running:
            member.stop()
        member.start()
        if wait:
            self.wait_ready([name])
        return member

    def stop_all(self, sig: int = signal.SIGTERM) -> dict[str, int | None]:
        """Signal every running member at once, then wait for each (SIGKILL
        after STOP_TIMEOUT_S). Returns the exit codes."""
        codes: dict[str, int | None] = {}
        for m in self.members:
            if m.running and m.proc is not None:
                os.kill(m.proc.pid, sig)
        for m in self.members:
            codes[m.name] = m.stop()
        return codes

    # -- readiness ---------------------------------------------------------

    def check_alive(self, names: Iterable[str] | None = None) -> None:
        chosen = self.names if names is None else list(names)
        for n in chosen:
            m = self[n]
            if m.proc is not None and m.proc.poll() is not None:
                raise ProcError(
                    f"{self.kind} member {n} exited with {m.proc.returncode}:\n{m.log_tail()}"
                )

    def healthy(self, names: Iterable[str] | None = None) -> bool:
        chosen = self.names if names is None else list(names)
        self.check_alive(chosen)
        res = etcdctl(self.endpoints(chosen), "endpoint", "health", command_timeout="2s")
        return res.returncode == 0

    def wait_ready(
        self, names: Iterable[str] | None = None, timeout: float = START_TIMEOUT_S
    ) -> None:
        chosen = self.names if names is None else list(names)
        wait_until(
            lambda: self.healthy(chosen),
            timeout,
            f"{self.kind} members {chosen} to be healthy",
        )

    def status(self, name: str) -> dict[str, Any]:
        res = etcdctl(self[name].endpoint, "endpoint", "status", "-w", "json")
        if res.returncode != 0:
            raise ProcError(res.describe())
        status: dict[str, Any] = res.json()[0]["Status"]
        return status

    def leader(self, names: Iterable[str] | None = None) -> str | None:
        """The name of the member that all the given members agree leads,
        or None while they do not agree (or one does not answer)."""
        chosen = [m.name for m in self.running()] if names is None else list(names)
        ids = {}
        leaders = set()
        for n in chosen:
            st = self.status(n)
            ids[st["header"]["member_id"]] = n
            leaders.add(st.get("leader", 0))
        if len(leaders) != 1:
            return None
        return ids.get(leaders.pop())

    def wait_leader(self, names: Iterable[str] | None = None, timeout: float = 20.0) -> str:
        chosen = None if names is None else list(names)
        return wait_until(lambda: self.leader(chosen), timeout, f"{self.kind} leader")

    def hashkv(self, name: str, rev: int = 0) -> dict[str, Any]:
        args = ["endpoint", "hashkv", "-w", "json"]
        if rev:
            args.append(f"--rev={rev}")
        res = etcdctl(self[name].endpoint, *args)
        if res.returncode != 0:
            raise ProcError(res.describe())
        out: dict[str, Any] = res.json()[0]["HashKV"]
        return out

    def ctl(
        self, *args: str, member: str | None = None, stdin: str | bytes | None = None
    ) -> CtlResult:
        eps = self.endpoints([member]) if member else self.endpoints([self.members[0].name])
        return etcdctl(eps, *args, stdin=stdin)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"----- {self.kind} {m.name} (pid {m.pid}) {m.log_path}\n{m.log_tail(lines)}"
            for m in self.members
        )


def _flag_args(flags: Mapping[str, object]) -> list[str]:
    out = []
    for key, value in flags.items():
        out.append(f"--{key.replace('_', '-')}={value}")
    return out


def make_cluster(
    kind: Kind,
    n: int,
    tmp_path: Path,
    *,
    prefix: str = "",
    token: str | None = None,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Cluster:
    """Describe (not start) an n-member cluster with fresh ports and data
    dirs under `tmp_path/<prefix><kind>`."""
    base = tmp_path / f"{prefix}{kind}"
    base.mkdir(parents=True, exist_ok=True)
    names = [f"n{i + 1}" for i in range(n)]
    clients = {nm: f"http://127.0.0.1:{free_port()}" for nm in names}
    peers = {nm: f"http://127.0.0.1:{free_port()}" for nm in names}
    initial = ",".join(f"{nm}={peers[nm]}" for nm in names)
    token = token or f"tok-{base.name}-{os.getpid()}"
    members = []
    for nm in names:
        data_dir = base / f"{nm}.data"
        common = {
            "name": nm,
            "data-dir": str(data_dir),
            "listen-client-urls": clients[nm],
            "advertise-client-urls": clients[nm],
            "listen-peer-urls": peers[nm],
            "initial-advertise-peer-urls": peers[nm],
            "initial-cluster": initial,
            "initial-cluster-state": "new",
            "initial-cluster-token": token,
            "heartbeat-interval": HEARTBEAT_MS,
            "election-timeout": ELECTION_MS,
        }
        if kind == "etcd":
            if ETCD is None:
                raise ProcError("etcd is not installed")
            argv = [ETCD, *_flag_args(common), "--logger=zap", "--log-outputs=stderr"]
        else:
            argv = [*kvstore_argv(), *_flag_args(common)]
        argv += _flag_args(flags or {})
        members.append(
            Member(
                name=nm,
                client_url=clients[nm],
                peer_url=peers[nm],
                data_dir=data_dir,
                log_path=base / f"{nm}.log",
                argv=argv,
                env=child_env(env),
                cwd=base,
            )
        )
    return Cluster(kind, members, token)


@dataclass
class Launcher:
    """Starts clusters for one test and stops every process it started."""

    tmp_path: Path
    clusters: list[Cluster] = field(default_factory=list)

    def cluster(self, kind: Kind, n: int = 1, *, start: bool = True, **kw: Any) -> Cluster:
        kw.setdefault("prefix", f"c{len(self.clusters)}-")
        c = make_cluster(kind, n, self.tmp_path, **kw)
        self.clusters.append(c)
        if start:
            c.start_all()
        return c

    def kvstore(self, n: int = 1, *, start: bool = True, **flags: object) -> Cluster:
        return self.cluster("kvstore", n, start=start, flags=flags)

    def etcd(self, n: int = 1, *, start: bool = True, **flags: object) -> Cluster:
        return self.cluster("etcd", n, start=start, flags=flags)

    def kvstore_with(
        self,
        args: Sequence[str],
        *,
        client_url: str,
        peer_url: str,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str = "default",
    ) -> Cluster:
        """One kvstore member started with exactly `args` (and `env`), for
        tests of the command line itself. Not started yet."""
        base = self.tmp_path / f"c{len(self.clusters)}-kvstore"
        base.mkdir(parents=True, exist_ok=True)
        member = Member(
            name=name,
            client_url=client_url,
            peer_url=peer_url,
            data_dir=data_dir,
            log_path=base / f"{name}.log",
            argv=[*kvstore_argv(), *args],
            env=child_env(env),
            cwd=cwd or base,
        )
        c = Cluster("kvstore", [member], token="")
        self.clusters.append(c)
        return c

    def start_together(self, *clusters: Cluster) -> None:
        """Start several clusters at once and wait for all of them."""
        for c in clusters:
            for m in c.members:
                m.start()
        for c in clusters:
            c.wait_ready()

    def stop_all(self) -> None:
        for c in self.clusters:
            # etcd is only the reference: a 3-member etcd spends seconds on
            # a graceful stop, so it gets SIGKILL. kvstore gets SIGTERM.
            sig = signal.SIGKILL if c.kind == "etcd" else signal.SIGTERM
            with contextlib.suppress(Exception):
                c.stop_all(sig)
        # Last resort: anything still alive gets SIGKILL by its PID.
        for c in self.clusters:
            for m in c.members:
                if m.proc is not None and m.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(m.proc.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        m.proc.wait(STOP_TIMEOUT_S)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(c.log_tails(lines) for c in self.clusters)


def start_kvstore_cluster(n: int, tmp_path: Path, **flags: object) -> Cluster:
    """Start an n-member kvstore cluster and wait until every member is
    healthy. The caller owns it: call `stop_all()`."""
    c = make_cluster("kvstore", n, tmp_path, flags=flags)
    try:
        c.start_all()
    except BaseException:
        c.stop_all()
        raise
    return c


def start_etcd_cluster(n: int, tmp_path: Path) -> Cluster:
    """Start an n-member etcd cluster with the same fast timing."""
    c = make_cluster("etcd", n, tmp_path)
    try:
        c.start_all()
    except BaseException:
        c.stop_all()
        raise
    return c


# ---------------------------------------------------------------------------
# pytest glue shared by tests/compat and tests/integration conftests

REQUIRE_ENV = "KVSTORE_REQUIRE_COMPAT"
_LAUNCHER_KEY = pytest.StashKey[Launcher]()


def require_binary(binary: str, package: str) -> str:
    """The path of `binary`, or skip with a reason "requires <binary> ..."
    (the conftest hook turns that skip into a failure under CI)."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"requires {binary} (Debian package {package})")
    return path


def launcher(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Launcher]:
    """Body of the `launch` fixture: every process started through it is
    stopped at the end of the test, whatever happened."""
    launch = Launcher(tmp_path)
    request.node.stash[_LAUNCHER_KEY] = launch
    try:
        yield launch
    finally:
        launch.stop_all()


def on_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """Attach the processes' log tails to a failing report, and under
    KVSTORE_REQUIRE_COMPAT=1 turn a "requires ..." skip into a failure."""
    if report.failed:
        launch = item.stash.get(_LAUNCHER_KEY, None)
        if launch is not None and launch.clusters:
            report.sections.append(("process logs (tails)", launch.log_tails()))
    if report.skipped and os.environ.get(REQUIRE_ENV) and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if "requires " in reason:
            report.outcome = "failed"
            report.longrepr = f"{REQUIRE_ENV} is set, so this skip is a failure: {reason}"
