"""The standard gRPC health service (grpc.health.v1.Health).

SERVING while the node knows a leader (it can order requests), NOT_SERVING
otherwise. The service name "" means the whole server; the names of the
services we register are accepted too and share that status; any other
name is NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as the protocol says.

Not to be confused with `etcdctl endpoint health`, which does not use this
service: etcdctl 3.4 does a linearizable Get of the key "health" and counts
a permission-denied answer as healthy. That path works through KV.Range.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

import grpc  # type: ignore[import-untyped]  # grpcio ships no type information

from kvstore.api.errors import Context
from kvstore.api.pb import health_pb2, health_pb2_grpc

ServingStatus = health_pb2.HealthCheckResponse.ServingStatus
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

HEALTH_SERVICE_NAME = "grpc.health.v1.Health"


class HealthService(health_pb2_grpc.HealthServicer):
    def __init__(
        self,
        is_serving: Callable[[], bool],
        services: Iterable[str] = (),
        watch_interval: float = 1.0,
    ) -> None:
        """`is_serving` is asked on every call; Watch re-asks it every
        `watch_interval` seconds (there is no change notification to wait on)
        and sends a response only when the answer changes."""
        self._is_serving = is_serving
        self._services = {"", HEALTH_SERVICE_NAME, *services}
        self._interval = watch_interval

    def _status(self) -> ServingStatus:
        return SERVING if self._is_serving() else NOT_SERVING

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Context
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in self._services:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=self._status())

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: Context
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        if request.service not in self._services:
            yield health_pb2.HealthCheckResponse(status=SERVICE_UNKNOWN)
            return
        last = self._status()
        yield health_pb2.HealthCheckResponse(status=last)
        while True:
            await asyncio.sleep(self._interval)
            now = self._status()
            if now != last:
                last = now
                yield health_pb2.HealthCheckResponse(status=now)
