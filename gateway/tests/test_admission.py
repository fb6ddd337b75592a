"""Admission control: the rule on its own, then the gateway refusing past its bound while open streams flow."""

import asyncio
import json
import time
from typing import Any

import pytest
import uvloop
from aiohttp import web

from gateway import metrics
from gateway.app import Gateway
from gateway.limits import admission
from gateway.limits.admission import Admission, Admitted
from gateway.tests.conftest import Reply, Upstream, bearer, call
from gateway.tests.test_deadlines import served


def test_admits_up_to_the_bound_and_the_first_message_gives_the_place_back_once() -> None:
    admission = Admission(2)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def scenario() -> None:
        assert admission.enter() and admission.enter()
        assert not admission.enter() and admission.in_flight == 2
        first = Admitted(admission, send)
        await first({"type": "http.response.start", "status": 200})
        assert admission.in_flight == 1 and sent == [{"type": "http.response.start", "status": 200}]
        await first({"type": "http.response.body", "body": b"x", "more_body": True})
        first.release()  # the request ends: its place was already given back
        assert admission.in_flight == 1
        second = Admitted(admission, send)
        second.release()  # ended without answering (the client left)
        second.release()
        assert admission.in_flight == 0 and admission.enter()

    asyncio.run(scenario())


def test_a_loop_that_stays_late_with_work_queued_refuses_and_the_first_probe_on_time_admits_again() -> None:
    admission = Admission(100, max_lag=0.1, lagging_limit=2)
    assert admission.enter()
    admission.observe_lag(0.5)
    admission.observe_lag(0.3)  # two late probes: a stall, not yet a standing queue
    assert admission.enter() and not admission.full()
    admission.observe_lag(0.2)
    assert admission.lagging and admission.full() and not admission.enter() and admission.in_flight == 2
    admission.in_flight = 1  # late, but little queued in it (new streams flow and stop counting): admitted
    assert admission.enter() and not admission.enter()
    admission.observe_lag(0.01)
    assert not admission.full() and admission.enter() and admission.in_flight == 3


def test_the_probe_measures_the_loops_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    process = Admission(100, max_lag=0.05, lagging_limit=0)
    monkeypatch.setattr(admission, "PROCESS", process)

    async def scenario() -> None:
        probe = asyncio.ensure_future(admission.probe_lag(every=0.01))
        try:
            await asyncio.sleep(0.05)
            assert not process.lagging
            for _ in range(20):  # the loop blocked again and again, as by more work than it can do
                time.sleep(0.1)
                await asyncio.sleep(0)
                if process.lagging:
                    break
            assert process.lagging and process.late_samples == Admission.LAGGING_SAMPLES
            await asyncio.sleep(0.1)  # the next probe on time
            assert not process.lagging
        finally:
            probe.cancel()

    uvloop.run(scenario())


def shed_total(by: str = "app") -> float:
    return metrics.registry.get_sample_value("percolate_gateway_shed_total", {"by": by}) or 0.0


@pytest.mark.django_db(transaction=True)
def test_past_the_bound_requests_are_refused_at_once_while_an_open_stream_keeps_flowing(
    gateway_settings: Any, make_tenant: Any
) -> None:
    gateway_settings.GATEWAY_MAX_IN_FLIGHT = 2
    tenant = make_tenant(tier="A")
    release_slow = asyncio.Event()
    next_chunk = asyncio.Event()

    async def pod_handler(request: web.Request) -> web.StreamResponse:
        asked = json.loads(await request.read())
        if asked.get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"data: one\n\n")
            await next_chunk.wait()
            await response.write(b"data: two\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response
        await release_slow.wait()
        return web.json_response({"ok": True})

    pod = Upstream(pod_handler)

    def chat(stream: bool = False) -> dict[str, Any]:
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": stream}).encode()
        headers = [bearer(tenant.id), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        return {"headers": headers, "body": [body]}

    async def until(condition: Any) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached")

    async def scenario() -> None:
        gateway_settings.GATEWAY_TIER_PODS["A"] = [await pod.start()]
        gateway = Gateway()
        try:
            stream = Reply(0, {})
            streaming = asyncio.ensure_future(call(gateway, "POST", "/v1/chat/completions", reply=stream, **chat(True)))
            await until(lambda: stream.chunks)
            assert gateway.admission.in_flight == 0  # a stream stops counting once its response has started

            slow = [asyncio.ensure_future(call(gateway, "POST", "/v1/chat/completions", **chat())) for _ in range(2)]
            await until(lambda: len(pod.seen) == 3)
            assert gateway.admission.in_flight == 2

            before = shed_total()
            started = asyncio.get_running_loop().time()
            refused = await call(gateway, "POST", "/v1/chat/completions", **chat())
            assert asyncio.get_running_loop().time() - started < 0.5
            assert refused.status == 503 and refused.headers[b"retry-after"] == b"1"
            assert json.loads(refused.body)["error"]["code"] == "overloaded"
            assert len(pod.seen) == 3 and shed_total() == before + 1

            next_chunk.set()  # the open stream was never held back
            assert (await streaming).status == 200 and stream.body.endswith(b"data: [DONE]\n\n")
            release_slow.set()
            assert [r.status for r in await asyncio.gather(*slow)] == [200, 200]
            assert gateway.admission.in_flight == 0
            assert (await call(gateway, "POST", "/v1/chat/completions", **chat())).status == 200
        finally:
            await gateway.stop()
            await pod.stop()

    asyncio.run(scenario())


def test_the_server_refuses_at_the_bound_without_starting_the_app_and_keeps_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        started.append(scope["path"])
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    process = Admission(1)
    monkeypatch.setattr(admission, "PROCESS", process)

    async def exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[bytes, bytes]:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return head, await reader.readexactly(length)

    async def scenario() -> None:
        async with served(app) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            post = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello"
            assert process.enter()  # one request in flight elsewhere: the process is at its bound
            before = shed_total("server")
            head, body = await exchange(reader, writer, post)
            assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 1\r\n" in head.lower()
            assert json.loads(body)["error"]["code"] == "overloaded"
            assert started == [] and shed_total("server") == before + 1
            head, body = await exchange(reader, writer, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and started == ["/healthz"]  # probes are always answered
            process.in_flight -= 1  # room again: the same connection, its refused body skipped, is served
            head, body = await exchange(reader, writer, post)
            assert head.startswith(b"HTTP/1.1 200") and body == b"ok"
            writer.close()

    uvloop.run(scenario())
