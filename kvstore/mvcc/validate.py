"""Checks made before a request touches the store (etcd's request checks).

They depend only on the request, so the API layer may call them early (before
proposing through Raft) and the store calls them again at apply time.
"""

from __future__ import annotations

from kvstore.mvcc.errors import (
    DuplicateKeyInTxn,
    EmptyKey,
    InvalidRangeEnd,
    LeaseProvided,
    TooManyOps,
    ValueProvided,
)
from kvstore.mvcc.types import (
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)

Interval = tuple[bytes, bytes | None]
"""[lo, hi) over keys; hi None means no upper bound."""


def interval(key: bytes, range_end: bytes) -> Interval:
    """etcd's key/range_end convention as a half-open interval:
    no range_end is the one key, b"\\0" means every key >= key."""
    if not range_end:
        return key, key + b"\0"
    if range_end == b"\0":
        return key, None
    return key, range_end


def check_key(key: bytes, range_end: bytes = b"", strict_range_end: bool = False) -> None:
    if not key:
        raise EmptyKey()
    if strict_range_end and range_end and range_end != b"\0" and range_end < key:
        raise InvalidRangeEnd(f"range_end {range_end!r} < key {key!r}")


def check_put(req: PutRequest) -> None:
    check_key(req.key)
    if req.ignore_value and req.value:
        raise ValueProvided()
    if req.ignore_lease and req.lease:
        raise LeaseProvided()


def check_op(op: RequestOp, max_ops: int, strict_range_end: bool = False) -> None:
    if isinstance(op, PutRequest):
        check_put(op)
    elif isinstance(op, RangeRequest | DeleteRangeRequest):
        check_key(op.key, op.range_end, strict_range_end)
    else:
        check_txn_ops(op, max_ops, strict_range_end)


def check_txn_ops(req: TxnRequest, max_ops: int, strict_range_end: bool = False) -> None:
    """Op counts and keys, recursively; a nested txn gets what its parent
    left of the budget (etcd's rule)."""
    used = max(len(req.compare), len(req.success), len(req.failure))
    if used > max_ops:
        raise TooManyOps(f"{used} > {max_ops}")
    for cmp in req.compare:
        check_key(cmp.key, cmp.range_end, strict_range_end)
    for op in req.success + req.failure:
        check_op(op, max_ops - used, strict_range_end)


def check_txn(req: TxnRequest, max_ops: int, strict_range_end: bool = False) -> None:
    check_txn_ops(req, max_ops, strict_range_end)
    _writes(req.success)
    _writes(req.failure)


def _covered(dels: list[Interval], key: bytes) -> bool:
    return any(lo <= key and (hi is None or key < hi) for lo, hi in dels)


def _writes(ops: tuple[RequestOp, ...]) -> tuple[set[bytes], list[Interval]]:
    """The keys put and the intervals deleted by one branch, including the
    branches of nested txns. A key may be put once, and not put when a delete
    of the same branch covers it; overlapping deletes are fine, and the two
    branches of one nested txn may put the same key (only one of them runs)."""
    dels = [interval(op.key, op.range_end) for op in ops if isinstance(op, DeleteRangeRequest)]
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        then_puts, then_dels = _writes(op.success)
        else_puts, else_dels = _writes(op.failure)
        for key in then_puts:
            if key in puts or _covered(dels, key):
                raise DuplicateKeyInTxn(repr(key))
            puts.add(key)
        for key in else_puts:
            if (key in puts and key not in then_puts) or _covered(dels, key):
                raise DuplicateKeyInTxn(repr(key))
            puts.add(key)
        dels.extend(then_dels)
        dels.extend(else_dels)
    for op in ops:
        if isinstance(op, PutRequest):
            if op.key in puts or _covered(dels, op.key):
                raise DuplicateKeyInTxn(repr(op.key))
            puts.add(op.key)
    return puts, dels
