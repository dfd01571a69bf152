"""`kvstore <command>` prints what `etcdctl <command>` prints, byte for
byte after normalising IDs/sizes/versions, against etcd and against
kvstore (see harness.py). Each test uses its own key prefix, so the tests
are independent while the module shares one trio of clusters."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.cli.harness import Trio, kvstore_cli
from tests.procs import CtlResult, etcdctl

JSON = ("-w", "json")
FORMATS: tuple[tuple[str, ...], ...] = ((), JSON, ("-w", "fields"))


def seed(trio: Trio, p: str) -> None:
    for key, value in (
        ("b", "2"),
        ("a", "9"),
        ("x", "zz"),
        ("m", "aa"),
        ("a", "mm2"),
        ("x", "zz2"),
        ("x/sub", "deep"),
    ):
        trio.check("put", p + key, value)


def test_put_forms(trio: Trio) -> None:
    p = "put/"
    for fmt in FORMATS:
        trio.check("put", p + "k", "v1", *fmt)
        trio.check("put", p + "k", "v2", "--prev-kv", *fmt)
        trio.check("put", p + "new" + "".join(fmt), "x", "--prev-kv", *fmt)
    trio.check("put", p + "spaces and/slashes", "a value with spaces")
    trio.check("put", p + "k", "--", "-dash-value")
    trio.check("put", p + "stdin", stdin="from stdin\nwith two lines\n")
    trio.check("put", p + "k", "--ignore-value")
    trio.check("put", p + "absent", "--ignore-value")  # error: key not found
    trio.check("get", p, "--prefix")
    trio.verify()


def test_get_forms(trio: Trio) -> None:
    p = "get/"
    seed(trio, p)
    for fmt in FORMATS:
        trio.check("get", p + "a", *fmt)
        trio.check("get", p + "missing", *fmt)
        trio.check("get", p, "--prefix", *fmt)
        trio.check("get", p + "x", "--prefix", *fmt)
        trio.check("get", p + "b", "--from-key", "--limit", "3", *fmt)
        trio.check("get", p + "a", p + "n", *fmt)
        trio.check("get", p, "--prefix", "--limit", "2", *fmt)
        trio.check("get", p, "--prefix", "--keys-only", *fmt)
        trio.check("get", p, "--prefix", "--print-value-only", *fmt)
        trio.check("get", p, "--prefix", "--keys-only", "--print-value-only", *fmt)
        for target in ("CREATE", "KEY", "MODIFY", "VALUE", "VERSION"):
            trio.check("get", p, "--prefix", "--sort-by", target, *fmt)
            trio.check("get", p, "--prefix", "--sort-by", target, "--order", "DESCEND", *fmt)
        trio.check("get", p, "--prefix", "--order", "ASCEND", *fmt)
        trio.check("get", p, "--prefix", "--consistency", "s", *fmt)
        trio.check("get", p, "--prefix", "--hex", *fmt)
    trio.verify()


def test_get_at_revision(trio: Trio) -> None:
    p = "rev/"
    ref, _, _ = trio.check("put", p + "k", "one", *JSON)
    rev = ref.json()["header"]["revision"]
    trio.check("put", p + "k", "two")
    for fmt in FORMATS:
        trio.check("get", p + "k", "--rev", str(rev), *fmt)
        trio.check("get", p + "k", "--rev", str(rev + 1000), *fmt)  # future revision
    trio.verify()


def test_delete_forms(trio: Trio) -> None:
    p = "del/"
    seed(trio, p)
    trio.check("del", p + "a")
    trio.check("del", p + "missing")
    trio.check("del", p + "b", "--prev-kv")
    trio.check("del", p + "m", p + "x0", "--prev-kv", *JSON)
    seed(trio, p)
    trio.check("del", p + "x", "--prefix", "--prev-kv", "-w", "fields")
    trio.check("del", p + "b", "--from-key", "--prev-kv")  # b, m ... (all > del/b)
    trio.check("get", "", "--from-key", "--keys-only")
    trio.verify()


TXN_SUCCESS = """mod("txn/a") > "0"
value("txn/b") = "2"

put txn/c "y z"
get txn/a
del txn/nothere --prev-kv
get txn/ --prefix --limit=1

put txn/q 1

"""

TXN_FAILURE = """version("txn/a") = "42"

put txn/never 1

put txn/f "failure branch"
get txn/ --prefix --keys-only
del txn/c

