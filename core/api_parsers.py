"""The API's only parser: JSON, refused with a 400 when it is too deep or holds text the database cannot store."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.input_checks import json_problem


class GuardedJSONParser(JSONParser):
    """DRF's JSON parser plus `json_problem`; a document nested past the recursion limit is a 400, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deep") from exc
        if problem := json_problem(data):
            raise ParseError(f"JSON body refused: {problem}")
        return data
