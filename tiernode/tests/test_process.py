"""The node as a real process: ``python -m tiernode`` on two free ports (public and internal), SIGKILLed and
restarted, loses nothing; each listener serves only its own routes."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tiernode.blob import context_key, open_context
from tiernode.tests.conftest import PROXY_AUTH, TOKEN, node_env

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        hdrs = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json", **(headers or {})}
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _without_s3(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    """This node keeps its blobs in a local directory, whatever object store the suite runs with."""
    return {k: v for k, v in environ.items() if not k.startswith("S3_")}


class Node:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port  # the internal listener
        self.public_port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tiernode"],
            cwd=REPO,
            env={
                **_without_s3(os.environ),
                **env,
                "PORT": str(self.public_port),
                "INTERNAL_PORT": str(port),
                "HOST": "127.0.0.1",
                "LOG_LEVEL": "warning",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if _call(port, "GET", "/ready")[0] == 200 and _call(self.public_port, "GET", "/ready")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                pytest.fail(f"node did not become ready:\n{out}")
            time.sleep(0.05)

    def chat(self, tenant_id: uuid.UUID, text: str, generation: int | None = None) -> tuple[int, dict, bytes]:
        headers = {"x-percolate-tenant": str(tenant_id), **PROXY_AUTH}
        if generation is not None:
            headers["x-percolate-generation"] = str(generation)
        body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": True}
        return _call(self.public_port, "POST", "/v1/chat/completions", body, headers)

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()


def _reply(body: bytes) -> str:
    events = body.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e[len("data: ") :]) for e in events[:-2]]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)


def test_a_killed_node_restarts_with_nothing_lost(tmp_path: Path, platform) -> None:
    env = node_env(tmp_path, PLATFORM_URL=platform.url, PERCOLATE_TENANT_TIER="C")
    a, b = uuid.uuid4(), uuid.uuid4()
    node = Node(env, _free_port())
    try:
        status, headers, body = node.chat(a, "My name is Ada. Remember that the deploy is at noon.", generation=3)
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        for i in range(30):
            assert node.chat(a, f"message {i}")[0] == 200
        assert node.chat(b, "I prefer tea.", generation=1)[0] == 200
    finally:
        assert node.stop(signal.SIGKILL) == -signal.SIGKILL  # no flush, no close, no goodbye

    node = Node(env, _free_port())
    try:
        status, _, body = _call(node.port, "GET", "/internal/tenants")
        assert status == 200 and json.loads(body)["tenants"] == []  # a new process holds nothing...
        assert node.chat(a, "hello again")[0] == 409  # ...and needs the platform's generation
        reply = _reply(node.chat(a, "What do you remember?", generation=3)[2])
        assert reply.startswith("I have 63 messages")  # 31 exchanges before the kill, and this one
        assert "name: Ada" in reply and "the deploy is at noon" in reply and "message 29" in reply
        assert "you prefer tea" in _reply(node.chat(b, "and me?", generation=1)[2])
        status, _, body = _call(node.port, "POST", f"/internal/evict/{a}", {"generation": 3})
        assert status == 200 and json.loads(body)["context_blob"] == "written"
    finally:
        # Graceful: both listeners stop, then the node drains and releases b, and the process exits 0.
        assert node.stop(signal.SIGTERM) == 0
    key = platform.key_for(a)[1]
    doc = open_context((tmp_path / "objects" / context_key(a)).read_bytes(), tenant_id=a, key_for=lambda k: key)
    assert doc["message_count"] == 64 and doc["messages"][-2]["content"] == "What do you remember?"
    assert platform.reports_for(b)[-1] == ("cold", 1)
    assert (tmp_path / "objects" / context_key(b)).exists()


def test_each_listener_of_a_running_node_serves_only_its_own_routes(tmp_path: Path, platform) -> None:
    node = Node(node_env(tmp_path, PLATFORM_URL=platform.url), _free_port())
    try:
        tid = uuid.uuid4()
        for raw in ("/internal/tenants", "/%69nternal/tenants", "/v1/../internal/tenants", f"/internal/warm/{tid}"):
            for credential in (PROXY_AUTH, {"authorization": f"Bearer {TOKEN}"}):
                status, _, body = _call(node.public_port, "POST", raw, {"generation": 1}, credential)
                assert status == 404 and json.loads(body)["error"]["code"] == "not_found", raw
        status, _, _ = _call(node.port, "GET", "/internal/tenants")
        assert status == 200
        status, _, body = _call(node.port, "POST", "/v1/chat/completions", {"messages": []})
        assert status == 404
        assert json.loads(_call(node.port, "GET", "/internal/tenants")[2])["tenants"] == []
    finally:
        assert node.stop(signal.SIGTERM) == 0
