from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    """Newest first; stable under inserts and cheap at any depth (no OFFSET, no COUNT)."""

    ordering = ("-created_at", "-id")
    page_size = 100
