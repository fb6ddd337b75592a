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


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Header names listed in Connection: they are hop-by-hop for this message too."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return named


def strip_request(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    headers = list(headers)
    drop = HOP_BY_HOP | SPOOFABLE | connection_named(headers)
    return [(name.lower(), value) for name, value in headers if name.lower() not in drop]


def strip_response(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    headers = list(headers)
    # The ASGI server writes its own Date and Server; the upstream's would be sent twice.
    drop = HOP_BY_HOP | connection_named(headers) | {b"content-length", b"date", b"server"}
    return [(name.lower(), value) for name, value in headers if name.lower() not in drop]


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
