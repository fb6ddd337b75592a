"""One client request as the gateway's layers pass it down: built once (gateway.app), after authentication and
limits and once the body's first bytes are read, and never changed after.

It carries what every layer below needs: the tenant's route, the allowed target (with its query string), the headers
that go to the pod (the client's allowed ones and the gateway's own), the request id, the body (whole, or the
streamed rest of a big one) and when the request arrived. The hot path (gateway.proxy) and the cold path
(gateway.cold) take the same object, so a request forwarded cold is the request forwarded hot.
"""

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from gateway.body import RequestBody
from gateway.headers import Headers
from gateway.platform import TenantRoute

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class GatewayRequest:
    route: TenantRoute  # the tenant: tier, state, generation, move
    method: bytes
    target: bytes  # the path exactly as allowed (gateway.surface), with the query string
    headers: Headers  # what goes to the pod: allowed client headers and the gateway's own (gateway.pods.client)
    request_id: bytes
    body: bytes | None = None  # the whole body, when it was small enough to be read at once (or there is none)
    rest: RequestBody | None = None  # a big body, its read part pushed back: streamed to the pod, never retried
    started: float = 0.0  # time.perf_counter() when the request was admitted
    chat: bool = field(default=False)  # POST /v1/chat/completions: the one request the cold path can take

    @property
    def whole(self) -> bool:
        """Nothing of the body is still to be read from the client: it can go to another pod, or the cold path."""
        return self.rest is None

    @property
    def payload(self) -> bytes | RequestBody | None:
        """What the pod pool sends as the body."""
        return self.rest if self.rest is not None else self.body

    @cached_property
    def document(self) -> Any:
        """The body as JSON (what the cold path reads: messages, stream, stream_options), or None."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError):
            return None

    def with_headers(self, headers: Headers) -> "GatewayRequest":
        return replace(self, headers=headers)


def is_chat(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/") == CHAT_PATH
