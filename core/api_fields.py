"""Strict serializer parts: the API takes JSON as typed, never coercing (0 is not the string "0", "5" is not 5),
refuses fields it does not know, and says all of it in the schema (patterns, enums, additionalProperties: false).
"""

from collections.abc import Mapping
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

# Only ASCII whitespace is trimmed, and the schema's pattern names exactly those characters, so what the schema
# calls valid and what the server accepts are the same set of strings.
ASCII_SPACE = " \t\n\r\x0b\x0c"
ANY_TEXT = r"^[^\x00]*$"
NOT_BLANK_TEXT = r"^[^\x00]*[^\x00 \t\n\r\x0b\x0c][^\x00]*$"


class StrictCharField(serializers.CharField):
    """A JSON string without NUL; unless `allow_blank`, with a character other than ASCII whitespace. Trimmed."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        if self.allow_blank:
            self.validators.append(RegexValidator(ANY_TEXT, "Must not contain NUL."))
        else:
            self.validators.append(RegexValidator(NOT_BLANK_TEXT, "Must contain a non-space character, no NUL."))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data).strip(ASCII_SPACE)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """One of the listed strings, exactly (documented as an enum)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """A request body: a JSON object with only the declared fields (the schema says additionalProperties: false)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)
