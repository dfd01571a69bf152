"""Wire facts of the etcd v3 API that etcd's own clients depend on.

The expected numbers and names below were checked by hand against etcd's
published API definition (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto,
api/authpb/auth.proto, v3lockpb and v3electionpb in the etcd repository), so
an accidental edit of proto/*.proto that would break etcdctl, clientv3 or
aetcd fails here rather than in a compat run.
"""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pool

from kvstore.api.pb import (
    POOL,
    auth_pb2,
    health_pb2,
    kv_pb2,
    peer_pb2,
    rpc_pb2,
    v3election_pb2,
    v3lock_pb2,
)

# -------------------------------------------------------- exact encodings


def test_put_request_bytes() -> None:
    req = rpc_pb2.PutRequest(key=b"a", value=b"b", lease=5, prev_kv=True)
    # key: field 1 bytes; value: 2 bytes; lease: 3 varint; prev_kv: 4 varint.
    assert req.SerializeToString() == b"\x0a\x01a\x12\x01b\x18\x05\x20\x01"


def test_put_request_ignore_flags_bytes() -> None:
    req = rpc_pb2.PutRequest(key=b"k", ignore_value=True, ignore_lease=True)
    assert req.SerializeToString() == b"\x0a\x01k\x28\x01\x30\x01"


def test_range_request_bytes() -> None:
    req = rpc_pb2.RangeRequest(
        key=b"foo",
        range_end=b"fop",
        limit=10,
        revision=7,
        sort_order=rpc_pb2.RangeRequest.DESCEND,
        sort_target=rpc_pb2.RangeRequest.MOD,
        serializable=True,
        keys_only=True,
        count_only=True,
        min_mod_revision=1,
        max_mod_revision=2,
        min_create_revision=3,
        max_create_revision=4,
    )
    assert req.SerializeToString() == (
        b"\x0a\x03foo\x12\x03fop\x18\x0a\x20\x07\x28\x02\x30\x03"
        b"\x38\x01\x40\x01\x48\x01\x50\x01\x58\x02\x60\x03\x68\x04"
    )


def test_range_request_sort_enums() -> None:
    order = rpc_pb2.RangeRequest.SortOrder
    target = rpc_pb2.RangeRequest.SortTarget
    assert [(v.name, v.number) for v in order.DESCRIPTOR.values] == [
        ("NONE", 0),
        ("ASCEND", 1),
        ("DESCEND", 2),
    ]
    assert [(v.name, v.number) for v in target.DESCRIPTOR.values] == [
        ("KEY", 0),
        ("VERSION", 1),
        ("CREATE", 2),
        ("MOD", 3),
        ("VALUE", 4),
    ]


def test_compare_range_end_is_field_64() -> None:
    cmp = rpc_pb2.Compare(
        result=rpc_pb2.Compare.NOT_EQUAL,
        target=rpc_pb2.Compare.MOD,
        key=b"k",
        mod_revision=9,
        range_end=b"l",
    )
    # 64 << 3 | 2 = 514, varint 0x82 0x04.
    assert cmp.SerializeToString() == b"\x08\x03\x10\x02\x1a\x01k\x30\x09\x82\x04\x01l"


def test_watch_response_events_are_field_11() -> None:
    resp = rpc_pb2.WatchResponse(
        watch_id=1, events=[kv_pb2.Event(type=kv_pb2.Event.DELETE, kv=kv_pb2.KeyValue(key=b"a"))]
    )
    assert resp.SerializeToString() == b"\x10\x01\x5a\x07\x08\x01\x12\x03\x0a\x01a"


def test_key_value_bytes() -> None:
    kv = kv_pb2.KeyValue(
        key=b"a", create_revision=2, mod_revision=3, version=4, value=b"v", lease=6
    )
    assert kv.SerializeToString() == b"\x0a\x01a\x10\x02\x18\x03\x20\x04\x2a\x01v\x30\x06"


def test_response_header_bytes() -> None:
    header = rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=3, raft_term=4)
    assert header.SerializeToString() == b"\x08\x01\x10\x02\x18\x03\x20\x04"


# -------------------------------------------------- field names and numbers

