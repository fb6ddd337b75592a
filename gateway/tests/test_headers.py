from gateway.headers import header_value, strip_request, strip_response


def test_request_loses_hop_by_hop_spoofable_and_connection_named_headers() -> None:
    headers = [
        (b"Host", b"gw"),
        (b"Connection", b"keep-alive, X-Secret"),
        (b"X-Secret", b"1"),
        (b"Keep-Alive", b"t=5"),
        (b"X-Percolate-Tenant", b"other"),
        (b"X-Forwarded-For", b"1.2.3.4"),
        (b"Forwarded", b"for=1.2.3.4"),
        (b"Authorization", b"Bearer x"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"h2c"),
        (b"Content-Type", b"application/json"),
        (b"Accept", b"text/event-stream"),
    ]
    assert strip_request(headers) == [(b"content-type", b"application/json"), (b"accept", b"text/event-stream")]


def test_response_loses_hop_by_hop_but_keeps_content_headers() -> None:
    headers = [
        (b"Connection", b"close, X-Node"),
        (b"X-Node", b"n1"),
        (b"Content-Type", b"text/event-stream"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Cache-Control", b"no-cache"),
    ]
    assert strip_response(headers) == [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def test_every_connection_header_names_hop_by_hop_headers_and_header_value() -> None:
    headers = [
        (b"Connection", b" A , b,,"),
        (b"connection", b"C"),
        (b"a", b"1"),
        (b"B", b"2"),
        (b"c", b"3"),
        (b"d", b"4"),
    ]
    assert strip_request(headers) == [(b"d", b"4")]
    assert header_value([(b"X-A", b"1")], b"x-a") == b"1"
    assert header_value([], b"x-a") is None
