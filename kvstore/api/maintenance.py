"""etcdserverpb.Maintenance: Status, Hash, HashKV, and honest answers for
the rest.

Headers: like etcd, Status and Hash answer at the current revision; HashKV
at the current revision the backend reports with the hash (etcd 3.4 returns
the store's current revision there too, while `hash_revision` says which
revision was hashed). Alarm and Defragment answers carry no header at all,
as etcd 3.4's do (checked against etcd 3.4.23 on loopback).
"""

from __future__ import annotations

from kvstore.api import convert
from kvstore.api.backend import KVBackend
from kvstore.api.errors import Context, rpc
from kvstore.api.pb import rpc_pb2, rpc_pb2_grpc
from kvstore.server.errors import NotSupported

_ALARM_GET = rpc_pb2.AlarmRequest.GET
_ALARM_DEACTIVATE = rpc_pb2.AlarmRequest.DEACTIVATE


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, backend: KVBackend) -> None:
        self._backend = backend

    def _header(self, revision: int | None = None) -> rpc_pb2.ResponseHeader:
        return convert.header(self._backend.header(revision))

    @rpc
    async def Status(
        self, request: rpc_pb2.StatusRequest, context: Context
    ) -> rpc_pb2.StatusResponse:
        st = self._backend.status()
        return rpc_pb2.StatusResponse(
            header=self._header(),
            version=st.version,
            dbSize=st.db_size,
            leader=st.leader,
            raftIndex=st.raft_index,
            raftTerm=st.raft_term,
            raftAppliedIndex=st.raft_applied_index,
            errors=list(st.errors),
            dbSizeInUse=st.db_size_in_use,
            isLearner=st.is_learner,
        )

    @rpc
    async def Hash(self, request: rpc_pb2.HashRequest, context: Context) -> rpc_pb2.HashResponse:
        h = await self._backend.hash()
        return rpc_pb2.HashResponse(header=self._header(), hash=h)

    @rpc
    async def HashKV(
        self, request: rpc_pb2.HashKVRequest, context: Context
    ) -> rpc_pb2.HashKVResponse:
        resp = await self._backend.hash_kv(request.revision)
        return rpc_pb2.HashKVResponse(
            header=self._header(resp.revision),
            hash=resp.hash,
            compact_revision=resp.compact_revision,
            hash_revision=resp.hash_revision,
        )

    @rpc
    async def Alarm(self, request: rpc_pb2.AlarmRequest, context: Context) -> rpc_pb2.AlarmResponse:
        # kvstore raises no alarms (no space quota, no corruption checker yet),
        # so GET lists none, and DEACTIVATE finds none to disarm: both answer
        # an empty list, as etcd does when no alarm is raised.
        # etcd 3.4 sends these two responses without a header; so do we.
        if request.action in (_ALARM_GET, _ALARM_DEACTIVATE):
            return rpc_pb2.AlarmResponse()
        raise NotSupported("alarm activation is not supported by kvstore")

    @rpc
    async def Defragment(
        self, request: rpc_pb2.DefragmentRequest, context: Context
    ) -> rpc_pb2.DefragmentResponse:
        # A no-op for now: LevelDB reclaims the space of deleted records by its
        # own background compaction; an explicit compact_range over the MVCC
        # keys would be the equivalent of etcd's defragmentation.
        return rpc_pb2.DefragmentResponse()

    @rpc
    async def Snapshot(self, request: rpc_pb2.SnapshotRequest, context: Context) -> None:
        raise NotSupported("snapshot download is not supported by kvstore yet")

    @rpc
    async def MoveLeader(
        self, request: rpc_pb2.MoveLeaderRequest, context: Context
    ) -> rpc_pb2.MoveLeaderResponse:
        raise NotSupported("move-leader is not supported by kvstore yet")

    @rpc
    async def Downgrade(
        self, request: rpc_pb2.DowngradeRequest, context: Context
    ) -> rpc_pb2.DowngradeResponse:
        raise NotSupported("downgrade is not supported by kvstore")
