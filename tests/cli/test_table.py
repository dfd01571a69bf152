"""`-w table` on a pipe is laid out exactly like etcdctl 3.4's tablewriter
(centred headers, cells aligned right); on a TTY it is a box-drawing table."""

from __future__ import annotations

from kvstore.cli.table import render

# Printed by etcdctl 3.4.23 `member list -w table` against etcd 3.4.23.
ETCDCTL_MEMBER_TABLE = """\
+------------------+---------+------+------------------------+------------------------+------------+
|        ID        | STATUS  | NAME |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+------+------------------------+------------------------+------------+
| 561ea94d7d5a11d6 | started |   s1 | http://127.0.0.1:34847 | http://127.0.0.1:42747 |      false |
+------------------+---------+------+------------------------+------------------------+------------+
"""

ETCDCTL_HEALTH_TABLE = """\
+-----------------+--------+------------+-------+
|    ENDPOINT     | HEALTH |    TOOK    | ERROR |
+-----------------+--------+------------+-------+
| 127.0.0.1:42747 |   true | 1.525297ms |       |
+-----------------+--------+------------+-------+
"""


def test_plain_table_is_etcdctls() -> None:
    header = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"]
    row = [
        "561ea94d7d5a11d6",
        "started",
        "s1",
        "http://127.0.0.1:34847",
        "http://127.0.0.1:42747",
        "false",
    ]
    assert render(header, [row], tty=False) == ETCDCTL_MEMBER_TABLE
    health = [["127.0.0.1:42747", "true", "1.525297ms", ""]]
    assert render(["ENDPOINT", "HEALTH", "TOOK", "ERROR"], health, tty=False) == (
        ETCDCTL_HEALTH_TABLE
    )


def test_tty_table_is_boxed() -> None:
    out = render(["A", "LONGER"], [["xyz", "1"]], tty=True)
    lines = out.splitlines()
    assert lines[0] == "┌─────┬────────┐"
    assert "xyz" in lines[3] and lines[-1] == "└─────┴────────┘"
