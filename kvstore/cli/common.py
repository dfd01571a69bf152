"""What every client command shares: the global flags (accepted before or
after the command name, as etcdctl's are), the Client they describe, the
printer, and turning client errors into `Error: <message>` and exit 1."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from kvstore.cli.printers import Printer, UnsupportedFormat, make_printer
from kvstore.client import Client, ClientError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_ENDPOINTS = "127.0.0.1:2379"
FORMATS = ("simple", "json", "table", "fields")
_META = "kvstore.globals"

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Duration(click.ParamType[float, Any]):
    """A Go duration ("5s", "500ms", "1m30s"); a bare number means seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float | int):
            return float(value)
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        pos, total = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            self.fail(f"invalid duration {text!r} (examples: 5s, 500ms, 1m)", param, ctx)
        return total


@dataclass
class Globals:
    endpoints: list[str]
    dial_timeout: float = 2.0
    command_timeout: float = 5.0
    write_out: str = "simple"
    hex: bool = False

    def client(self, endpoints: Sequence[str] | None = None) -> Client:
        return Client(
            list(endpoints or self.endpoints),
            dial_timeout=self.dial_timeout,
            command_timeout=self.command_timeout,
        )

    def printer(self) -> Printer:
        return make_printer(self.write_out, self.hex)


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and param.name is not None:
        ctx.find_root().meta.setdefault(_META, {})[param.name] = value
    return value


def global_options(func: F) -> F:
    """The global flags; on the root group and on every client command."""
    options = [
        click.option(
            "--endpoints",
            metavar="HOST:PORT,...",
            callback=_store,
            expose_value=False,
            help=f"Comma-separated gRPC endpoints [env KVSTORE_ENDPOINTS; {DEFAULT_ENDPOINTS}]",
        ),
        click.option(
            "--dial-timeout",
            type=Duration(),
            callback=_store,
            expose_value=False,
            help="How long to wait for a connection to each endpoint [2s]",
        ),
        click.option(
            "--command-timeout",
            type=Duration(),
            callback=_store,
            expose_value=False,
            help="How long to wait for an answer, after connecting [5s]",
        ),
        click.option(
            "-w",
            "--write-out",
            type=click.Choice(FORMATS),
            callback=_store,
            expose_value=False,
            help="Output format: simple, json, table or fields [simple]",
        ),
        click.option(
            "--hex",
            is_flag=True,
            default=None,
            callback=_store,
            expose_value=False,
            help="Print keys and values as \\x-escaped hex",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def globals_of(ctx: click.Context) -> Globals:
    stored: dict[str, Any] = ctx.find_root().meta.get(_META, {})
    endpoints = stored.get("endpoints") or os.environ.get("KVSTORE_ENDPOINTS") or DEFAULT_ENDPOINTS
    g = Globals(endpoints=[e.strip() for e in str(endpoints).split(",") if e.strip()])
    if "dial_timeout" in stored:
        g.dial_timeout = stored["dial_timeout"]
    if "command_timeout" in stored:
        g.command_timeout = stored["command_timeout"]
    if "write_out" in stored:
        g.write_out = stored["write_out"]
    if stored.get("hex"):
        g.hex = True
    if not g.endpoints:
        raise click.UsageError("--endpoints: no endpoint given")
    return g


def fail(message: str, code: int = 1) -> NoReturn:
    """etcdctl's ExitWithError: `Error: <message>` on stderr."""
    prefix = "Error:"
    if sys.stderr.isatty():
        prefix = click.style(prefix, fg="red", bold=True)
    click.echo(f"{prefix} {message}", err=True)
    sys.exit(code)


def run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine: client errors and unsupported output
    formats become `Error: ...` and exit 1; Ctrl-C exits quietly."""
    try:
        return asyncio.run(_guard(coro))
    except ClientError as exc:
        fail(str(exc))
    except UnsupportedFormat as exc:
        fail(str(exc))
    except OSError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


async def _guard(coro: Awaitable[T]) -> T:
    return await coro


def client_command(func: F) -> F:
    """Decorator for a command callback `f(g: Globals, **params)`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(globals_of(click.get_current_context()), *args, **kwargs)

    return global_options(wrapper)  # type: ignore[return-value]


def arg_bytes(text: str) -> bytes:
    """A command-line argument as the bytes the user typed."""
    return os.fsencode(text)


def parse_hex_id(text: str, what: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        fail(f"bad {what} ID arg ({text!r}), expecting ID in Hex")
    if not 0 <= value < 2**64:
        fail(f"bad {what} ID arg ({text!r}), expecting ID in Hex")
    return value
