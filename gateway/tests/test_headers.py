import pytest

from gateway.headers import REQUEST_ALLOWED, RESPONSE_ALLOWED, header_value, strip_request, strip_response


def test_request_loses_hop_by_hop_spoofable_and_connection_named_headers() -> None:
    headers = [
        (b"Host", b"gw"),
        (b"Connection", b"keep-alive, X-Secret, User-Agent"),
        (b"X-Secret", b"1"),
        (b"User-Agent", b"named in Connection, so hop-by-hop here"),
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


@pytest.mark.parametrize(
    "name",
    [
        b"X_Percolate_Tenant",
        b"x_percolate_generation",
        b"X_Forwarded_For",
        b"X_Request_Id",
        b"Content_Type",  # even an allowed name, spelt with underscores
        b"X-Envoy-Original-Path",
        b"x-envoy-internal",
        b"X-Envoy-Expected-Rq-Timeout-Ms",
        b"X-Real-IP",
        b"X-Original-URL",
        b"X-Rewrite-URL",
        b"X-Original-Forwarded-For",
        b"True-Client-IP",
        b"CF-Connecting-IP",
        b"X-Client-IP",
        b"X-Forwarded-Host",
        b"X-HTTP-Method-Override",
        b"Proxy-Authorization",
        b"Cookie",
        b"X-Percolate-Route",
        b"X-Anything-Else",
    ],
)
def test_a_request_header_not_on_the_allow_list_never_reaches_the_pod(name: bytes) -> None:
    assert strip_request([(name, b"spoofed"), (b"Accept", b"*/*")]) == [(b"accept", b"*/*")]


def test_what_the_openai_sdk_sends_about_itself_reaches_the_pod() -> None:
    headers = [
        (b"X-Stainless-Lang", b"python"),
        (b"x-stainless-package-version", b"1.0.0"),
        (b"OpenAI-Beta", b"assistants=v2"),
        (b"Idempotency-Key", b"k1"),
        (b"User-Agent", b"OpenAI/Python 1.0.0"),
    ]
    assert [name for name, _ in strip_request(headers)] == [
        b"x-stainless-lang",
        b"x-stainless-package-version",
        b"openai-beta",
        b"idempotency-key",
        b"user-agent",
    ]


def test_response_keeps_what_describes_the_answer_and_nothing_of_the_pod_itself() -> None:
    headers = [
        (b"Connection", b"close, X-Node"),
        (b"X-Node", b"n1"),
        (b"Content-Type", b"text/event-stream"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Cache-Control", b"no-cache"),
        (b"X-Percolate-Pod", b"10.0.0.7:8000"),
        (b"X-Percolate-Generation", b"7"),
        (b"X-Percolate-Route", b"A/forged/0"),
        (b"X-Request-Id", b"forged"),
        (b"X-Envoy-Upstream-Service-Time", b"3"),
        (b"Set-Cookie", b"session=1"),
        (b"Location", b"http://elsewhere/"),
        (b"WWW-Authenticate", b"Bearer"),
        (b"X_Accel_Redirect", b"/internal/tenants"),
        (b"Retry-After", b"2"),
        (b"x-ratelimit-remaining-requests", b"9"),
    ]
    assert strip_response(headers) == [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"retry-after", b"2"),
        (b"x-ratelimit-remaining-requests", b"9"),
    ]


def test_no_allowed_name_has_an_underscore() -> None:
    assert not [name for name in REQUEST_ALLOWED | RESPONSE_ALLOWED if b"_" in name]


def test_every_connection_header_names_hop_by_hop_headers_and_header_value() -> None:
    headers = [
        (b"Connection", b" Accept , user-agent,,"),
        (b"connection", b"Content-Type"),
        (b"accept", b"1"),
        (b"User-Agent", b"2"),
        (b"content-type", b"3"),
        (b"accept-language", b"4"),
    ]
    assert strip_request(headers) == [(b"accept-language", b"4")]
    assert header_value([(b"X-A", b"1")], b"x-a") == b"1"
    assert header_value([], b"x-a") is None
