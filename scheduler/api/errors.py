"""API errors: every failure leaves as ``{"error": {"code", "message", "fields"}}``."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from pydantic import ValidationError


class APIError(Exception):
    """An error the client can act on; rendered as JSON with :attr:`status`."""

    status = 400
    code = "bad_request"
    message = "The request could not be understood."

    def __init__(self, message: str | None = None, *, fields: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.fields = fields or {}
        self.code = code or self.code

    def response(self) -> tuple[Response, int]:
        """Return the JSON response for this error."""
        return error_response(self.status, self.code, self.message, self.fields)


class Unauthorized(APIError):
    status, code = 401, "unauthorized"
    message = "Authentication required: send 'Authorization: Bearer <token>'."


class Forbidden(APIError):
    status, code = 403, "forbidden"
    message = "You may not do this."


class NotFound(APIError):
    status, code = 404, "not_found"
    message = "Not found."


class Conflict(APIError):
    status, code = 409, "conflict"
    message = "The request conflicts with the current state."


class UnsupportedMediaType(APIError):
    status, code = 415, "unsupported_media_type"
    message = "Send a JSON body with 'Content-Type: application/json'."


class TooManyRequests(APIError):
    status, code = 429, "too_many_requests"
    message = "Too many requests: try again later."


class Invalid(APIError):
    status, code = 422, "invalid"
    message = "Some fields are invalid."


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> tuple[Response, int]:
    """Build the JSON error body of the API contract."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response, status


_TYPE_TAGS = {"datetime", "date", "str", "int", "float", "bool", "list", "dict", "timedelta"}


def _is_union_tag(part: object) -> bool:
    """Pydantic names the member of a union in an error's location; clients need only the field."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "-" in part)


def from_validation_error(exc: ValidationError, prefix: str = "") -> APIError:
    """Turn a pydantic error into a 422 naming each field (or a 400 for malformed JSON)."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            return APIError(f"Malformed JSON: {error['msg']}", code="malformed_json")
        loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
        if "field" in error.get("ctx", {}):  # a check across a model's fields names the one it reports on
            loc.append(str(error["ctx"]["field"]))
        name = ".".join(([prefix] if prefix else []) + loc) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "Unknown field."
        elif error["type"] == "model_type" and not loc:
            message = "The body must be a JSON object."
        fields.setdefault(name, message)
    return Invalid(fields=fields)
