"""Request framing checks (RFC 9112 §6) and size limits, as pure functions over the ASGI scope's raw headers."""

from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]
CHUNKED = -1  # check_request's answer for a chunked body (None: no body at all)


@dataclass(frozen=True)
class Limits:
    max_header_count: int = 100
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024


class FramingError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check_request(headers: Headers, limits: Limits) -> int | None:
    """The declared body length, CHUNKED, or None when there is no body; FramingError for shapes an upstream could
    read differently from us: conflicting or duplicate lengths, transfer codings other than a single `chunked`."""
    if len(headers) > limits.max_header_count:
        raise FramingError(431, "headers_too_many", f"more than {limits.max_header_count} headers")
    size = 0
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for name, value in headers:  # one pass: this runs on every request
        size += len(name) + len(value) + 4
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.append(value)
        elif lowered == b"transfer-encoding":
            codings.append(value)
    if size > limits.max_header_bytes:
        raise FramingError(431, "headers_too_large", f"headers exceed {limits.max_header_bytes} bytes")
    if lengths and codings:
        raise FramingError(400, "bad_framing", "both Content-Length and Transfer-Encoding")
    if len(codings) > 1 or (codings and codings[0].strip().lower() != b"chunked"):
        raise FramingError(400, "bad_framing", "unsupported Transfer-Encoding")
    if len(lengths) > 1:
        raise FramingError(400, "bad_framing", "more than one Content-Length")
    if codings:
        return CHUNKED
    if not lengths:
        return None
    raw = lengths[0].strip()
    if not raw.isdigit() or len(raw) > 18:
        raise FramingError(400, "bad_framing", "invalid Content-Length")
    length = int(raw)
    if length > limits.max_body_bytes:
        raise FramingError(413, "body_too_large", f"body exceeds {limits.max_body_bytes} bytes")
    return length
