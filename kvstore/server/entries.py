"""The payload of a normal Raft entry: one client request, binary-encoded.

    u8 kind | u64 origin member | u64 sequence | body

(origin, sequence) identifies the request so that the member that proposed
it can hand the result back to the waiting client; every other member just
applies it. Bodies are struct-packed; byte strings are u32-length-prefixed.
The format is internal to kvstore (never seen by clients) and versioned by
the `kind` byte: new request kinds get new numbers, old ones never change.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from kvstore.mvcc.types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    SortOrder,
    SortTarget,
    TxnRequest,
)


class Kind(enum.IntEnum):
    PUT = 1
    DELETE_RANGE = 2
    TXN = 3
    COMPACT = 4
    MEMBER_ATTRS = 5
    RANGE = 6  # only inside a txn
    LEASE_GRANT = 7
    LEASE_REVOKE = 8
    LEASE_CHECKPOINT = 9


@dataclass(frozen=True, slots=True)
class CompactRequest:
    revision: int
    physical: bool = False


@dataclass(frozen=True, slots=True)
class MemberAttributes:
    """A member publishes its name and client URLs through the log, so every
    member can list every other member's client endpoints."""

    member_id: int
    name: str
    client_urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    lease_id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseRevoke:
    """Revoke a lease and delete its keys in one revision. Proposed by a
    client, or by the leader when the lease expires."""

    lease_id: int


@dataclass(frozen=True, slots=True)
class LeaseCheckpoint:
    """The leader's record of remaining TTLs, so that a new leader does not
    restart every lease at its full TTL."""

    remaining: tuple[tuple[int, int], ...]


Request = (
    PutRequest
    | DeleteRangeRequest
    | TxnRequest
    | CompactRequest
    | MemberAttributes
    | LeaseGrant
    | LeaseRevoke
    | LeaseCheckpoint
)


@dataclass(frozen=True, slots=True)
class Envelope:
    origin: int
    seq: int
    request: Request


class EntryDecodeError(ValueError):
    pass


_HEAD = struct.Struct(">BQQ")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_PUT = struct.Struct(">qB")
_RANGE = struct.Struct(">qqBBBqqqq")
_CMP = struct.Struct(">BBqqqq")
_COMPACT = struct.Struct(">qB")
_QQ = struct.Struct(">qq")


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def raw(self, b: bytes) -> None:
        self.parts.append(b)

    def blob(self, b: bytes) -> None:
        self.parts.append(_U32.pack(len(b)))
        self.parts.append(b)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def unpack(self, s: struct.Struct) -> tuple[int, ...]:
        end = self.pos + s.size
        if end > len(self.data):
            raise EntryDecodeError("truncated entry")
        values: tuple[int, ...] = s.unpack_from(self.data, self.pos)
        self.pos = end
        return values

    def blob(self) -> bytes:
        (n,) = self.unpack(_U32)
        end = self.pos + n
        if end > len(self.data):
            raise EntryDecodeError("truncated entry")
        b = bytes(self.data[self.pos : end])
        self.pos = end
        return b


def _flags(*bits: bool) -> int:
    return sum(1 << i for i, b in enumerate(bits) if b)


def _bit(flags: int, i: int) -> bool:
    return bool(flags >> i & 1)


def _write_put(w: _Writer, r: PutRequest) -> None:
    w.blob(r.key)
    w.blob(r.value)
    w.raw(_PUT.pack(r.lease, _flags(r.prev_kv, r.ignore_value, r.ignore_lease)))


def _read_put(rd: _Reader) -> PutRequest:
    key, value = rd.blob(), rd.blob()
    lease, flags = rd.unpack(_PUT)
    return PutRequest(key, value, lease, _bit(flags, 0), _bit(flags, 1), _bit(flags, 2))


def _write_delete(w: _Writer, r: DeleteRangeRequest) -> None:
    w.blob(r.key)
    w.blob(r.range_end)
    w.raw(bytes([_flags(r.prev_kv)]))


def _read_delete(rd: _Reader) -> DeleteRangeRequest:
    key, range_end = rd.blob(), rd.blob()
    (flags,) = rd.unpack(struct.Struct(">B"))
    return DeleteRangeRequest(key, range_end, _bit(flags, 0))


def _write_range(w: _Writer, r: RangeRequest) -> None:
    w.blob(r.key)
    w.blob(r.range_end)
    w.raw(
        _RANGE.pack(
            r.limit,
            r.revision,
            r.sort_order,
            r.sort_target,
            _flags(r.keys_only, r.count_only),
            r.min_mod_revision,
            r.max_mod_revision,
            r.min_create_revision,
            r.max_create_revision,
        )
    )


def _read_range(rd: _Reader) -> RangeRequest:
    key, range_end = rd.blob(), rd.blob()
    limit, rev, order, target, flags, min_mod, max_mod, min_create, max_create = rd.unpack(_RANGE)
    return RangeRequest(
        key,
        range_end,
        limit,
        rev,
        SortOrder(order),
        SortTarget(target),
        _bit(flags, 0),
        _bit(flags, 1),
        min_mod,
        max_mod,
        min_create,
        max_create,
    )


def _write_compare(w: _Writer, c: Compare) -> None:
    w.blob(c.key)
    w.blob(c.range_end)
    w.blob(c.value)
    w.raw(_CMP.pack(c.target, c.result, c.version, c.create_revision, c.mod_revision, c.lease))


