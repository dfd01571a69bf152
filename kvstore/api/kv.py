"""etcdserverpb.KV over a KVBackend.

Each call: convert the protobuf request, check it the way etcd's v3rpc layer
does (so malformed input never reaches the Raft log), check the encoded size
of requests that would be proposed, call the backend, and render the result
with a header from `backend.header(revision)` at the response's revision (a
write's own revision; for a read, the store revision it read at).

The order of the checks follows etcd: request checks (empty key, too many
ops, duplicate keys...) first, then the size limit, which etcd applies when
it proposes; so an empty key in a huge request is still "key is not
provided". Reads are not proposed and so have no size check of their own
(gRPC's receive limit, set just above it, still bounds them).
"""

from __future__ import annotations

from typing import Protocol

from kvstore.api import convert
from kvstore.api.backend import KVBackend
from kvstore.api.errors import Context, rpc
from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc
from kvstore.mvcc.errors import TooManyOps
from kvstore.mvcc.validate import check_key, check_put, check_txn
from kvstore.server.errors import RequestTooLarge

DEFAULT_MAX_TXN_OPS = 128


class _Encodable(Protocol):
    def ByteSize(self) -> int: ...


class KVService(rpc_pb2_grpc.KVServicer):
    def __init__(self, backend: KVBackend, max_txn_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
        self._backend = backend
        self._max_txn_ops = max_txn_ops

    def _check_size(self, request: _Encodable) -> None:
        size = request.ByteSize()
        if size > self._backend.max_request_bytes:
            raise RequestTooLarge(f"{size} > {self._backend.max_request_bytes} bytes")

    def _header(self, revision: int) -> rpc_pb2.ResponseHeader:
        return convert.header(self._backend.header(revision))

    @rpc
    async def Range(self, request: rpc_pb2.RangeRequest, context: Context) -> rpc_pb2.RangeResponse:
        req, serializable = convert.range_request(request)
        check_key(req.key)
        resp = await self._backend.range(req, serializable)
        return convert.range_response(resp, self._header(resp.revision))

    @rpc
    async def Put(self, request: rpc_pb2.PutRequest, context: Context) -> rpc_pb2.PutResponse:
        req = convert.put_request(request)
        check_put(req)
        self._check_size(request)
        resp = await self._backend.put(req)
        return convert.put_response(resp, self._header(resp.revision))

    @rpc
    async def DeleteRange(
        self, request: rpc_pb2.DeleteRangeRequest, context: Context
    ) -> rpc_pb2.DeleteRangeResponse:
        req = convert.delete_range_request(request)
        check_key(req.key)
        self._check_size(request)
        resp = await self._backend.delete_range(req)
        return convert.delete_range_response(resp, self._header(resp.revision))

    @rpc
    async def Txn(self, request: rpc_pb2.TxnRequest, context: Context) -> rpc_pb2.TxnResponse:
        # The top-level count first, before converting (possibly many) ops;
        # check_txn repeats it and covers the nested levels.
        used = max(len(request.compare), len(request.success), len(request.failure))
        if used > self._max_txn_ops:
            raise TooManyOps(f"{used} > {self._max_txn_ops}")
        req = convert.txn_request(request)
        check_txn(req, self._max_txn_ops)
        if not convert.is_read_only(req):
            self._check_size(request)
        resp = await self._backend.txn(req)
        return convert.txn_response(resp, self._header(resp.revision))

    @rpc
    async def Compact(
        self, request: rpc_pb2.CompactionRequest, context: Context
    ) -> rpc_pb2.CompactionResponse:
        resp = await self._backend.compact(request.revision, request.physical)
        return rpc_pb2.CompactionResponse(header=self._header(resp.revision))
