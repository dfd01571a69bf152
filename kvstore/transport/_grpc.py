"""The typed edge between the peer transport and grpc.aio.

grpcio ships no type information and the generated peer_pb2_grpc module is
untyped, so everything the transport needs from them is declared here as a
small Protocol, and the untyped objects are cast to those Protocols in this
module only. The rest of kvstore/transport is checked by `mypy --strict`
against these declarations.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any, NoReturn, Protocol, TypeVar, cast

import grpc  # type: ignore[import-untyped, unused-ignore]

from kvstore.api.pb import peer_pb2 as pb
from kvstore.api.pb import peer_pb2_grpc as _peer_pb2_grpc

# The generated module has no annotations: treat it as Any, here only.
_GENERATED: Any = _peer_pb2_grpc

ChannelOptions = Sequence[tuple[str, int | str]]

RequestT = TypeVar("RequestT", contravariant=True)
ResponseT = TypeVar("ResponseT", covariant=True)


class StreamUnaryCall(Protocol[RequestT, ResponseT]):
    """A client-streaming call (grpc.aio.StreamUnaryCall) driven by write()."""

    async def write(self, request: RequestT) -> None: ...

    async def done_writing(self) -> None: ...

    def done(self) -> bool: ...

    def cancel(self) -> bool: ...

    def add_done_callback(self, callback: Callable[[Any], None]) -> None: ...

    def __await__(self) -> Generator[Any, None, ResponseT]: ...


class Channel(Protocol):
    async def close(self, grace: float | None = None) -> None: ...


class Server(Protocol):
    def add_insecure_port(self, address: str) -> int: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float | None) -> None: ...


class ServicerContext(Protocol):
    def peer(self) -> str: ...


class Code(enum.Enum):
    """The gRPC status codes the transport answers with (names as in grpc)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"


RPC_ERRORS: tuple[type[Exception], ...] = (grpc.RpcError, asyncio.InvalidStateError)
"""What a call's write()/await may raise once the RPC has failed or ended."""


def describe_error(error: BaseException) -> str:
    """A short, stable description of an RPC failure for log lines."""
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):
        name = getattr(code(), "name", str(code()))
        return f"{name}: {details()}"
    return f"{type(error).__name__}: {error}"


def error_code_name(error: BaseException) -> str | None:
    """The gRPC status code name of an RpcError, None for anything else."""
    code = getattr(error, "code", None)
    if not callable(code):
        return None
    name = getattr(code(), "name", None)
    return name if isinstance(name, str) else None


async def abort(context: ServicerContext, code: Code, details: str) -> NoReturn:
    """Fail the current RPC with a status; never returns."""
    untyped: Any = context
    await untyped.abort(getattr(grpc.StatusCode, code.value), details)
    raise AssertionError("grpc.aio ServicerContext.abort returned")  # pragma: no cover


# ------------------------------------------------------------------ client


def insecure_channel(target: str, options: ChannelOptions) -> Channel:
    return cast(Channel, grpc.aio.insecure_channel(target, options=list(options)))


class PeerClient:
    """Typed calls of the Peer service on one channel."""

    __slots__ = ("_stub",)

    def __init__(self, channel: Channel) -> None:
        self._stub: Any = _GENERATED.PeerStub(channel)

    def stream(self) -> StreamUnaryCall[pb.MessageBatch, pb.StreamResponse]:
        # wait_for_ready=False: fail at once (UNAVAILABLE) when the peer cannot
        # be reached, so the sender's own backoff is in charge of retrying.
        return cast(
            "StreamUnaryCall[pb.MessageBatch, pb.StreamResponse]",
            self._stub.Stream(wait_for_ready=False),
        )

    def send_snapshot(self) -> StreamUnaryCall[pb.SnapshotChunk, pb.SendSnapshotResponse]:
        return cast(
            "StreamUnaryCall[pb.SnapshotChunk, pb.SendSnapshotResponse]",
            self._stub.SendSnapshot(wait_for_ready=False),
        )


# ------------------------------------------------------------------ server


class PeerServicer(Protocol):
    async def Stream(
        self, request_iterator: AsyncIterator[pb.MessageBatch], context: ServicerContext
    ) -> pb.StreamResponse: ...

    async def SendSnapshot(
        self, request_iterator: AsyncIterator[pb.SnapshotChunk], context: ServicerContext
    ) -> pb.SendSnapshotResponse: ...


def new_server(servicer: PeerServicer, options: ChannelOptions) -> Server:
    server: Any = grpc.aio.server(options=list(options))
    _GENERATED.add_PeerServicer_to_server(servicer, server)
    return cast(Server, server)
