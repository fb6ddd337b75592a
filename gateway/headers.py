"""Header rules for the proxy, as pure functions: what never crosses the gateway, and what the gateway sets itself."""

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones a client could use to impersonate or to confuse an upstream.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
SPOOFABLE = frozenset(
    {
        b"x-percolate-tenant",
        b"x-percolate-generation",
        b"x-percolate-route",
        b"x-request-id",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-real-ip",
        b"authorization",
        b"host",
        b"content-length",
    }
)


def _tokens(value: bytes) -> set[bytes]:
    """Header names listed in a Connection value: hop-by-hop for this message too."""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


REQUEST_DROP = HOP_BY_HOP | SPOOFABLE
# The ASGI server writes its own Date and Server; the upstream's would be sent twice.
RESPONSE_DROP = HOP_BY_HOP | {b"content-length", b"date", b"server"}


def _strip(headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes]) -> Headers:
    kept: Headers = []
    named: set[bytes] | None = None
    for name, value in headers:  # one pass: this runs twice on every request
        lowered = name.lower()
        if lowered in drop:
            if lowered == b"connection":
                named = (named or set()) | _tokens(value)
            continue
        kept.append((lowered, value))
    if named:
        return [(name, value) for name, value in kept if name not in named]
    return kept


def strip_request(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return _strip(headers, REQUEST_DROP)


def strip_response(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return _strip(headers, RESPONSE_DROP)


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
