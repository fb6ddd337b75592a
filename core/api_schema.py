"""The OpenAPI schema as the contract: what drf-spectacular derives, plus what it cannot know.

- `ApiAutoSchema` names the permission each staff operation needs (`x-required-permission`, and in the text).
- `add_error_responses` (a postprocessing hook) closes request bodies (additionalProperties: false) and documents
  the refusals every operation can give, with the one `Error` body: 400, 401 and 403 everywhere, 404 where the
  path names an object, 413 and 415 where there is a body; and gives every 4xx an operation declares (409) the
  same body.
- `add_links` (a postprocessing hook) adds OpenAPI links so clients and stateful testers can chain calls: an
  operation whose 2xx body is component X with an `id` links to every operation under `{base}{id}/`, where
  `GET {base}{id}/` returns X. New endpoints get both by following the pattern in tenants/api.py.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema

from core.api_permissions import view_action

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Field name to messages, for invalid input.",
                    "additionalProperties": {"type": "array", "items": {}},
                },
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Invalid input (body, query parameter, header), with the reasons in `error.fields` when known.",
    "401": "No credentials, or not of the scheme this endpoint accepts (see WWW-Authenticate).",
    "403": "Authenticated, but without the permission this operation needs.",
    "404": "No such object.",
    "409": "Conflict with the current state.",
    "413": "Body larger than the limit.",
    "415": "Body not JSON.",
}


class ApiAutoSchema(AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        operation = super().get_operation(*args, **kwargs)
        required = getattr(self.view, "action_permissions", {}).get(view_action(self.view, self.view.request))
        if operation is not None and required is not None:
            operation["x-required-permission"] = str(required)
            text = operation.get("description", "")
            operation["description"] = f"{text}\n\nNeeds the permission {required}.".strip()
        return operation


def _operations(result: dict[str, Any]) -> Any:
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    _collapse_blank_alternatives(schemas)
    schemas["Error"] = ERROR_SCHEMA
    for path, _method, operation in _operations(result):
        body_ref = _body_ref(operation.get("requestBody", {}))
        if body_ref:  # request bodies are StrictSerializers: unknown fields are refused
            schemas[body_ref.rsplit("/", 1)[-1]]["additionalProperties"] = False
        codes = ["400", "401", "403"]
        if "{" in path:
            codes.append("404")
        if "requestBody" in operation:
            codes += ["413", "415"]
        responses = operation["responses"]
        for code in codes:
            responses.setdefault(code, {"description": _DESCRIPTIONS[code]})
        for code, response in responses.items():
            if code.startswith("4"):
                response["content"] = {"application/json": {"schema": _ERROR_REF}}
                if not response.get("description"):
                    response["description"] = _DESCRIPTIONS.get(code, "Refused.")
    return result


def _collapse_blank_alternatives(node: Any) -> None:
    """drf-spectacular writes a blank-allowed string with a pattern as oneOf [pattern, maxLength 0]; our patterns
    for such fields already accept "", which then matches both branches, and oneOf calls that invalid."""
    if isinstance(node, dict):
        one_of = node.get("oneOf")
        if isinstance(one_of, list) and len(one_of) == 2 and one_of[1] == {"type": "string", "maxLength": 0}:
            node.update(node.pop("oneOf")[0])
        for value in node.values():
            _collapse_blank_alternatives(value)
    elif isinstance(node, list):
        for value in node:
            _collapse_blank_alternatives(value)


def _body_ref(response: dict[str, Any]) -> str | None:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref")


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    # Component returned by `GET {base}{id}/` -> base.
    bases: dict[str, str] = {}
    for path, method, operation in _operations(result):
        if method == "get" and path.endswith("{id}/") and path.count("{") == 1:
            ref = _body_ref(operation["responses"].get("200", {}))
            if ref:
                bases[ref] = path.removesuffix("{id}/")
    for _path, _method, operation in _operations(result):
        for code, response in operation["responses"].items():
            ref = _body_ref(response) if code.startswith("2") else None
            if ref not in bases:
                continue
            links = {}
            for target_path, target_method, target in _operations(result):
                if target_path.startswith(f"{bases[ref]}{{id}}/") and target_path.count("{") == 1:
                    links[target["operationId"]] = {
                        "operationId": target["operationId"],
                        "parameters": {"id": "$response.body#/id"},
                        "description": f"{target_method.upper()} {target_path} for the object returned here.",
                    }
            if links:
                response["links"] = links
    return result
