"""The JSON API under ``/api/v1``: one blueprint, domain endpoints, errors and the OpenAPI document."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from scheduler.api.endpoint import endpoint
from scheduler.api.errors import APIError, Unauthorized, error_response
from scheduler.auth.models import User
from scheduler.extensions import csrf, limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
docs_bp = Blueprint("api_docs", __name__)

__all__ = ["bp", "endpoint", "api_user", "init_app", "unrouted_error"]


def api_user() -> User | None:
    """Return the user authenticated by the request's bearer token, or ``None``."""
    return g.get("api_user")


@bp.before_request
def _authenticate() -> None:
    from scheduler.auth.operations import user_for_token

    g.api_user = None
    header = request.headers.get("Authorization", "")
    if not header:
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use 'Authorization: Bearer <token>'.")
    g.api_user = user_for_token(token.strip())
    if g.api_user is None:
        raise Unauthorized("The token is unknown or revoked.", code="invalid_token")


@bp.errorhandler(APIError)
def _api_error(exc: APIError) -> tuple[Response, int]:
    return exc.response()


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int] | Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    response, status = error_response(exc.code or 500, code, exc.description or exc.name)
    if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response, status


@bp.errorhandler(500)
def _internal_error(exc: HTTPException) -> tuple[Response, int]:
    from scheduler.extensions import db

    db.session.rollback()
    return error_response(500, "internal_error", "Something went wrong on our side; nothing was saved.")


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 document of this API."""
    from scheduler.api.openapi import build_openapi

    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_openapi()
    return jsonify(current_app.extensions["openapi"])


@docs_bp.get("/api/docs")
def api_docs() -> str:
    """A readable page of every endpoint and schema, rendered from the OpenAPI document."""
    from scheduler.api.openapi import build_openapi

    return render_template("api_docs.html", spec=build_openapi())


def unrouted_error(exc: HTTPException) -> tuple[Response, int] | None:
    """The JSON error of a request to an ``/api/`` address that no API endpoint answered (an unknown
    path, a method not allowed: blueprint handlers don't see them), else ``None``. Called by the
    application's error pages (:mod:`scheduler.pages.errors`), which answer everything else."""
    if request.path.startswith("/api/"):
        return _http_error(exc)
    return None


def init_app(app: Flask) -> None:
    """Register the API blueprint with every domain's endpoints, CSRF exemption and rate limits."""
    from scheduler.alerts import api as _alerts  # noqa: F401
    from scheduler.audit import api as _audit  # noqa: F401
    from scheduler.channels import api as _webhooks  # noqa: F401
    from scheduler.channels.sms import api as _sms  # noqa: F401
    from scheduler.events import api as _events  # noqa: F401
    from scheduler.feeds import api as _feeds  # noqa: F401
    from scheduler.feeds import import_api as _imports  # noqa: F401
    from scheduler.orgs import api as _orgs  # noqa: F401
    from scheduler.privacy import participant_api as _privacy  # noqa: F401
    from scheduler.privacy import erasure_api as _erasure  # noqa: F401
    from scheduler.registrations import api as _registrations  # noqa: F401
    from scheduler.reminders import api as _deliveries  # noqa: F401
    from scheduler.targets import api as _targets  # noqa: F401

    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    app.json.sort_keys = False  # type: ignore[attr-defined]  # fields in schema order
    csrf.init_app(app)
    csrf.exempt(bp)
    limiter.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(docs_bp)
