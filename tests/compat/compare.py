"""Run the same etcdctl command against real etcd and against kvstore and
compare what they print, after normalising only what legitimately differs:

- IDs (cluster_id, member_id, leader, member and lease IDs) become
  placeholders numbered by first appearance, so "leader == member_id"
  still has to hold on both sides;
- sizes (dbSize, dbSizeInUse), server versions, raft terms and indexes and
  the HashKV hash (each must still be present and of the right type);
- endpoint addresses (member i's client/peer address -> <client:i>/<peer:i>);
- the time printed by `endpoint health`.

Everything else (revisions, versions of keys, key/value bytes, field sets,
order, exit codes and "Error: ..." lines) must be identical.

KVSTORE_COMPAT_SUBJECT=etcd runs the "subject" side on a second etcd: the
same comparisons then check the harness and its normalisation.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from tests.procs import Cluster, CtlResult, Launcher, etcdctl

SUBJECT_ENV = "KVSTORE_COMPAT_SUBJECT"

_ID_KEYS = {"cluster_id", "member_id", "leader", "ID", "id", "lease"}
_TERM_KEYS = {"raft_term", "raftTerm"}
_INDEX_KEYS = {"raftIndex", "raftAppliedIndex"}
_SIZE_KEYS = {"dbSize", "dbSizeInUse"}
_HEX_ID = re.compile(r"\b[0-9a-f]{16}\b")
_TOOK = re.compile(r"took = \S+")
# A lease's remaining TTL depends on when the command ran.
_REMAINING = re.compile(r"remaining\(-?\d+s\)")
# etcd lists a lease's keys in Go map order, which varies run to run.
_ATTACHED = re.compile(r"attached keys\(\[([^]]*)\]\)")
# `-w fields` prints IDs in decimal, one "Name" : value per line.
_FIELD_ID = re.compile(r'^"(ClusterID|MemberID|Leader|ID)" : (\d+)$', re.M)
_FIELD_TERM = re.compile(r'^"(RaftTerm)" : (\d+)$', re.M)


def subject_kind() -> str:
    return os.environ.get(SUBJECT_ENV, "kvstore")


@dataclass
class _Ids:
    seen: dict[str, str] = field(default_factory=dict)

    def __call__(self, value: object) -> str:
        key = str(value)
        if key not in self.seen:
            self.seen[key] = f"<id{len(self.seen)}>"
        return self.seen[key]


def _placeholder(kind: str, value: object, want: type) -> str:
    ok = isinstance(value, want) and not isinstance(value, bool)
    if want is int and ok:
        ok = int(value) > 0  # type: ignore[call-overload]
    return f"<{kind}>" if ok else f"<bad {kind}: {value!r}>"


def _walk(node: Any, ids: _Ids) -> Any:
    if isinstance(node, list):
        return [_walk(x, ids) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _ID_KEYS and isinstance(v, int | str):
            out[k] = ids(v)
        elif k in _TERM_KEYS:
            out[k] = _placeholder("term", v, int)
        elif k in _INDEX_KEYS:
            out[k] = _placeholder("index", v, int)
        elif k in _SIZE_KEYS:
            out[k] = _placeholder("size", v, int)
        elif k == "version" and isinstance(v, str):
            out[k] = "<version>"
        elif k == "hash":
            out[k] = _placeholder("hash", v, int) if v != 0 else "<hash>"
        elif k == "took":
            out[k] = "<took>"
        elif k == "keys" and "granted-ttl" in node and isinstance(v, list):
            out[k] = sorted(v)
        elif k == "ttl" and "granted-ttl" in node and isinstance(v, int):
            # timetolive: the remaining TTL, within a second or two of granted
            out[k] = "<remaining>" if 0 <= node["granted-ttl"] - v <= 3 else f"<bad ttl {v}>"
        else:
            out[k] = _walk(v, ids)
    return out


def _sorted_keys(m: re.Match[str]) -> str:
    return f"attached keys([{' '.join(sorted(m.group(1).split()))}])"


def _addresses(text: str, cluster: Cluster) -> str:
    for i, m in enumerate(cluster.members):
        text = text.replace(m.endpoint, f"<client:{i}>")
        text = text.replace(m.peer_url.split("://", 1)[1], f"<peer:{i}>")
    return text


def _status_line(line: str, ids: _Ids) -> str:
    """`endpoint status` simple output: endpoint, ID, version, db size,
    is leader, is learner, raft term, raft index, raft applied index, errors."""
    cols = line.split(", ")
    if len(cols) < 9:
        return line
    cols[1] = ids(cols[1])
    cols[2] = "<version>"
    cols[3] = "<size>"
    for i, kind in ((6, "term"), (7, "index"), (8, "index")):
        cols[i] = f"<{kind}>" if cols[i].isdigit() and int(cols[i]) > 0 else f"<bad {cols[i]}>"
    return ", ".join(cols)


def _first_column_id(line: str, ids: _Ids) -> str:
    head, sep, rest = line.partition(", ")
    if sep and re.fullmatch(r"[0-9a-f]{1,16}", head):
        return ids(head) + sep + rest
    return line


@dataclass(frozen=True, slots=True)
class Normalised:
    returncode: int
    stdout: Any
    errors: tuple[str, ...]


def normalise(res: CtlResult, cluster: Cluster) -> Normalised:
    ids = _Ids()
    text = _addresses(res.stdout, cluster)
    errors = tuple(_addresses(e, cluster) for e in res.error_lines)
    stdout: Any
    is_json = "-w" in res.args and res.args[res.args.index("-w") + 1] == "json"
    if is_json and text.strip():
        try:
            stdout = _walk(json.loads(text), ids)
        except json.JSONDecodeError:
            stdout = f"<not JSON> {text}"
    else:
        text = _TOOK.sub("took = <took>", text)
        text = _REMAINING.sub("remaining(<ttl>)", text)
        text = _ATTACHED.sub(_sorted_keys, text)
        if res.args[:2] == ("endpoint", "status"):
            text = "\n".join(_status_line(ln, ids) for ln in text.splitlines())
        if res.args[:2] == ("member", "list"):
            # etcdctl prints member IDs with %x: not zero-padded.
            text = "\n".join(_first_column_id(ln, ids) for ln in text.splitlines())
        text = _FIELD_ID.sub(lambda m: f'"{m.group(1)}" : {ids(m.group(2))}', text)
        text = _FIELD_TERM.sub(lambda m: f'"{m.group(1)}" : <term>', text)
        stdout = _HEX_ID.sub(lambda m: ids(m.group(0)), text)
    return Normalised(res.returncode, stdout, errors)


@dataclass
class Pair:
    """A reference etcd and a subject (kvstore) that get the same commands."""

    etcd: Cluster
    subject: Cluster
    mismatches: list[str] = field(default_factory=list)

    def run(
        self, *args: str, stdin: str | bytes | None = None, member: int | None = None
    ) -> tuple[CtlResult, CtlResult]:
        """Run on both: through all endpoints, or through member i of each."""
        if member is None:
            ref_eps, sub_eps = self.etcd.endpoints(), self.subject.endpoints()
        else:
            ref_eps = [self.etcd.members[member].endpoint]
            sub_eps = [self.subject.members[member].endpoint]
        ref = etcdctl(ref_eps, *args, stdin=stdin)
        sub = etcdctl(sub_eps, *args, stdin=stdin)
        return ref, sub

    def check(
        self, *args: str, stdin: str | bytes | None = None, member: int | None = None
    ) -> CtlResult:
        """Run on both and record a mismatch (the test continues, so one
        run shows every difference). Returns the subject's result."""
        ref, sub = self.run(*args, stdin=stdin, member=member)
        if ref.stdout.startswith("NAME:") or "unknown flag" in ref.stderr:
            raise AssertionError(f"etcdctl rejected the test's command line:\n{ref.describe()}")
        a, b = normalise(ref, self.etcd), normalise(sub, self.subject)
        if a != b:
            where = "" if member is None else f"  [through member {member}]"
            self.mismatches.append(
                f"$ etcdctl {' '.join(args)}{where}"
                + (f"  (stdin: {stdin!r:.200})" if stdin else "")
                + f"\n== etcd (exit {ref.returncode}):\n{ref.stdout}{_err(ref)}"
                + f"== {self.subject.kind} (exit {sub.returncode}):\n{sub.stdout}{_err(sub)}"
                + f"== normalised etcd:\n{a}\n== normalised {self.subject.kind}:\n{b}\n"
            )
        return sub

    def verify(self) -> None:
        if self.mismatches:
            raise AssertionError(
                f"{len(self.mismatches)} difference(s) from etcd:\n\n"
                + "\n".join(self.mismatches)
            )


def _err(res: CtlResult) -> str:
    lines = res.error_lines
    return "".join(f"[stderr] {ln}\n" for ln in lines)


def start_pair(launch: Launcher, n: int = 1, **flags: object) -> Pair:
    """A fresh n-member etcd and a fresh n-member subject, started at the
    same time with the same extra flags (etcd's names)."""
    etcd = launch.etcd(n, start=False, **flags)
    if subject_kind() == "etcd":
        subject = launch.etcd(n, start=False, **flags)
    else:
        subject = launch.kvstore(n, start=False, **flags)
    launch.start_together(etcd, subject)
    return Pair(etcd, subject)
