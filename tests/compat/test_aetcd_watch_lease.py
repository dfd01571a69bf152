"""The Python `aetcd` client's watch and lease APIs against kvstore. The same
scripts run against etcd 3.4 and must give the same observations: event
types, keys, values, revisions, versions, watch IDs, TTLs and errors. Lease
IDs chosen by the server become placeholders numbered by first appearance
(so "this key carries that lease" still has to hold), and a remaining TTL
becomes "<remaining>" when it is within a few seconds of the granted TTL.

Waits are bounded (asyncio.wait_for with a deadline); nothing sleeps to
synchronise. Each watch is drained by a pump task into a queue so that a
timed-out wait never destroys the watch's iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from tests.compat.compare import Pair, start_pair
from tests.procs import Cluster, Launcher, require_binary

WAIT_S = 10.0  # longest wait for any one event
EXPIRY_WAIT_S = 15.0  # a 2 s lease must be gone well within this
CLIENT_TIMEOUT_S = 10

CHOSEN_ID = 0x4B1D  # a lease ID picked by the client
UNKNOWN_ID = 0x7777  # a lease ID nobody granted
TOO_LARGE_TTL = 9_000_000_001  # etcd's MaxLeaseTTL is 9,000,000,000


@pytest.fixture
def aetcd() -> ModuleType:
    module: ModuleType = pytest.importorskip(
        "aetcd", reason="requires aetcd (pip install aetcd; part of the test extra)"
    )
    return module


@pytest.fixture
def pair(launch: Launcher, aetcd: ModuleType) -> Pair:
    require_binary("etcd", "etcd-server")
    require_binary("etcdctl", "etcd-client")
    return start_pair(launch)


# ---------------------------------------------------------------------------
# Shared helpers


@dataclass
class Ids:
    """Server-chosen lease IDs -> <lease0>, <lease1>, ... by first appearance.
    0 (no lease) stays "<none>"; an ID that is not a positive int64 is
    rendered as bad, so it can never compare equal to etcd's."""

    seen: dict[int, str] = field(default_factory=dict)

    def __call__(self, value: int) -> str:
        if value == 0:
            return "<none>"
        if value in (CHOSEN_ID, UNKNOWN_ID):  # chosen by the test: must come back as is
            return hex(value)
        if not 0 < value < 2**63:
            return f"<bad id {value}>"
        return self.seen.setdefault(value, f"<lease{len(self.seen)}>")


def kv(item: Any, ids: Ids) -> tuple[Any, ...]:
    return (
        item.key,
        item.value,
        item.create_revision,
        item.mod_revision,
        item.version,
        ids(item.lease),
    )


def event(ev: Any, ids: Ids) -> tuple[Any, ...]:
    out: tuple[Any, ...] = (str(ev.kind), *kv(ev.kv, ids))
    if ev.prev_kv is not None:
        out += (("prev", *kv(ev.prev_kv, ids)),)
    return out


def remaining(ttl: int, granted: int) -> str:
    """A remaining TTL depends on timing: it must be a little under granted."""
    return "<remaining>" if 0 <= granted - ttl <= 3 and ttl > 0 else f"<bad ttl {ttl}/{granted}>"


class Ended:
    """Put in a stream's queue when the watch's iterator finishes."""

    def __repr__(self) -> str:
        return "<end of watch>"


END = Ended()


class Stream:
    """One aetcd Watch, drained into a queue by a pump task."""

    def __init__(self, watch: Any, name: str) -> None:
        self.watch = watch
        self.name = name
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for ev in self.watch:
                await self.queue.put(ev)
        except Exception as exc:  # handed to the test as an observation
            await self.queue.put(exc)
        await self.queue.put(END)

    async def next(self, timeout: float = WAIT_S) -> Any:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"watch {self.name}: nothing within {timeout:.0f}s") from None

    async def until(self, last: Callable[[Any], bool], ids: Ids) -> list[Any]:
        """Every event up to and including the first one `last` accepts. A
        last event that comes after everything else proves that nothing
        was skipped or added in between (no sleeps needed)."""
        got: list[Any] = []
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                item = await self.next(max(left, 0.0))
            except AssertionError as exc:
                raise AssertionError(f"{exc}; so far: {got!r}") from None
            if isinstance(item, Ended | BaseException):
                got.append(repr(item))
                return got
            got.append(event(item, ids))
            if last(item):
                return got

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def is_put(key: bytes, value: bytes) -> Callable[[Any], bool]:
    return lambda ev: str(ev.kind) == "PUT" and ev.kv.key == key and ev.kv.value == value


