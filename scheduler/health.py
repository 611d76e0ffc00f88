"""Health checks for load balancers and orchestrators."""
from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from scheduler.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up (no dependency is checked)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The database answers; 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        return jsonify(status="unavailable", database=type(exc).__name__), 503
    return jsonify(status="ok", database="ok"), 200


def init_app(app: Flask) -> None:
    """Register the health endpoints and ``/metrics``."""
    from scheduler import metrics

    app.register_blueprint(bp)
    metrics.init_app(app)
