"""etcdctl's txn syntax, read from stdin.

    mod("key1") > "0"          <- compares, one per line, until an empty line
    value("key2") = "x"

    put key1 "new value"       <- requests run if every compare holds
    get key2 --prefix

    del key1                   <- requests run otherwise; ends with an
                                  empty line or the end of input

A compare is TARGET("KEY") OP "VALUE" with TARGET one of c/create, m/mod,
ver/version, val/value, lease and OP one of = != < >. Requests are
command lines of put/get/del, parsed by the same click commands (and so
with the same flags) as `kvstore put/get/del`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import TextIO

import click

from kvstore.api.pb import rpc_pb2

Cmp = rpc_pb2.Compare

_COMPARE = re.compile(r'^"((?:[^"\\]|\\.)*)"\)\s*(\S+)\s*"((?:[^"\\]|\\.)*)"\s*$')
_ARG = re.compile(r""""(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?""")
_RESULTS = {"=": Cmp.EQUAL, "!=": Cmp.NOT_EQUAL, "<": Cmp.LESS, ">": Cmp.GREATER}
_TARGETS = {
    "c": Cmp.CREATE,
    "create": Cmp.CREATE,
    "m": Cmp.MOD,
    "mod": Cmp.MOD,
    "ver": Cmp.VERSION,
    "version": Cmp.VERSION,
    "val": Cmp.VALUE,
    "value": Cmp.VALUE,
    "lease": Cmp.LEASE,
}


def _unquote(body: str) -> bytes:
    """The bytes of a Go double-quoted string's body."""
    try:
        value = ast.literal_eval('b"' + body.replace("\n", "\\n") + '"')
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"malformed quoted string {body!r}") from exc
    if not isinstance(value, bytes):
        raise ValueError(f"malformed quoted string {body!r}")
    return value


def _utf8_unquote(body: str) -> bytes:
    # Non-ASCII characters are not allowed in a bytes literal: escape them.
    return _unquote(body.encode("utf-8", "surrogateescape").decode("latin-1"))


def parse_compare(line: str) -> rpc_pb2.Compare:
    target, sep, rest = line.partition("(")
    if not sep:
        raise ValueError(f"malformed comparison: {line}")
    m = _COMPARE.match(rest)
    if m is None:
        raise ValueError(f"malformed comparison: {line}")
    key, op, val = _utf8_unquote(m.group(1)), m.group(2), _utf8_unquote(m.group(3))
    if target not in _TARGETS:
        raise ValueError(f"malformed comparison: {line} (unknown target {target})")
    if op not in _RESULTS:
        raise ValueError(f"malformed comparison: {line} (unknown operator {op})")
    cmp = rpc_pb2.Compare(key=key, target=_TARGETS[target], result=_RESULTS[op])
    kind = _TARGETS[target]
    if kind == Cmp.VALUE:
        cmp.value = val
        return cmp
    try:
        number = int(val.decode())
    except ValueError:
        raise ValueError(f"invalid txn compare request: {line}") from None
    if kind == Cmp.CREATE:
        cmp.create_revision = number
    elif kind == Cmp.MOD:
        cmp.mod_revision = number
    elif kind == Cmp.VERSION:
        cmp.version = number
    else:
        cmp.lease = number
    return cmp


def argify(line: str) -> list[str]:
    """Split a request line like etcdctl's Argify: words, "Go-quoted" or
    'single-quoted' strings."""
    out = []
    for word in _ARG.findall(line):
        if word.startswith('"'):
            out.append(_utf8_unquote(word[1:-1]).decode("utf-8", "surrogateescape"))
        elif word.startswith("'"):
            out.append(word[1:-1])
        else:
            out.append(word)
    return out


def parse_request(line: str, ops: Mapping[str, click.Command]) -> rpc_pb2.RequestOp:
    args = argify(line)
    if not args or args[0] not in ops:
        raise ValueError(f"invalid txn request: {line}")
    try:
        op = ops[args[0]].main(args[1:], prog_name=args[0], standalone_mode=False)
    except click.ClickException as exc:
        raise ValueError(f"invalid txn request: {line} ({exc.format_message()})") from None
    if not isinstance(op, rpc_pb2.RequestOp):
        raise ValueError(f"invalid txn request: {line}")
    return op


def read_txn(
    stream: TextIO, interactive: bool, ops: Mapping[str, click.Command]
) -> rpc_pb2.TxnRequest:
    def block(prompt: str) -> list[str]:
        if interactive:
            click.echo(prompt, err=True)
        lines = []
        for raw in stream:
            line = raw.rstrip("\r\n")
            if not line.strip():
                break
            lines.append(line)
        return lines

    compares = [parse_compare(ln) for ln in block("compares:")]
    success = [parse_request(ln, ops) for ln in block("success requests (get, put, del):")]
    failure = [parse_request(ln, ops) for ln in block("failure requests (get, put, del):")]
    return rpc_pb2.TxnRequest(compare=compares, success=success, failure=failure)
