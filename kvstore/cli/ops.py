"""lease, member, endpoint, snapshot, defrag, alarm and move-leader."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence

import click

from kvstore.api.pb import rpc_pb2
from kvstore.cli.common import Globals, client_command, fail, parse_hex_id, run
from kvstore.cli.gofmt import human_bytes
from kvstore.cli.printers import EndpointHealth
from kvstore.client import ClientError, RequestFailed

# ---------------------------------------------------------------- lease


@click.group(
    "lease",
    epilog="""\b
Examples:
  kvstore lease grant 60
  kvstore put k v --lease 694d7c8a2d9e0a0b
  kvstore lease timetolive 694d7c8a2d9e0a0b --keys
  kvstore lease keep-alive 694d7c8a2d9e0a0b""",
)
def lease_group() -> None:
    """Leases: keys that expire unless kept alive."""


@lease_group.command("grant")
@click.argument("ttl", type=int)
@client_command
def lease_grant(g: Globals, ttl: int) -> None:
    """Create a lease of TTL seconds."""
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            try:
                resp = await c.lease_grant(ttl)
            except RequestFailed as exc:
                fail(f"failed to grant lease ({exc})")
        printer.lease_grant(resp)

    run(go())


@lease_group.command("revoke")
@click.argument("lease_id")
@client_command
def lease_revoke(g: Globals, lease_id: str) -> None:
    """Revoke a lease (and delete its keys)."""
    lid = parse_hex_id(lease_id, "lease")
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            try:
                resp = await c.lease_revoke(lid)
            except RequestFailed as exc:
                fail(f"failed to revoke lease ({exc})")
        printer.lease_revoke(lid, resp)

    run(go())


@lease_group.command("timetolive")
@click.argument("lease_id")
@click.option("--keys", is_flag=True, help="Also list the keys attached to the lease")
@client_command
def lease_timetolive(g: Globals, lease_id: str, keys: bool) -> None:
    """Show a lease's granted and remaining TTL."""
    lid = parse_hex_id(lease_id, "lease")
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.lease_time_to_live(lid, keys=keys)
        printer.lease_ttl(resp, keys)

    run(go())


@lease_group.command("list")
@client_command
def lease_list(g: Globals) -> None:
    """List the active leases."""
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.lease_leases()
        printer.lease_list(resp)

    run(go())


@lease_group.command("keep-alive")
@click.argument("lease_id")
@click.option("--once", is_flag=True, help="Refresh once and exit")
@client_command
def lease_keep_alive(g: Globals, lease_id: str, once: bool) -> None:
    """Keep a lease alive until Ctrl-C (or it is revoked)."""
    lid = parse_hex_id(lease_id, "lease")
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            if once:
                resp = await c.lease_keep_alive_once(lid)
                if resp.TTL <= 0:
                    fail("etcdserver: requested lease not found")
                printer.lease_keep_alive(resp)
                return
            async for resp in c.lease_keep_alive(lid):
                if resp.TTL > 0:
                    printer.lease_keep_alive(resp)
        if printer.name == "simple":
            click.echo(f"lease {lid:016x} expired or revoked.")

    run(go())


# ---------------------------------------------------------------- member


@click.group(
    "member",
    epilog="""\b
Examples:
  kvstore member list -w table
  kvstore member add n4 --peer-urls http://10.0.0.4:2380
  kvstore member remove 8e9e05c52164694d""",
)
def member_group() -> None:
    """Cluster membership."""


@member_group.command("list")
@client_command
def member_list(g: Globals) -> None:
    """List the members of the cluster."""
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.member_list()
        printer.member_list(resp)

    run(go())


def _urls(text: str) -> list[str]:
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise click.UsageError("member peer urls not provided")
    return urls


@member_group.command("add")
@click.argument("name")
@click.option("--peer-urls", required=True, help="Comma-separated peer URLs of the new member")
@click.option("--learner", is_flag=True, help="Add as a learner (non-voting) member")
@client_command
def member_add(g: Globals, name: str, peer_urls: str, learner: bool) -> None:
    """Add a member NAME to the cluster."""
    urls = _urls(peer_urls)
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.member_add(urls, is_learner=learner)
            printer.member_add(resp)
            if printer.name != "simple":
                return
            members = await c.member_list()
        conf = []
        for m in members.members:
            for u in m.peerURLs:
                conf.append(f"{name if m.ID == resp.member.ID else m.name}={u}")
        click.echo()
        click.echo(f'ETCD_NAME="{name}"')
        click.echo(f'ETCD_INITIAL_CLUSTER="{",".join(conf)}"')
        click.echo(f'ETCD_INITIAL_ADVERTISE_PEER_URLS="{",".join(resp.member.peerURLs)}"')
        click.echo('ETCD_INITIAL_CLUSTER_STATE="existing"')

    run(go())


