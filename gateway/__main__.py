"""The gateway process: `python -m gateway [--host H] [--port P] [--workers N]`.

Runs `gateway.asgi:application` on uvicorn with the gateway's own HTTP protocol (gateway.server) and the flags every
environment uses: the Procfile, the Kubernetes Deployment and the benchmarks all start the gateway through here.
"""

import argparse
import os
import sys

BACKLOG = 4096
DRAIN_SECONDS = 60  # on SIGTERM, in-flight streams get this long before the server gives up on them


def uvicorn_args(*, host: str, port: int, workers: int, log_level: str) -> list[str]:
    return [
        "gateway.asgi:application",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--loop", "uvloop",
        "--http", "gateway.server:CorkedHttpTools",
        "--no-proxy-headers",  # forwarded headers are gateway.asgi's to trust (GATEWAY_TRUSTED_PROXIES)
        "--no-server-header",
        "--no-access-log",
        "--backlog", str(BACKLOG),
        "--timeout-graceful-shutdown", str(DRAIN_SECONDS),
        "--log-level", log_level.lower(),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one per pod in Kubernetes)")
    args = parser.parse_args(argv)
    log_level = os.environ.get("LOG_LEVEL", "info")
    server = uvicorn_args(host=args.host, port=args.port, workers=args.workers, log_level=log_level)
    os.execv(sys.executable, [sys.executable, "-m", "uvicorn", *server])  # noqa: S606 - uvicorn gets the signals


if __name__ == "__main__":
    main()
