"""Evaluating one txn Compare against one key-value (etcd's compare rules)."""

from __future__ import annotations

from kvstore.mvcc.types import Compare, CompareResult, CompareTarget, KeyValue


def compare_kv(cmp: Compare, kv: KeyValue) -> bool:
    """Whether `kv` satisfies `cmp`. A missing key is compared as a KeyValue
    of zeros (version 0, create 0, mod 0, lease 0), as etcd does."""
    left: int | bytes
    right: int | bytes
    target = cmp.target
    if target is CompareTarget.VERSION:
        left, right = kv.version, cmp.version
    elif target is CompareTarget.CREATE:
        left, right = kv.create_revision, cmp.create_revision
    elif target is CompareTarget.MOD:
        left, right = kv.mod_revision, cmp.mod_revision
    elif target is CompareTarget.VALUE:
        left, right = kv.value, cmp.value
    else:
        left, right = kv.lease, cmp.lease
    result = cmp.result
    if result is CompareResult.EQUAL:
        return left == right
    if result is CompareResult.NOT_EQUAL:
        return left != right
    if result is CompareResult.GREATER:
        return left > right  # type: ignore[operator]
    return left < right  # type: ignore[operator]