FIELDS: dict[str, dict[str, int]] = {
    "mvccpb.KeyValue": {
        "key": 1,
        "create_revision": 2,
        "mod_revision": 3,
        "version": 4,
        "value": 5,
        "lease": 6,
    },
    "mvccpb.Event": {"type": 1, "kv": 2, "prev_kv": 3},
    "etcdserverpb.ResponseHeader": {"cluster_id": 1, "member_id": 2, "revision": 3, "raft_term": 4},
    "etcdserverpb.RangeResponse": {"header": 1, "kvs": 2, "more": 3, "count": 4},
    "etcdserverpb.PutResponse": {"header": 1, "prev_kv": 2},
    "etcdserverpb.DeleteRangeRequest": {"key": 1, "range_end": 2, "prev_kv": 3},
    "etcdserverpb.DeleteRangeResponse": {"header": 1, "deleted": 2, "prev_kvs": 3},
    "etcdserverpb.RequestOp": {
        "request_range": 1,
        "request_put": 2,
        "request_delete_range": 3,
        "request_txn": 4,
    },
    "etcdserverpb.ResponseOp": {
        "response_range": 1,
        "response_put": 2,
        "response_delete_range": 3,
        "response_txn": 4,
    },
    "etcdserverpb.Compare": {
        "result": 1,
        "target": 2,
        "key": 3,
        "version": 4,
        "create_revision": 5,
        "mod_revision": 6,
        "value": 7,
        "lease": 8,
        "range_end": 64,
    },
    "etcdserverpb.TxnRequest": {"compare": 1, "success": 2, "failure": 3},
    "etcdserverpb.TxnResponse": {"header": 1, "succeeded": 2, "responses": 3},
    "etcdserverpb.CompactionRequest": {"revision": 1, "physical": 2},
    "etcdserverpb.WatchRequest": {"create_request": 1, "cancel_request": 2, "progress_request": 3},
    "etcdserverpb.WatchCreateRequest": {
        "key": 1,
        "range_end": 2,
        "start_revision": 3,
        "progress_notify": 4,
        "filters": 5,
        "prev_kv": 6,
        "watch_id": 7,
        "fragment": 8,
    },
    "etcdserverpb.WatchCancelRequest": {"watch_id": 1},
    "etcdserverpb.WatchResponse": {
        "header": 1,
        "watch_id": 2,
        "created": 3,
        "canceled": 4,
        "compact_revision": 5,
        "cancel_reason": 6,
        "fragment": 7,
        "events": 11,
    },
    "etcdserverpb.LeaseGrantRequest": {"TTL": 1, "ID": 2},
    "etcdserverpb.LeaseGrantResponse": {"header": 1, "ID": 2, "TTL": 3, "error": 4},
    "etcdserverpb.LeaseKeepAliveResponse": {"header": 1, "ID": 2, "TTL": 3},
    "etcdserverpb.LeaseTimeToLiveRequest": {"ID": 1, "keys": 2},
    "etcdserverpb.LeaseTimeToLiveResponse": {
        "header": 1,
        "ID": 2,
        "TTL": 3,
        "grantedTTL": 4,
        "keys": 5,
    },
    "etcdserverpb.LeaseLeasesResponse": {"header": 1, "leases": 2},
    "etcdserverpb.Member": {"ID": 1, "name": 2, "peerURLs": 3, "clientURLs": 4, "isLearner": 5},
    "etcdserverpb.MemberAddResponse": {"header": 1, "member": 2, "members": 3},
    "etcdserverpb.MemberListResponse": {"header": 1, "members": 2},
    "etcdserverpb.AlarmRequest": {"action": 1, "memberID": 2, "alarm": 3},
    "etcdserverpb.AlarmMember": {"memberID": 1, "alarm": 2},
    "etcdserverpb.StatusResponse": {
        "header": 1,
        "version": 2,
        "dbSize": 3,
        "leader": 4,
        "raftIndex": 5,
        "raftTerm": 6,
        "raftAppliedIndex": 7,
        "errors": 8,
        "dbSizeInUse": 9,
        "isLearner": 10,
        "storageVersion": 11,
        "dbSizeQuota": 12,
        "downgradeInfo": 13,
    },
    "etcdserverpb.HashResponse": {"header": 1, "hash": 2},
    "etcdserverpb.HashKVRequest": {"revision": 1},
    "etcdserverpb.HashKVResponse": {
        "header": 1,
        "hash": 2,
        "compact_revision": 3,
        "hash_revision": 4,
    },
    "etcdserverpb.SnapshotResponse": {"header": 1, "remaining_bytes": 2, "blob": 3, "version": 4},
    "etcdserverpb.MoveLeaderRequest": {"targetID": 1},
    "etcdserverpb.AuthenticateResponse": {"header": 1, "token": 2},
    "etcdserverpb.AuthRoleGrantPermissionRequest": {"name": 1, "perm": 2},
    "authpb.Permission": {"permType": 1, "key": 2, "range_end": 3},
    "authpb.User": {"name": 1, "password": 2, "roles": 3, "options": 4},
    "authpb.Role": {"name": 1, "keyPermission": 2},
    "v3lockpb.LockRequest": {"name": 1, "lease": 2},
    "v3lockpb.LockResponse": {"header": 1, "key": 2},
    "v3lockpb.UnlockRequest": {"key": 1},
    "v3electionpb.CampaignRequest": {"name": 1, "lease": 2, "value": 3},
    "v3electionpb.LeaderKey": {"name": 1, "key": 2, "rev": 3, "lease": 4},
    "v3electionpb.LeaderResponse": {"header": 1, "kv": 2},
    "v3electionpb.ProclaimRequest": {"leader": 1, "value": 2},
    "grpc.health.v1.HealthCheckRequest": {"service": 1},
    "grpc.health.v1.HealthCheckResponse": {"status": 1},
}


