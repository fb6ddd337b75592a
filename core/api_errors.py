"""One JSON error shape for everything under /api/: {"error": {"code", "message", "fields"?}}.

`json_exception_handler` is DRF's exception handler; `error_response` is the same body for code that runs outside
DRF (the input guard middleware, the catch-all route, Django's error handlers).
"""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import is_valid_path
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import PlatformError

API_PATH_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    return path == API_PATH_PREFIX[:-1] or path.startswith(API_PATH_PREFIX)


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        # Field errors are always {field: [messages]}; a bare list (an error about the whole body) gets one key.
        error["fields"] = fields if isinstance(fields, dict) else {"non_field_errors": fields}
    return {"error": error}


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    if request is not None:
        # Errors are JSON whatever the client asked for (the schema view negotiates YAML for its 200 only).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    if isinstance(exc, PlatformError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.http_status)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", "invalid input", exc.detail)
    elif isinstance(exc, Http404):
        response.data = error_body("not_found", "not found")
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = error_body(codes if isinstance(codes, str) else "error", str(exc.detail))
    return response


@csrf_exempt  # a POST with a session cookie to an unknown path is a 404, like any other
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Every path under /api/ that no route matches (a malformed id included), whatever the method."""
    message = f"no API endpoint at {request.path}"
    if not request.path.endswith("/") and is_valid_path(f"{request.path_info}/", getattr(request, "urlconf", None)):
        message += f" (did you mean {request.path}/ ?)"
    return error_response(404, "not_found", message)


# Django's own error handlers (used with DEBUG off, for errors raised outside DRF): JSON under /api/, Django's pages
# elsewhere. Set as handler400/403/404/500 in the root URLconf.


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(400, "bad_request", "bad request")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(403, "permission_denied", "permission denied")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW. DRF checks CSRF itself for session-authenticated API calls; this covers the rest."""
    if is_api_path(request.path):
        return error_response(403, "csrf_failed", f"CSRF check failed: {reason}")
    return csrf.csrf_failure(request, reason)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(500, "server_error", "internal error; it has been logged")
    return defaults.server_error(request)
