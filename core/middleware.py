"""Middleware at the edge of the web app: the input guard (every path, admin included) and the API's slash rule."""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.common import CommonMiddleware

from core.api_errors import error_response, is_api_path
from core.input_checks import text_problem

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class InputGuardMiddleware:
    """Refuses, before any view, parser, filter or paginator sees it, input that would reach the database as an
    error: NUL or lone surrogates in the path, a header, a query parameter or a form field (400), and a body larger
    than DATA_UPLOAD_MAX_MEMORY_SIZE (413, decided from Content-Length before the body is read). JSON bodies are
    checked by the API's parser (core.api_parsers), which sees the decoded strings."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "invalid", "Content-Length is not a number")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return error_response(413, "request_too_large", f"the request body is over {limit} bytes")
        try:
            problem = self._problem(request)
        except RequestDataTooBig:
            return error_response(413, "request_too_large", f"the request body is over {limit} bytes")
        except (SuspiciousOperation, MultiPartParserError) as exc:
            return error_response(400, "invalid", str(exc) or "malformed request")
        return error_response(400, "invalid", problem) if problem else None

    @staticmethod
    def _problem(request: HttpRequest) -> str | None:
        if problem := text_problem(request.path_info):
            return f"the path {problem}"
        for name, value in request.META.items():
            header = (name.startswith("HTTP_") or name == "CONTENT_TYPE") and isinstance(value, str)
            if header and (problem := text_problem(value)):
                return f"header {name.removeprefix('HTTP_').replace('_', '-').title()} {problem}"
        for source, params in (("query parameter", list(request.GET.lists())), ("form field", _form_fields(request))):
            for key, values in params:
                if problem := text_problem(key) or next(filter(None, map(_text_value_problem, values)), None):
                    return f"{source} {key!r} {problem}"
        return None


def _text_value_problem(value: object) -> str | None:
    return text_problem(value) if isinstance(value, str) else None  # uploaded files are not text


def _form_fields(request: HttpRequest) -> list[tuple[str, list[str]]]:
    """The form fields of a non-API POST (the admin's); the API parses only JSON, checked by its parser."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method == "POST" and not is_api_path(request.path_info) and content_type.startswith(_FORM_TYPES):
        return list(request.POST.lists())
    return []


class ApiCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware without APPEND_SLASH under /api/: a POST to /api/tenants would otherwise be a 500
    with DEBUG on (Django cannot redirect a POST) and an HTML redirect with it off. The API answers a JSON 404 that
    names the path with the slash instead."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if is_api_path(request.path_info):
            return False
        return super().should_redirect_with_slash(request)