def is_delete(key: bytes) -> Callable[[Any], bool]:
    return lambda ev: str(ev.kind) == "DELETE" and ev.kv.key == key


def error(exc: BaseException) -> tuple[str, str]:
    return (type(exc).__name__, str(exc))


def client_for(aetcd: ModuleType, cluster: Cluster) -> Any:
    host, port = cluster.members[0].endpoint.rsplit(":", 1)
    return aetcd.Client(host=host, port=int(port), timeout=CLIENT_TIMEOUT_S)


def compare(want: list[Any], got: list[Any], kind: str) -> None:
    """Every step must match; report all differences at once."""
    diffs = [
        f"  {w[0]!r}:\n    etcd:    {w!r}\n    {kind}: {g!r}"
        for w, g in zip(want, got, strict=True)
        if w != g
    ]
    assert not diffs, f"{len(diffs)} aetcd step(s) differ from etcd:\n" + "\n".join(diffs)


# ---------------------------------------------------------------------------
# Watch


async def watch_script(aetcd: ModuleType, cluster: Cluster) -> list[Any]:
    ids = Ids()
    out: list[Any] = []
    streams: list[Stream] = []
    async with client_for(aetcd, cluster) as client:

        async def stream(name: str, **kw: Any) -> Stream:
            key = kw.pop("key")
            if kw.pop("prefix", False):
                w = await client.watch_prefix(key, **kw)
            else:
                w = await client.watch(key, **kw)
            s = Stream(w, name)
            streams.append(s)
            out.append(("created", name, w.watch_id))
            return s

        try:
            first = (await client.put(b"w/seed", b"0")).header.revision
            out.append(("seed revision", first))

            key_w = await stream("key", key=b"w/a")
            prefix_w = await stream("prefix", key=b"w/", prefix=True)
            prev_w = await stream("key prev_kv", key=b"w/a", prev_kv=True)
            deletes_w = await stream(
                "prefix deletes", key=b"w/", prefix=True, kind=aetcd.EventKind.DELETE
            )
            puts_w = await stream("prefix puts", key=b"w/", prefix=True, kind=aetcd.EventKind.PUT)
            open_w = await stream("from w/b to end", key=b"w/b", range_end=b"\0")

            tx = client.transactions
            await client.put(b"w/a", b"1")
            await client.put(b"w/b", b"2")
            await client.put(b"x", b"outside")
            await client.put(b"w/a", b"3")
            await client.delete(b"w/b")
            await client.transaction(
                compare=[], success=[tx.put(b"w/t1", b"p"), tx.put(b"w/t2", b"q")], failure=[]
            )
            await client.delete_prefix(b"w/t")
            await client.delete(b"w/a")
            await client.put(b"w/a", b"end")
            last = (await client.put(b"zz", b"end")).header.revision
            out.append(("last revision", last))

            out.append(("key events", await key_w.until(is_put(b"w/a", b"end"), ids)))
            out.append(("prefix events", await prefix_w.until(is_put(b"w/a", b"end"), ids)))
            out.append(("prev_kv events", await prev_w.until(is_put(b"w/a", b"end"), ids)))
            out.append(("delete events", await deletes_w.until(is_delete(b"w/a"), ids)))
            out.append(("put events", await puts_w.until(is_put(b"w/a", b"end"), ids)))
            out.append(("open range events", await open_w.until(is_put(b"zz", b"end"), ids)))

            # History: from a past revision (inclusive), on a key and a prefix.
            hist = await stream("history prefix", key=b"w/", prefix=True, start_revision=first)
            out.append(("history prefix", await hist.until(is_put(b"w/a", b"end"), ids)))
            hist_key = await stream(
                "history key", key=b"w/a", start_revision=first + 3, prev_kv=True
            )
            out.append(("history key", await hist_key.until(is_put(b"w/a", b"end"), ids)))
            once = await client.watch_prefix_once(b"w/t", timeout=WAIT_S, start_revision=first)
            out.append(("watch_prefix_once from history", event(once, ids)))
            once = await client.watch_once(b"w/b", timeout=WAIT_S, start_revision=first + 4)
            out.append(("watch_once from history", event(once, ids)))

            # A start revision in the future: events before it are not sent.
            future = await stream("future", key=b"f", start_revision=last + 2)
            await client.put(b"f", b"before")
            await client.put(b"f", b"at")
            await client.put(b"f", b"after")
            out.append(("future events", await future.until(is_put(b"f", b"after"), ids)))

            # Cancel: the iterator ends; the other watches on the same stream
            # go on; a watch created afterwards gets a fresh ID. (Every watch
            # is drained before it is cancelled: aetcd drops queued events.)
            await key_w.watch.cancel()
            out.append(("cancelled key watch", await key_w.until(lambda ev: True, ids)))
            await client.put(b"w/a", b"after cancel")
            again = await stream("key again", key=b"w/a")
            await client.put(b"w/a", b"seen")
            out.append(("key again events", await again.until(is_put(b"w/a", b"seen"), ids)))
            out.append(("prefix after cancel", await prefix_w.until(is_put(b"w/a", b"seen"), ids)))
            await prefix_w.watch.cancel()
            out.append(("cancelled prefix watch", await prefix_w.until(lambda ev: True, ids)))
            await client.put(b"w/z", b"last")
            out.append(
                ("prev_kv watch still open", await prev_w.until(is_put(b"w/a", b"seen"), ids))
            )
            out.append(("puts watch still open", await puts_w.until(is_put(b"w/z", b"last"), ids)))

            # A compacted start revision: aetcd raises RevisionCompactedError.
            now = (await client.put(b"w/c", b"compact here")).header.revision
            await client.compact(now, physical=True)
            try:
                compacted = await client.watch(b"w/a", start_revision=first)
            except aetcd.ClientError as exc:
                out.append(("compacted watch", "create failed", error(exc)))
            else:
                s = Stream(compacted, "compacted")
                streams.append(s)
                item = await s.next()
                out.append(
                    (
                        "compacted watch",
                        type(item).__name__,
                        getattr(item, "compacted_revision", None) == now,
                    )
                )
        finally:
            for s in streams:
                await s.close()
    return out