@pytest.mark.parametrize("message", sorted(FIELDS))
def test_field_numbers(message: str) -> None:
    descriptor = POOL.FindMessageTypeByName(message)
    assert {f.name: f.number for f in descriptor.fields} == FIELDS[message]


ENUMS: dict[str, list[tuple[str, int]]] = {
    "mvccpb.Event.EventType": [("PUT", 0), ("DELETE", 1)],
    "etcdserverpb.Compare.CompareResult": [
        ("EQUAL", 0),
        ("GREATER", 1),
        ("LESS", 2),
        ("NOT_EQUAL", 3),
    ],
    "etcdserverpb.Compare.CompareTarget": [
        ("VERSION", 0),
        ("CREATE", 1),
        ("MOD", 2),
        ("VALUE", 3),
        ("LEASE", 4),
    ],
    "etcdserverpb.WatchCreateRequest.FilterType": [("NOPUT", 0), ("NODELETE", 1)],
    "etcdserverpb.AlarmType": [("NONE", 0), ("NOSPACE", 1), ("CORRUPT", 2)],
    "etcdserverpb.AlarmRequest.AlarmAction": [("GET", 0), ("ACTIVATE", 1), ("DEACTIVATE", 2)],
    "authpb.Permission.Type": [("READ", 0), ("WRITE", 1), ("READWRITE", 2)],
    "grpc.health.v1.HealthCheckResponse.ServingStatus": [
        ("UNKNOWN", 0),
        ("SERVING", 1),
        ("NOT_SERVING", 2),
        ("SERVICE_UNKNOWN", 3),
    ],
}


@pytest.mark.parametrize("enum", sorted(ENUMS))
def test_enum_values(enum: str) -> None:
    descriptor = POOL.FindEnumTypeByName(enum)
    assert [(v.name, v.number) for v in descriptor.values] == ENUMS[enum]


# ------------------------------------------------------------------ methods

