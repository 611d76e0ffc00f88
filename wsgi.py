"""WSGI entry point: ``gunicorn wsgi:app``.

With ``SCHEDULER_MODE=embedded`` (the default) the scheduler runs inside this
process; set ``SCHEDULER_MODE=off`` for web processes when running scaled out.
The log goes to stderr at ``LOG_LEVEL`` (WARNING unless set; see scheduler/logs.py).
"""
import click
from flask.cli import FlaskGroup

from scheduler import create_app, logs
from scheduler.reminders import engine


def imported_by_flask_cli() -> bool:
    """Whether a ``flask`` command is importing this module.

    Without ``FLASK_APP`` every ``flask`` command finds and imports ``wsgi.py`` by itself (Flask's
    app discovery): ``flask --help``, ``flask user create``, ``flask scheduler run``... Serving is
    the only reason to start the embedded scheduler here, so a ``flask`` command must not (it would
    run a second clock and four senders until the command ends; ``flask serve`` starts its own).
    The test is the running click command: the import happens while ``flask``'s :class:`FlaskGroup`
    loads the application, and gunicorn (or any other WSGI server) imports us with no click command
    running. This is sharper than Flask's ``FLASK_RUN_FROM_CLI`` environment variable, which every
    child process of a ``flask`` command would inherit, and keeps working for any server, unlike a
    gunicorn-only ``post_fork`` hook.
    """
    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.find_root().command, FlaskGroup)


app = create_app()
if not imported_by_flask_cli():
    logs.configure(app.config["LOG_LEVEL"])
    if app.config["SCHEDULER_MODE"] == "embedded":
        engine.start(app, senders=app.config["SENDER_THREADS"])
