"""WSGI entry point: ``gunicorn wsgi:app``.

With ``SCHEDULER_MODE=embedded`` (the default) the scheduler runs inside this
process; set ``SCHEDULER_MODE=off`` for web processes when running scaled out.
"""
import logging

from scheduler import create_app
from scheduler.reminders import engine

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
if app.config["SCHEDULER_MODE"] == "embedded":
    engine.start(app, senders=app.config["SENDER_THREADS"])
