"""One JSON error shape for the API: {"error": {"code", "message", "fields"?}}."""

from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from tenants.errors import PlatformError


def _body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, PlatformError):
        return Response(_body(exc.code, exc.message, exc.fields), status=exc.http_status)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _body("invalid", "invalid input", exc.detail)
    elif isinstance(exc, Http404):
        response.data = _body("not_found", "not found")
    elif isinstance(exc, exceptions.APIException):
        response.data = _body(str(exc.get_codes()) if isinstance(exc.get_codes(), str) else "error", str(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Token"
    return response
