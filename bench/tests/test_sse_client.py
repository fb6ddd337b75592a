"""The lean benchmark client: request bytes, response parsing, the first-text test, against a local server."""

import asyncio

from bench.sse_client import SseClient, chat_request, has_text, parse_head

ROLE = b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
TEXT = b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
WARMING = b': percolate.status {"status":"warming"}\n\n'


def test_request_head_and_parsing() -> None:
    request = chat_request("h:1", "tok", "hello")
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and b"Authorization: Bearer tok" in head
    assert f"Content-Length: {len(body)}".encode() in head and b'"stream": true' in body
    assert parse_head(b"HTTP/1.1 200 OK\r\nX-Percolate-Cold-Start: blob\r\n\r\n") == (
        200,
        {"x-percolate-cold-start": "blob"},
    )


def test_first_text_needs_a_complete_frame_with_content() -> None:
    assert not has_text(WARMING + ROLE)
    assert not has_text(WARMING + ROLE + TEXT[:-2])  # incomplete
    assert has_text(WARMING + ROLE + TEXT)


def test_chat_times_the_first_text_and_reuses_the_connection() -> None:
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while not reader.at_eof():
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Percolate-Cold-Start: blob\r\n\r\n")
            for part in (WARMING, ROLE + TEXT, b"data: [DONE]\n\n"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")

    async def scenario() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = SseClient("127.0.0.1", port)
        for _ in range(2):
            timed = await client.chat("tok", "hi")
            assert timed.headers["x-percolate-cold-start"] == "blob"
            assert timed.ttfb_ms - timed.status_ms >= 15 and timed.body.endswith(b"[DONE]\n\n")
        assert len(connections) == 1
        await client.close()
        server.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))
