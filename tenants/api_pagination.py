"""Keyset pagination for every API list: newest first by (created_at, id), a unique order.

DRF's CursorPagination keys its cursor on the first ordering field only and pages through ties with an OFFSET it
caps at 1,000, so past 1,000 rows sharing one `created_at` (a seeded batch) `next` returned the same page forever.
Here the cursor is the last row's (created_at, id) and the next page is `WHERE (created_at, id) < (t, id)`: one
index range scan on the (created_at, id) index at any depth, no COUNT, no OFFSET. A cursor that does not decode to
exactly that pair is a 400.
"""

import base64
import binascii
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

Position = tuple[datetime, uuid.UUID]
MAX_CURSOR_LENGTH = 200


def encode_cursor(position: Position) -> str:
    created, row_id = position
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; ValueError for anything `encode_cursor` did not make."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ValueError("too long")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_text, id_text = text.split("|")
        created = datetime.fromisoformat(created_text)
        row_id = uuid.UUID(id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    if created.tzinfo is None or str(row_id) != id_text:
        raise ValueError("not a cursor this API made")
    return created, row_id


class KeysetPagination(BasePagination):
    """`?cursor=` from the previous page's `next`; pages of `page_size` rows, newest first."""

    page_size = 100
    cursor_query_param = "cursor"
    time_field = "created_at"

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise TypeError("KeysetPagination pages querysets only")
        self.request = request
        ordered = queryset.order_by(f"-{self.time_field}", "-pk")
        raw = request.query_params.get(self.cursor_query_param)
        if raw is not None:
            try:
                position = decode_cursor(raw)
            except ValueError:
                raise ValidationError({self.cursor_query_param: ["Not a cursor from this API."]}) from None
            ordered = ordered.filter(TupleLessThan(Tuple(F(self.time_field), F("pk")), position))
        rows = list(ordered[: self.page_size + 1])
        self.next_position = None
        if len(rows) > self.page_size:
            rows = rows[: self.page_size]
            last = rows[-1]
            self.next_position = (getattr(last, self.time_field), last.pk)
        return rows

    def get_next_link(self) -> str | None:
        if self.next_position is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, encode_cursor(self.next_position))

    def get_paginated_response(self, data: Any) -> Response:
        return Response(OrderedDict([("next", self.get_next_link()), ("results", data)]))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page; null on the last page.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from the previous page's `next` (400 if it is not one).",
                "schema": {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
            }
        ]
