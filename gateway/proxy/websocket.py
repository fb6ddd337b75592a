"""WebSocket proxying: accept the client only once the tier pod has accepted, then pump frames both ways until
either side closes. The pod is reached through the pod client's WebSocket session (gateway.pods.client)."""

import asyncio
from typing import Any

import aiohttp

from gateway.errors import Receive, Send
from gateway.headers import Headers
from gateway.pods.client import PodClient


async def proxy_websocket(
    scope: dict[str, Any], receive: Receive, send: Send, *, client: PodClient, pod: str | None, headers: Headers
) -> None:
    await receive()  # websocket.connect
    if pod is None:
        await send({"type": "websocket.close", "code": 1013})
        return
    query = scope.get("query_string") or b""
    url = f"ws://{pod}{scope['path']}" + (f"?{query.decode('latin-1')}" if query else "")
    try:
        upstream = await client.connect_websocket(url, headers)
    except (aiohttp.ClientError, OSError):
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept"})

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close()
                return
            if message.get("text") is not None:
                await upstream.send_str(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send_bytes(message["bytes"])

    async def upstream_to_client() -> None:
        async for message in upstream:
            if message.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": message.data})
            elif message.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": message.data})
            else:
                break
        await send({"type": "websocket.close", "code": upstream.close_code or 1000})

    tasks = [asyncio.ensure_future(client_to_upstream()), asyncio.ensure_future(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
