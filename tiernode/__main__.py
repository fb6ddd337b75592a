"""``python -m tiernode``: run one tier node, configured only by environment.

Two uvicorn servers in one process and one event loop, sharing one node: the public listener (``PORT``, chat) and
the internal listener (``INTERNAL_PORT``, ``/internal/...``). The node starts before either accepts and shuts down
(draining its tenants) after both have stopped; when one server stops (a signal, a failure), the other follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

import uvicorn
import uvloop

from tiernode.app import NodeApp
from tiernode.config import ConfigError, NodeConfig

GRACEFUL_SHUTDOWN_SECONDS = 20


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handlers: `serve` stops both servers on a signal, and uvicorn's
    habit of re-raising the signal after it stops would kill the process before the node has drained."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: object, host: str, port: int, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]  # uvicorn types the app as its ASGI union; ours is a plain ASGI 3 callable
        host=host,
        port=port,
        interface="asgi3",  # a bound method: uvicorn's detection would take it for ASGI 2
        lifespan="off",  # the node's own startup and shutdown run once, around both servers
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return _Server(config)


async def serve(cfg: NodeConfig, log_level: str) -> None:
    node = NodeApp(cfg)
    servers = [
        _server(node.public, cfg.host, cfg.port, log_level),
        _server(node.internal, cfg.host, cfg.internal_port, log_level),
    ]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, servers)
    await node.startup()
    try:
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        _stop(servers)
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await node.shutdown()


def _stop(servers: list[uvicorn.Server]) -> None:
    for server in servers:
        server.should_exit = True


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = NodeConfig.from_env()
    except ConfigError as exc:
        print(f"tiernode: {exc}", file=sys.stderr)
        return 2
    uvloop.run(serve(cfg, os.environ.get("LOG_LEVEL", "info").lower()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
