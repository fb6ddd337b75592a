"""A lean HTTP/1.1 client for timing streamed chat answers: raw asyncio streams, one keep-alive connection.

The benchmarks time a few milliseconds; a general client (aiohttp) spends a good part of that building the request,
acquiring a pooled connection and parsing the response in Python, the same for every path measured, which hides the
gateway's own time. This client sends a request prepared before the clock starts and reads the raw chunked body.
The connection is (re)opened before the clock starts, never inside a measurement.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

IDLE_RECONNECT_SECONDS = 2.0  # well under uvicorn's keep-alive (5 s): never race a server closing an idle connection


class ResponseError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status} {body[:300]!r}")
        self.status, self.body = status, body


@dataclass(frozen=True)
class Timed:
    status_ms: float  # first byte of the body (on the cold paths, the warming event)
    ttfb_ms: float  # first chunk of answer text
    headers: dict[str, str]
    body: bytes


def has_text(buffer: bytes) -> bool:
    """Whether the complete SSE frames in `buffer` hold a `chat.completion.chunk` with answer text."""
    for frame in buffer.split(b"\n\n")[:-1]:
        if frame.startswith(b"data: {") and json.loads(frame[6:])["choices"][0]["delta"].get("content"):
            return True
    return False


def chat_request(host: str, token: str, text: str) -> bytes:
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": text}]}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def body_parts(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    """The response body as it arrives: each chunk of a chunked body, or the whole of a Content-Length one."""
    if headers.get("transfer-encoding") != "chunked":
        yield await reader.readexactly(int(headers.get("content-length", "0")))
        return
    while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
        yield (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")  # the end of the (empty) trailer


class SseClient:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used_at = 0.0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        stale = time.monotonic() - self._used_at > IDLE_RECONNECT_SECONDS
        if self._reader is None or self._writer is None or self._reader.at_eof() or stale:
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """A plain GET on the same connection: status and body."""
        reader, writer = await self._connection()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
        body = b"".join([part async for part in body_parts(reader, headers)])
        self._used_at = time.monotonic()
        return status, body

    async def chat(self, token: str, text: str) -> Timed:
        """One streamed chat, read to its end; times to the first body byte and to the first answer text."""
        request = chat_request(f"{self.host}:{self.port}", token, text)
        reader, writer = await self._connection()
        started = time.perf_counter()
        writer.write(request)
        status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
        first_byte = first_text = None
        buffer = b""
        async for part in body_parts(reader, headers):
            now = time.perf_counter()
            first_byte = first_byte or now
            buffer += part
            if first_text is None and status == 200 and has_text(buffer):
                first_text = now
        self._used_at = time.monotonic()
        if headers.get("connection") == "close":
            await self.close()
        if status != 200:
            raise ResponseError(status, buffer)
        assert first_byte is not None and first_text is not None, buffer[-300:]
        return Timed((first_byte - started) * 1000, (first_text - started) * 1000, headers, buffer)
