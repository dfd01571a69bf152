"""The Python `aetcd` client (PyPI) against kvstore: put, get, delete, a
transaction and range/prefix reads. The same calls also run against etcd
3.4 and must give the same results (IDs and raft terms aside).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.compat.compare import Pair, start_pair
from tests.procs import Cluster, Launcher, require_binary


@pytest.fixture
def aetcd() -> ModuleType:
    module: ModuleType = pytest.importorskip(
        "aetcd", reason="requires aetcd (pip install aetcd; part of the test extra)"
    )
    return module


@pytest.fixture
def pair(launch: Launcher, aetcd: ModuleType) -> Pair:
    require_binary("etcd", "etcd-server")
    require_binary("etcdctl", "etcd-client")
    return start_pair(launch)


def kv(item: Any) -> tuple[bytes, bytes, int, int, int]:
    return (item.key, item.value, item.create_revision, item.mod_revision, item.version)


async def script(aetcd: ModuleType, cluster: Cluster) -> list[Any]:
    """One fixed sequence of aetcd calls; returns what a user would look at."""
    host, port = cluster.members[0].endpoint.rsplit(":", 1)
    out: list[Any] = []
    async with aetcd.Client(host=host, port=int(port), timeout=10) as client:
        tx = client.transactions

        put = await client.put(b"a", b"1")
        out.append(("put", put.header.revision, put.prev_kv))
        put = await client.put(b"a", b"2", prev_kv=True)
        out.append(("put prev", put.header.revision, kv(put.prev_kv)))
        for key, value in ((b"p/1", b"x"), (b"p/2", b"y"), (b"p/3", b"z"), (b"q", b"w")):
            await client.put(key, value)

        got = await client.get(b"a")
        out.append(("get", got.header.revision, kv(got)))
        out.append(("get missing", await client.get(b"missing")))
        got = await client.get(b"p/2", serializable=True)
        out.append(("get serializable", kv(got)))

        rng = await client.get_prefix(b"p/")
        out.append(("prefix", rng.count, rng.more, [kv(x) for x in rng]))
        rng = await client.get_prefix(b"p/", sort_order="descend", sort_target="value")
        out.append(("prefix sorted", [kv(x) for x in rng]))
        rng = await client.get_prefix(b"p/", keys_only=True)
        out.append(("prefix keys", [(x.key, x.value) for x in rng]))
        rng = await client.get_range(b"a", b"p/3")
        out.append(("range", rng.count, [kv(x) for x in rng]))
        rng = await client.get_all()
        out.append(("all", rng.count, [x.key for x in rng]))

        ok, responses = await client.transaction(
            compare=[tx.value(b"a") == b"2", tx.version(b"p/1") > 0, tx.mod(b"q") < 100],
            success=[tx.put(b"t", b"yes"), tx.get(b"p/", b"p0"), tx.delete(b"q")],
            failure=[tx.put(b"t", b"no")],
        )
        out.append(("txn", ok, [_txn_response(r) for r in responses]))
        ok, responses = await client.transaction(
            compare=[tx.create(b"nothing") != 0],
            success=[tx.put(b"t", b"never")],
            failure=[tx.get(b"t"), tx.put(b"u", b"failure-branch")],
        )
        out.append(("txn failure", ok, [_txn_response(r) for r in responses]))

        deleted = await client.delete(b"a", prev_kv=True)
        out.append(("delete", deleted.deleted, kv(deleted.prev_kv)))
        out.append(("delete missing", await client.delete(b"a")))
        dr = await client.delete_prefix(b"p/")
        out.append(("delete prefix", dr.deleted))
        rng = await client.get_all()
        out.append(("all after", rng.header.revision, [kv(x) for x in rng]))

        with pytest.raises(aetcd.InvalidArgumentError) as err:
            await client.put(b"", b"no key")
        out.append(("empty key", str(err.value)))
        status = await client.status()
        out.append(("status leader named", status.leader.name if status.leader else None))
    return out


def _txn_response(resp: Any) -> Any:
    if isinstance(resp, list):  # a range: [(value, Get)]
        return [(value, kv(item)) for value, item in resp]
    kind = resp.WhichOneof("response")
    inner = getattr(resp, kind)
    return (kind, inner.header.revision, getattr(inner, "deleted", None))


async def test_aetcd_against_kvstore_like_etcd(pair: Pair, aetcd: ModuleType) -> None:
    want = await script(aetcd, pair.etcd)
    got = await script(aetcd, pair.subject)
    for w, g in zip(want, got, strict=True):
        assert g == w, f"aetcd {w[0]!r}: etcd gave {w!r}, {pair.subject.kind} gave {g!r}"
    # What the sequence must show, spelled out (etcd passes the same checks).
    steps = {step[0]: step for step in got}
    assert steps["put"] == ("put", 2, None)
    assert steps["get"] == ("get", 7, (b"a", b"2", 2, 3, 2))
    assert steps["get missing"] == ("get missing", None)
    assert steps["prefix"][1:3] == (3, False)
    assert [k[0] for k in steps["prefix sorted"][1]] == [b"p/3", b"p/2", b"p/1"]
    assert steps["txn"][1] is True and steps["txn failure"][1] is False
    assert steps["delete missing"] == ("delete missing", None)
    assert steps["empty key"] == ("empty key", "etcdserver: key is not provided")
    assert steps["status leader named"] == ("status leader named", "n1")
