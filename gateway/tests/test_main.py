"""`python -m gateway`: the one command every environment starts the gateway with (uvicorn on gateway.asgi)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import uvicorn

from gateway.__main__ import APP, BACKLOG, listening_socket, server_config
from gateway.server.protocol import Protocols

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_server_serves_the_gateway_app_on_its_own_protocol_and_socket() -> None:
    sock = listening_socket("127.0.0.1", 0)
    try:
        config = server_config(listener=sock, workers=2, log_level="WARNING")
        assert isinstance(config, uvicorn.Config) and config.app == APP == "gateway.asgi:application"
        assert isinstance(config.http, Protocols) and config.http.listener is sock  # it accepts bursts from it
        assert config.loop == "uvloop" and config.workers == 2 and config.backlog == BACKLOG
        assert not config.proxy_headers and not config.server_header and not config.access_log
        assert config.timeout_graceful_shutdown is not None and config.timeout_graceful_shutdown >= 30
        assert config.log_level == "warning"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)  # listening before uvicorn gets it
    finally:
        sock.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_python_m_gateway_serves_health_and_stops_on_sigterm(workers: int) -> None:
    port = _free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    assert reply.status == 200 and b'"ok"' in reply.read()
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the gateway did not answer /healthz"
                time.sleep(0.2)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) is not None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_client_addresses_come_from_trusted_proxies_only_when_configured() -> None:
    probe = "import gateway.asgi as a; print(type(a.application).__name__)"

    def application_type(trusted: str) -> str:
        env = {**os.environ, "GATEWAY_TRUSTED_PROXIES": trusted}
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    assert application_type("") == "ProtocolTypeRouter"
    assert application_type("10.0.0.0/8") == "ProxyHeadersMiddleware"
