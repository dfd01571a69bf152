"""`kvstore serve`: run one member until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from kvstore.server.bootstrap import IdentityMismatch
from kvstore.server.config import ConfigError, ServerConfig, grpc_address, parse_args
from kvstore.server.logs import configure
from kvstore.server.node import Node

log = logging.getLogger("kvstore.serve")

SHUTDOWN_GRACE_S = 2.0


async def serve(cfg: ServerConfig) -> None:
    from kvstore.api.server import build_grpc_server

    node = Node(cfg)
    await node.start()
    server = build_grpc_server(
        node,
        [grpc_address(u) for u in cfg.listen_client_urls],
        cfg.max_request_bytes,
        max_txn_ops=cfg.max_txn_ops,
        lease=node,
        watch=node,
    )
    await server.start()
    log.info(
        "serving clients",
        extra={"member_name": cfg.name, "client_urls": ",".join(cfg.listen_client_urls)},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        # Finish or fail the requests in flight, then close the database.
        await server.stop(SHUTDOWN_GRACE_S)
        await node.stop()


def main(argv: Sequence[str]) -> int:
    try:
        cfg = parse_args(argv)
    except ConfigError as exc:
        print(f"kvstore serve: error: {exc}", file=sys.stderr)
        return 2
    configure(cfg.log_level)
    try:
        asyncio.run(serve(cfg))
    except IdentityMismatch as exc:
        print(f"kvstore serve: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kvstore serve: error: {exc}", file=sys.stderr)
        return 1
    return 0
