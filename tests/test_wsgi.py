"""``wsgi.py`` starts the embedded scheduler for a WSGI server only, never inside a ``flask`` command
that found it by itself; the processes' log leaves the clock's routine lines out unless ``LOG_LEVEL``
asks for them (scheduler/logs.py).

Each case runs in a subprocess, in a temporary directory holding a copy of ``wsgi.py`` (so Flask's
discovery finds it there) with the project on ``PYTHONPATH`` and no ``FLASK_APP``, on a database
of its own.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler import logs

ROOT = Path(__file__).resolve().parent.parent

#: Builds the schema, then either runs a ``flask`` command in this process (``flask ARGS...``) or
#: imports ``wsgi:app`` as gunicorn does (``gunicorn``), waits for the first clock job to finish
#: (or 30 s), and reports whether the scheduler and senders run.
PROBE = """
import sys, threading
from scheduler import create_app
from scheduler.extensions import apscheduler, db

with create_app().app_context():
    db.create_all()
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
job_done = threading.Event()
apscheduler.add_listener(lambda event: job_done.set(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
if sys.argv[1] == "flask":
    from flask.cli import main
    sys.argv = ["flask", *sys.argv[2:]]
    try:
        main()
    except SystemExit:
        pass
else:
    from gunicorn.util import import_app
    import_app("wsgi:app")
    print("PROBE job ran:", job_done.wait(30))
threads = sorted(t.name.split("_")[0] for t in threading.enumerate() if t is not threading.main_thread())
print("PROBE wsgi imported:", "wsgi" in sys.modules)
print("PROBE threads:", " ".join(threads) or "-")
if apscheduler.running:
    from scheduler.reminders import engine
    engine.stop()
"""


def probe(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run :data:`PROBE` with ``args`` in ``tmp_path`` (holding a copy of wsgi.py)."""
    shutil.copy(ROOT / "wsgi.py", tmp_path / "wsgi.py")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("FLASK_APP", "FLASK_RUN_FROM_CLI", "TEST_DATABASE_URL", "LOG_LEVEL", "SCHEDULER_MODE")}
    clean.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'probe.db'}", SECRET_KEY="test",
                 SENDER_THREADS="2", PYTHONWARNINGS="ignore", **env)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, env=clean, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def probed(done: subprocess.CompletedProcess[str], what: str) -> str:
    """The value the probe printed for ``what``."""
    for line in done.stdout.splitlines():
        if line.startswith(f"PROBE {what}: "):
            return line.split(": ", 1)[1]
    raise AssertionError(done.stdout + done.stderr)


@pytest.mark.parametrize("command", [["--help"], ["routes"]], ids=["flask --help", "flask routes"])
def test_a_flask_command_loading_wsgi_starts_no_scheduler(tmp_path, command):
    done = probe(tmp_path, "flask", *command)
    assert probed(done, "wsgi imported") == "True"  # Flask found wsgi.py by itself
    assert "seed-demo" in done.stdout if command == ["--help"] else "/api/v1/events" in done.stdout
    assert probed(done, "threads") == "-"  # no APScheduler thread, no sender
    assert "scheduler started" not in done.stderr


def test_a_wsgi_server_importing_wsgi_starts_the_scheduler_quietly(tmp_path):
    done = probe(tmp_path, "gunicorn")
    assert probed(done, "job ran") == "True"
    threads = probed(done, "threads").split()
    assert "APScheduler" in threads and "sender-loop" in threads
    # the clock ran a job, and the log (WARNING by default) says nothing about it
    assert "Running job" not in done.stderr and "executed successfully" not in done.stderr
    assert "INFO" not in done.stderr


def test_log_level_info_shows_the_clocks_lines(tmp_path):
    done = probe(tmp_path, "gunicorn", LOG_LEVEL="info")
    assert probed(done, "job ran") == "True"
    assert "INFO apscheduler.executors.default: Running job" in done.stderr
    assert "executed successfully" in done.stderr
    assert "scheduler started in-process with 2 sender threads" in done.stderr


@pytest.fixture
def root_logging():
    """Put the root logger and the console provider's logger back as they were."""
    root, console = logging.getLogger(), logging.getLogger(logs.CONSOLE_SMS_LOGGER)
    saved = root.level, list(root.handlers), console.level
    yield root
    root.setLevel(saved[0])
    for handler in root.handlers[:]:
        if handler not in saved[1]:
            root.removeHandler(handler)
    console.setLevel(saved[2])


def test_configure_sets_the_level_and_keeps_the_console_providers_texts(root_logging):
    logs.configure("warning")
    assert root_logging.level == logging.WARNING
    assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger(logs.CONSOLE_SMS_LOGGER).getEffectiveLevel() == logging.INFO
    logs.configure("DEBUG")
    assert root_logging.level == logging.DEBUG
    assert logging.getLogger(logs.CONSOLE_SMS_LOGGER).getEffectiveLevel() == logging.DEBUG
    assert logs.level_of("") == logging.WARNING
    with pytest.raises(ValueError, match="LOG_LEVEL must be one of"):
        logs.configure("loud")