# Full gRPC method path -> (client streams, server streams).
METHODS: dict[str, tuple[bool, bool]] = {
    "/etcdserverpb.KV/Range": (False, False),
    "/etcdserverpb.KV/Put": (False, False),
    "/etcdserverpb.KV/DeleteRange": (False, False),
    "/etcdserverpb.KV/Txn": (False, False),
    "/etcdserverpb.KV/Compact": (False, False),
    "/etcdserverpb.Watch/Watch": (True, True),
    "/etcdserverpb.Lease/LeaseGrant": (False, False),
    "/etcdserverpb.Lease/LeaseRevoke": (False, False),
    "/etcdserverpb.Lease/LeaseKeepAlive": (True, True),
    "/etcdserverpb.Lease/LeaseTimeToLive": (False, False),
    "/etcdserverpb.Lease/LeaseLeases": (False, False),
    "/etcdserverpb.Cluster/MemberAdd": (False, False),
    "/etcdserverpb.Cluster/MemberRemove": (False, False),
    "/etcdserverpb.Cluster/MemberUpdate": (False, False),
    "/etcdserverpb.Cluster/MemberList": (False, False),
    "/etcdserverpb.Cluster/MemberPromote": (False, False),
    "/etcdserverpb.Maintenance/Alarm": (False, False),
    "/etcdserverpb.Maintenance/Status": (False, False),
    "/etcdserverpb.Maintenance/Defragment": (False, False),
    "/etcdserverpb.Maintenance/Hash": (False, False),
    "/etcdserverpb.Maintenance/HashKV": (False, False),
    "/etcdserverpb.Maintenance/Snapshot": (False, True),
    "/etcdserverpb.Maintenance/MoveLeader": (False, False),
    "/etcdserverpb.Maintenance/Downgrade": (False, False),
    "/etcdserverpb.Auth/AuthEnable": (False, False),
    "/etcdserverpb.Auth/AuthDisable": (False, False),
    "/etcdserverpb.Auth/AuthStatus": (False, False),
    "/etcdserverpb.Auth/Authenticate": (False, False),
    "/etcdserverpb.Auth/UserAdd": (False, False),
    "/etcdserverpb.Auth/UserGet": (False, False),
    "/etcdserverpb.Auth/UserList": (False, False),
    "/etcdserverpb.Auth/UserDelete": (False, False),
    "/etcdserverpb.Auth/UserChangePassword": (False, False),
    "/etcdserverpb.Auth/UserGrantRole": (False, False),
    "/etcdserverpb.Auth/UserRevokeRole": (False, False),
    "/etcdserverpb.Auth/RoleAdd": (False, False),
    "/etcdserverpb.Auth/RoleGet": (False, False),
    "/etcdserverpb.Auth/RoleList": (False, False),
    "/etcdserverpb.Auth/RoleDelete": (False, False),
    "/etcdserverpb.Auth/RoleGrantPermission": (False, False),
    "/etcdserverpb.Auth/RoleRevokePermission": (False, False),
    "/v3lockpb.Lock/Lock": (False, False),
    "/v3lockpb.Lock/Unlock": (False, False),
    "/v3electionpb.Election/Campaign": (False, False),
    "/v3electionpb.Election/Proclaim": (False, False),
    "/v3electionpb.Election/Leader": (False, False),
    "/v3electionpb.Election/Observe": (False, True),
    "/v3electionpb.Election/Resign": (False, False),
    "/grpc.health.v1.Health/Check": (False, False),
    "/grpc.health.v1.Health/Watch": (False, True),
}


def _all_methods() -> dict[str, tuple[bool, bool]]:
    found: dict[str, tuple[bool, bool]] = {}
    for module in (rpc_pb2, v3lock_pb2, v3election_pb2, health_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                found[path] = (method.client_streaming, method.server_streaming)
    return found


def test_every_etcd_method_exists_with_its_streaming_shape() -> None:
    assert _all_methods() == METHODS


def test_generated_stubs_use_the_full_method_paths() -> None:
    from kvstore.api.pb import rpc_pb2_grpc, v3lock_pb2_grpc

    class RecordingChannel:
        def __init__(self) -> None:
            self.paths: list[str] = []

        def _record(self, path: str, *args: object, **kwargs: object) -> None:
            self.paths.append(path)

        unary_unary = unary_stream = stream_unary = stream_stream = _record

    channel = RecordingChannel()
    rpc_pb2_grpc.KVStub(channel)
    rpc_pb2_grpc.WatchStub(channel)
    rpc_pb2_grpc.LeaseStub(channel)
    rpc_pb2_grpc.MaintenanceStub(channel)
    v3lock_pb2_grpc.LockStub(channel)
    for path in (
        "/etcdserverpb.KV/Range",
        "/etcdserverpb.Watch/Watch",
        "/etcdserverpb.Lease/LeaseKeepAlive",
        "/etcdserverpb.Maintenance/Status",
        "/v3lockpb.Lock/Lock",
    ):
        assert path in channel.paths


# ------------------------------------------------------------ the registry


def test_modules_register_in_our_pool_not_the_default_one() -> None:
    """Another etcd client in the same process (aetcd) registers its own
    etcdserverpb/mvccpb in protobuf's default pool; ours must not be there."""
    assert POOL.FindMessageTypeByName("etcdserverpb.RangeRequest") is not None
    default = descriptor_pool.Default()
    for name in ("etcdserverpb.RangeRequest", "mvccpb.KeyValue", "kvstore.peer.Message"):
        with pytest.raises(KeyError):
            default.FindMessageTypeByName(name)
    assert rpc_pb2.RangeRequest.DESCRIPTOR.file.pool is POOL
    assert auth_pb2.User.DESCRIPTOR.file.pool is POOL
    assert peer_pb2.Message.DESCRIPTOR.file.pool is POOL