"""


def test_txn_from_stdin(trio: Trio) -> None:
    trio.check("put", "txn/a", "1")
    trio.check("put", "txn/b", "2")
    for fmt in FORMATS:
        trio.check("txn", *fmt, stdin=TXN_SUCCESS)
        trio.check("txn", *fmt, stdin=TXN_FAILURE)
    trio.check("txn", stdin="\n\nput txn/empty-compares 1\n\n")
    trio.check("txn", stdin='create("txn/a") < "1000000"\n\nget txn/a\n\n\n')
    trio.check("get", "txn/", "--prefix")
    trio.verify()


def test_compaction(trio: Trio) -> None:
    p = "compact/"
    ref, _, _ = trio.check("put", p + "k", "one", *JSON)
    first = ref.json()["header"]["revision"]
    trio.check("put", p + "k", "two")
    ref, _, _ = trio.check("put", p + "k", "three", *JSON)
    last = ref.json()["header"]["revision"]
    trio.check("compaction", str(last - 1))
    trio.check("get", p + "k", "--rev", str(first))  # compacted
    trio.check("compaction", str(first))  # already compacted
    trio.check("compaction", "--physical", str(last))
    trio.check("compaction", str(last + 1000))  # future
    trio.check("endpoint", "hashkv")
    trio.verify()


@pytest.mark.parametrize("fmt", [(), JSON, ("-w", "fields"), ("-w", "table")])
def test_endpoint_and_member_commands(trio: Trio, fmt: tuple[str, ...]) -> None:
    # A table's column widths depend on IDs, sizes and versions, which differ
    # between etcd and kvstore: tables are compared on etcd only.
    table = fmt == ("-w", "table")
    if not table:  # (its RAFT INDEX column is not normalised)
        trio.check("endpoint", "status", *fmt)
    trio.check("endpoint", "hashkv", *fmt, on_kvstore=not table)
    trio.check("member", "list", *fmt, on_kvstore=not table)
    if fmt != ("-w", "table"):  # the TOOK column's width varies with the time
        trio.check("endpoint", "health", *fmt)
    if fmt in ((), JSON):  # etcdctl 3.4 crashes on `alarm list -w fields`
        trio.check("alarm", "list", *fmt)
    trio.verify()


def test_defrag(trio: Trio) -> None:
    trio.check("defrag")
    trio.verify()


def test_binary_keys_and_values_with_hex(trio: Trio) -> None:
    key = "bin/\udcff\udcfe"  # the bytes ff fe after "bin/", not UTF-8
    value = b"\x00\x01\xffbinary\n"
    trio.check("put", key, stdin=value)
    trio.check("put", "bin/plain", stdin=b"\xc3\xa9t\xc3\xa9")
    for fmt in FORMATS:
        trio.check("get", "bin/", "--prefix", "--hex", *fmt)
    trio.check("get", "bin/", "--prefix", "--hex", "--print-value-only")
    trio.check("del", "bin/", "--prefix", "--prev-kv", "--hex")
    trio.verify()


def test_lease_commands(trio: Trio) -> None:
    for fmt in FORMATS:
        trio.check("lease", "grant", "100", *fmt)
    trio.check("lease", "list")
    trio.check("lease", "list", *JSON)
    trio.check("lease", "timetolive", "1234")
    trio.check("lease", "timetolive", "1234", *JSON)
    trio.check("lease", "revoke", "1234")
    trio.verify()
    # etcdctl exits 2 here (ExitBadConnection); kvstore exits 1 like for
    # every other error. The message is the same.
    ref = etcdctl(trio.ref.endpoints(), "lease", "keep-alive", "--once", "1234")
    sub = kvstore_cli(trio.etcd.endpoints(), "lease", "keep-alive", "--once", "1234")
    assert sub.error_lines == ref.error_lines == ["Error: etcdserver: requested lease not found"]
    assert sub.returncode == 1


def test_lease_lifecycle(trio: Trio) -> None:
    """grant -> put --lease -> timetolive --keys -> keep-alive --once -> revoke,
    each cluster with its own lease ID (IDs are normalised)."""

    def flow(run: Callable[..., CtlResult]) -> list[str]:
        grant = run("lease", "grant", "100")
        lid = grant.stdout.split()[1]
        outs = [
            grant,
            run("put", "lease/k", "v", "--lease", lid),
            run("lease", "timetolive", lid, "--keys"),
            run("lease", "keep-alive", "--once", lid),
            run("lease", "revoke", lid),
            run("get", "lease/k"),
            run("lease", "timetolive", lid),
        ]
        text = "".join(f"{o.returncode} {o.stdout}{o.error_lines}\n" for o in outs)
        text = text.replace(lid, "<lease>")
        return [re.sub(r"remaining\(\d+s\)", "remaining(<ttl>)", text)]

    want = flow(lambda *a: etcdctl(trio.ref.endpoints(), *a))
    assert flow(lambda *a: kvstore_cli(trio.etcd.endpoints(), *a)) == want
    assert flow(lambda *a: kvstore_cli(trio.kvstore.endpoints(), *a)) == want
