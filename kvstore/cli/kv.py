"""put, get, del, txn, compaction and watch: etcdctl 3.4's flags, requests
and output.

The requests are built exactly as etcdctl builds them (getGetOp, getPutOp,
getDelOp in etcdctl/ctlv3/command), because the printed revisions and
counts depend on it: an empty key with --prefix or --from-key means "\\0",
a prefix's range end is its last byte incremented, and ascending by key is
sent as "no sort order".
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from kvstore.api.pb import rpc_pb2
from kvstore.cli.common import Globals, arg_bytes, client_command, fail, run
from kvstore.client import WatchCanceled, prefix_end

RR = rpc_pb2.RangeRequest
SORT_ORDERS = {"": RR.NONE, "ASCEND": RR.ASCEND, "DESCEND": RR.DESCEND}
SORT_TARGETS = {
    "": RR.KEY,
    "KEY": RR.KEY,
    "CREATE": RR.CREATE,
    "MODIFY": RR.MOD,
    "VALUE": RR.VALUE,
    "VERSION": RR.VERSION,
}


def key_range(
    args: tuple[str, ...], prefix: bool, from_key: bool, what: str
) -> tuple[bytes, bytes]:
    if not args:
        raise click.UsageError(
            f"{what} command needs one argument as key and an optional argument as range_end"
        )
    if len(args) > 2:
        raise click.UsageError(f"too many arguments for {what}")
    if prefix and from_key:
        raise click.UsageError("`--prefix` and `--from-key` cannot be set at the same time, "
                               "choose one")
    if (prefix or from_key) and len(args) > 1:
        raise click.UsageError(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set"
        )
    key = arg_bytes(args[0])
    end = arg_bytes(args[1]) if len(args) > 1 else b""
    if prefix:
        if not key:
            return b"\0", b"\0"
        return key, prefix_end(key)
    if from_key:
        return (key or b"\0"), b"\0"
    return key, end


# ---------------------------------------------------------------- options

def get_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option("--consistency", default="l", show_default=True,
                         help="Linearizable (l) or Serializable (s)"),
            click.option("--order", default="", help="ASCEND or DESCEND (ASCEND by default)"),
            click.option("--sort-by", default="",
                         help="Sort target: CREATE, KEY, MODIFY, VALUE or VERSION"),
            click.option("--prefix", is_flag=True, help="Get the keys with this prefix"),
            click.option("--from-key", is_flag=True,
                         help="Get the keys >= the given key (byte order)"),
            click.option("--limit", type=int, default=0, help="Maximum number of results"),
            click.option("--rev", type=int, default=0, help="Read at this revision"),
            click.option("--keys-only", is_flag=True, help="Get only the keys"),
            click.option("--count-only", is_flag=True, help="Get only the number of keys"),
            click.option("--print-value-only", is_flag=True,
                         help='Print only the values (with "-w simple")'),
        ]
    ):
        func = opt(func)
    return func


def build_range(
    args: tuple[str, ...],
    *,
    consistency: str,
    order: str,
    sort_by: str,
    prefix: bool,
    from_key: bool,
    limit: int,
    rev: int,
    keys_only: bool,
    count_only: bool,
    **_: Any,
) -> rpc_pb2.RangeRequest:
    key, end = key_range(args, prefix, from_key, "get")
    if consistency not in ("l", "s"):
        raise click.UsageError(f'unknown consistency flag "{consistency}"')
    if order.upper() not in SORT_ORDERS:
        raise click.UsageError(f"bad sort order {order}")
    if sort_by.upper() not in SORT_TARGETS:
        raise click.UsageError(f"bad sort target {sort_by}")
    sort_order = SORT_ORDERS[order.upper()]
    sort_target = SORT_TARGETS[sort_by.upper()]
    if sort_target == RR.KEY and sort_order == RR.ASCEND:
        sort_order = RR.NONE  # clientv3.WithSort: ascending by key is the default
    return rpc_pb2.RangeRequest(
        key=key,
        range_end=end,
        limit=limit,
        revision=max(rev, 0),
        sort_order=sort_order,
        sort_target=sort_target,
        serializable=consistency == "s",
        keys_only=keys_only,
        count_only=count_only,
    )


def put_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option("--lease", default="0", help="Attach the key to this lease (hex ID)"),
            click.option("--prev-kv", is_flag=True, help="Print the previous key-value pair"),
            click.option("--ignore-value", is_flag=True, help="Keep the current value"),
            click.option("--ignore-lease", is_flag=True, help="Keep the current lease"),
        ]
    ):
        func = opt(func)
    return func


def build_put(
    args: tuple[str, ...],
    *,
    lease: str,
    prev_kv: bool,
    ignore_value: bool,
    ignore_lease: bool,
    stdin: bool,
) -> rpc_pb2.PutRequest:
    if not args:
        raise click.UsageError("put command needs 1 argument and input from stdin or 2 arguments")
    if len(args) > 2:
        raise click.UsageError("too many arguments for put")
    if ignore_value and len(args) == 2:
        raise click.UsageError("put command needs only 1 argument when --ignore-value is set")
    key = arg_bytes(args[0])
    if len(args) == 2:
        value = arg_bytes(args[1])
    elif ignore_value:
        value = b""
    elif stdin:
        value = sys.stdin.buffer.read()
    else:
        raise click.UsageError("put command needs 2 arguments in a txn")
    try:
        lease_id = int(lease, 16)
    except ValueError:
        fail(f'bad lease ID ({lease!r}), expecting ID in Hex')
    return rpc_pb2.PutRequest(
        key=key,
        value=value,
        lease=lease_id,
        prev_kv=prev_kv,
        ignore_value=ignore_value,
        ignore_lease=ignore_lease,
    )


def del_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option("--prefix", is_flag=True, help="Delete the keys with this prefix"),
            click.option("--prev-kv", is_flag=True, help="Print the deleted key-value pairs"),
            click.option("--from-key", is_flag=True,
                         help="Delete the keys >= the given key (byte order)"),
        ]
    ):
        func = opt(func)
    return func


def build_delete(
    args: tuple[str, ...], *, prefix: bool, prev_kv: bool, from_key: bool
) -> rpc_pb2.DeleteRangeRequest:
    key, end = key_range(args, prefix, from_key, "del")
    return rpc_pb2.DeleteRangeRequest(key=key, range_end=end, prev_kv=prev_kv)


# ---------------------------------------------------------------- commands


@click.command(
    "put",
    epilog="""\b
