"""The Watch servicer over a real grpc.aio server on 127.0.0.1 and a fake
backend (MVCCStore + WatchHub, no Raft); the expected answers are those of
etcd 3.4.23, observed side by side."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kvstore.api.pb import kv_pb2, rpc_pb2
from kvstore.api.watch import WatchStream
from kvstore.mvcc.types import PutRequest, TxnRequest
from tests.unit.api_fake_backend import Api
from tests.unit.watch_fake_backend import WatchFakeBackend, serve_watch

C = rpc_pb2.WatchCreateRequest
R = rpc_pb2.WatchRequest
PUT, DELETE = kv_pb2.Event.PUT, kv_pb2.Event.DELETE


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Api, WatchFakeBackend]]:
    async with serve_watch(str(tmp_path / "db"), max_request_bytes=4096) as pair:
        yield pair


class Stream:
    def __init__(self, api: Api) -> None:
        self.call = api.watch.Watch()

    async def create(self, key: bytes, **kw: Any) -> rpc_pb2.WatchResponse:
        await self.call.write(R(create_request=C(key=key, **kw)))
        return await self.read()

    async def send(self, req: rpc_pb2.WatchRequest) -> None:
        await self.call.write(req)

    async def read(self) -> rpc_pb2.WatchResponse:
        resp: rpc_pb2.WatchResponse = await asyncio.wait_for(self.call.read(), 10)
        return resp

    async def progress(self) -> rpc_pb2.WatchResponse:
        await self.call.write(R(progress_request=rpc_pb2.WatchProgressRequest()))
        return await self.read()


async def put(api: Api, key: bytes, value: bytes = b"v") -> int:
    resp = await api.kv.Put(rpc_pb2.PutRequest(key=key, value=value))
    return int(resp.header.revision)


def events(resp: rpc_pb2.WatchResponse) -> list[tuple[int, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.mod_revision) for e in resp.events]


async def test_create_events_cancel(served: tuple[Api, WatchFakeBackend]) -> None:
    api, _ = served
    s = Stream(api)
    created = await s.create(b"p/", range_end=b"p0", watch_id=5)
    assert created.created and not created.canceled and created.watch_id == 5
    assert created.header.revision == 1 and created.header.raft_term == 7
    rev = await put(api, b"p/a")
    await put(api, b"q")  # outside the range
    await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"p/a"))
    r1, r2 = await s.read(), await s.read()
    assert (r1.watch_id, events(r1), r1.header.revision) == (5, [(PUT, b"p/a", rev)], rev)
    assert events(r2) == [(DELETE, b"p/a", rev + 2)]
    assert r2.events[0].kv.create_revision == 0 and r2.events[0].kv.version == 0
    await s.send(R(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=5)))
    cancelled = await s.read()
    assert cancelled.canceled and cancelled.watch_id == 5 and not cancelled.created
    await put(api, b"p/b")
    # A cancel of an unknown id is ignored: the next answer is the progress.
    await s.send(R(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=77)))
    progress = await s.progress()
    assert progress.watch_id == -1 and not progress.events
    assert progress.header.revision == rev + 3


async def test_ids_duplicates_and_empty_ranges(served: tuple[Api, WatchFakeBackend]) -> None:
    api, _ = served
    s = Stream(api)
    assert (await s.create(b"a", watch_id=1)).watch_id == 1
    dup = await s.create(b"b", watch_id=1)
    assert (dup.created, dup.canceled, dup.watch_id) == (True, True, -1)
    assert dup.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
    assert [(await s.create(b"x")).watch_id for _ in range(3)] == [0, 2, 3]
    bad = await s.create(b"z", range_end=b"a")
    assert (bad.watch_id, bad.canceled, bad.cancel_reason) == (
        -1,
        True,
        "mvcc: watcher range is empty",
    )
    assert (await s.create(b"")).watch_id == 4  # an empty key is "\0"
    assert (await s.create(b"y")).watch_id == 5  # the refused create used no id


async def test_history_prev_kv_and_filters(served: tuple[Api, WatchFakeBackend]) -> None:
    api, _ = served
    first = await put(api, b"k", b"1")
    await put(api, b"k", b"2")
    await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"k"))
    s = Stream(api)
    await s.create(b"k", start_revision=first, prev_kv=True, watch_id=1)
    past = await s.read()
    assert past.header.revision == first + 2  # the revision at catch-up
    assert events(past) == [(PUT, b"k", first), (PUT, b"k", first + 1), (DELETE, b"k", first + 2)]
    assert [e.prev_kv.value for e in past.events] == [b"", b"1", b"2"]
    assert not past.events[0].HasField("prev_kv")
    await s.create(b"k", filters=[C.NOPUT], watch_id=2)
    await put(api, b"k", b"3")
    live = await s.read()
    assert live.watch_id == 1 and events(live) == [(PUT, b"k", first + 3)]
    await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"k"))
    got = sorted([await s.read(), await s.read()], key=lambda r: r.watch_id)
    assert [(r.watch_id, events(r)) for r in got] == [
        (1, [(DELETE, b"k", first + 4)]),
        (2, [(DELETE, b"k", first + 4)]),
    ]
    assert got[0].events[0].prev_kv.value == b"3"


async def test_compacted_start_revision(served: tuple[Api, WatchFakeBackend]) -> None:
    api, _ = served
    for i in range(4):
        await put(api, b"k", b"%d" % i)
    await api.kv.Compact(rpc_pb2.CompactionRequest(revision=4))
    s = Stream(api)
    created = await s.create(b"k", start_revision=2)
    assert created.created and not created.canceled and created.header.revision == 5
    gone = await s.read()
    assert (gone.watch_id, gone.canceled, gone.compact_revision) == (0, True, 4)
    assert gone.header.revision == 0 and not gone.cancel_reason
    ok = await s.create(b"k", start_revision=4)
    assert ok.watch_id == 1  # server-chosen ids only count up (etcd)
    assert events(await s.read()) == [(PUT, b"k", 4), (PUT, b"k", 5)]


async def test_fragments(served: tuple[Api, WatchFakeBackend]) -> None:
    api, backend = served
    s = Stream(api)
    await s.create(b"f/", range_end=b"f0", fragment=True, watch_id=1)
    await s.create(b"f/", range_end=b"f0", watch_id=2)
    ops = tuple(PutRequest(b"f/%d" % i, b"x" * 1000) for i in range(10))
    await backend.txn(TxnRequest(success=ops))
    parts = []
    whole = None
    while whole is None or not parts or parts[-1].fragment:
        r = await s.read()
        if r.watch_id == 2:
            whole = r
        else:
            parts.append(r)
    assert whole is not None and len(whole.events) == 10 and not whole.fragment
    assert len(parts) > 1 and all(p.fragment for p in parts[:-1])
    assert all(p.ByteSize() < 4096 for p in parts)
    assert [e.kv.key for p in parts for e in p.events] == [e.kv.key for e in whole.events]


async def test_a_slow_stream_catches_up_without_gaps(tmp_path: Path) -> None:
    backend = WatchFakeBackend(str(tmp_path / "db"))
    try:
        stream = WatchStream(backend, max_queued_events=3)
        stream.handle(R(create_request=C(key=b"k", watch_id=1)))
        for i in range(20):
            await backend.put(PutRequest(b"k", b"%d" % i))
        assert backend.hub.unsynced == 1  # the outbox filled: moved to unsynced
        stream.handle(R(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=99)))
        got: list[int] = []
        responses = stream.responses()
        while len(got) < 20:
            r = await asyncio.wait_for(anext(responses), 10)
            got.extend(e.kv.mod_revision for e in r.events)
        assert got == list(range(2, 22))
        assert backend.hub.unsynced == 0 and backend.hub.synced == 1
        await backend.put(PutRequest(b"k", b"last"))
        r = await asyncio.wait_for(anext(responses), 10)
        assert [e.kv.mod_revision for e in r.events] == [22]
        stream.close()
        assert backend.hub.synced == 0
    finally:
        backend.close()


ETCDCTL = shutil.which("etcdctl")


@pytest.mark.skipif(ETCDCTL is None, reason="etcdctl (etcd-client) not installed")
async def test_etcdctl_watch_prefix_from_a_revision(served: tuple[Api, WatchFakeBackend]) -> None:
    api, _ = served
    first = await put(api, b"w/a", b"1")
    await put(api, b"w/b", b"2")
    await put(api, b"other", b"x")
    await api.kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"w/a"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    assert ETCDCTL is not None
    proc = await asyncio.create_subprocess_exec(
        *(ETCDCTL, "--endpoints", api.endpoint, "watch", "--prefix", "--rev", str(first)),
        *("--prev-kv", "-w", "json", "w/"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        doc = json.loads(line)
        assert doc["Header"]["revision"] == first + 3
        assert not doc["Canceled"] and doc["CompactRevision"] == 0
        got = [
            (
                ev.get("type", 0),  # etcdctl prints the enum number
                base64.b64decode(ev["kv"]["key"]),
                ev["kv"]["mod_revision"],
                base64.b64decode(ev.get("prev_kv", {}).get("value", "")),
            )
            for ev in doc["Events"]
        ]
        assert got == [
            (PUT, b"w/a", first, b""),
            (PUT, b"w/b", first + 1, b""),
            (DELETE, b"w/a", first + 3, b"1"),
        ]
        await put(api, b"w/c", b"3")
        doc = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert doc["Header"]["revision"] == first + 4
        assert base64.b64decode(doc["Events"][0]["kv"]["value"]) == b"3"
    finally:
        proc.kill()
        await proc.wait()
