"""Keyset pagination for every API list: newest first by (created_at, id), a unique order.

DRF's CursorPagination keys its cursor on the first ordering field only and pages through ties with an OFFSET it
caps at 1,000, so past 1,000 rows sharing one `created_at` (a seeded batch) `next` returned the same page forever.
Here the cursor is the last row's (created_at, id) and the next page is `WHERE (created_at, id) < (t, id)`: one
index range scan on the (created_at, id) index at any depth, no COUNT, no OFFSET. A cursor that does not decode to
that pair (`CURSOR_PATTERN`) is a 400.
"""

import re
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

Position = tuple[datetime, uuid.UUID]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since the epoch, a dash, the row id in hex. Every string of this form names a position (up to 17
# digits stays below year 5000), so the schema's pattern is the whole contract: a cursor edited by hand is merely
# another starting point, and anything else is a 400.
CURSOR_PATTERN = r"^[0-9]{1,17}-[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(position: Position) -> str:
    created, row_id = position
    return f"{(created - EPOCH) // timedelta(microseconds=1)}-{row_id.hex}"


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; ValueError for anything not of the cursor's form."""
    if not _CURSOR.fullmatch(cursor):
        raise ValueError("not a cursor")
    micros, row_hex = cursor.split("-")
    return EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=row_hex)


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
                "description": "The cursor in the previous page's `next` (400 if it is not of this form).",
                "schema": {"type": "string", "pattern": CURSOR_PATTERN},
            }
        ]
