"""etcdserverpb.Cluster: MemberList; membership changes are not offered yet."""

from __future__ import annotations

from kvstore.api import convert
from kvstore.api.backend import KVBackend
from kvstore.api.errors import Context, rpc
from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc
from kvstore.server.errors import NotSupported


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    def __init__(self, backend: KVBackend) -> None:
        self._backend = backend

    @rpc
    async def MemberList(
        self, request: rpc_pb2.MemberListRequest, context: Context
    ) -> rpc_pb2.MemberListResponse:
        # etcd 3.4's Cluster service fills cluster, member and term but not the
        # revision (checked against etcd 3.4.23): `member list -w json` shows 0.
        header = convert.header(self._backend.header())
        header.revision = 0
        return rpc_pb2.MemberListResponse(
            header=header,
            members=[convert.member(m) for m in self._backend.members()],
        )

    @rpc
    async def MemberAdd(
        self, request: rpc_pb2.MemberAddRequest, context: Context
    ) -> rpc_pb2.MemberAddResponse:
        raise NotSupported("member add is not supported by kvstore yet")

    @rpc
    async def MemberRemove(
        self, request: rpc_pb2.MemberRemoveRequest, context: Context
    ) -> rpc_pb2.MemberRemoveResponse:
        raise NotSupported("member remove is not supported by kvstore yet")

    @rpc
    async def MemberUpdate(
        self, request: rpc_pb2.MemberUpdateRequest, context: Context
    ) -> rpc_pb2.MemberUpdateResponse:
        raise NotSupported("member update is not supported by kvstore yet")

    @rpc
    async def MemberPromote(
        self, request: rpc_pb2.MemberPromoteRequest, context: Context
    ) -> rpc_pb2.MemberPromoteResponse:
        raise NotSupported("member promote is not supported by kvstore yet")