async def test_aetcd_watch_against_kvstore_like_etcd(pair: Pair, aetcd: ModuleType) -> None:
    want = await watch_script(aetcd, pair.etcd)
    got = await watch_script(aetcd, pair.subject)
    compare(want, got, pair.subject.kind)

    # What the sequence must show, spelled out (etcd passes the same checks).
    steps = {step[0]: step for step in got}
    first = steps["seed revision"][1]
    assert first == 2
    r = first  # w/a=1 at r+1, w/b=2 at r+2, x at r+3, w/a=3 at r+4, del w/b at r+5,
    # w/t1+w/t2 at r+6, del w/t* at r+7, del w/a at r+8, w/a=end at r+9, zz at r+10
    none = "<none>"
    assert steps["key events"][1] == [
        ("PUT", b"w/a", b"1", r + 1, r + 1, 1, none),
        ("PUT", b"w/a", b"3", r + 1, r + 4, 2, none),
        ("DELETE", b"w/a", b"", 0, r + 8, 0, none),
        ("PUT", b"w/a", b"end", r + 9, r + 9, 1, none),
    ]
    assert [(e[0], e[1], e[4]) for e in steps["prefix events"][1]] == [
        ("PUT", b"w/a", r + 1),
        ("PUT", b"w/b", r + 2),
        ("PUT", b"w/a", r + 4),
        ("DELETE", b"w/b", r + 5),
        ("PUT", b"w/t1", r + 6),
        ("PUT", b"w/t2", r + 6),
        ("DELETE", b"w/t1", r + 7),
        ("DELETE", b"w/t2", r + 7),
        ("DELETE", b"w/a", r + 8),
        ("PUT", b"w/a", r + 9),
    ]
    prev = steps["prev_kv events"][1]
    assert prev[1][-1] == ("prev", b"w/a", b"1", r + 1, r + 1, 1, none)
    assert prev[2][-1] == ("prev", b"w/a", b"3", r + 1, r + 4, 2, none)
    assert {e[0] for e in steps["delete events"][1]} == {"DELETE"}
    assert {e[0] for e in steps["put events"][1]} == {"PUT"}
    assert b"w/a" not in {e[1] for e in steps["open range events"][1]}
    assert steps["history prefix"][1][0][1:3] == (b"w/seed", b"0")
    assert steps["history prefix"][1][1:] == steps["prefix events"][1]
    assert steps["future events"][1] == [
        ("PUT", b"f", b"at", r + 11, r + 12, 2, none),
        ("PUT", b"f", b"after", r + 11, r + 13, 3, none),
    ]
    assert steps["cancelled key watch"][1] == ["<end of watch>"]
    assert steps["cancelled prefix watch"][1] == ["<end of watch>"]
    assert [e[2] for e in steps["prefix after cancel"][1]] == [b"after cancel", b"seen"]
    assert steps["key again events"][1][0][2] == b"seen"
    assert steps["compacted watch"][1:] == ("RevisionCompactedError", True)