Examples:
  kvstore put greeting hello
  echo -n hello | kvstore put greeting     # the value from stdin
  kvstore put k v --lease 694d7c8a2d9e0a0b --prev-kv""",
)
@click.argument("args", nargs=-1)
@put_options
@client_command
def put_cmd(g: Globals, args: tuple[str, ...], **opts: Any) -> None:
    """Put KEY VALUE (or KEY, with the value read from stdin)."""
    req = build_put(args, stdin=True, **opts)
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            printer.put(await c.put_request(req))

    run(go())


@click.command(
    "get",
    epilog="""\b
Examples:
  kvstore get greeting
  kvstore get foo/ --prefix --keys-only
  kvstore get "" --from-key --limit 10 --sort-by MODIFY --order DESCEND
  kvstore get greeting -w json""",
)
@click.argument("args", nargs=-1)
@get_options
@client_command
def get_cmd(g: Globals, args: tuple[str, ...], print_value_only: bool, **opts: Any) -> None:
    """Get KEY, or the range [KEY, RANGE_END)."""
    if print_value_only and g.write_out != "simple":
        raise click.UsageError("print-value-only is only for `--write-out=simple`")
    req = build_range(args, **opts)
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            resp = await c.range(req)
        if req.count_only:
            printer.count(resp)
        else:
            printer.get(resp, print_value_only)

    run(go())


@click.command(
    "del",
    epilog="""\b
