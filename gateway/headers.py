"""Header rules for the proxy, as pure functions: what may cross the gateway, each way. Both directions are
allow-lists: a header that is not named here (or that the message's Connection header names) never crosses.

- Client → pod: what an OpenAI-compatible client sends about its request. The gateway sets the rest itself (the
  pod's credential, `X-Percolate-Tenant`, `X-Percolate-Generation`, `X-Request-Id`, `X-Forwarded-*`); the pool sets
  `Host` and the framing. No name here has an underscore, so `X_Percolate_Tenant` and the like, which a CGI/WSGI
  server reads as `X-Percolate-Tenant`, are dropped, as nginx does by default; so is everything a proxy in front or
  behind could take for its own (`X-Envoy-*`, `X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Original-URL`, ...).
- Pod → client: what describes the answer (type, caching, retry, the OpenAI response headers). The gateway sets
  `X-Request-Id` and `X-Percolate-Route`; the server sets `Date`, `Server` and the framing. The pod's own
  identity and fencing headers, cookies, redirects and `X-Envoy-*` stay inside.
"""

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

REQUEST_ALLOWED = frozenset(
    {
        b"accept",
        b"accept-language",
        b"content-type",
        b"user-agent",
        b"idempotency-key",
        b"openai-beta",
        b"openai-organization",
        b"openai-project",
        b"traceparent",
        b"tracestate",
    }
)
REQUEST_ALLOWED_PREFIXES = (b"x-stainless-",)  # the OpenAI SDKs' client description (language, version, retries)

RESPONSE_ALLOWED = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"cache-control",
        b"retry-after",
        b"vary",
        b"x-accel-buffering",
        b"openai-model",
        b"openai-processing-ms",
        b"openai-version",
    }
)
RESPONSE_ALLOWED_PREFIXES = (b"x-ratelimit-",)


def _tokens(value: bytes) -> set[bytes]:
    """Header names listed in a Connection value: hop-by-hop for this message too."""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


def _keep(headers: Iterable[tuple[bytes, bytes]], allowed: frozenset[bytes], prefixes: tuple[bytes, ...]) -> Headers:
    kept: Headers = []
    named: set[bytes] | None = None
    for name, value in headers:  # one pass: this runs twice on every request
        lowered = name.lower()
        if lowered in allowed or lowered.startswith(prefixes):
            kept.append((lowered, value))
        elif lowered == b"connection":
            named = (named or set()) | _tokens(value)
    if named:
        return [(name, value) for name, value in kept if name not in named]
    return kept


def strip_request(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The client's headers that may reach the pod."""
    return _keep(headers, REQUEST_ALLOWED, REQUEST_ALLOWED_PREFIXES)


def strip_response(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The pod's headers that may reach the client."""
    return _keep(headers, RESPONSE_ALLOWED, RESPONSE_ALLOWED_PREFIXES)


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
