"""The OpenAPI 3.1 document, built from the declared endpoints and their pydantic models."""
from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from pydantic import BaseModel

from scheduler.api.endpoint import OPERATIONS, Operation

_RULE_ARG = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>\w+)>")
_REF = "#/components/schemas/{model}"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid"]},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Field name (dotted for nested fields) → what is wrong with it.",
                },
            },
        }
    },
}

_STATUS_TEXT = {
    202: "Accepted: carried out in the background (poll the Location)",
    400: "Malformed request",
    401: "No valid token",
    403: "Not allowed for this user",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Not a JSON body",
    422: "Invalid fields",
    429: "Too many requests",
}


def _add_model(spec: APISpec, model: type[BaseModel], mode: str = "validation") -> dict[str, str]:
    schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        if name not in spec.components.schemas:
            spec.components.schema(name, sub)
    if model.__name__ not in spec.components.schemas:
        spec.components.schema(model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def _path_and_params(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for match in _RULE_ARG.finditer(rule):
        kind = {"int": "integer"}.get(match["converter"] or "", "string")
        params.append({"name": match["name"], "in": "path", "required": True, "schema": {"type": kind}})
    return _RULE_ARG.sub(r"{\g<name>}", rule), params


def _query_params(spec: APISpec, model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    for name, sub in schema.pop("$defs", {}).items():
        if name not in spec.components.schemas:
            spec.components.schema(name, sub)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": prop.get("description", ""),
            "schema": {k: v for k, v in prop.items() if k != "description"},
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(spec: APISpec, op: Operation, prefix: str) -> tuple[str, dict[str, Any]]:
    path, params = _path_and_params(prefix + op.rule)
    if op.query is not None:
        params += _query_params(spec, op.query)
    responses: dict[str, Any] = {}
    if op.response is not None:
        responses[str(op.status)] = {
            "description": "Success",
            "content": {"application/json": {"schema": _add_model(spec, op.response, "serialization")}},
        }
    else:
        responses[str(op.status)] = {"description": "Success, no content"}
    codes = set(op.errors)
    if op.body is not None or op.consumes:
        codes |= {400, 413, 415, 422}
    if op.query is not None:
        codes |= {422}
    if op.auth == "required":
        codes |= {401, 403}
    if params and any(p["in"] == "path" for p in params):
        codes.add(404)
    for code in sorted(codes):
        if code < 400 and op.response is not None:  # another success (202 Accepted), of the same shape
            responses[str(code)] = dict(responses[str(op.status)], description=_STATUS_TEXT.get(code, "Success"))
            continue
        responses[str(code)] = {
            "description": _STATUS_TEXT.get(code, "Error"),
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
        }
    operation: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    }
    content = {"application/json": {"schema": _add_model(spec, op.body)}} if op.body is not None else {}
    content.update((media, {"schema": _add_model(spec, model)}) for media, model in op.consumes.items())
    if content:
        operation["requestBody"] = {"required": True, "content": content}
    if op.auth == "required":
        operation["security"] = [{"bearerAuth": []}]
    elif op.auth == "optional":
        operation["security"] = [{}, {"bearerAuth": []}]
    return path, {op.method.lower(): operation}


def build_openapi(prefix: str = "/api/v1", version: str = "1.0.0") -> dict[str, Any]:
    """Return the OpenAPI document of every endpoint declared with :func:`endpoint`."""
    spec = APISpec(
        title="Science & Technology Event Scheduler API",
        version=version,
        openapi_version="3.1.0",
        info={
            "description": "Events, registrations, targets and progress of the city's public "
            "science and technology programme. Times are ISO 8601 with an offset; errors are "
            '`{"error": {"code", "message", "fields"}}`.'
        },
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", ERROR_SCHEMA)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        path, operations = _operation(spec, op, prefix)
        paths.setdefault(path, {}).update(operations)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
