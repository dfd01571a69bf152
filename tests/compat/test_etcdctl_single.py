"""etcdctl 3.4 against one kvstore node prints what it prints against one
etcd 3.4 node, command for command (see compare.py for what is normalised).

Each test starts a fresh etcd and a fresh kvstore and sends both the same
command sequence, so revisions must match exactly.
"""

from __future__ import annotations

import pytest

from tests.compat.compare import Pair, start_pair
from tests.procs import Launcher, require_binary


@pytest.fixture
def pair(launch: Launcher) -> Pair:
    require_binary("etcdctl", "etcd-client")
    require_binary("etcd", "etcd-server")
    return start_pair(launch)


JSON = ("-w", "json")

# Keys chosen so that prefixes, from-key ranges and every sort target give
# different orders: values, create and mod revisions and versions disagree.
SEED: tuple[tuple[str, str], ...] = (
    ("b", "2"),
    ("a", "9"),
    ("foo/x", "zz"),
    ("foo/a", "mm"),
    ("foo/m", "aa"),
    ("foo/a", "mm2"),
    ("foo0", "after-prefix"),
    ("fo", "before-prefix"),
    ("foo/x", "zz2"),
    ("foo/x", "zz3"),
    ("zeta", "last"),
)


def seed(pair: Pair) -> None:
    for key, value in SEED:
        pair.check("put", key, value)


def test_put_and_prev_kv(pair: Pair) -> None:
    pair.check("put", "k", "v1")
    pair.check("put", "k", "v2", "--prev-kv")
    pair.check("put", "k", "v3", "--prev-kv", *JSON)
    pair.check("put", "new", "x", "--prev-kv")
    pair.check("put", "new2", "x", "--prev-kv", *JSON)
    pair.check("put", "k", "v4", *JSON)
    pair.check("put", "spaces and/slashes", "a value with spaces")
    pair.check("put", "k", "--", "-dash-value")
    pair.check("get", "k", *JSON)
    pair.check("get", "spaces and/slashes")
    pair.verify()


def test_get_forms(pair: Pair) -> None:
    seed(pair)
    for extra in ((), JSON):
        pair.check("get", "a", *extra)
        pair.check("get", "missing", *extra)
        pair.check("get", "foo/", "--prefix", *extra)
        pair.check("get", "foo", "--prefix", *extra)
        pair.check("get", "nothing-here/", "--prefix", *extra)
        pair.check("get", "foo/", "--from-key", *extra)
        pair.check("get", "", "--from-key", *extra)
        pair.check("get", "a", "foo0", *extra)  # [a, foo0)
        pair.check("get", "foo/", "--prefix", "--limit", "2", *extra)
        pair.check("get", "", "--from-key", "--limit", "1", *extra)
        pair.check("get", "foo/", "--prefix", "--keys-only", *extra)
        pair.check("get", "foo/", "--prefix", "--print-value-only", *extra)
        pair.check("get", "foo/", "--prefix", "--limit", "1", "--keys-only", *extra)
        pair.check("get", "", "--from-key", "--keys-only", "--limit", "2", *extra)
        pair.check("get", "a", "--keys-only", *extra)
    pair.check("get", "--consistency=s", "foo/", "--prefix", *JSON)
    pair.check("get", "foo/", "--prefix", "--hex", *JSON)
    pair.check("get", "foo/", "--prefix", "--hex")
    pair.check("get", "foo/", "--prefix", "-w", "fields")
    pair.verify()


def test_get_rev(pair: Pair) -> None:
    seed(pair)
    pair.check("del", "a")
    for extra in ((), JSON):
        for rev in ("1", "2", "5", "6", "9", "11", "12"):
            pair.check("get", "foo/", "--prefix", "--rev", rev, *extra)
            pair.check("get", "a", "--rev", rev, *extra)
        pair.check("get", "", "--from-key", "--rev", "4", "--limit", "2", *extra)
        pair.check("get", "foo/x", "--rev", "9", "--keys-only", *extra)
    pair.verify()


@pytest.mark.parametrize("target", ["KEY", "CREATE", "MODIFY", "VERSION", "VALUE"])
def test_get_sorted(pair: Pair, target: str) -> None:
    seed(pair)
    for order in ("ASCEND", "DESCEND"):
        for extra in ((), JSON):
            pair.check("get", "", "--from-key", "--sort-by", target, "--order", order, *extra)
            pair.check("get", "foo", "--prefix", "--sort-by", target, "--order", order, *extra)
            pair.check(
                "get", "", "--from-key", "--sort-by", target, "--order", order,
                "--limit", "3", *extra,
            )
    # --sort-by alone (etcdctl picks the order) and --order alone.
    pair.check("get", "", "--from-key", "--sort-by", target)
    pair.check("get", "", "--from-key", "--order", "DESCEND", *JSON)
    pair.verify()