# ---------------------------------------------------------------------------
# Lease


async def lease_script(aetcd: ModuleType, cluster: Cluster) -> list[Any]:
    ids = Ids()
    out: list[Any] = []
    streams: list[Stream] = []
    async with client_for(aetcd, cluster) as client:

        async def attempt(step: str, call: Any) -> Any:
            try:
                result = await call
            except aetcd.ClientError as exc:
                out.append((step, "error", error(exc)))
                return None
            return result

        def info(step: str, resp: Any) -> None:
            granted = resp.grantedTTL
            ttl = resp.TTL if resp.TTL <= 0 else remaining(resp.TTL, granted)
            keys = sorted(resp.keys)
            out.append((step, ids(resp.ID), ttl, granted, keys, resp.header.revision))

        try:
            lease = await client.lease(30)
            out.append(("grant", ids(lease.id), lease.ttl))

            await client.put(b"l/a", b"1", lease=lease)
            await client.put(b"l/b", b"2", lease=lease.id)
            await client.put(b"l/c", b"3")
            got = await client.get(b"l/a")
            out.append(("get leased key", kv(got, ids)))
            got = await client.get(b"l/c")
            out.append(("get unleased key", kv(got, ids)))

            info("time to live", await client.get_lease_info(lease.id))
            info("time to live without keys", await client.get_lease_info(lease.id, keys=False))
            out.append(("remaining_ttl", remaining(await lease.remaining_ttl(), 30)))
            out.append(("granted_ttl", await lease.granted_ttl()))
            out.append(("keys", sorted(await lease.keys())))

            reply = await client.refresh_lease(lease.id)
            out.append(("refresh", ids(reply.ID), reply.TTL, reply.header.revision))
            reply = await lease.refresh()
            out.append(("Lease.refresh", ids(reply.ID), reply.TTL))
            out.append(("remaining after refresh", remaining(await lease.remaining_ttl(), 30)))

            # A put without the lease detaches the key.
            await client.put(b"l/b", b"detached")
            out.append(("keys after detach", sorted(await lease.keys())))
            out.append(("detached key", kv(await client.get(b"l/b"), ids)))

            # A client-chosen ID; the same ID again; the TTL bounds.
            chosen = await client.lease(20, lease_id=CHOSEN_ID)
            out.append(("grant chosen id", chosen.id, chosen.ttl))
            await attempt("grant duplicate id", client.lease(20, lease_id=CHOSEN_ID))
            for ttl in (1, 0, -5):  # below the minimum (1 s with these timings)
                small = await client.lease(ttl)
                out.append((f"grant ttl {ttl}", ids(small.id), small.ttl))
            negative = await client.lease(5, lease_id=-3)  # etcd 3.4 accepts it
            out.append(("grant negative id", negative.id, negative.ttl))
            await attempt("grant too large ttl", client.lease(TOO_LARGE_TTL))

            # Revoke deletes every attached key in one revision.
            revoke_w = Stream(await client.watch_prefix(b"l/"), "revoke")
            streams.append(revoke_w)
            await client.put(b"l/d", b"4", lease=lease)
            await client.revoke_lease(lease.id)
            out.append(("revoke events", await revoke_w.until(is_delete(b"l/d"), ids)))
            out.append(("l/a after revoke", await client.get(b"l/a")))
            out.append(("l/b after revoke", kv(await client.get(b"l/b"), ids)))
            info("time to live after revoke", await client.get_lease_info(lease.id))
            await attempt("revoke again", client.revoke_lease(lease.id))
            await attempt("Lease.revoke on chosen", chosen.revoke())
            out.append(("chosen keys after revoke", sorted(await chosen.keys())))

            # A lease nobody granted.
            reply = await client.refresh_lease(UNKNOWN_ID)
            out.append(("refresh unknown", reply.ID, reply.TTL))
            info("time to live unknown", await client.get_lease_info(UNKNOWN_ID))
            await attempt("revoke unknown", client.revoke_lease(UNKNOWN_ID))
            await attempt("put with unknown lease", client.put(b"l/u", b"x", lease=UNKNOWN_ID))
            out.append(("l/u", await client.get(b"l/u")))

            # Expiry: two 2 s leases; one is refreshed while the other expires.
            dying = await client.lease(2)
            kept = await client.lease(2)
            await client.put(b"e/dying", b"x", lease=dying)
            await client.put(b"e/kept", b"y", lease=kept)
            expiry_w = Stream(await client.watch_prefix(b"e/"), "expiry")
            streams.append(expiry_w)
            deadline = asyncio.get_running_loop().time() + EXPIRY_WAIT_S
            expired: list[Any] = []
            while not expired:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"lease of e/dying did not expire in {EXPIRY_WAIT_S}s")
                try:
                    expired.append(await expiry_w.next(timeout=0.5))
                except AssertionError:  # half a second passed: refresh the other
                    reply = await kept.refresh()
                    if reply.TTL != 2:
                        raise AssertionError(f"refresh of a live 2 s lease: {reply}") from None
            out.append(("expiry events", [event(e, ids) for e in expired]))
            out.append(("e/dying after expiry", await client.get(b"e/dying")))
            info("time to live after expiry", await client.get_lease_info(dying.id))
            info("refreshed lease", await client.get_lease_info(kept.id))
            out.append(("e/kept", kv(await client.get(b"e/kept"), ids)))
            await kept.revoke()
        finally:
            for s in streams:
                await s.close()
    return out


