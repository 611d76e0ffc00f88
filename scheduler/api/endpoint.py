"""Declaring API endpoints: one decorator parses, validates, renders and documents.

An endpoint names its body, query and response models (pydantic); the same
declarations feed the OpenAPI document, so the document cannot drift from the code.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ValidationError

from scheduler.api.errors import Unauthorized, UnsupportedMediaType, from_validation_error


@dataclass
class Operation:
    """What the OpenAPI document needs to know about one endpoint."""

    rule: str
    method: str
    name: str
    summary: str
    description: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: str
    errors: tuple[int, ...] = field(default_factory=tuple)
    #: Request bodies the view reads itself (media type → model), for the document only.
    consumes: dict[str, type[BaseModel]] = field(default_factory=dict)


#: Every declared endpoint, in declaration order.
OPERATIONS: list[Operation] = []


def parse_body(model: type[BaseModel]) -> BaseModel:
    """Validate the JSON request body against ``model`` (strict types, unknown fields refused)."""
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        return model.model_validate_json(request.get_data() or b"", strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """Validate the query string against ``model``; repeated keys become lists."""
    args: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def endpoint(
    bp: Blueprint,
    rule: str,
    method: str = "GET",
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    auth: str = "required",
    errors: tuple[int, ...] = (),
    consumes: dict[str, type[BaseModel]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view on ``bp`` that receives ``body=``/``query=`` models and returns a model.

    ``auth`` is ``required`` (401 without a valid token), ``optional`` (public, with more
    shown to members) or ``none``. The view may return a pydantic model, ``None`` (204)
    or a ready :class:`flask.Response`. ``consumes`` documents request bodies the view
    parses itself (a ``multipart/form-data`` upload, say), by media type.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        doc = (func.__doc__ or "").strip()
        OPERATIONS.append(
            Operation(
                rule, method, func.__name__, summary, doc, tag, body, query, response, status, auth, errors, dict(consumes or {})
            )
        )

        @functools.wraps(func)
        def view(**kwargs: Any) -> Any:
            if auth == "required" and g.get("api_user") is None:
                raise Unauthorized()
            if query is not None:
                kwargs["query"] = parse_query(query)
            if body is not None:
                kwargs["body"] = parse_body(body)
            result = func(**kwargs)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(status=204)
            return jsonify(result.model_dump(mode="json")), status

        bp.add_url_rule(rule, endpoint=func.__name__, view_func=view, methods=[method])
        return view

    return decorator
