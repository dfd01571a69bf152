"""`kvstore serve` as a real process: defaults, configuration through the
environment, clean stop on SIGTERM, no lost acknowledged write after
SIGKILL, and clear refusals of wrong flags or a foreign data dir.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.procs import (
    Cluster,
    CtlResult,
    Launcher,
    child_env,
    free_port,
    kvstore_argv,
    port_is_free,
    require_binary,
    wait_until,
)


@pytest.fixture(autouse=True)
def _etcdctl() -> None:
    require_binary("etcdctl", "etcd-client")


def ok(res: CtlResult) -> CtlResult:
    assert res.returncode == 0, res.describe()
    return res


def members(cluster: Cluster) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = ok(cluster.ctl("member", "list", "-w", "json")).json()[
        "members"
    ]
    return listed


def identity(cluster: Cluster) -> tuple[int, int]:
    st = cluster.status(cluster.names[0])
    return st["header"]["cluster_id"], st["header"]["member_id"]


def test_no_flags_starts_a_single_node_on_the_default_ports(
    launch: Launcher, tmp_path: Path
) -> None:
    if not (port_is_free(2379) and port_is_free(2380)):
        pytest.skip("port 2379 or 2380 is busy on this machine")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    c = launch.kvstore_with(
        [],
        client_url="http://127.0.0.1:2379",
        peer_url="http://127.0.0.1:2380",
        data_dir=cwd / "default.kvstore",
        cwd=cwd,
    )
    c.start_all()
    ok(c.ctl("put", "hello", "world"))
    assert ok(c.ctl("get", "hello", "--print-value-only")).stdout == "world\n"
    [me] = members(c)
    assert (me["name"], me["peerURLs"], me["clientURLs"]) == (
        "default",
        ["http://127.0.0.1:2380"],
        ["http://127.0.0.1:2379"],
    )
    assert (cwd / "default.kvstore").is_dir()
    assert c.kill("default", signal.SIGTERM) == 0


def test_environment_configures_the_node(launch: Launcher, tmp_path: Path) -> None:
    client = f"http://127.0.0.1:{free_port()}"
    peer = f"http://127.0.0.1:{free_port()}"
    data_dir = tmp_path / "from-env.data"
    env = {
        "KVSTORE_NAME": "envnode",
        "KVSTORE_DATA_DIR": str(data_dir),
        "KVSTORE_LISTEN_CLIENT_URLS": client,
        "KVSTORE_LISTEN_PEER_URLS": peer,
        "KVSTORE_HEARTBEAT_INTERVAL": "50",
        "KVSTORE_ELECTION_TIMEOUT": "500",
    }
    c = launch.kvstore_with([], client_url=client, peer_url=peer, data_dir=data_dir, env=env)
    c.start_all()
    [me] = members(c)
    # Advertised URLs follow the listen URLs when only those are given.
    assert (me["name"], me["peerURLs"], me["clientURLs"]) == ("envnode", [peer], [client])
    assert data_dir.is_dir()
    ok(c.ctl("put", "k", "v"))
    assert c.kill("default", signal.SIGTERM) == 0

    # A flag wins over its environment variable.
    other = tmp_path / "from-flag.data"
    c2 = launch.kvstore_with(
        [f"--data-dir={other}"], client_url=client, peer_url=peer, data_dir=other, env=env
    )
    c2.start_all()
    assert other.is_dir()
    assert ok(c2.ctl("get", "k", "-w", "json")).json().get("count", 0) == 0
    assert c2.kill("default", signal.SIGTERM) == 0


def test_sigterm_exits_zero_and_restart_keeps_data_and_identity(launch: Launcher) -> None:
    c = launch.kvstore(1)
    name = c.names[0]
    for i in range(20):
        ok(c.ctl("put", f"key/{i:02}", f"value-{i}"))
    ok(c.ctl("del", "key/00"))
    ok(c.ctl("compaction", "10"))
    before = ok(c.ctl("get", "key/", "--prefix", "-w", "json")).json()
    ids = identity(c)
    hash_before = c.hashkv(name)

    assert c.kill(name, signal.SIGTERM) == 0
    c.restart(name)
    after = ok(c.ctl("get", "key/", "--prefix", "-w", "json")).json()
    assert after["kvs"] == before["kvs"]
    assert after["header"]["revision"] == before["header"]["revision"] == 22
    assert identity(c) == ids
    assert c.hashkv(name)["hash"] == hash_before["hash"]
    # Compacted history stays compacted; new writes continue the revisions.
    res = c.ctl("get", "key/05", "--rev", "5")
    assert res.error_lines == ["Error: etcdserver: mvcc: required revision has been compacted"]
    ok(c.ctl("put", "next", "x"))
    assert ok(c.ctl("get", "next", "-w", "json")).json()["kvs"][0]["mod_revision"] == 23


@pytest.mark.parametrize(
    ("sig", "exit_code"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 0)],
    ids=["SIGKILL", "SIGTERM"],
)
def test_no_acknowledged_write_lost_when_stopped_under_load(
    launch: Launcher, sig: signal.Signals, exit_code: int
) -> None:
    """Three writers keep putting; the node is stopped mid-stream (SIGTERM
    must still exit 0 with requests in flight); after a restart every
    acknowledged write is there."""
    c = launch.kvstore(1)
    name = c.names[0]
    acked: dict[str, str] = {}
    stop = threading.Event()

    def writer(worker: int) -> None:
        i = 0
        while not stop.is_set():
            key, value = f"w{worker}/{i:04}", f"v{i}"
            if c.ctl("put", key, value).returncode == 0:
                acked[key] = value
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 60, 60, "60 acknowledged writes")
        assert c.kill(name, sig) == exit_code
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    c.restart(name)
    stored = {
        kv["key"]: kv["value"]
        for kv in _decode(ok(c.ctl("get", "w", "--prefix", "-w", "json")).json().get("kvs", []))
    }
    missing = {k: v for k, v in acked.items() if stored.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:10]}"


def _decode(kvs: list[dict[str, Any]]) -> list[dict[str, str]]:
    import base64

    return [
        {
            "key": base64.b64decode(kv["key"]).decode(),
            "value": base64.b64decode(kv.get("value", "")).decode(),
        }
        for kv in kvs
    ]


def test_data_dir_of_another_cluster_is_refused_untouched(launch: Launcher) -> None:
    a = launch.kvstore(1, initial_cluster_token="token-A")
    name = a.names[0]
    for i in range(5):
        ok(a.ctl("put", f"k{i}", f"v{i}"))
    before = ok(a.ctl("get", "", "--from-key", "-w", "json")).json()
    hash_before = a.hashkv(name)["hash"]
    assert a.kill(name, signal.SIGTERM) == 0

    m = a[name]
    argv_a = list(m.argv)
    m.argv = [arg.replace("token-A", "token-B") for arg in argv_a]
    assert m.argv != argv_a
    m.start()
    code = m.wait_exit(30)
    assert code != 0
    log = m.log_path.read_text()
    assert "error" in log.lower() and "cluster" in log.lower(), log[-2000:]
    assert "Traceback" not in log, log[-2000:]

    # Back with the right token: everything is still there.
    m.argv = argv_a
    a.restart(name)
    after = ok(a.ctl("get", "", "--from-key", "-w", "json")).json()
    assert after["kvs"] == before["kvs"]
    assert after["header"]["revision"] == before["header"]["revision"]
    assert a.hashkv(name)["hash"] == hash_before


@pytest.mark.parametrize(
    ("args", "env", "mentions"),
    [
        (["--initial-cluster-state", "bogus"], {}, "--initial-cluster-state"),
        (["--listen-client-urls", "not-a-url"], {}, "--listen-client-urls"),
        (["--heartbeat-interval", "fast"], {}, "--heartbeat-interval"),
        (["--no-such-flag"], {}, "--no-such-flag"),
        ([], {"KVSTORE_ELECTION_TIMEOUT": "soon"}, "KVSTORE_ELECTION_TIMEOUT"),
        (["--initial-cluster", "other=http://127.0.0.1:1"], {}, "--initial-cluster"),
    ],
    ids=["cluster-state", "url", "int-flag", "unknown-flag", "int-env", "name-not-in-cluster"],
)
def test_bad_configuration_exits_nonzero_with_a_message(
    tmp_path: Path, args: list[str], env: dict[str, str], mentions: str
) -> None:
    data_dir = tmp_path / "never.data"
    argv = [
        *kvstore_argv(),
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://127.0.0.1:{free_port()}",
        f"--listen-peer-urls=http://127.0.0.1:{free_port()}",
    ]
    # Later flags win, so the bad value comes last.
    proc = subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env=child_env(env),
        check=False,
    )
    assert proc.returncode != 0, proc
    assert mentions in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not data_dir.exists()
