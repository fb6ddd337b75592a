"""The official `openai` SDK against a running gateway (`python -m gateway`) and a running tier node
(`python -m tiernode`), both real processes on loopback ports, over the suite's real PostgreSQL and Redis.

What an OpenAI-compatible client sees must be OpenAI's API: the ordinary loop over a stream works on hot and cold
tenants alike, errors map to the SDK's exception classes, `Retry-After` is honoured, usage comes when asked for.
"""

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from django.conf import settings

from archival import objectstore
from core import sealed
from gateway.auth.tokens import mint_platform_token
from tenants.keys import tenant_data_key
from tenants.services import tenant_suspend
from tiernode.blob import build_context

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]
MESSAGES: Any = [{"role": "user", "content": "Hi, I am Ada"}]
RATE_LIMITED_TIER = "A"  # 60 requests a minute, a burst of 10 (see _gateway_env)
DEAD_TIER = "C"  # its only pod does not listen: warms fail


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"process did not start:\n{out[-3000:]}")
        time.sleep(0.1)


def _database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Stack:
    gateway_port: int
    objects: Path

    def client(self, token: str, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=token, **{"timeout": 20, "max_retries": 0, **options})

    def async_client(self, token: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=token, timeout=20, max_retries=0)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/v1"


@pytest.fixture(scope="module")
def stack(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("openai-sdk")
    objects = root / "objects"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "DATABASE_"))}
    node_public, node_internal, gateway_port = _free_port(), _free_port(), _free_port()
    node_env = {
        **base,
        "PERCOLATE_TENANT_TIER": "B",
        "PORT": str(node_public),
        "INTERNAL_PORT": str(node_internal),
        "HOST": "127.0.0.1",
        "POD_ID": f"127.0.0.1:{node_internal}",
        "TENANT_DATA_ROOT": str(root / "tenant-data"),
        "OBJECT_STORE_ROOT": str(root / "node-objects"),
        "PLATFORM_URL": "",
        "PLATFORM_SERVICE_TOKEN": settings.PLATFORM_SERVICE_TOKEN,
        "LOG_LEVEL": "WARNING",
    }
    pod = f"127.0.0.1:{node_public}/{node_internal}"
    policy = {RATE_LIMITED_TIER: {"requests_per_minute": 60}, "B": {"requests_per_minute": 6000}}
    gateway_env = {
        **base,
        "DATABASE_URL": _database_url(),
        "OBJECT_STORE_ROOT": str(objects),
        "PLATFORM_SERVICE_TOKEN": settings.PLATFORM_SERVICE_TOKEN,
        "PLATFORM_MASTER_KEY": settings.PLATFORM_MASTER_KEY.hex(),
        "TIER_POLICY_JSON": json.dumps(policy),
        "GATEWAY_PODS_A": pod,
        "GATEWAY_PODS_B": pod,
        "GATEWAY_PODS_C": f"127.0.0.1:{_free_port()}/{_free_port()}",
        "GATEWAY_WARM_TIMEOUT_SECONDS": "10",
        "LOG_LEVEL": "WARNING",
    }
    run = {"cwd": REPO, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    node = subprocess.Popen([sys.executable, "-m", "tiernode"], env=node_env, **run)  # type: ignore[call-overload]
    gateway = subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "gateway", "--port", str(gateway_port)], env=gateway_env, **run
    )
    try:
        _wait(node_public, "/ready", node)
        _wait(gateway_port, "/healthz", gateway)
        yield Stack(gateway_port, objects)
    finally:
        for proc in (gateway, node):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def token(tenant_id: uuid.UUID) -> str:
    return mint_platform_token(master_key=settings.PLATFORM_MASTER_KEY, tenant_id=tenant_id)


