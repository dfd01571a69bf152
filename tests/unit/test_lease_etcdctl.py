"""etcdctl 3.4 lease commands against the Lease service (fake lease backend,
no Raft). The expected output was taken from etcd 3.4.23 running the same
commands. Skipped only when etcdctl is not installed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.api_fake_backend import Api
from tests.unit.lease_fake_backend import MIN_TTL, LeaseFakeBackend, serve

ETCDCTL = shutil.which("etcdctl")
pytestmark = pytest.mark.skipif(ETCDCTL is None, reason="etcdctl (etcd-client) not installed")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Api, LeaseFakeBackend]]:
    async with serve(str(tmp_path / "db")) as pair:
        yield pair


def _argv(api: Api, *args: str) -> list[str]:
    assert ETCDCTL is not None
    return [ETCDCTL, "--endpoints", api.endpoint, "--dial-timeout", "5s", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    return env


async def etcdctl(api: Api, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *_argv(api, "--command-timeout", "10s", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ok(api: Api, *args: str) -> str:
    code, out, err = await etcdctl(api, *args)
    assert code == 0, err
    return out


async def test_grant_put_keepalive_timetolive_list_revoke(
    env: tuple[Api, LeaseFakeBackend],
) -> None:
    api, backend = env
    out = await ok(api, "lease", "grant", "60")
    words = out.split()
    assert words[0] == "lease" and out.endswith(" granted with TTL(60s)\n")
    lease = words[1]
    lease_id = int(lease, 16)
    assert await ok(api, "put", "--lease", lease, "foo", "bar") == "OK\n"
    assert await ok(api, "put", f"--lease={lease}", "zoo", "z") == "OK\n"

    once = await ok(api, "lease", "keep-alive", "--once", lease)
    assert once == f"lease {lease} keepalived with TTL(60)\n"

    backend.now += 1.5
    ttl = await ok(api, "lease", "timetolive", "--keys", lease)
    assert ttl == (
        f"lease {lease} granted with TTL(60s), remaining(58s), attached keys([foo zoo])\n"
    )
    as_json = json.loads(await ok(api, "lease", "timetolive", "--keys", lease, "-w", "json"))
    assert (as_json["id"], as_json["ttl"], as_json["granted-ttl"]) == (lease_id, 58, 60)
    assert as_json["keys"] == [base64.b64encode(k).decode() for k in (b"foo", b"zoo")]
    assert as_json["revision"] == 3

    other = (await ok(api, "lease", "grant", "1")).split()[1]
    assert (await ok(api, "lease", "timetolive", other)).startswith(
        f"lease {other} granted with TTL({MIN_TTL}s)"
    )
    listed = await ok(api, "lease", "list")
    lines = listed.splitlines()
    assert lines[0] == "found 2 leases" and sorted(lines[1:]) == sorted([lease, other])

    assert await ok(api, "lease", "revoke", lease) == f"lease {lease} revoked\n"
    got = json.loads(await ok(api, "get", "--prefix", "", "-w", "json"))
    assert "kvs" not in got and got["header"]["revision"] == 4  # both keys, one revision


async def test_keepalive_stream_until_interrupted(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, _ = env
    lease = (await ok(api, "lease", "grant", "30")).split()[1]
    proc = await asyncio.create_subprocess_exec(
        *_argv(api, "lease", "keep-alive", lease),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode() == f"lease {lease} keepalived with TTL(30)\n"
    finally:
        proc.terminate()
        await proc.wait()


async def test_unknown_lease_answers_like_etcd(env: tuple[Api, LeaseFakeBackend]) -> None:
    api, _ = env
    assert (
        await ok(api, "lease", "timetolive", "1234") == "lease 0000000000001234 already expired\n"
    )
    as_json = json.loads(await ok(api, "lease", "timetolive", "1234", "-w", "json"))
    assert (as_json["id"], as_json["ttl"], as_json["granted-ttl"], as_json["keys"]) == (
        0x1234,
        -1,
        0,
        None,
    )
    # etcd answers TTL 0; the Go client turns that into "lease not found".
    code, _, err = await etcdctl(api, "lease", "keep-alive", "--once", "1234")
    assert code != 0 and "etcdserver: requested lease not found" in err
    code, _, err = await etcdctl(api, "lease", "revoke", "1234")
    assert code != 0 and "failed to revoke lease (etcdserver: requested lease not found)" in err
    code, _, err = await etcdctl(api, "put", "--lease", "1234", "k", "v")
    assert code != 0 and "Error: etcdserver: requested lease not found" in err
    code, _, err = await etcdctl(api, "lease", "grant", "9000000001")
    assert code != 0 and "failed to grant lease (etcdserver: too large lease TTL)" in err
