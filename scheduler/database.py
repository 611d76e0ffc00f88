"""The database: SQLAlchemy, migrations, and SQLite made to behave."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from scheduler.extensions import db, migrate


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin,
    # so SAVEPOINTs (nested transactions, per-test rollback) work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # IMMEDIATE takes the write lock up front: a transaction that read a seat count
        # cannot be refused (SQLITE_BUSY_SNAPSHOT) when it then writes; readers in WAL
        # mode are not blocked. Writers queue on busy_timeout instead of failing.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def init_app(app: Flask) -> None:
    """Bind SQLAlchemy and Flask-Migrate to ``app`` and load every model."""
    from scheduler import models  # noqa: F401  (registers every table)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
