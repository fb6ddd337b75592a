"""What no input may hold, whatever route it takes in: the checks the input guard and the JSON parser share.

PostgreSQL text cannot store NUL (U+0000) and UTF-8 cannot encode a lone surrogate (U+D800-U+DFFF): either one in a
filter value, a search term, a form field, a header or a JSON string reaches psycopg as an error, a 500. JSON nested
deeper than Python's recursion limit raises RecursionError inside the parser; nothing the platform accepts is nested
more than a few levels.
"""

import re
from typing import Any

MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot go on to the ORM, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def json_problem(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON document is refused (too deep, or a string or key `text_problem` refuses), or None."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return f"a string {problem}"
        elif isinstance(value, dict | list):
            if depth > max_depth:
                return f"nested more than {max_depth} levels deep"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (problem := text_problem(key)):
                    return f"a key {problem}"
                stack.append((item, depth + 1))
    return None
