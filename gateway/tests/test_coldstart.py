"""The cold path end to end: real tenants and keys in PostgreSQL, real Redis, a real tier node (tiernode's two ASGI
apps served by uvicorn on two loopback ports, in the test's event loop) and sealed blobs in a real object store.

The node's internal listener is wrapped by a gate on `/internal/warm`, so a test decides when the warm finishes and
asserts what the client had received by then: ordering by recorded events, never by timing. Every scenario runs under
a deadline.
"""

import asyncio
import io
import json
import socket
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from django.utils import timezone

from archival import objectstore
from archival.models import ArchivalJob, JobStatus, JobType
from core import sealed
from gateway import metrics
from gateway.app import Gateway
from gateway.cold import answer as coldanswer
from gateway.platform import Platform
from gateway.tests.conftest import Reply, bearer, call
from percolate_platform.db_pool import db_call
from tenants.keys import tenant_data_key
from tenants.models import TenantState
from tiernode.app import NodeApp
from tiernode.blob import build_context
from tiernode.config import NodeConfig

pytestmark = pytest.mark.django_db(transaction=True)
DEADLINE = 20


class Node:
    """A real tier node on a loopback port, with a gate on warms and an event log shared with the test."""

    def __init__(self, root: Path, token: str, log: list[str]) -> None:
        env = {
            "PERCOLATE_TENANT_TIER": "B",
            "TENANT_DATA_ROOT": str(root / "tenant-data"),
            "OBJECT_STORE_ROOT": str(root / "node-objects"),
            "PLATFORM_URL": "",
            "PLATFORM_SERVICE_TOKEN": token,
            "POD_ID": "tier-b-cold-0",
        }
        self.app = NodeApp(NodeConfig.from_env(env), run_sweeper=False)
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_warm = False
        self.warms = 0
        self.log = log
        self.servers: list[uvicorn.Server] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.address = ""  # the static pod entry: public address / internal port
        self.internal_address = ""
        self.chats: list[dict[str, Any]] = []  # the scope of every chat request that reached the public listener
        self.before_deliver: Any = None  # an async callable run once before the next delivery reaches the node

    async def public(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.chats.append(scope)
        await self.app.public(scope, receive, send)

    async def internal(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/internal/warm/"):
            self.warms += 1
            self.log.append("warm:start")
            await self.gate.wait()
            if self.fail_warm:
                self.log.append("warm:failed")
                body = b'{"error": {"code": "load_failed", "message": "disk on fire"}}'
                await send(
                    {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/json")]}
                )
                await send({"type": "http.response.body", "body": body})
                return
            await self.app.internal(scope, receive, send)
            self.log.append("warm:done")
            return
        if scope["type"] == "http" and scope["path"].startswith("/internal/deliver/") and self.before_deliver:
            hook, self.before_deliver = self.before_deliver, None
            await hook()
        await self.app.internal(scope, receive, send)

    async def _serve(self, app: Any) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, interface="asgi3", lifespan="off", log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        self.servers.append(server)
        self.tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not server.started:
            await asyncio.sleep(0.01)
        return int(sock.getsockname()[1])

    async def start(self) -> str:
        await self.app.startup()
        public, internal = await self._serve(self.public), await self._serve(self.internal)
        self.internal_address = f"127.0.0.1:{internal}"
        self.address = f"127.0.0.1:{public}/{internal}"
        return self.address

    async def stop(self) -> None:
        self.gate.set()
        for server in self.servers:
            server.should_exit = True
        for task in self.tasks:
            await task
        await self.app.shutdown()

    def messages(self, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
        t = self.app.manager.tenants[tenant_id]
        assert t.store is not None
        return t.store.recent_messages(1000)


def blob_doc(tenant_id: uuid.UUID) -> dict[str, Any]:
    snapshot = {
        "tenant_id": str(tenant_id),
        "message_count": 2,
        "messages": [
            {"seq": 1, "role": "user", "content": "my dog is Rex", "ts": 1.0},
            {"seq": 2, "role": "assistant", "content": "Noted: Rex.", "ts": 2.0},
        ],
        "facts": {"dog": "Rex"},
        "preferences": {"green tea": "prefer"},
    }
    return json.loads(build_context(snapshot, generation=1, pod_id="p"))


def write_blob(tenant_id: uuid.UUID, *, sealed_for: uuid.UUID | None = None, corrupt: bool = False) -> None:
    owner = sealed_for or tenant_id
    key_id, key = tenant_data_key(tenant_id=owner)
    data = json.dumps(blob_doc(owner)).encode()
    blob = bytearray(sealed.seal_bytes(data=data, tenant_id=owner, kind=sealed.KIND_CONTEXT, key_id=key_id, key=key))
    if corrupt:
        blob[-20] ^= 0x01
    objectstore.upload(objectstore.context_key(tenant_id), io.BytesIO(bytes(blob)))


@pytest.fixture
def cold_settings(gateway_settings: Any, tmp_path: Path) -> Any:
    gateway_settings.GATEWAY_COLD_PATH_ENABLED = True
    policy = gateway_settings.TIER_POLICY["B"]
    gateway_settings.TIER_POLICY = {
        **gateway_settings.TIER_POLICY,
        "B": replace(policy, requests_per_minute=60_000, max_concurrent_streams=1000),
    }
    gateway_settings.GATEWAY_WARM_TIMEOUT_SECONDS = 10
    gateway_settings.GATEWAY_WARM_QUEUE_SIZE = 32
    gateway_settings.STORAGES = {
        **gateway_settings.STORAGES,
        "objects": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "objects")},
        },
    }
    return gateway_settings


async def _scenario(settings: Any, tmp_path: Path, body: Any, platform: Platform | None = None) -> Any:
    log: list[str] = []
    node = Node(tmp_path, settings.PLATFORM_SERVICE_TOKEN, log)
    settings.GATEWAY_TIER_PODS["B"] = [await node.start()]
    gateway = Gateway(platform)
    try:
        return await asyncio.wait_for(body(gateway, node, log), DEADLINE)
    finally:
        await gateway.stop()
        await node.stop()


def chat_body(text: str, *, stream: bool = True) -> bytes:
    return json.dumps({"model": "m", "stream": stream, "messages": [{"role": "user", "content": text}]}).encode()


def start_call(
    gateway: Gateway,
    tenant_id: uuid.UUID,
    text: str,
    log: list[str],
    *,
    request_id: str = "",
    stream: bool = True,
    query_string: bytes = b"",
) -> tuple["asyncio.Task[Reply]", Reply]:
    """A chat request through the gateway in the background; its reply fills in (and logs) as it streams."""
    reply = Reply(0, {})

    def observe(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            log.append(f"client:{text}:headers")
        elif b'finish_reason":"stop"' in message.get("body", b""):
            log.append(f"client:{text}:answer")

    headers = [bearer(tenant_id), (b"content-type", b"application/json")]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    request = call(
        gateway,
        "POST",
        "/v1/chat/completions",
        headers=headers,
        body=[chat_body(text, stream=stream)],
        reply=reply,
        observe=observe,
        query_string=query_string,
    )
    return asyncio.ensure_future(request), reply


def sse(reply: Reply) -> list[tuple[str, str]]:
    """(kind, text) pairs of an SSE body: ("comment", ...) for comment lines, ("message", data) for data lines. A
    named event, which the OpenAI SDKs would parse into a chunk, fails the test."""
    out = []
    for frame in reply.body.decode().strip().split("\n\n"):
        for line in frame.split("\n"):
            assert not line.startswith("event:"), f"a named event reached an OpenAI client: {frame!r}"
            if line.startswith(": "):
                out.append(("comment", line[2:]))
            elif line.startswith("data: "):
                out.append(("message", line[6:]))
    return out


async def until(predicate: Any, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def sample(name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# -- blob ---------------------------------------------------------------------------------------------------------


def test_blob_answer_streams_before_the_warm_finishes_then_the_message_is_stored_once(
    cold_settings, make_tenant, tmp_path
) -> None:
    tenant = make_tenant()
    write_blob(tenant.id)

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        node.gate.clear()
        task, reply = start_call(gateway, tenant.id, "what is my dog called?", log, request_id="req-cold-1")
        await until(lambda: "client:what is my dog called?:answer" in log and node.warms == 1)
        assert "warm:done" not in log  # the whole answer is out while the pod still warms
        assert reply.status == 200 and reply.headers[b"x-percolate-cold-start"] == b"blob"
        events = sse(reply)
        assert events[0] == ("comment", 'percolate.status {"status":"warming","cold_start":"blob"}')
        chunks = [json.loads(d) for name, d in events[1:]]
        assert all(c["percolate"] == {"cold_start": "blob"} for c in chunks)
        answer = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert "dog: Rex" in answer and "you prefer green tea" in answer and "what is my dog called?" in answer
        node.gate.set()
        await task
        assert log.index("warm:done") < len(log)
        tail = sse(reply)[-2:]
        assert tail[0] == ("comment", 'percolate.status {"status":"delivered","request_id":"req-cold-1"}')
        assert tail[1] == ("message", "[DONE]")
        stored = node.messages(tenant.id)
        assert [(m["role"], m["content"]) for m in stored] == [
            ("user", "what is my dog called?"),
            ("assistant", answer),
        ]
        assert sample("percolate_gateway_cold_starts_total", kind="blob") >= 1
        # The next request goes straight to the warm pod: no second warm, no blob answer.
        task, reply = start_call(gateway, tenant.id, "and now?", log)
        await task
        assert b"x-percolate-cold-start" not in reply.headers and node.warms == 1
        assert [m["content"] for m in node.messages(tenant.id)].count("and now?") == 1

    asyncio.run(_scenario(cold_settings, tmp_path, body))


def test_fifty_concurrent_cold_requests_share_one_warm_and_each_message_is_stored_exactly_once(
    cold_settings, make_tenant, tmp_path
) -> None:
    cold_settings.GATEWAY_WARM_QUEUE_SIZE = 64
    tenant = make_tenant()
    write_blob(tenant.id)

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        node.gate.clear()
        calls = [start_call(gateway, tenant.id, f"message {i}", log, request_id=f"r-{i}") for i in range(50)]
        await until(lambda: sum(entry.endswith(":answer") for entry in log) == 50 and node.warms == 1)
        assert node.warms == 1 and "warm:done" not in log
        node.gate.set()
        await asyncio.gather(*(task for task, _ in calls))
        for _, reply in calls:
            kind, text = sse(reply)[-2]
            assert kind == "comment" and json.loads(text.removeprefix("percolate.status "))["status"] == "delivered"
        users = [m["content"] for m in node.messages(tenant.id) if m["role"] == "user"]
        assert sorted(users) == sorted(f"message {i}" for i in range(50))  # 50 distinct, each once
        assert users == [f"message {i}" for i in range(50)]  # and in arrival order
        # A retried delivery (the gateway lost the first answer) stores nothing twice.
        route = await gateway.routes.get(tenant.id)
        assert route is not None
        again = await gateway.cold.calls.deliver(
            node.address.partition("/")[0], route, "r-7", [{"role": "user", "content": "message 7"}], "x"
        )
        assert again is None
        users = [m["content"] for m in node.messages(tenant.id) if m["role"] == "user"]
        assert len(users) == 50 and users.count("message 7") == 1
        assert node.warms == 1

    asyncio.run(_scenario(cold_settings, tmp_path, body))


def test_a_blob_answered_message_fenced_before_its_delivery_follows_the_tenant_to_the_new_generation(
    cold_settings, make_tenant, tmp_path
) -> None:
    """Found by bench.tiermove: a tier move (or a reassignment) fenced the tenant and warmed the pod at the new
    generation between this gateway's warm and its delivery; the pod refused the delivery as stale and the message,
    already answered from the blob, was never stored."""
    tenant = make_tenant()
    write_blob(tenant.id)
    node: Any = None

    def fence_and_warm_at_the_new_generation() -> None:
        state = TenantState.objects.get(tenant_id=tenant.id)
        TenantState.objects.filter(tenant_id=tenant.id).update(generation=state.generation + 1)
        request = urllib.request.Request(
            f"http://{node.internal_address}/internal/warm/{tenant.id}",
            data=json.dumps({"generation": state.generation + 1}).encode(),
            headers={"Authorization": f"Bearer {cold_settings.PLATFORM_SERVICE_TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    async def body(gateway: Gateway, node_: Node, log: list[str]) -> None:
        nonlocal node
        node = node_
        node.before_deliver = lambda: asyncio.to_thread(fence_and_warm_at_the_new_generation)
        task, reply = start_call(gateway, tenant.id, "remember the fence", log, request_id="req-fenced")
        await task
        assert node.before_deliver is None  # the fence happened between the warm and the delivery
        kind, text = sse(reply)[-2]
        assert kind == "comment" and json.loads(text.removeprefix("percolate.status "))["status"] == "delivered"
        users = [m["content"] for m in node.messages(tenant.id) if m["role"] == "user"]
        assert users.count("remember the fence") == 1

    asyncio.run(_scenario(cold_settings, tmp_path, body))


# -- wait path, queue, failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("blob", ["missing", "corrupted", "other_tenant"])
def test_without_a_usable_blob_the_request_waits_for_the_pods_real_answer(
    cold_settings, make_tenant, tmp_path, blob
) -> None:
    tenant, other = make_tenant(), make_tenant()
    if blob == "corrupted":
        write_blob(tenant.id, corrupt=True)
    elif blob == "other_tenant":
        write_blob(tenant.id, sealed_for=other.id)
    invalid_before = sample("percolate_gateway_blob_cache_lookups_total", result="invalid")

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        node.gate.clear()
        task, reply = start_call(gateway, tenant.id, "hello there", log)
        await until(lambda: len(reply.chunks) >= 1)
        assert reply.headers[b"x-percolate-cold-start"] == b"wait"
        assert sse(reply) == [("comment", 'percolate.status {"status":"warming","cold_start":"wait"}')]
        node.gate.set()
        await task
        events = sse(reply)
        assert events[-1] == ("message", "[DONE]")
        chunks = [json.loads(d) for name, d in events[1:-1]]
        answer = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert "percolate" not in chunks[0] and 'You said: "hello there"' in answer  # the pod's own answer
        assert [m["content"] for m in node.messages(tenant.id)].count("hello there") == 1
        assert tenant.id not in gateway.cold.blobs
        invalid = sample("percolate_gateway_blob_cache_lookups_total", result="invalid") - invalid_before
        assert invalid == (0 if blob == "missing" else 1)

    asyncio.run(_scenario(cold_settings, tmp_path, body))


def test_the_wait_path_forwards_the_request_exactly_as_the_hot_path_does(cold_settings, make_tenant, tmp_path) -> None:
    """Same target, query string and headers on both paths (the cold path used to drop `?api-version=...`)."""
    tenant = make_tenant()
    query = b"api-version=2024-10-21"

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        task, _ = start_call(gateway, tenant.id, "first", log, request_id="cold-1", query_string=query)
        assert (await task).status == 200
        task, reply = start_call(gateway, tenant.id, "second", log, request_id="hot-1", query_string=query)
        assert (await task).status == 200 and b"x-percolate-cold-start" not in reply.headers  # the hot path
        cold, hot = node.chats
        assert cold["raw_path"] == hot["raw_path"] == b"/v1/chat/completions"
        assert cold["query_string"] == hot["query_string"] == query

        def forwarded(scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
            return sorted((k, v) for k, v in scope["headers"] if k not in (b"x-request-id", b"content-length"))

        assert forwarded(cold) == forwarded(hot)

    asyncio.run(_scenario(cold_settings, tmp_path, body))


def test_mobile_only_never_uses_a_blob(cold_settings, make_tenant, tmp_path) -> None:
    tenant = make_tenant(security_mode="mobile_only")
    write_blob(tenant.id)  # even if one were there, it is never read

    loaded: list[uuid.UUID] = []

    class Spy(Platform):
        async def context_blob(self, tenant_id: uuid.UUID) -> bytes | None:
            loaded.append(tenant_id)
            return await super().context_blob(tenant_id)

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        task, reply = start_call(gateway, tenant.id, "hi", log, stream=False)
        await task
        assert reply.status == 200 and reply.headers[b"x-percolate-cold-start"] == b"wait"
        assert json.loads(reply.body)["object"] == "chat.completion" and "percolate" not in json.loads(reply.body)
        assert loaded == []

    asyncio.run(_scenario(cold_settings, tmp_path, body, Spy()))


def test_queue_overflow_and_a_failed_warm_end_every_request_cleanly(cold_settings, make_tenant, tmp_path) -> None:
    cold_settings.GATEWAY_WARM_QUEUE_SIZE = 2
    tenant = make_tenant()

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        node.gate.clear()
        node.fail_warm = True
        first = [start_call(gateway, tenant.id, f"q{i}", log) for i in range(2)]
        await until(lambda: all(reply.chunks for _, reply in first))
        task, over = start_call(gateway, tenant.id, "overflow", log)
        await task
        assert over.status == 503 and over.headers[b"retry-after"] == b"1"
        assert json.loads(over.body)["error"]["code"] == "warm_queue_full"
        node.gate.set()
        await asyncio.gather(*(t for t, _ in first))
        for _, reply in first:
            name, data = sse(reply)[-1]
            assert name == "message" and json.loads(data)["error"]["code"] == "warm_failed"
        assert node.warms == 1 and gateway.cold.warmer.depth(tenant.id) == 0

    asyncio.run(_scenario(cold_settings, tmp_path, body))


def test_a_warm_past_its_deadline_is_a_504_not_a_hang(cold_settings, make_tenant, tmp_path) -> None:
    cold_settings.GATEWAY_WARM_TIMEOUT_SECONDS = 0.3
    tenant = make_tenant()

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        node.gate.clear()  # never opened: the warm hangs
        task, reply = start_call(gateway, tenant.id, "anyone?", log, stream=False)
        await task
        assert reply.status == 504 and json.loads(reply.body)["error"]["code"] == "warm_timeout"

    asyncio.run(_scenario(cold_settings, tmp_path, body))


# -- archived -----------------------------------------------------------------------------------------------------


def test_an_archived_tenant_triggers_exactly_one_restore_and_gets_the_blob_meanwhile(
    cold_settings, make_tenant, tmp_path
) -> None:
    from archival.services import restore_request
    from core.audit import Actor

    tenant, bare = make_tenant(), make_tenant()
    write_blob(tenant.id)
    now = timezone.now()
    for t in (tenant, bare):
        ArchivalJob.objects.create(
            tenant=t,
            job_type=JobType.ARCHIVE,
            status=JobStatus.COMPLETED,
            manifest={},
            started_at=now,
            completed_at=now,
        )
        TenantState.objects.filter(tenant=t).update(state="archived")
    calls: list[uuid.UUID] = []

    def restore(tenant_id: uuid.UUID) -> str:
        calls.append(tenant_id)
        restore_request(tenant_id=tenant_id, actor=Actor.system("gateway"), enqueue=False)
        return "requested"

    class NoWorkers(Platform):  # the platform's restore request, without enqueueing the job
        async def request_restore(self, tenant_id: uuid.UUID) -> str:
            return await db_call(restore)(tenant_id)

    async def body(gateway: Gateway, node: Node, log: list[str]) -> None:
        many = [start_call(gateway, tenant.id, f"m{i}", log) for i in range(10)]
        await asyncio.gather(*(t for t, _ in many))
        for _, reply in many:
            assert reply.status == 200 and reply.headers[b"x-percolate-cold-start"] == b"blob"
            kind, text = sse(reply)[-2]
            last_status = json.loads(text.removeprefix("percolate.status "))
            assert kind == "comment" and last_status == {"status": "restoring", "delivered": False, "retry_after": 30}
        task, reply = start_call(gateway, bare.id, "no blob here", log)
        await task
        assert reply.status == 503 and reply.headers[b"retry-after"] == b"30"
        await until(lambda: not gateway.cold.archived.restoring)
        assert node.warms == 0

    asyncio.run(_scenario(cold_settings, tmp_path, body, NoWorkers()))
    assert calls.count(tenant.id) == 1 and calls.count(bare.id) == 1
    restores = ArchivalJob.objects.filter(tenant=tenant, job_type=JobType.RESTORE)
    assert restores.count() == 1


# -- pure pieces --------------------------------------------------------------------------------------------------


def test_the_blob_answer_is_deterministic_and_built_from_the_blob() -> None:
    doc = blob_doc(uuid.uuid4())
    assert coldanswer.compose(doc, "hi") == coldanswer.compose(doc, "hi")
    text = coldanswer.compose(doc, "hi")
    assert "dog: Rex" in text and "you prefer green tea" in text and '"my dog is Rex"' in text
    parts = coldanswer.chunks(text, request_id="r", kind="blob", created=1)
    joined = "".join(json.loads(p[6:])["choices"][0]["delta"].get("content", "") for p in parts)
    assert joined == text