def _read_compare(rd: _Reader) -> Compare:
    key, range_end, value = rd.blob(), rd.blob(), rd.blob()
    target, result, version, create, mod, lease = rd.unpack(_CMP)
    return Compare(
        key=key,
        target=CompareTarget(target),
        result=CompareResult(result),
        version=version,
        create_revision=create,
        mod_revision=mod,
        value=value,
        lease=lease,
        range_end=range_end,
    )


def _write_op(w: _Writer, op: RequestOp) -> None:
    if isinstance(op, RangeRequest):
        w.raw(bytes([Kind.RANGE]))
        _write_range(w, op)
    elif isinstance(op, PutRequest):
        w.raw(bytes([Kind.PUT]))
        _write_put(w, op)
    elif isinstance(op, DeleteRangeRequest):
        w.raw(bytes([Kind.DELETE_RANGE]))
        _write_delete(w, op)
    else:
        w.raw(bytes([Kind.TXN]))
        _write_txn(w, op)


def _read_op(rd: _Reader) -> RequestOp:
    (kind,) = rd.unpack(struct.Struct(">B"))
    if kind == Kind.RANGE:
        return _read_range(rd)
    if kind == Kind.PUT:
        return _read_put(rd)
    if kind == Kind.DELETE_RANGE:
        return _read_delete(rd)
    if kind == Kind.TXN:
        return _read_txn(rd)
    raise EntryDecodeError(f"unknown txn op kind {kind}")


def _write_txn(w: _Writer, t: TxnRequest) -> None:
    w.raw(_U32.pack(len(t.compare)))
    for c in t.compare:
        _write_compare(w, c)
    for branch in (t.success, t.failure):
        w.raw(_U32.pack(len(branch)))
        for op in branch:
            _write_op(w, op)


def _read_txn(rd: _Reader) -> TxnRequest:
    (n,) = rd.unpack(_U32)
    compares = tuple(_read_compare(rd) for _ in range(n))
    (n,) = rd.unpack(_U32)
    success = tuple(_read_op(rd) for _ in range(n))
    (n,) = rd.unpack(_U32)
    failure = tuple(_read_op(rd) for _ in range(n))
    return TxnRequest(compares, success, failure)


def encode(env: Envelope) -> bytes:
    r = env.request
    w = _Writer()
    if isinstance(r, PutRequest):
        kind = Kind.PUT
        w.raw(_HEAD.pack(kind, env.origin, env.seq))
        _write_put(w, r)
    elif isinstance(r, DeleteRangeRequest):
        w.raw(_HEAD.pack(Kind.DELETE_RANGE, env.origin, env.seq))
        _write_delete(w, r)
    elif isinstance(r, TxnRequest):
        w.raw(_HEAD.pack(Kind.TXN, env.origin, env.seq))
        _write_txn(w, r)
    elif isinstance(r, CompactRequest):
        w.raw(_HEAD.pack(Kind.COMPACT, env.origin, env.seq))
        w.raw(_COMPACT.pack(r.revision, r.physical))
    elif isinstance(r, LeaseGrant):
        w.raw(_HEAD.pack(Kind.LEASE_GRANT, env.origin, env.seq))
        w.raw(_QQ.pack(r.lease_id, r.ttl))
    elif isinstance(r, LeaseRevoke):
        w.raw(_HEAD.pack(Kind.LEASE_REVOKE, env.origin, env.seq))
        w.raw(_I64.pack(r.lease_id))
    elif isinstance(r, LeaseCheckpoint):
        w.raw(_HEAD.pack(Kind.LEASE_CHECKPOINT, env.origin, env.seq))
        w.raw(_U32.pack(len(r.remaining)))
        for lease_id, remaining in r.remaining:
            w.raw(_QQ.pack(lease_id, remaining))
    else:
        w.raw(_HEAD.pack(Kind.MEMBER_ATTRS, env.origin, env.seq))
        w.raw(struct.pack(">Q", r.member_id))
        w.blob(r.name.encode())
        w.raw(_U32.pack(len(r.client_urls)))
        for url in r.client_urls:
            w.blob(url.encode())
    return w.getvalue()


def decode(data: bytes) -> Envelope:
    rd = _Reader(data)
    kind, origin, seq = rd.unpack(_HEAD)
    request: Request
    if kind == Kind.PUT:
        request = _read_put(rd)
    elif kind == Kind.DELETE_RANGE:
        request = _read_delete(rd)
    elif kind == Kind.TXN:
        request = _read_txn(rd)
    elif kind == Kind.COMPACT:
        revision, physical = rd.unpack(_COMPACT)
        request = CompactRequest(revision, bool(physical))
    elif kind == Kind.MEMBER_ATTRS:
        (member_id,) = rd.unpack(struct.Struct(">Q"))
        name = rd.blob().decode()
        (n,) = rd.unpack(_U32)
        request = MemberAttributes(member_id, name, tuple(rd.blob().decode() for _ in range(n)))
    elif kind == Kind.LEASE_GRANT:
        lease_id, ttl = rd.unpack(_QQ)
        request = LeaseGrant(lease_id, ttl)
    elif kind == Kind.LEASE_REVOKE:
        (lease_id,) = rd.unpack(_I64)
        request = LeaseRevoke(lease_id)
    elif kind == Kind.LEASE_CHECKPOINT:
        (n,) = rd.unpack(_U32)
        pairs = tuple(rd.unpack(_QQ) for _ in range(n))
        request = LeaseCheckpoint(tuple((a, b) for a, b in pairs))
    else:
        raise EntryDecodeError(f"unknown entry kind {kind}")
    if rd.pos != len(rd.data):
        raise EntryDecodeError("trailing bytes after entry")
    return Envelope(origin, seq, request)
