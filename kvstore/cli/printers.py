"""The four output formats of `-w`, as etcdctl 3.4 prints them.

simple and json are byte-for-byte etcdctl's (checked side by side in
tests/cli); fields is etcdctl's too; table is etcdctl's layout on a pipe
and a friendlier one on a TTY (see table.py). A printer writes bytes, so
binary keys and values come out unchanged, as with etcdctl.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from kvstore.api.pb import kv_pb2, rpc_pb2
from kvstore.cli import gofmt, table


class UnsupportedFormat(Exception):
    pass


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    endpoint: str
    health: bool
    took: float
    error: str


def hex_escaped(data: bytes) -> bytes:
    return b"".join(b"\\x%02x" % b for b in data)


def _header_fields(header: rpc_pb2.ResponseHeader | None) -> dict[str, Any]:
    """An embedded *pb.ResponseHeader (clientv3 lease responses): its fields
    promoted into the outer JSON object."""
    return gofmt.to_go(header) if header is not None else {}


EVENT_TYPES = {kv_pb2.Event.PUT: "PUT", kv_pb2.Event.DELETE: "DELETE"}
ALARMS = {rpc_pb2.NONE: "NONE", rpc_pb2.NOSPACE: "NOSPACE", rpc_pb2.CORRUPT: "CORRUPT"}


def member_rows(resp: rpc_pb2.MemberListResponse) -> list[list[str]]:
    return [
        [
            f"{m.ID:x}",
            "started" if m.name else "unstarted",
            m.name,
            ",".join(m.peerURLs),
            ",".join(m.clientURLs),
            "true" if m.isLearner else "false",
        ]
        for m in resp.members
    ]


MEMBER_HEADER = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"]
STATUS_HEADER = [
    "ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
    "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS",
]  # fmt: skip


def status_rows(statuses: Sequence[tuple[str, rpc_pb2.StatusResponse]]) -> list[list[str]]:
    return [
        [
            ep,
            f"{s.header.member_id:x}",
            s.version,
            gofmt.human_bytes(s.dbSize),
            "true" if s.leader == s.header.member_id else "false",
            "true" if s.isLearner else "false",
            str(s.raftTerm),
            str(s.raftIndex),
            str(s.raftAppliedIndex),
            ", ".join(s.errors),
        ]
        for ep, s in statuses
    ]


class Printer:
    """Base: every method says the format does not support the command."""

    name = "?"

    def __init__(self, hex_output: bool = False, out: BinaryIO | None = None) -> None:
        self.hex = hex_output
        self.out = out if out is not None else sys.stdout.buffer

    # low level
    def write(self, data: bytes | str) -> None:
        self.out.write(data.encode() if isinstance(data, str) else data)
        self.out.flush()

    def line(self, text: bytes | str = b"") -> None:
        self.write((text.encode() if isinstance(text, str) else text) + b"\n")

    def _unsupported(self) -> Any:
        raise UnsupportedFormat(f"{self.name} not supported as output format")

    # commands
    def get(self, resp: rpc_pb2.RangeResponse, value_only: bool) -> None:
        self._unsupported()

    def count(self, resp: rpc_pb2.RangeResponse) -> None:
        """`get --count-only` (etcdctl 3.5's output: the count alone)."""
        self.get(resp, False)

    def put(self, resp: rpc_pb2.PutResponse) -> None:
        self._unsupported()

    def delete(self, resp: rpc_pb2.DeleteRangeResponse) -> None:
        self._unsupported()

    def txn(self, resp: rpc_pb2.TxnResponse) -> None:
        self._unsupported()

    def watch(self, resp: rpc_pb2.WatchResponse) -> None:
        self._unsupported()

    def lease_grant(self, resp: rpc_pb2.LeaseGrantResponse) -> None:
        self._unsupported()

    def lease_revoke(self, lease_id: int, resp: rpc_pb2.LeaseRevokeResponse) -> None:
        self._unsupported()

    def lease_keep_alive(self, resp: rpc_pb2.LeaseKeepAliveResponse) -> None:
        self._unsupported()

    def lease_ttl(self, resp: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        self._unsupported()

    def lease_list(self, resp: rpc_pb2.LeaseLeasesResponse) -> None:
        self._unsupported()

    def member_list(self, resp: rpc_pb2.MemberListResponse) -> None:
        self._unsupported()

    def member_add(self, resp: rpc_pb2.MemberAddResponse) -> None:
        self._unsupported()

    def member_change(self, verb: str, member_id: int, resp: Any) -> None:
        """remove / update / promote: "removed from", "updated in", "promoted in"."""
        self._unsupported()

    def endpoint_health(self, results: Sequence[EndpointHealth]) -> None:
        self._unsupported()

    def endpoint_status(self, statuses: Sequence[tuple[str, rpc_pb2.StatusResponse]]) -> None:
        self._unsupported()

    def endpoint_hashkv(self, hashes: Sequence[tuple[str, rpc_pb2.HashKVResponse]]) -> None:
        self._unsupported()

    def alarm(self, resp: rpc_pb2.AlarmResponse) -> None:
        self._unsupported()

    def move_leader(self, leader: int, target: int, resp: rpc_pb2.MoveLeaderResponse) -> None:
        self._unsupported()


class SimplePrinter(Printer):
    name = "simple"

    def kv(self, kv: kv_pb2.KeyValue, value_only: bool = False) -> None:
        key, value = kv.key, kv.value
        if self.hex:
            key, value = hex_escaped(key), hex_escaped(value)
        if not value_only:
            self.line(key)
        self.line(value)

    def get(self, resp: rpc_pb2.RangeResponse, value_only: bool) -> None:
        for kv in resp.kvs:
            self.kv(kv, value_only)

    def count(self, resp: rpc_pb2.RangeResponse) -> None:
        self.line(str(resp.count))

    def put(self, resp: rpc_pb2.PutResponse) -> None:
        self.line("OK")
        if resp.HasField("prev_kv"):
            self.kv(resp.prev_kv)

    def delete(self, resp: rpc_pb2.DeleteRangeResponse) -> None:
        self.line(str(resp.deleted))
        for kv in resp.prev_kvs:
            self.kv(kv)

    def txn(self, resp: rpc_pb2.TxnResponse) -> None:
        self.line("SUCCESS" if resp.succeeded else "FAILURE")
        for op in resp.responses:
            self.line()
            which = op.WhichOneof("response")
            if which == "response_put":
                self.put(op.response_put)
            elif which == "response_range":
                self.get(op.response_range, False)
            elif which == "response_delete_range":
                self.delete(op.response_delete_range)
            else:
                self.line(f"unexpected response {op}")

    def watch(self, resp: rpc_pb2.WatchResponse) -> None:
        for ev in resp.events:
            self.line(EVENT_TYPES.get(ev.type, str(ev.type)))
            if ev.HasField("prev_kv"):
                self.kv(ev.prev_kv)
            self.kv(ev.kv)

    def lease_grant(self, resp: rpc_pb2.LeaseGrantResponse) -> None:
        self.line(f"lease {resp.ID:016x} granted with TTL({resp.TTL}s)")

    def lease_revoke(self, lease_id: int, resp: rpc_pb2.LeaseRevokeResponse) -> None:
        self.line(f"lease {lease_id:016x} revoked")

    def lease_keep_alive(self, resp: rpc_pb2.LeaseKeepAliveResponse) -> None:
        self.line(f"lease {resp.ID:016x} keepalived with TTL({resp.TTL})")

    def lease_ttl(self, resp: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        if resp.TTL == -1:
            self.line(f"lease {resp.ID:016x} already expired")
            return
        text = f"lease {resp.ID:016x} granted with TTL({resp.grantedTTL}s), remaining({resp.TTL}s)"
        data = text.encode()
        if keys:
            data += b", attached keys([" + b" ".join(resp.keys) + b"])"
        self.line(data)

    def lease_list(self, resp: rpc_pb2.LeaseLeasesResponse) -> None:
        self.line(f"found {len(resp.leases)} leases")
        for lease in resp.leases:
            self.line(f"{lease.ID:016x}")

    def member_list(self, resp: rpc_pb2.MemberListResponse) -> None:
        for row in member_rows(resp):
            self.line(", ".join(row))

    def member_add(self, resp: rpc_pb2.MemberAddResponse) -> None:
        learner = " as learner " if resp.member.isLearner else " "
        self.line(
            f"Member {resp.member.ID:16x} added{learner}to cluster {resp.header.cluster_id:16x}"
        )

    def member_change(self, verb: str, member_id: int, resp: Any) -> None:
        self.line(f"Member {member_id:16x} {verb} cluster {resp.header.cluster_id:16x}")

    def endpoint_health(self, results: Sequence[EndpointHealth]) -> None:
        # etcdctl 3.4 prints both verdicts on stderr.
        for h in results:
            if h.health:
                sys.stderr.write(
                    f"{h.endpoint} is healthy: successfully committed proposal: "
                    f"took = {gofmt.duration(h.took)}\n"
                )
            else:
                sys.stderr.write(
                    f"{h.endpoint} is unhealthy: failed to commit proposal: {h.error}\n"
                )

    def endpoint_status(self, statuses: Sequence[tuple[str, rpc_pb2.StatusResponse]]) -> None:
        for row in status_rows(statuses):
            self.line(", ".join(row))

    def endpoint_hashkv(self, hashes: Sequence[tuple[str, rpc_pb2.HashKVResponse]]) -> None:
        for ep, h in hashes:
            self.line(f"{ep}, {h.hash}")

    def alarm(self, resp: rpc_pb2.AlarmResponse) -> None:
        for a in resp.alarms:
            self.line(f"memberID:{a.memberID} alarm:{ALARMS.get(a.alarm, str(a.alarm))} ")

    def move_leader(self, leader: int, target: int, resp: rpc_pb2.MoveLeaderResponse) -> None:
        self.line(f"Leadership transferred from {leader:x} to {target:x}")


class JsonPrinter(Printer):
    """etcdctl's printJSON: encoding/json of the Go response value."""

    name = "json"

    def json(self, value: Any) -> None:
        self.line(gofmt.dumps(value))

    def msg(self, resp: Any) -> None:
        self.line(gofmt.marshal(resp))

    def get(self, resp: rpc_pb2.RangeResponse, value_only: bool) -> None:
        self.msg(resp)

    def put(self, resp: rpc_pb2.PutResponse) -> None:
        self.msg(resp)

    def delete(self, resp: rpc_pb2.DeleteRangeResponse) -> None:
        self.msg(resp)

    def txn(self, resp: rpc_pb2.TxnResponse) -> None:
        self.msg(resp)

    def watch(self, resp: rpc_pb2.WatchResponse) -> None:
        # clientv3.WatchResponse: exported Go fields without json tags.
        self.json(
            {
                "Header": gofmt.to_go(resp.header),
                "Events": [gofmt.to_go(e) for e in resp.events] or None,
                "CompactRevision": resp.compact_revision,
                "Canceled": resp.canceled,
                "Created": resp.created,
            }
        )

    def lease_grant(self, resp: rpc_pb2.LeaseGrantResponse) -> None:
        head = _header_fields(resp.header if resp.HasField("header") else None)
        self.json({**head, "ID": resp.ID, "TTL": resp.TTL, "Error": resp.error})

    def lease_revoke(self, lease_id: int, resp: rpc_pb2.LeaseRevokeResponse) -> None:
        self.msg(resp)

    def lease_keep_alive(self, resp: rpc_pb2.LeaseKeepAliveResponse) -> None:
        head = _header_fields(resp.header if resp.HasField("header") else None)
        self.json({**head, "ID": resp.ID, "TTL": resp.TTL})

    def lease_ttl(self, resp: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        head = _header_fields(resp.header if resp.HasField("header") else None)
        self.json(
            {
                **head,
                "id": resp.ID,
                "ttl": resp.TTL,
                "granted-ttl": resp.grantedTTL,
                "keys": [gofmt.b64(k) for k in resp.keys] or None,
            }
        )

    def lease_list(self, resp: rpc_pb2.LeaseLeasesResponse) -> None:
        head = _header_fields(resp.header if resp.HasField("header") else None)
        self.json({**head, "leases": [{"id": lease.ID} for lease in resp.leases] or None})

    def member_list(self, resp: rpc_pb2.MemberListResponse) -> None:
        self.msg(resp)

    def member_add(self, resp: rpc_pb2.MemberAddResponse) -> None:
        self.msg(resp)

    def member_change(self, verb: str, member_id: int, resp: Any) -> None:
        self.msg(resp)

    def endpoint_health(self, results: Sequence[EndpointHealth]) -> None:
        items = []
        for h in results:
            item: dict[str, Any] = {
                "endpoint": h.endpoint,
                "health": h.health,
                "took": gofmt.duration(h.took),
            }
            if h.error:
                item["error"] = h.error
            items.append(item)
        self.json(items)

    def endpoint_status(self, statuses: Sequence[tuple[str, rpc_pb2.StatusResponse]]) -> None:
        self.json([{"Endpoint": ep, "Status": gofmt.to_go(s)} for ep, s in statuses])

    def endpoint_hashkv(self, hashes: Sequence[tuple[str, rpc_pb2.HashKVResponse]]) -> None:
        self.json([{"Endpoint": ep, "HashKV": gofmt.to_go(h)} for ep, h in hashes])

    def alarm(self, resp: rpc_pb2.AlarmResponse) -> None:
        self.msg(resp)

    def move_leader(self, leader: int, target: int, resp: rpc_pb2.MoveLeaderResponse) -> None:
        self.msg(resp)


class FieldsPrinter(Printer):
    """etcdctl's `-w fields`: one "Name" : value per line, Go formatting."""

    name = "fields"

    def field(self, name: str, value: object) -> None:
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.line(f'"{name}" : {value}')

    def hdr(self, h: rpc_pb2.ResponseHeader) -> None:
        self.field("ClusterID", h.cluster_id)
        self.field("MemberID", h.member_id)
        self.field("Revision", h.revision)
        self.field("RaftTerm", h.raft_term)

    def kv(self, prefix: str, kv: kv_pb2.KeyValue) -> None:
        self.field(f"{prefix}Key", gofmt.quote(kv.key))
        self.field(f"{prefix}CreateRevision", kv.create_revision)
        self.field(f"{prefix}ModRevision", kv.mod_revision)
        self.field(f"{prefix}Version", kv.version)
        self.field(f"{prefix}Value", gofmt.quote(kv.value))
        self.field(f"{prefix}Lease", kv.lease)

    def get(self, resp: rpc_pb2.RangeResponse, value_only: bool) -> None:
        self.hdr(resp.header)
        for kv in resp.kvs:
            self.kv("", kv)
        self.field("More", resp.more)
        self.field("Count", resp.count)

    def put(self, resp: rpc_pb2.PutResponse) -> None:
        self.hdr(resp.header)
        if resp.HasField("prev_kv"):
            self.kv("Prev", resp.prev_kv)

    def delete(self, resp: rpc_pb2.DeleteRangeResponse) -> None:
        self.hdr(resp.header)
        self.field("Deleted", resp.deleted)
        for kv in resp.prev_kvs:
            self.kv("Prev", kv)

    def txn(self, resp: rpc_pb2.TxnResponse) -> None:
        self.hdr(resp.header)
        self.field("Succeeded", resp.succeeded)
        for op in resp.responses:
            which = op.WhichOneof("response")
            if which == "response_put":
                self.put(op.response_put)
            elif which == "response_range":
                self.get(op.response_range, False)
            elif which == "response_delete_range":
                self.delete(op.response_delete_range)

    def watch(self, resp: rpc_pb2.WatchResponse) -> None:
        self.hdr(resp.header)
        for ev in resp.events:
            self.field("Type", EVENT_TYPES.get(ev.type, str(ev.type)))
            if ev.HasField("prev_kv"):
                self.kv("Prev", ev.prev_kv)
            self.kv("", ev.kv)

    def lease_grant(self, resp: rpc_pb2.LeaseGrantResponse) -> None:
        self.hdr(resp.header)
        self.field("ID", resp.ID)
        self.field("TTL", resp.TTL)

    def lease_revoke(self, lease_id: int, resp: rpc_pb2.LeaseRevokeResponse) -> None:
        self.hdr(resp.header)

    def lease_keep_alive(self, resp: rpc_pb2.LeaseKeepAliveResponse) -> None:
        self.hdr(resp.header)
        self.field("ID", resp.ID)
        self.field("TTL", resp.TTL)

    def lease_ttl(self, resp: rpc_pb2.LeaseTimeToLiveResponse, keys: bool) -> None:
        self.hdr(resp.header)
        self.field("ID", resp.ID)
        self.field("TTL", resp.TTL)
        self.field("GrantedTTL", resp.grantedTTL)
        for k in resp.keys:
            self.field("Key", gofmt.quote(k))

    def lease_list(self, resp: rpc_pb2.LeaseLeasesResponse) -> None:
        self.hdr(resp.header)
        for lease in resp.leases:
            self.field("ID", lease.ID)

    def member_list(self, resp: rpc_pb2.MemberListResponse) -> None:
        self.hdr(resp.header)
        for m in resp.members:
            self.field("ID", m.ID)
            self.field("Name", gofmt.quote(m.name))
            for u in m.peerURLs:
                self.field("PeerURL", gofmt.quote(u))
            for u in m.clientURLs:
                self.field("ClientURL", gofmt.quote(u))
            self.field("IsLearner", m.isLearner)
            self.line()

    def member_add(self, resp: rpc_pb2.MemberAddResponse) -> None:
        self.hdr(resp.header)
        self.field("ID", resp.member.ID)
        self.field("Name", gofmt.quote(resp.member.name))

    def member_change(self, verb: str, member_id: int, resp: Any) -> None:
        self.hdr(resp.header)

    def endpoint_health(self, results: Sequence[EndpointHealth]) -> None:
        for h in results:
            self.field("Endpoint", gofmt.quote(h.endpoint))
            self.field("Health", h.health)
            self.field("Took", gofmt.duration(h.took))
            self.field("Error", h.error)
            self.line()

    def endpoint_status(self, statuses: Sequence[tuple[str, rpc_pb2.StatusResponse]]) -> None:
        for ep, s in statuses:
            self.hdr(s.header)
            self.field("Version", gofmt.quote(s.version))
            self.field("DBSize", s.dbSize)
            self.field("Leader", s.leader)
            self.field("IsLearner", s.isLearner)
            self.field("RaftIndex", s.raftIndex)
            self.field("RaftTerm", s.raftTerm)
            self.field("RaftAppliedIndex", s.raftAppliedIndex)
            self.field("Errors", "[" + " ".join(s.errors) + "]")
            self.field("Endpoint", gofmt.quote(ep))
            self.line()

    def endpoint_hashkv(self, hashes: Sequence[tuple[str, rpc_pb2.HashKVResponse]]) -> None:
        for ep, h in hashes:
            self.hdr(h.header)
            self.field("Endpoint", gofmt.quote(ep))
            self.field("Hash", h.hash)
            self.line()

    def alarm(self, resp: rpc_pb2.AlarmResponse) -> None:
        self.hdr(resp.header)
        for a in resp.alarms:
            self.field("MemberID", a.memberID)
            self.field("AlarmType", ALARMS.get(a.alarm, str(a.alarm)))
            self.line()


class TablePrinter(Printer):
    name = "table"

    def __init__(self, hex_output: bool = False, out: BinaryIO | None = None) -> None:
        super().__init__(hex_output, out)
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.write(table.render(header, rows, self.tty))

    def member_list(self, resp: rpc_pb2.MemberListResponse) -> None:
        self.table(MEMBER_HEADER, member_rows(resp))

    def endpoint_status(self, statuses: Sequence[tuple[str, rpc_pb2.StatusResponse]]) -> None:
        self.table(STATUS_HEADER, status_rows(statuses))

    def endpoint_hashkv(self, hashes: Sequence[tuple[str, rpc_pb2.HashKVResponse]]) -> None:
        self.table(["ENDPOINT", "HASH"], [[ep, str(h.hash)] for ep, h in hashes])

    def endpoint_health(self, results: Sequence[EndpointHealth]) -> None:
        rows = [
            [h.endpoint, "true" if h.health else "false", gofmt.duration(h.took), h.error]
            for h in results
        ]
        self.table(["ENDPOINT", "HEALTH", "TOOK", "ERROR"], rows)

    def lease_list(self, resp: rpc_pb2.LeaseLeasesResponse) -> None:
        # Not in etcdctl 3.4 (which has no lease table): one row per lease.
        self.table(["LEASE ID", "ID (DECIMAL)"], [[f"{x.ID:016x}", str(x.ID)] for x in resp.leases])


PRINTERS: dict[str, type[Printer]] = {
    "simple": SimplePrinter,
    "json": JsonPrinter,
    "fields": FieldsPrinter,
    "table": TablePrinter,
}


def make_printer(fmt: str, hex_output: bool) -> Printer:
    return PRINTERS[fmt](hex_output)