def write_blob(stack: Stack, tenant_id: uuid.UUID, override: Any) -> None:
    """A sealed context blob for the tenant where the gateway reads its object store, as a pod's eviction leaves."""
    override.STORAGES = {
        **settings.STORAGES,
        "objects": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": stack.objects}},
    }
    snapshot = {
        "tenant_id": str(tenant_id),
        "message_count": 2,
        "messages": [{"seq": 1, "role": "user", "content": "my dog is Rex", "ts": 1.0}],
        "facts": {"dog": "Rex"},
        "preferences": {},
    }
    key_id, key = tenant_data_key(tenant_id=tenant_id)
    data = build_context(snapshot, generation=1, pod_id="p")
    blob = sealed.seal_bytes(data=data, tenant_id=tenant_id, kind=sealed.KIND_CONTEXT, key_id=key_id, key=key)
    objectstore.upload(objectstore.context_key(tenant_id), io.BytesIO(blob))


def ordinary_loop(stream: Any) -> str:
    """What every OpenAI streaming example does, and what broke on every cold start."""
    text = ""
    for chunk in stream:
        text += chunk.choices[0].delta.content or ""
    return text


# -- streams, hot and cold ------------------------------------------------------------------------------------------


def test_the_ordinary_stream_loop_works_on_a_cold_tenant_then_a_hot_one(stack: Stack, make_tenant) -> None:
    tenant = make_tenant()
    client = stack.client(token(tenant.id))
    raw = client.chat.completions.with_raw_response.create(model="percolate-reference", messages=MESSAGES, stream=True)
    assert raw.headers["x-percolate-cold-start"] == "wait"  # cold: it waited for the pod, and said so only in a
    cold = ordinary_loop(raw.parse())  # header and an SSE comment
    assert 'You said: "Hi, I am Ada"' in cold
    hot = ordinary_loop(client.chat.completions.create(model="percolate-reference", messages=MESSAGES, stream=True))
    assert "I have 3 messages of ours on record" in hot  # the first exchange, and this message


def test_a_blob_cold_start_reads_as_an_ordinary_stream(stack: Stack, make_tenant, settings) -> None:
    tenant = make_tenant()
    write_blob(stack, tenant.id, settings)
    client = stack.client(token(tenant.id))
    raw = client.chat.completions.with_raw_response.create(
        model="percolate-reference", messages=[{"role": "user", "content": "what is my dog called?"}], stream=True
    )
    assert raw.headers["x-percolate-cold-start"] == "blob"
    answer = ordinary_loop(raw.parse())
    assert "dog: Rex" in answer and "what is my dog called?" in answer


