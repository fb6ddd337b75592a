"""What the gateway exposes, as one allow-list checked on the request target exactly as it would be forwarded.

The raw path (before any percent-decoding) must be one of the listed paths byte for byte, so `/%69nternal/...`,
`/v1/../internal/...`, `//internal/...` and every other spelling of a path that is not listed is a 404 answered by
the gateway itself, and nothing but a listed path ever reaches a pod. The query string is forwarded as given, once it
is known to hold nothing that could end or reshape the request line.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Kind(Enum):
    OWN = "own"  # the gateway's own, without a tenant: health, readiness, metrics
    MODELS = "models"  # answered by the gateway for the caller's tier
    FORWARD = "forward"  # authenticated, limited and forwarded to the tenant's pod


@dataclass(frozen=True)
class Route:
    kind: Kind
    path: bytes
    methods: tuple[str, ...]


CHAT = Route(Kind.FORWARD, b"/v1/chat/completions", ("POST",))
MODELS = Route(Kind.MODELS, b"/v1/models", ("GET", "HEAD"))
HTTP_ROUTES: dict[bytes, Route] = {
    route.path: route
    for route in (
        CHAT,
        MODELS,
        Route(Kind.OWN, b"/healthz", ("GET", "HEAD")),
        Route(Kind.OWN, b"/readyz", ("GET", "HEAD")),
        Route(Kind.OWN, b"/metrics", ("GET", "HEAD")),
    )
}
OWN_PATHS = frozenset(route.path.decode() for route in HTTP_ROUTES.values() if route.kind is Kind.OWN)
# OpenAI's Realtime API path; the only WebSocket path a client may open to its pod.
WEBSOCKET_PATHS = frozenset({b"/v1/realtime"})

# A query string byte that could end the request line or start a fragment, or is not printable ASCII.
_UNSAFE_QUERY = frozenset(range(0x21)) | {0x23, 0x7F} | frozenset(range(0x80, 0x100))


class Refused(Exception):
    """Not on the allow-list: answered by the gateway with this status, never forwarded."""

    def __init__(self, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def raw_path(scope: dict[str, Any]) -> bytes:
    """The path as the client sent it (what would be forwarded), not the server's decoded `path`."""
    raw: bytes | None = scope.get("raw_path")
    return raw if raw is not None else scope["path"].encode("utf-8")


def http_route(scope: dict[str, Any]) -> Route:
    """The route of an HTTP request, or Refused (404 for any path not listed, 405 for a listed path's other
    methods, 400 for a query string that could not be forwarded as it is)."""
    route = HTTP_ROUTES.get(raw_path(scope))
    if route is None:
        raise Refused(404, "not_found", "no such route")
    if scope["method"] not in route.methods:
        allow = ", ".join(route.methods).encode()
        raise Refused(405, "method_not_allowed", f"{scope['method']} is not allowed here", [(b"allow", allow)])
    query: bytes = scope.get("query_string") or b""
    if query and not _UNSAFE_QUERY.isdisjoint(query):
        raise Refused(400, "bad_query", "the query string holds characters that cannot be forwarded")
    return route


def websocket_allowed(scope: dict[str, Any]) -> bool:
    query: bytes = scope.get("query_string") or b""
    return raw_path(scope) in WEBSOCKET_PATHS and _UNSAFE_QUERY.isdisjoint(query)


def target(scope: dict[str, Any]) -> bytes:
    """The request target sent to the pod: the allowed raw path and the query string as given."""
    query: bytes = scope.get("query_string") or b""
    path = raw_path(scope)
    return path + b"?" + query if query else path
