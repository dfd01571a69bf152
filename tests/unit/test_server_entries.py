"""Round trips of the Raft entry payload codec, and its refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore.mvcc.types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
    TxnRequest,
)
from kvstore.server.entries import (
    CompactRequest,
    EntryDecodeError,
    Envelope,
    LeaseCheckpoint,
    LeaseGrant,
    LeaseRevoke,
    MemberAttributes,
    decode,
    encode,
)

keys = st.binary(max_size=12)
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

puts = st.builds(PutRequest, keys, keys, i64, st.booleans(), st.booleans(), st.booleans())
deletes = st.builds(DeleteRangeRequest, keys, keys, st.booleans())
ranges = st.builds(
    RangeRequest,
    keys,
    keys,
    i64,
    i64,
    st.sampled_from(SortOrder),
    st.sampled_from(SortTarget),
    st.booleans(),
    st.booleans(),
    i64,
    i64,
    i64,
    i64,
)
compares = st.builds(
    Compare,
    key=keys,
    target=st.sampled_from(CompareTarget),
    result=st.sampled_from(CompareResult),
    version=i64,
    create_revision=i64,
    mod_revision=i64,
    value=keys,
    lease=i64,
    range_end=keys,
)
txns = st.recursive(
    st.builds(TxnRequest, st.tuples(compares), st.tuples(puts, ranges), st.tuples(deletes)),
    lambda inner: st.builds(
        TxnRequest,
        st.lists(compares, max_size=3).map(tuple),
        st.lists(st.one_of(puts, deletes, ranges, inner), max_size=3).map(tuple),
        st.lists(st.one_of(puts, inner), max_size=2).map(tuple),
    ),
    max_leaves=6,
)
requests = st.one_of(
    puts,
    deletes,
    txns,
    st.builds(CompactRequest, st.integers(0, 2**62), st.booleans()),
    st.builds(LeaseGrant, i64, i64),
    st.builds(LeaseRevoke, i64),
    st.builds(LeaseCheckpoint, st.lists(st.tuples(i64, i64), max_size=4).map(tuple)),
    st.builds(
        MemberAttributes,
        st.integers(1, 2**64 - 1),
        st.text(max_size=10),
        st.lists(st.text(max_size=20), max_size=3).map(tuple),
    ),
)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), requests)
def test_every_request_round_trips(origin: int, seq: int, request: object) -> None:
    env = Envelope(origin, seq, request)  # type: ignore[arg-type]
    assert decode(encode(env)) == env


def test_truncated_or_padded_payloads_are_refused() -> None:
    data = encode(Envelope(1, 2, PutRequest(b"k", b"v")))
    for cut in range(len(data)):
        with pytest.raises(EntryDecodeError):
            decode(data[:cut])
    with pytest.raises(EntryDecodeError):
        decode(data + b"x")
    with pytest.raises(EntryDecodeError):
        decode(bytes([99]) + data[1:])
