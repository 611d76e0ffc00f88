"""Event scheduler for public science and technology programmes.

``create_app`` only wires the parts together; each part has its own ``init_app``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the Flask application; ``config`` overrides the environment's settings."""
    from scheduler import api, auth, cli, database, feeds, health, i18n, pages
    from scheduler.config import Config, secure_cookies

    load_dotenv(ROOT / ".env")
    app = Flask(__name__, template_folder=str(ROOT / "templates"), instance_path=str(ROOT / "instance"))
    app.config.update(Config(Path(app.instance_path)).as_dict())
    if config:
        app.config.update(config)
    secure_cookies(app.config)

    database.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    api.init_app(app)
    feeds.init_app(app)
    pages.init_app(app)
    health.init_app(app)
    cli.init_app(app)
    return app
