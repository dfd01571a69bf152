"""Protobuf <-> kvstore.mvcc.types, field by field.

The domain types mirror etcdserverpb's names and enum numbers, so most of
this is copying. The few places where proto3 semantics matter:

- Absent and default are the same on the wire: an unset `prev_kv` and an
  empty KeyValue cannot be told apart, so a response sets PutResponse.prev_kv
  only when the store returned one (requested and present), as etcd does.
- Compare's operand is the oneof `target_union`; reading a member that is not
  the set one gives its default, which is exactly etcd's rule (a compare
  whose operand does not match its target compares against 0 / b"").
- A RequestOp with no member set is rejected with KeyNotFound, etcd's answer
  to an empty op.
- Enum fields are open in proto3 (any int32 arrives); a number outside the
  enum is an InvalidRequest rather than undefined behaviour.
- Nested responses inside a Txn carry a header with only `revision` set
  (and a nested TxnResponse an empty header): etcd fills cluster, member and
  term only on the top-level header.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from kvstore.api.pb import kv_pb2, rpc_pb2
from kvstore.mvcc import types as t
from kvstore.mvcc.errors import InvalidRequest, KeyNotFound
from kvstore.server.views import Header, Member

E = TypeVar("E", bound=enum.IntEnum)


def _enum(cls: type[E], value: int, what: str) -> E:
    try:
        return cls(value)
    except ValueError:
        raise InvalidRequest(f"etcdserver: unknown {what} {value}") from None


# -- requests: protobuf -> domain ---------------------------------------------------------


def range_request(pb: rpc_pb2.RangeRequest) -> tuple[t.RangeRequest, bool]:
    """The domain request and the `serializable` flag (a routing choice, not
    part of the store's request)."""
    req = t.RangeRequest(
        key=pb.key,
        range_end=pb.range_end,
        limit=pb.limit,
        revision=pb.revision,
        sort_order=_enum(t.SortOrder, pb.sort_order, "sort order"),
        sort_target=_enum(t.SortTarget, pb.sort_target, "sort target"),
        keys_only=pb.keys_only,
        count_only=pb.count_only,
        min_mod_revision=pb.min_mod_revision,
        max_mod_revision=pb.max_mod_revision,
        min_create_revision=pb.min_create_revision,
        max_create_revision=pb.max_create_revision,
    )
    return req, pb.serializable


def put_request(pb: rpc_pb2.PutRequest) -> t.PutRequest:
    return t.PutRequest(
        key=pb.key,
        value=pb.value,
        lease=pb.lease,
        prev_kv=pb.prev_kv,
        ignore_value=pb.ignore_value,
        ignore_lease=pb.ignore_lease,
    )


def delete_range_request(pb: rpc_pb2.DeleteRangeRequest) -> t.DeleteRangeRequest:
    return t.DeleteRangeRequest(key=pb.key, range_end=pb.range_end, prev_kv=pb.prev_kv)


def compare(pb: rpc_pb2.Compare) -> t.Compare:
    return t.Compare(
        key=pb.key,
        target=_enum(t.CompareTarget, pb.target, "compare target"),
        result=_enum(t.CompareResult, pb.result, "compare result"),
        version=pb.version,
        create_revision=pb.create_revision,
        mod_revision=pb.mod_revision,
        value=pb.value,
        lease=pb.lease,
        range_end=pb.range_end,
    )


def request_op(pb: rpc_pb2.RequestOp) -> t.RequestOp:
    which = pb.WhichOneof("request")
    if which == "request_range":
        return range_request(pb.request_range)[0]
    if which == "request_put":
        return put_request(pb.request_put)
    if which == "request_delete_range":
        return delete_range_request(pb.request_delete_range)
    if which == "request_txn":
        return txn_request(pb.request_txn)
    raise KeyNotFound("empty RequestOp")


def txn_request(pb: rpc_pb2.TxnRequest) -> t.TxnRequest:
    return t.TxnRequest(
        compare=tuple(compare(c) for c in pb.compare),
        success=tuple(request_op(op) for op in pb.success),
        failure=tuple(request_op(op) for op in pb.failure),
    )


def is_read_only(req: t.TxnRequest) -> bool:
    """No put or delete in either branch, at any depth (etcd's isTxnReadonly)."""
    for op in req.success + req.failure:
        if isinstance(op, t.PutRequest | t.DeleteRangeRequest):
            return False
        if isinstance(op, t.TxnRequest) and not is_read_only(op):
            return False
    return True


# -- responses: domain -> protobuf --------------------------------------------------------


def header(h: Header) -> rpc_pb2.ResponseHeader:
    return rpc_pb2.ResponseHeader(
        cluster_id=h.cluster_id,
        member_id=h.member_id,
        revision=h.revision,
        raft_term=h.raft_term,
    )


def key_value(kv: t.KeyValue) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=kv.key,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        value=kv.value,
        lease=kv.lease,
    )


def range_response(resp: t.RangeResponse, hdr: rpc_pb2.ResponseHeader) -> rpc_pb2.RangeResponse:
    return rpc_pb2.RangeResponse(
        header=hdr,
        kvs=[key_value(kv) for kv in resp.kvs],
        more=resp.more,
        count=resp.count,
    )


def put_response(resp: t.PutResponse, hdr: rpc_pb2.ResponseHeader) -> rpc_pb2.PutResponse:
    out = rpc_pb2.PutResponse(header=hdr)
    if resp.prev_kv is not None:
        out.prev_kv.CopyFrom(key_value(resp.prev_kv))
    return out


def delete_range_response(
    resp: t.DeleteRangeResponse, hdr: rpc_pb2.ResponseHeader
) -> rpc_pb2.DeleteRangeResponse:
    return rpc_pb2.DeleteRangeResponse(
        header=hdr,
        deleted=resp.deleted,
        prev_kvs=[key_value(kv) for kv in resp.prev_kvs],
    )


def txn_response(resp: t.TxnResponse, hdr: rpc_pb2.ResponseHeader) -> rpc_pb2.TxnResponse:
    return rpc_pb2.TxnResponse(
        header=hdr,
        succeeded=resp.succeeded,
        responses=[response_op(r) for r in resp.responses],
    )


def response_op(resp: t.ResponseOp) -> rpc_pb2.ResponseOp:
    nested = rpc_pb2.ResponseHeader(revision=resp.revision)
    if isinstance(resp, t.RangeResponse):
        return rpc_pb2.ResponseOp(response_range=range_response(resp, nested))
    if isinstance(resp, t.PutResponse):
        return rpc_pb2.ResponseOp(response_put=put_response(resp, nested))
    if isinstance(resp, t.DeleteRangeResponse):
        return rpc_pb2.ResponseOp(response_delete_range=delete_range_response(resp, nested))
    # etcd leaves a nested txn's header empty (only the outermost one is filled).
    return rpc_pb2.ResponseOp(response_txn=txn_response(resp, rpc_pb2.ResponseHeader()))


def member(m: Member) -> rpc_pb2.Member:
    return rpc_pb2.Member(
        ID=m.id,
        name=m.name,
        peerURLs=list(m.peer_urls),
        clientURLs=list(m.client_urls),
        isLearner=m.is_learner,
    )
