"""A local HTTP server answering stripe-python's list calls with Stripe's shapes (GET /v1/events, /v1/subscriptions),
paginated as Stripe paginates (newest first, `limit`, `starting_after`, `has_more`), recording each request."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "sk_test_local_fake_stripe"


@dataclass
class FakeStripe:
    events: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def _page(items: list[dict[str, Any]], query: dict[str, list[str]], url: str) -> dict[str, Any]:
    items = sorted(items, key=lambda o: (o.get("created", 0), o["id"]), reverse=True)
    if "starting_after" in query:
        ids = [o["id"] for o in items]
        items = items[ids.index(query["starting_after"][0]) + 1 :]
    limit = int(query.get("limit", ["10"])[0])
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_local")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            fake.requests.append({"path": parts.path, "query": query, "headers": dict(self.headers)})
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
            elif parts.path == "/v1/events":
                gte = int(query.get("created[gte]", ["0"])[0])
                lt = int(query.get("created[lt]", [str(2**40)])[0])
                events = [e for e in fake.events if gte <= e["created"] < lt]
                self._answer(200, _page(events, query, "/v1/events"))
            elif parts.path == "/v1/subscriptions":
                self._answer(200, _page(fake.subscriptions, query, "/v1/subscriptions"))
            else:
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})

    return Handler


@contextmanager
def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
    """Start the server and point stripe-python at it through the settings."""
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_SECRET_KEY = API_KEY
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