@member_group.command("remove")
@click.argument("member_id")
@client_command
def member_remove(g: Globals, member_id: str) -> None:
    """Remove the member MEMBER_ID (hex)."""
    mid = parse_hex_id(member_id, "member")
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.member_remove(mid)
        printer.member_change("removed from", mid, resp)

    run(go())


@member_group.command("update")
@click.argument("member_id")
@click.option("--peer-urls", required=True, help="Comma-separated new peer URLs")
@client_command
def member_update(g: Globals, member_id: str, peer_urls: str) -> None:
    """Change the peer URLs of MEMBER_ID (hex)."""
    mid = parse_hex_id(member_id, "member")
    urls = _urls(peer_urls)
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.member_update(mid, urls)
        printer.member_change("updated in", mid, resp)

    run(go())


@member_group.command("promote")
@click.argument("member_id")
@client_command
def member_promote(g: Globals, member_id: str) -> None:
    """Promote the learner MEMBER_ID (hex) to a voting member."""
    mid = parse_hex_id(member_id, "member")
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.member_promote(mid)
        printer.member_change("promoted in", mid, resp)

    run(go())


# ---------------------------------------------------------------- endpoint


async def _endpoints(g: Globals, cluster: bool) -> list[str]:
    if not cluster:
        return list(g.endpoints)
    async with g.client() as c:
        members = await c.member_list()
    return [u for m in members.members for u in m.clientURLs]


@click.group(
    "endpoint",
    epilog="""\b
Examples:
  kvstore endpoint health --cluster
  kvstore endpoint status -w table
  kvstore endpoint hashkv --rev 100""",
)
def endpoint_group() -> None:
    """Per-endpoint health, status and hashes (every --endpoints entry)."""


CLUSTER_OPT = click.option(
    "--cluster", is_flag=True, help="Use every member's client URLs from the member list"
)


@endpoint_group.command("health")
@CLUSTER_OPT
@client_command
def endpoint_health(g: Globals, cluster: bool) -> None:
    """Check that each endpoint answers a linearizable read and has no alarm."""
    printer = g.printer()

    async def check(ep: str) -> EndpointHealth:
        start = time.monotonic()
        async with g.client([ep]) as c:
            try:
                await c.get(b"health")
            except ClientError as exc:
                return EndpointHealth(ep, False, time.monotonic() - start, str(exc))
            took = time.monotonic() - start
            try:
                alarms = await c.alarm_list()
            except ClientError:
                return EndpointHealth(ep, True, took, "")
        if alarms.alarms:
            names = {rpc_pb2.NOSPACE: "NOSPACE", rpc_pb2.CORRUPT: "CORRUPT"}
            text = "Active Alarm(s): " + "".join(
                names.get(a.alarm, "UNKNOWN") + " " for a in alarms.alarms
            )
            return EndpointHealth(ep, False, took, text)
        return EndpointHealth(ep, True, took, "")

    async def go() -> None:
        eps = await _endpoints(g, cluster)
        results = await asyncio.gather(*(check(ep) for ep in eps))
        printer.endpoint_health(results)
        if not all(r.health for r in results):
            fail("unhealthy cluster")

    run(go())


@endpoint_group.command("status")
@CLUSTER_OPT
@client_command
def endpoint_status(g: Globals, cluster: bool) -> None:
    """Show each endpoint's member ID, version, database size, Raft term and index."""
    printer = g.printer()

    async def go() -> None:
        eps = await _endpoints(g, cluster)
        results: list[tuple[str, rpc_pb2.StatusResponse]] = []
        failed = False
        for ep in eps:
            async with g.client([ep]) as c:
                try:
                    results.append((ep, await c.status()))
                except ClientError as exc:
                    failed = True
                    click.echo(f"Failed to get the status of endpoint {ep} ({exc})", err=True)
        printer.endpoint_status(results)
        if failed:
            sys.exit(1)

    run(go())


