"""The error answers of a part's OpenAPI document, as the API gives them: every operation
that needs a key declares 401 and 403, and every operation the answers it can give besides
(404, 409, 413, 422), each with the catalogue's body ``{"error": {"code", "message", "fix",
"details"}}`` (:mod:`mailshot.core.errors`), so a generated client or a fuzzer sees the API as
it is. The bearer scheme itself is declared by :func:`mailshot.core.web.deps.principal_dependency`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

ERROR_SCHEMA = "Error"


class ErrorDetail(BaseModel):
    """One problem with one field of the request."""

    field: str = Field(description="Which field, dotted for nested ones (``rows.3.email``).")
    rule: str = Field(description="Which rule it broke (``missing``, ``less_than_equal``...).")
    message: str
    params: dict[str, Any] = Field(default_factory=dict, description="The rule's values.")


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable: see docs/ERRORS.md for every code.")
    message: str = Field(description="What went wrong, for people.")
    fix: str = Field(default="", description="What to do about it (left out when nothing).")
    details: list[ErrorDetail] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict, description="The message's values.")


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: ErrorInfo


#: Status -> what it means here (the codes are in docs/ERRORS.md).
STATUS_TEXT = {
    "401": "No key, or a key that cannot be used: AUTH_MISSING, AUTH_MALFORMED, "
    "AUTH_UNKNOWN_KEY, AUTH_KEY_DISABLED, AUTH_KEY_NOT_YET_VALID, AUTH_KEY_EXPIRED, "
    "AUTH_USER_DISABLED.",
    "403": "The key may not do this: AUTH_SCOPE_MISSING, AUTH_IP_NOT_PERMITTED.",
    "404": "Something the request names does not exist (NOT_FOUND and the like).",
    "409": "The request conflicts with the current state (a taken address, a sync that "
    "is not in a state to do this...).",
    "413": "The body is larger than this address accepts: REQUEST_TOO_LARGE.",
    "422": "The request is not valid: VALIDATION_FAILED (one detail per field) or a rule "
    "of the resource.",
}
_WRITES = {"post", "put", "patch", "delete"}


def _statuses(method: str, operation: dict[str, Any]) -> list[str]:
    out = []
    if "security" in operation:
        out += ["401", "403"]
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    if takes_input or method in _WRITES:
        out.append("404")
    if method in _WRITES:
        out.append("409")
    if "requestBody" in operation or method in _WRITES:
        out.append("413")
    if takes_input:
        out.append("422")
    return out


def add_error_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers to an OpenAPI document (in place; returned for convenience)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components[ERROR_SCHEMA] = body
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in _statuses(method, operation):
                responses.setdefault(status, {"description": STATUS_TEXT[status]})
            for status, answer in responses.items():  # and those the route declared itself
                if status.startswith(("4", "5")):
                    answer["content"] = content
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def document_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document declare its error answers (see the module)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_answers(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
