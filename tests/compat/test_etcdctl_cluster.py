"""etcdctl 3.4 against a 3-member kvstore cluster: every member serves the
same commands with etcd's output, reads through followers are
linearizable, and the cluster survives SIGKILL of its leader.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.compat.compare import start_pair, subject_kind
from tests.procs import Cluster, CtlResult, Launcher, require_binary, wait_until

JSON = ("-w", "json")
# etcdctl 3.4 has no --count-only; the JSON of a limit-1 read carries the count.
COUNT = ("--keys-only", "--limit", "1", "-w", "json")


@pytest.fixture(autouse=True)
def _binaries() -> None:
    require_binary("etcdctl", "etcd-client")
    require_binary("etcd", "etcd-server")


def ok(res: CtlResult) -> CtlResult:
    assert res.returncode == 0, res.describe()
    return res


def statuses(cluster: Cluster, names: list[str]) -> list[dict[str, Any]]:
    return [cluster.status(n) for n in names]


def test_every_member_serves_like_etcd(launch: Launcher) -> None:
    pair = start_pair(launch, 3)
    for i in range(3):
        other = (i + 1) % 3
        pair.check("put", f"k{i}", f"v{i}", member=i)
        pair.check("put", f"k{i}", f"w{i}", "--prev-kv", member=i)
        # A linearizable read through another member sees the write.
        pair.check("get", "k", "--prefix", *JSON, member=other)
        pair.check("get", f"k{i}", "--rev", "2", member=other)
        pair.check(
            "txn", *JSON, member=i,
            stdin=f'value("k{i}") = "w{i}"\n\nput t{i} yes\nget k --prefix\n\nput t{i} no\n\n',
        )
        pair.check("get", "", "--from-key", "--sort-by", "MODIFY", member=other)
        pair.check("del", f"t{i}", "--prev-kv", *JSON, member=i)
        pair.check("get", "--consistency=s", "k", "--prefix", *COUNT, member=i)
    pair.check("get", "", "--from-key", *JSON, member=2)
    pair.verify()


def test_one_leader_and_linearizable_follower_reads(launch: Launcher) -> None:
    cluster = launch.cluster(subject_kind(), 3)  # type: ignore[arg-type]
    leader = cluster.wait_leader()
    followers = [n for n in cluster.names if n != leader]

    sts = statuses(cluster, cluster.names)
    assert len({st["leader"] for st in sts}) == 1, sts
    member_ids = {st["header"]["member_id"]: n for n, st in zip(cluster.names, sts, strict=True)}
    assert len(member_ids) == 3
    assert member_ids[sts[0]["leader"]] == leader
    assert len({st["header"]["cluster_id"] for st in sts}) == 1

    # `member list` through each member: the same three members, each
    # with its own URLs, and the member IDs that `endpoint status` shows.
    for name in cluster.names:
        listed = ok(cluster.ctl("member", "list", *JSON, member=name)).json()
        by_name = {m["name"]: m for m in listed["members"]}
        assert set(by_name) == set(cluster.names)
        for m in cluster.members:
            assert by_name[m.name]["peerURLs"] == [m.peer_url]
            assert by_name[m.name]["clientURLs"] == [m.client_url]
            assert member_ids[by_name[m.name]["ID"]] == m.name
    # --cluster finds every member through member list.
    eps = ok(cluster.ctl("endpoint", "status", "--cluster", *JSON, member=followers[0])).json()
    assert sorted(e["Endpoint"] for e in eps) == sorted(m.client_url for m in cluster.members)
    assert sum(e["Status"]["leader"] == e["Status"]["header"]["member_id"] for e in eps) == 1

    # Writes through one follower are seen by linearizable reads through
    # the other follower and the leader, one after the other.
    for i in range(20):
        writer, reader = followers[i % 2], followers[(i + 1) % 2]
        ok(cluster.ctl("put", "lin", str(i), member=writer))
        for via in (reader, leader):
            got = ok(cluster.ctl("get", "lin", "--print-value-only", member=via))
            assert got.stdout == f"{i}\n", (via, got.describe())


def hashes_agree(cluster: Cluster, names: list[str]) -> dict[str, Any] | None:
    got = {n: cluster.hashkv(n) for n in names}
    revs = {h["header"]["revision"] for h in got.values()}
    if len(revs) != 1 or len({h.get("hash") for h in got.values()}) != 1:
        return None
    return got


def test_leader_sigkill_failover_and_catch_up(launch: Launcher) -> None:
    cluster = launch.cluster(subject_kind(), 3)  # type: ignore[arg-type]
    old = cluster.wait_leader()
    survivors = [n for n in cluster.names if n != old]
    for i in range(10):
        ok(cluster.ctl("put", f"before/{i}", str(i), member=cluster.names[i % 3]))
    ok(cluster.ctl("compaction", "5"))

    assert cluster.kill(old, signal.SIGKILL) == -signal.SIGKILL
    new = cluster.wait_leader(survivors, timeout=20)
    assert new in survivors

    # Writes continue through both survivors (the leader and a follower).
    for i in range(10):
        ok(cluster.ctl("put", f"during/{i}", str(i), member=survivors[i % 2]))
    ok(cluster.ctl("del", "before/0", member=survivors[0]))
    ok(
        cluster.ctl(
            "txn", member=survivors[1], stdin='value("during/1") = "1"\n\nput txn ok\n\n\n'
        )
    )
    count = ok(cluster.ctl("get", "", "--from-key", *COUNT, member=survivors[1]))
    assert count.json()["count"] == 20

    # The old leader comes back with the same flags and data dir and
    # catches up: HashKV (and the revision it is taken at) agree everywhere.
    cluster.restart(old)
    agreed = wait_until(
        lambda: hashes_agree(cluster, cluster.names), 30, "HashKV to agree on all members"
    )
    assert agreed[old]["header"]["revision"] == count.json()["header"]["revision"]
    # The restarted member serves the data itself, locally and linearizably.
    for consistency in ("s", "l"):
        got = ok(
            cluster.ctl(
                "get", f"--consistency={consistency}", "", "--from-key", "--keys-only",
                member=old,
            )
        )
        keys = [ln for ln in got.stdout.splitlines() if ln]
        assert len(keys) == 20 and "before/0" not in keys and "txn" in keys, keys
    # And it takes writes again.
    ok(cluster.ctl("put", "after", "restart", member=old))
    wait_until(lambda: hashes_agree(cluster, cluster.names), 30, "HashKV to agree again")