@endpoint_group.command("hashkv")
@CLUSTER_OPT
@click.option("--rev", type=int, default=0, help="The revision to hash up to (0: latest)")
@client_command
def endpoint_hashkv(g: Globals, cluster: bool, rev: int) -> None:
    """Show the hash of each endpoint's key space (equal on healthy members)."""
    printer = g.printer()

    async def go() -> None:
        eps = await _endpoints(g, cluster)
        results: list[tuple[str, rpc_pb2.HashKVResponse]] = []
        failed = False
        for ep in eps:
            async with g.client([ep]) as c:
                try:
                    results.append((ep, await c.hash_kv(rev)))
                except ClientError as exc:
                    failed = True
                    click.echo(f"Failed to get the hash of endpoint {ep} ({exc})", err=True)
        printer.endpoint_hashkv(results)
        if failed:
            sys.exit(1)

    run(go())


# ---------------------------------------------------------------- maintenance


@click.command("defrag")
@CLUSTER_OPT
@client_command
def defrag_cmd(g: Globals, cluster: bool) -> None:
    """Defragment the storage of each endpoint."""

    async def go() -> None:
        failed = False
        for ep in await _endpoints(g, cluster):
            async with g.client([ep]) as c:
                try:
                    await c.defragment()
                except ClientError as exc:
                    failed = True
                    click.echo(f"Failed to defragment etcd member[{ep}] ({exc})", err=True)
                    continue
            click.echo(f"Finished defragmenting etcd member[{ep}]")
        if failed:
            sys.exit(1)

    run(go())


@click.group("alarm")
def alarm_group() -> None:
    """Alarms (NOSPACE, CORRUPT) raised by members."""


@alarm_group.command("list")
@client_command
def alarm_list(g: Globals) -> None:
    """List the active alarms."""
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            printer.alarm(await c.alarm_list())

    run(go())


@alarm_group.command("disarm")
@client_command
def alarm_disarm(g: Globals) -> None:
    """Deactivate every active alarm."""
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            active = await c.alarm_list()
            out = rpc_pb2.AlarmResponse()
            out.header.CopyFrom(active.header)
            for a in active.alarms:
                resp = await c.alarm(rpc_pb2.AlarmRequest.DEACTIVATE, a.memberID, a.alarm)
                out.header.CopyFrom(resp.header)
                out.alarms.extend(resp.alarms)
            if not active.HasField("header"):
                out.ClearField("header")
        printer.alarm(out)

    run(go())


@click.command("move-leader")
@click.argument("member_id")
@client_command
def move_leader_cmd(g: Globals, member_id: str) -> None:
    """Transfer the leadership to MEMBER_ID (hex); --endpoints must include the leader."""
    target = parse_hex_id(member_id, "member")
    printer = g.printer()

    async def go() -> None:
        for ep in g.endpoints:
            async with g.client([ep]) as c:
                status = await c.status()
                if status.header.member_id == status.leader:
                    resp = await c.move_leader(target)
                    printer.move_leader(status.leader, target, resp)
                    return
        fail(f"no leader endpoint given at {g.endpoints}")

    run(go())


@click.group("snapshot")
def snapshot_group() -> None:
    """Backups of the key space."""


@snapshot_group.command("save")
@click.argument("filename", type=click.Path(dir_okay=False))
@client_command
def snapshot_save(g: Globals, filename: str) -> None:
    """Save a snapshot of one member's database to FILENAME (one endpoint only)."""
    if len(g.endpoints) != 1:
        fail(f"snapshot must be requested to one selected node, not multiple {g.endpoints}")
    part = filename + ".part"
    show = sys.stderr.isatty()

    async def go() -> None:
        received, start = 0, time.monotonic()
        with open(part, "wb") as out:
            async with g.client() as c:
                async for chunk in c.snapshot():
                    out.write(chunk.blob)
                    received += len(chunk.blob)
                    if show:
                        _progress(received, chunk.remaining_bytes, time.monotonic() - start)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, filename)
        if show:
            click.echo(err=True)
        click.echo(f"Snapshot saved at {filename}")

    try:
        run(go())
    finally:
        if os.path.exists(part):
            os.unlink(part)


def _progress(received: int, remaining: int, elapsed: float) -> None:
    rate = received / elapsed if elapsed > 0 else 0.0
    total = received + remaining
    done = received / total if total else 1.0
    bar = "#" * int(done * 30)
    click.echo(
        f"\r[{bar:<30}] {human_bytes(received)} / {human_bytes(total)}  "
        f"{human_bytes(int(rate))}/s",
        err=True,
        nl=False,
    )


COMMANDS: Sequence[click.Command] = [
    lease_group,
    member_group,
    endpoint_group,
    defrag_cmd,
    alarm_group,
    move_leader_cmd,
    snapshot_group,
]
