"""etcdctl 3.4 (Debian's etcd-client) against the API server and the fake
backend: the real Go client must understand every answer. Skipped only when
etcdctl is not installed.

etcdctl runs as an asyncio subprocess: the server lives in this test's event
loop, so a blocking subprocess call would deadlock it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.api_fake_backend import CLUSTER_ID, MEMBER_ID, RAFT_TERM, Api, serve

ETCDCTL = shutil.which("etcdctl")
pytestmark = pytest.mark.skipif(ETCDCTL is None, reason="etcdctl (etcd-client) not installed")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(str(tmp_path / "db")) as a:
        yield a


async def etcdctl(api: Api, *args: str, stdin: str = "") -> tuple[int, str, str]:
    assert ETCDCTL is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    proc = await asyncio.create_subprocess_exec(
        ETCDCTL,
        "--endpoints",
        api.endpoint,
        "--dial-timeout",
        "5s",
        "--command-timeout",
        "10s",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ok_json(api: Api, *args: str, stdin: str = "") -> Any:
    code, out, err = await etcdctl(api, *args, "-w", "json", stdin=stdin)
    assert code == 0, err
    return json.loads(out)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def check_header(h: dict[str, Any], revision: int) -> None:
    assert h == {
        "cluster_id": CLUSTER_ID,
        "member_id": MEMBER_ID,
        "revision": revision,
        "raft_term": RAFT_TERM,
    }


async def test_etcdctl_put_get_del_txn_compaction(api: Api) -> None:
    put = await ok_json(api, "put", "foo", "bar")
    check_header(put["header"], 2)
    await ok_json(api, "put", "foo2", "baz")  # rev 3

    got = await ok_json(api, "get", "foo")
    check_header(got["header"], 3)
    assert got["count"] == 1
    assert got["kvs"] == [
        {
            "key": b64("foo"),
            "create_revision": 2,
            "mod_revision": 2,
            "version": 1,
            "value": b64("bar"),
        }
    ]

    missing = await ok_json(api, "get", "nope")
    assert missing == {"header": got["header"]}  # no kvs, no count: as etcd prints it

    prefix = await ok_json(api, "get", "--prefix", "foo", "--limit", "1")
    assert prefix["count"] == 2 and prefix["more"] is True and len(prefix["kvs"]) == 1

    code, out, _ = await etcdctl(api, "get", "--from-key", "a", "--keys-only")
    assert code == 0 and out.split() == ["foo", "foo2"]
    code, out, _ = await etcdctl(api, "get", "--prefix", "foo", "--sort-by=KEY", "--order=DESCEND")
    assert code == 0 and out.split() == ["foo2", "baz", "foo", "bar"]

    deleted = await ok_json(api, "del", "foo2")
    check_header(deleted["header"], 4)
    assert deleted["deleted"] == 1

    txn_script = 'mod("foo") = "2"\n\nput foo updated\nget foo\n\nget foo\n\n'
    txn = await ok_json(api, "txn", stdin=txn_script)
    check_header(txn["header"], 5)
    assert txn["succeeded"] is True
    [put_resp, range_resp] = txn["responses"]
    assert put_resp["Response"]["ResponsePut"]["header"] == {"revision": 5}
    [kv] = range_resp["Response"]["ResponseRange"]["kvs"]
    assert kv["value"] == b64("updated")

    failed = await ok_json(api, "txn", stdin=txn_script)
    assert "succeeded" not in failed  # proto3 false is omitted

    code, out, _ = await etcdctl(api, "compaction", "3")
    assert code == 0 and out.strip() == "compacted revision 3"
    code, _, err = await etcdctl(api, "get", "foo", "--rev", "2")
    assert code != 0 and "etcdserver: mvcc: required revision has been compacted" in err
    old = await ok_json(api, "get", "foo", "--rev", "4")
    assert old["kvs"][0]["value"] == b64("bar")


async def test_etcdctl_errors(api: Api) -> None:
    code, _, err = await etcdctl(api, "get", "")
    assert code != 0 and "etcdserver: key is not provided" in err
    code, _, err = await etcdctl(api, "put", "big", stdin="x" * (1536 * 1024 + 1))
    assert code != 0 and "etcdserver: request is too large" in err
    code, _, err = await etcdctl(api, "get", "k", "--rev", "99")
    assert code != 0 and "etcdserver: mvcc: required revision is a future revision" in err


async def test_etcdctl_endpoint_and_member_commands(api: Api) -> None:
    await ok_json(api, "put", "k", "v")
    [status] = await ok_json(api, "endpoint", "status")
    assert status["Endpoint"] == api.endpoint
    st = status["Status"]
    check_header(st["header"], 2)
    assert st["version"] == "3.4.0" and st["leader"] == MEMBER_ID
    assert (st["raftIndex"], st["raftTerm"], st["raftAppliedIndex"]) == (42, RAFT_TERM, 41)

    code, out, err = await etcdctl(api, "endpoint", "health")
    assert code == 0, err
    assert f"{api.endpoint} is healthy" in out + err

    [hashkv] = await ok_json(api, "endpoint", "hashkv")
    assert hashkv["HashKV"]["hash"] == api.backend.store.hash_kv(0).hash
    check_header(hashkv["HashKV"]["header"], 2)

    members = await ok_json(api, "member", "list")
    assert [m["name"] for m in members["members"]] == ["default", "learner"]
    assert members["members"][0]["ID"] == MEMBER_ID
    code, out, _ = await etcdctl(api, "member", "list")
    assert code == 0
    assert out.splitlines()[0] == (
        f"{MEMBER_ID:x}, started, default, http://127.0.0.1:2380, http://127.0.0.1:2379, false"
    )
