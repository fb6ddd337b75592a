"""The gateway process: `python -m gateway [--host H] [--port P] [--workers N]`.

Creates the listening socket and serves `gateway.asgi:application` on it with uvicorn as a library: one
`uvicorn.Server` in this process (`Server.run(sockets=[sock])`), or, with more workers, uvicorn's `Multiprocess`
supervisor sharing the one socket among them. The server's protocol is the gateway's own (gateway.server), given the
socket so that it can accept a burst of connections itself. The Procfile, the Kubernetes Deployment and the
benchmarks all start the gateway through here, so the server's settings live in one place.
"""

import argparse
import os
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from gateway.server.protocol import protocols

APP = "gateway.asgi:application"
BACKLOG = 4096
DRAIN_SECONDS = 60  # on SIGTERM, in-flight streams get this long before the server gives up on them


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound and listening (IPv4 or IPv6 by the host's form)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    sock.setblocking(False)
    return sock


def server_config(*, listener: socket.socket | None, workers: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        workers=workers,
        loop="uvloop",
        http=protocols(listener),  # the gateway's protocol, accepting bursts from `listener`
        proxy_headers=False,  # forwarded headers are gateway.asgi's to trust (GATEWAY_TRUSTED_PROXIES)
        server_header=False,
        access_log=False,
        backlog=BACKLOG,
        timeout_graceful_shutdown=DRAIN_SECONDS,
        log_level=log_level.lower(),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one per pod in Kubernetes)")
    args = parser.parse_args(argv)
    sock = listening_socket(args.host, args.port)
    config = server_config(listener=sock, workers=args.workers, log_level=os.environ.get("LOG_LEVEL", "info"))
    if args.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
