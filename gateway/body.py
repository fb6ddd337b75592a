"""The client's side of a request's I/O: its body, read with a size cap and a per-read deadline (the first bytes can
be read ahead and pushed back, so a small body is sent whole and a big one streams), and its disconnect."""

import asyncio
from collections.abc import AsyncIterator

from gateway.errors import ClientGone, Receive


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


class RequestBody:
    """The client's body, capped in size and read with a per-chunk deadline. The first bytes can be read ahead
    (`prefix`) and pushed back, so a small body is sent whole and a big one streams."""

    def __init__(self, receive: Receive, *, max_bytes: int, read_timeout: float) -> None:
        self._receive = receive
        self._max = max_bytes
        self._timeout = read_timeout
        self._pending = b""
        self.finished = False
        self.received = 0
        self.error: Exception | None = None

    async def _next_chunk(self) -> bytes:
        try:
            async with asyncio.timeout(self._timeout):  # no task per read, unlike wait_for
                message = await self._receive()
        except TimeoutError as exc:
            self.error = BodyTimeout()
            raise self.error from exc
        if message["type"] == "http.disconnect":
            self.error = ClientGone()
            raise self.error
        chunk: bytes = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self._max:
            self.error = BodyTooLarge()
            raise self.error
        self.finished = not message.get("more_body", False)
        return chunk

    async def prefix(self, limit: int) -> AsyncIterator[bytes]:
        size = 0
        while not self.finished and size < limit:
            chunk = await self._next_chunk()
            size += len(chunk)
            yield chunk

    def push_back(self, data: bytes) -> None:
        self._pending = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._pending:
            data, self._pending = self._pending, b""
            yield data
        while not self.finished:
            chunk = await self._next_chunk()
            if chunk:
                yield chunk


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


SMALL_BODY = 64 * 1024


async def read_small(body: RequestBody) -> bytes | RequestBody | None:
    """Small bodies are read whole (so a refused connection can be retried on the next pod); big ones stream: the
    bytes read so far are pushed back and `body` is returned."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body.prefix(SMALL_BODY):
        chunks.append(chunk)
        size += len(chunk)
    if body.finished:
        return b"".join(chunks) if size else None
    body.push_back(b"".join(chunks))
    return body