Examples:
  kvstore del greeting
  kvstore del foo/ --prefix --prev-kv""",
)
@click.argument("args", nargs=-1)
@del_options
@client_command
def del_cmd(g: Globals, args: tuple[str, ...], **opts: Any) -> None:
    """Delete KEY, or the range [KEY, RANGE_END)."""
    req = build_delete(args, **opts)
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            printer.delete(await c.delete_request(req))

    run(go())


@click.command(
    "compaction",
    epilog="""\b
Example:
  kvstore compaction 1234 --physical""",
)
@click.argument("revision")
@click.option("--physical", is_flag=True, help="Wait until the compaction is physically applied")
@client_command
def compaction_cmd(g: Globals, revision: str, physical: bool) -> None:
    """Discard the history before REVISION."""
    try:
        rev = int(revision)
    except ValueError:
        fail(f'strconv.ParseInt: parsing "{revision}": invalid syntax')

    async def go() -> None:
        async with g.client() as c:
            await c.compact(rev, physical=physical)
        click.echo(f"compacted revision {rev}")

    run(go())


@click.command(
    "watch",
    epilog="""\b
Examples:
  kvstore watch greeting
  kvstore watch foo/ --prefix --prev-kv
  kvstore watch foo --rev 1        # replay the history from revision 1
Ctrl-C stops watching.""",
)
@click.argument("args", nargs=-1)
@click.option("--prefix", is_flag=True, help="Watch the keys with this prefix")
@click.option("--rev", type=int, default=0, help="Start watching at this revision")
@click.option("--prev-kv", is_flag=True, help="Also print the previous key-value pair")
@click.option("--progress-notify", is_flag=True, help="Ask for periodic progress notifications")
@client_command
def watch_cmd(
    g: Globals, args: tuple[str, ...], prefix: bool, rev: int, prev_kv: bool, progress_notify: bool
) -> None:
    """Watch KEY (or [KEY, RANGE_END)) and print events as they happen."""
    key, end = key_range(args, prefix, False, "watch")
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            stream = c.watch(
                key, end, start_revision=rev, prev_kv=prev_kv, progress_notify=progress_notify
            )
            try:
                async for resp in stream:
                    printer.watch(resp)
            except WatchCanceled as exc:
                fail(f"watch was canceled ({exc})")

    run(go())


# ---------------------------------------------------------------- txn


@click.command("put")
@click.argument("args", nargs=-1)
@put_options
def _txn_put(args: tuple[str, ...], **opts: Any) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=build_put(args, stdin=False, **opts))


@click.command("get")
@click.argument("args", nargs=-1)
@get_options
def _txn_get(args: tuple[str, ...], **opts: Any) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_range=build_range(args, **opts))


@click.command("del")
@click.argument("args", nargs=-1)
@del_options
def _txn_del(args: tuple[str, ...], **opts: Any) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_delete_range=build_delete(args, **opts))


@click.command(
    "txn",
    epilog="""\b
Reads three blocks from stdin, each ended by an empty line: compares,
then the requests to run if all compares hold, then those to run if not.
Example:
  printf 'mod("k") > "0"\\n\\nput k v2\\n\\nput k v1\\n\\n' | kvstore txn
Compares: mod|create|version|value|lease("KEY") =|!=|<|> "VALUE"
Requests: put/get/del with the flags of those commands.""",
)
@click.option("-i", "--interactive", is_flag=True, help="Prompt for each block")
@client_command
def txn_cmd(g: Globals, interactive: bool) -> None:
    """Run a transaction read from stdin (etcdctl's txn syntax)."""
    from kvstore.cli.txn import read_txn

    try:
        req = read_txn(sys.stdin, interactive, {"put": _txn_put, "get": _txn_get, "del": _txn_del})
    except ValueError as exc:
        fail(str(exc))
    printer = g.printer()

    async def go() -> None:
        async with g.client() as c:
            printer.txn(await c.txn(req))

    run(go())


COMMANDS = [put_cmd, get_cmd, del_cmd, txn_cmd, compaction_cmd, watch_cmd]