async def test_aetcd_lease_against_kvstore_like_etcd(pair: Pair, aetcd: ModuleType) -> None:
    want = await lease_script(aetcd, pair.etcd)
    got = await lease_script(aetcd, pair.subject)
    compare(want, got, pair.subject.kind)

    # What the sequence must show, spelled out (etcd passes the same checks).
    steps = {step[0]: step for step in got}
    assert steps["grant"][1:] == ("<lease0>", 30)
    assert steps["get leased key"][1][-1] == "<lease0>"
    assert steps["get unleased key"][1][-1] == "<none>"
    assert steps["time to live"][1:5] == ("<lease0>", "<remaining>", 30, [b"l/a", b"l/b"])
    assert steps["time to live without keys"][4] == []
    assert steps["refresh"][1:3] == ("<lease0>", 30)
    assert steps["keys after detach"][1] == [b"l/a"]
    assert steps["grant chosen id"][1:] == (CHOSEN_ID, 20)
    assert steps["grant duplicate id"][1:] == (
        "error",
        ("DuplicateLeaseError", ""),
    )
    assert steps["grant ttl 0"][2] == steps["grant ttl -5"][2] == 1
    assert steps["grant too large ttl"][1:] == (
        "error",
        ("ClientError", "etcdserver: too large lease TTL"),
    )
    revoke = steps["revoke events"][1]
    assert [(e[0], e[1], e[6]) for e in revoke] == [
        ("PUT", b"l/d", "<lease0>"),
        ("DELETE", b"l/a", "<none>"),
        ("DELETE", b"l/d", "<none>"),
    ]
    assert revoke[1][4] == revoke[2][4] == revoke[0][4] + 1, "one revision for the revoke"
    assert steps["l/a after revoke"][1] is None
    assert steps["time to live after revoke"][2:5] == (-1, 0, [])
    not_found = ("error", ("ClientError", "etcdserver: requested lease not found"))
    assert steps["revoke again"][1:] == not_found
    assert steps["refresh unknown"][1:] == (UNKNOWN_ID, 0)
    assert steps["time to live unknown"][1:5] == (hex(UNKNOWN_ID), -1, 0, [])
    assert steps["revoke unknown"][1:] == not_found
    assert steps["put with unknown lease"][1:] == not_found
    assert steps["l/u"][1] is None
    assert [(e[0], e[1]) for e in steps["expiry events"][1]] == [("DELETE", b"e/dying")]
    assert steps["e/dying after expiry"][1] is None
    assert steps["time to live after expiry"][2] == -1
    assert steps["refreshed lease"][2] == "<remaining>"
