"""A live stack for tier moves, shared by `bench.tiermove` and the moves tests: the platform (gunicorn, for state
reports and tenant keys), one tier node per tier (A, B, C) on one data root, and the gateway, all real processes on
loopback ports over the given PostgreSQL database and Redis; plus a chat client that says how each request ended.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import free_port, start, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
TIERS = ("A", "B", "C")


@dataclass
class Outcome:
    """How one chat request ended: a complete answer, a clean error (a JSON error or an SSE error event, then the
    end of the stream), or neither (a cut stream or a hang: never acceptable)."""

    status: int
    complete: bool = False
    clean_error: str = ""
    content: str = ""
    waited_ms: float = 0.0


@dataclass
class Stack:
    root: Path
    database_url: str
    redis_url: str
    token: str
    master_key_hex: str
    gateway_port: int = 0
    nodes: dict[str, tuple[int, int]] = field(default_factory=dict)  # tier -> (public port, internal port)
    procs: list = field(default_factory=list)

    @property
    def data_root(self) -> Path:
        return self.root / "tenant-data"

    def pods(self) -> dict[str, list[str]]:
        """GATEWAY_TIER_PODS for the platform's workers: the same pods the gateway routes to."""
        return {tier: [f"127.0.0.1:{pub}/{internal}"] for tier, (pub, internal) in self.nodes.items()}

    def internal(self, tier: str) -> str:
        return f"127.0.0.1:{self.nodes[tier][1]}"

    def start(self, *, warm_timeout: float = 20.0) -> Stack:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "DATABASE_", "GATEWAY_"))}
        common = {
            **base,
            "PLATFORM_SERVICE_TOKEN": self.token,
            "OBJECT_STORE_ROOT": str(self.root / "objects"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        platform_port = free_port()
        platform = {
            **common,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "PLATFORM_MASTER_KEY": self.master_key_hex,
            "DJANGO_DEBUG": "true",
            "CELERY_TASK_ALWAYS_EAGER": "true",
        }
        gunicorn = [sys.executable, "-m", "gunicorn", "percolate_platform.wsgi", "--bind", f"127.0.0.1:{platform_port}"]
        self.procs.append(start([*gunicorn, "--workers", "2", "--worker-tmp-dir", "/tmp"], env=platform, cwd=ROOT))
        for tier in TIERS:
            public, internal = free_port(), free_port()
            self.nodes[tier] = (public, internal)
            node = {
                **common,
                "PERCOLATE_TENANT_TIER": tier,
                "PORT": str(public),
                "INTERNAL_PORT": str(internal),
                "HOST": "127.0.0.1",
                "POD_ID": f"127.0.0.1:{internal}",
                "TENANT_DATA_ROOT": str(self.data_root),
                "PLATFORM_URL": f"http://127.0.0.1:{platform_port}",
            }
            self.procs.append(start([sys.executable, "-m", "tiernode"], env=node, cwd=ROOT))
        self.gateway_port = free_port()
        policy = {tier: {"requests_per_minute": 10**9, "max_concurrent_streams": 10**6} for tier in TIERS}
        gateway = {
            **platform,
            "TIER_POLICY_JSON": json.dumps(policy),
            "GATEWAY_WARM_TIMEOUT_SECONDS": str(warm_timeout),
            **{f"GATEWAY_PODS_{tier}": pods[0] for tier, pods in self.pods().items()},
        }
        self.procs.append(start([sys.executable, "-m", "gateway", "--port", str(self.gateway_port)], env=gateway))
        try:
            wait_http(platform_port, "/healthz")
            for public, _ in self.nodes.values():
                wait_http(public, "/ready")
            wait_http(self.gateway_port, "/healthz")
        except OSError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.procs.clear()

    def chat(self, tenant_token: str, text: str, *, stream: bool, timeout: float = 60.0) -> Outcome:
        body = json.dumps(
            {"model": "percolate-reference", "stream": stream, "messages": [{"role": "user", "content": text}]}
        )
        headers = {"Authorization": f"Bearer {tenant_token}", "Content-Type": "application/json"}
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.gateway_port, timeout=timeout)
        try:
            conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(0, clean_error="", content=f"transport: {exc}")
        finally:
            conn.close()
        outcome = Outcome(response.status, waited_ms=(time.perf_counter() - started) * 1000)
        if response.status != 200:
            try:
                outcome.clean_error = json.loads(raw)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                outcome.content = raw[:300].decode("utf-8", "replace")
            return outcome
        if not stream:
            doc = json.loads(raw)
            outcome.content = doc["choices"][0]["message"]["content"]
            outcome.complete = True
            return outcome
        events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
        ended = bool(events) and events[-1] == "[DONE]"
        for event in events[:-1] if ended else events:
            doc = json.loads(event)
            if "error" in doc:
                outcome.clean_error = doc["error"].get("code") or "error"
                continue
            for choice in doc.get("choices", []):
                outcome.content += (choice.get("delta") or {}).get("content") or ""
        outcome.complete = ended and not outcome.clean_error
        if not ended:
            outcome.clean_error = ""  # a stream cut without its end is not clean, whatever it said
        return outcome
