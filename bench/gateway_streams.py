"""Long-lived SSE streams for bench.gateway: an upstream that answers `POST /v1/chat/completions` with
`"stream": true` by one chunk a second (`max_tokens` of them, then `[DONE]`; `--serve PORT`), and a client that
holds N such streams through the gateway and counts what arrives."""

import argparse
import asyncio
import json
import sys

import aiohttp
from aiohttp import web


async def _chat(request: web.Request) -> web.StreamResponse:
    asked = await request.json()
    if not asked.get("stream"):
        return web.json_response({"error": {"code": "bench", "message": "this upstream only streams"}}, status=400)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for i in range(int(asked.get("max_tokens", 60))):
        chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": str(i)}}]}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await asyncio.sleep(1)
    await response.write(b"data: [DONE]\n\n")
    return response


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def serve(port: int) -> None:
    app = web.Application()
    app.router.add_get("/health", _health)
    app.router.add_post("/v1/chat/completions", _chat)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


async def _hold(port: int, tokens: list[str], streams: int, seconds: int) -> tuple[int, int]:
    errors, events = 0, 0
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=seconds + 60, sock_read=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> tuple[int, int]:
            await asyncio.sleep(i * 0.002)  # ramp up over about 2 s
            got = 0
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": seconds},
                    headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                ) as response:
                    if response.status != 200:
                        return 1, 0
                    async for line in response.content:
                        if line.startswith(b"data: "):
                            got += 1
                            if line.strip() == b"data: [DONE]":
                                return (0 if got == seconds + 1 else 1), got
            except (aiohttp.ClientError, TimeoutError):
                return 1, got
            return 1, got  # ended without [DONE]

        for failed, got in await asyncio.gather(*(one(i) for i in range(streams))):
            errors += failed
            events += got
    return errors, events


def hold_streams(port: int, tokens: list[str], streams: int, seconds: int) -> tuple[int, int]:
    """(streams that failed or lost events, events received)."""
    return asyncio.run(_hold(port, tokens, streams, seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, required=True)
    serve(parser.parse_args(sys.argv[1:]).serve)