def test_include_usage_ends_the_stream_with_a_usage_chunk_on_both_paths(stack: Stack, make_tenant, settings) -> None:
    hot, cold = make_tenant(), make_tenant()
    write_blob(stack, cold.id, settings)
    ordinary_loop(stack.client(token(hot.id)).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    for tenant in (hot, cold):
        stream = stack.client(token(tenant.id)).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        *answer, last = chunks
        assert all(c.usage is None and len(c.choices) == 1 for c in answer)
        assert last.choices == [] and last.usage is not None
        words = "".join(c.choices[0].delta.content or "" for c in answer).split(" ")
        assert last.usage.prompt_tokens == 4 and last.usage.completion_tokens == len(words)
        assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_non_streaming_completions_have_openais_shape(stack: Stack, make_tenant, settings) -> None:
    hot, cold = make_tenant(), make_tenant()
    write_blob(stack, cold.id, settings)
    client = stack.client(token(hot.id))
    client.chat.completions.create(model="m", messages=MESSAGES)  # warms it
    for tenant in (hot, cold):
        completion = stack.client(token(tenant.id)).chat.completions.create(model="m", messages=MESSAGES)
        assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
        assert "Hi, I am Ada" in (completion.choices[0].message.content or "")
        assert completion.usage is not None and completion.usage.prompt_tokens == 4


def test_the_async_client_streams_and_completes(stack: Stack, make_tenant) -> None:
    tenant = make_tenant()

    async def scenario() -> tuple[str, str]:
        async with stack.async_client(token(tenant.id)) as client:
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            text = ""
            async for chunk in stream:
                text += chunk.choices[0].delta.content or ""
            completion = await client.chat.completions.create(model="m", messages=MESSAGES)
            return text, completion.choices[0].message.content or ""

    streamed, whole = asyncio.run(scenario())
    assert "Hi, I am Ada" in streamed and "Hi, I am Ada" in whole


def test_models_lists_the_tiers_models(stack: Stack, make_tenant) -> None:
    models = stack.client(token(make_tenant().id)).models.list()
    assert [(m.id, m.object, m.owned_by) for m in models] == [("percolate-reference", "model", "percolate")]


# -- errors ---------------------------------------------------------------------------------------------------------


def test_a_missing_or_bad_token_is_an_authentication_error(stack: Stack, make_tenant) -> None:
    for bad in ("not-a-jwt", token(make_tenant().id)[:-4] + "AAAA"):
        with pytest.raises(openai.AuthenticationError) as info:
            stack.client(bad).chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert info.value.status_code == 401 and info.value.code == "unauthenticated"


def test_a_suspended_tenant_is_a_permission_error(stack: Stack, make_tenant, actor) -> None:
    tenant = make_tenant()
    tenant_suspend(tenant_id=tenant.id, actor=actor)
    with pytest.raises(openai.PermissionDeniedError) as info:
        stack.client(token(tenant.id)).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 403 and "suspended" in info.value.message


def test_rate_limits_are_rate_limit_errors_and_the_sdk_honours_retry_after(stack: Stack, make_tenant) -> None:
    tenant = make_tenant(tier=RATE_LIMITED_TIER)  # 60 a minute: a burst of 10, then one a second
    client = stack.client(token(tenant.id))
    client.models.list()
    refused = None
    for _ in range(20):
        try:
            client.models.list()
        except openai.RateLimitError as exc:
            refused = exc
            break
    assert refused is not None and refused.status_code == 429
    retry_after = float(refused.response.headers["retry-after"])
    assert 1 <= retry_after <= 2
    patient = stack.client(token(tenant.id), max_retries=2)  # the SDK waits what Retry-After says, then retries
    started = time.monotonic()
    assert patient.models.list().data[0].id == "percolate-reference"
    assert time.monotonic() - started >= 0.5


def test_a_failure_after_the_stream_began_is_raised_as_an_api_error(stack: Stack, make_tenant) -> None:
    tenant = make_tenant(tier=DEAD_TIER)  # cold, no blob: it waits for a warm that cannot happen
    stream = stack.client(token(tenant.id)).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as info:
        ordinary_loop(stream)
    assert not isinstance(info.value, openai.APIStatusError)  # the status was 200: the error came in the stream
    assert info.value.code == "warm_failed" or "pod" in info.value.message


# -- the same running stack, as an attacker with one valid account ---------------------------------------------------


def _raw(stack: Stack, method: str, target: str, bearer: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """A request with the target exactly as written (http.client sends it unchanged, encodings and dot segments)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=20)
    try:
        headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_no_tenant_reaches_the_pods_internal_api_through_the_running_gateway(stack: Stack, make_tenant) -> None:
    attacker, victim = make_tenant(), make_tenant()
    victim_client = stack.client(token(victim.id))
    victim_client.chat.completions.create(model="m", messages=MESSAGES)  # the victim is hot on the shared pod
    injected = json.dumps(
        {"generation": 1, "request_id": "evil-1", "messages": [{"role": "user", "content": "INJECTED"}], "reply": "x"}
    ).encode()
    for target in (
        "/internal/tenants",
        f"/internal/deliver/{victim.id}",
        f"/internal/evict/{victim.id}",
        f"/internal/warm/{victim.id}",
        "/%69nternal/tenants",
        f"/%69nternal/deliver/{victim.id}",
        f"/v1/../internal/deliver/{victim.id}",
        f"/v1/chat/completions/../../../internal/deliver/{victim.id}",
        "//internal/tenants",
    ):
        for method in ("GET", "POST"):
            status, doc = _raw(stack, method, target, token(attacker.id), injected)
            assert status == 404 and doc["error"]["code"] == "not_found", (method, target, status, doc)
    answer = victim_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "and now?"}])
    assert "INJECTED" not in (answer.choices[0].message.content or "")
    assert "I have 3 messages" in (answer.choices[0].message.content or "")  # nothing was delivered, nothing evicted