def test_del_forms(pair: Pair) -> None:
    seed(pair)
    pair.check("del", "missing")
    pair.check("del", "missing", *JSON)
    pair.check("del", "a")
    pair.check("del", "b", "--prev-kv")
    pair.check("put", "b", "again")
    pair.check("del", "b", "--prev-kv", *JSON)
    pair.check("del", "foo/", "--prefix", "--prev-kv")
    pair.check("get", "", "--from-key", *JSON)
    pair.check("del", "foo", "--prefix", *JSON)
    seed(pair)
    pair.check("del", "foo/m", "--from-key", "--prev-kv", *JSON)
    pair.check("del", "a", "foo/x")  # range [a, foo/x)
    pair.check("get", "", "--from-key", *JSON)
    pair.check("del", "", "--from-key")
    pair.check("get", "", "--from-key", "--keys-only", "--limit", "1", *JSON)
    pair.verify()


TXN_SUCCESS = """\
value("a") = "9"
version("foo/x") = "3"
create("b") < "3"
mod("foo/a") > "4"

put t1 one
get foo/ --prefix
del b
put t2 "two words"

put never taken

"""

TXN_FAILURE = """\
value("a") != "9"

put never taken

put f1 failed-branch
get a
get foo/ --prefix --limit=1
del missing

"""

TXN_MIXED = """\
version("nokey") = "0"
create("a") != "0"
value("zeta") > "a"
value("fo") < "c"

put t1 uno --prev-kv
del fo --prev-kv
get t --prefix --keys-only

get a

"""


@pytest.mark.parametrize(
    "script", [TXN_SUCCESS, TXN_FAILURE, TXN_MIXED], ids=["success", "failure", "mixed"]
)
def test_txn(pair: Pair, script: str) -> None:
    seed(pair)
    pair.check("txn", stdin=script)
    seed(pair)
    pair.check("txn", *JSON, stdin=script)
    pair.check("get", "", "--from-key", *JSON)
    pair.check("txn", stdin="\n\n\n")  # an empty txn succeeds and writes nothing
    pair.check("txn", *JSON, stdin="\n\nput only success\n\n")
    pair.check("get", "", "--from-key", "--keys-only", "--limit", "1", *JSON)
    pair.verify()


def test_compaction(pair: Pair) -> None:
    seed(pair)
    pair.check("compaction", "5")
    pair.check("get", "foo/", "--prefix", "--rev", "4")  # compacted
    pair.check("get", "foo/", "--prefix", "--rev", "4", *JSON)
    pair.check("get", "foo/", "--prefix", "--rev", "5", *JSON)
    pair.check("get", "foo/", "--prefix", "--rev", "9", *JSON)
    pair.check("compaction", "3")  # already compacted
    pair.check("compaction", "5")
    pair.check("compaction", "100")  # future
    pair.check("compaction", "--physical", "8")
    pair.check("get", "", "--from-key", "--rev", "7")
    pair.check("endpoint", "hashkv", *JSON)
    pair.check("put", "after", "compaction")
    pair.check("get", "", "--from-key", *JSON)
    pair.verify()


def test_endpoint_and_member_commands(pair: Pair) -> None:
    seed(pair)
    pair.check("endpoint", "status", *JSON)
    pair.check("endpoint", "status")
    pair.check("endpoint", "health")
    pair.check("endpoint", "health", *JSON)
    pair.check("member", "list", *JSON)
    pair.check("member", "list")
    pair.verify()


def test_endpoint_hashkv_never_compacted(pair: Pair) -> None:
    # etcd says compact_revision -1 while nothing was ever compacted.
    seed(pair)
    pair.check("endpoint", "hashkv", *JSON)
    pair.check("endpoint", "hashkv", "--rev", "4", *JSON)
    pair.verify()


def test_bad_input(pair: Pair) -> None:
    seed(pair)
    pair.check("put", "", "value")
    pair.check("get", "")
    pair.check("del", "")
    big = "x" * (1536 * 1024 + 1)
    pair.check("put", "big", stdin=big)  # value from stdin: > 1.5 MiB
    ops = "".join(f"put op{i} v\n" for i in range(129))
    pair.check("txn", stdin=f"\n{ops}\n\n")  # 129 ops > 128
    pair.check("txn", stdin="\nput same 1\nput same 2\n\n\n")  # duplicate key
    pair.check("get", "a", "--rev", "1000")  # future revision
    pair.check("get", "a", "--rev", "1000", *JSON)
    ops128 = "".join(f"put op{i} v\n" for i in range(128))
    pair.check("txn", stdin=f"\n{ops128}\n\n")  # exactly the limit is fine
    # The node keeps serving.
    pair.check("put", "still", "serving")
    pair.check("get", "", "--from-key", "--keys-only", "--limit", "1", *JSON)
    pair.verify()


def test_configured_limits(launch: Launcher) -> None:
    """--max-request-bytes and --max-txn-ops are honoured like etcd's."""
    require_binary("etcdctl", "etcd-client")
    require_binary("etcd", "etcd-server")
    pair = start_pair(launch, max_request_bytes=4096, max_txn_ops=4)
    pair.check("put", "small", "x" * 3000)
    pair.check("put", "big", stdin="x" * 5000)
    pair.check("get", "small", "--print-value-only")
    four = "".join(f"put k{i} v\n" for i in range(4))
    pair.check("txn", stdin=f"\n{four}\n\n")
    pair.check("txn", stdin=f"\n{four}put k4 v\n\n\n")  # 5 success ops
    pair.check("txn", stdin=f'value("small") = "no"\n\nput a 1\n\n{four}put k4 v\n\n')
    pair.check("get", "", "--from-key", "--keys-only", *JSON)
    pair.verify()
