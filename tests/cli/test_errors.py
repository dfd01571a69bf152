"""Error paths of the `kvstore` CLI: usage errors, unreachable endpoints,
failover, features the server lacks, and a watch stopped with Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.cli.harness import Trio, kvstore_bin, kvstore_cli
from tests.procs import child_env, free_port, wait_until


def test_bad_flag_is_a_usage_error() -> None:
    res = kvstore_cli("127.0.0.1:1", "get", "k", "--no-such-flag")
    assert res.returncode == 2
    assert res.error_lines == ["Error: No such option '--no-such-flag'."]
    assert res.stderr.splitlines()[0].startswith("Usage: kvstore get")
    res = kvstore_cli("127.0.0.1:1", "get")  # missing key
    assert res.returncode == 2
    assert res.error_lines == [
        "Error: get command needs one argument as key and an optional argument as range_end"
    ]
    res = kvstore_cli("127.0.0.1:1", "-w", "yaml", "get", "k")
    assert res.returncode == 2


def test_unreachable_endpoint_fails_within_the_dial_timeout() -> None:
    port = free_port()  # reserved, nobody listens
    start = time.monotonic()
    res = kvstore_cli(f"127.0.0.1:{port}", "get", "k", dial_timeout="1s")
    elapsed = time.monotonic() - start
    assert res.returncode == 1
    assert res.error_lines == [f"Error: 127.0.0.1:{port}: cannot connect: Connection refused"]
    assert elapsed < 1.0 + 3.0  # the dial timeout plus interpreter start-up
    assert "Traceback" not in res.stderr


def test_failover_to_the_next_endpoint(trio: Trio) -> None:
    dead = f"127.0.0.1:{free_port()}"
    res = trio.write(dead, "put", "failover", "ok")
    assert (res.returncode, res.stdout) == (0, "OK\n"), res.describe()
    for cluster in (trio.etcd, trio.kvstore):
        res = kvstore_cli([dead, *cluster.endpoints()], "get", "failover", "--print-value-only")
        assert (res.returncode, res.stdout) == (0, "ok\n"), res.describe()
    trio.write(dead, "del", "failover")


def test_unimplemented_features_say_so(trio: Trio, tmp_path: Path) -> None:
    res = kvstore_cli(trio.kvstore.endpoints(), "snapshot", "save", str(tmp_path / "x.db"))
    assert res.returncode == 1, res.describe()
    assert len(res.error_lines) == 1 and "Traceback" not in res.stderr, res.describe()
    assert "not" in res.error_lines[0] and "snapshot" in res.error_lines[0].lower()
    assert not list(tmp_path.iterdir())  # no partial file left behind
    res = kvstore_cli(trio.kvstore.endpoints(), "snapshot", "save", "/nonexistent/dir/x.db")
    assert res.returncode == 1 and len(res.error_lines) == 1, res.describe()
    res = kvstore_cli(trio.kvstore.endpoints(), "move-leader", "1")
    assert res.returncode == 1 and len(res.error_lines) == 1, res.describe()


@pytest.mark.parametrize("server", ["etcd", "kvstore"])
def test_watch_prints_events_and_exits_cleanly_on_ctrl_c(trio: Trio, server: str) -> None:
    ep = (trio.etcd if server == "etcd" else trio.kvstore).endpoints()[0]
    proc = subprocess.Popen(
        [kvstore_bin(), "--endpoints", ep, "watch", "w/", "--prefix", "--prev-kv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    out = proc.stdout
    assert out is not None
    lines: list[bytes] = []
    # A thread reads the watcher's output, so polling below never blocks.
    reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, b"")))
    try:
        reader.start()
        n = 0

        def seen() -> bool:
            # The watcher may start after the first puts: put until one shows.
            nonlocal n
            n += 1
            trio.write(None, "put", "w/k", str(n))
            return b"PUT\n" in lines

        wait_until(seen, 20, "the watch to print a PUT event", interval=0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
    assert b"Traceback" not in err, err
    assert proc.returncode == 130
    assert lines[lines.index(b"PUT\n") + 1] == b"w/k\n"
