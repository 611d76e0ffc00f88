"""The processes' log: one stderr handler on the root logger at ``LOG_LEVEL`` (WARNING by default).

Called by the entry points that serve or run the engine (``wsgi.py``, ``flask serve``, ``flask
scheduler run``, ``flask worker run``), never by ``create_app``: the tests and one-off commands
keep Python's defaults. At WARNING the clock's routine lines (APScheduler's "Running job ...",
"... executed successfully", "Added job", the engine's housekeeping counts) are left out, so a
password a command printed does not scroll away; ``LOG_LEVEL=INFO`` (or ``DEBUG``) shows them.
Nothing here changes what is logged: numbers stay masked, secrets and passwords out.
"""
from __future__ import annotations

import logging

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The development text provider's one line per text is its output, not chatter: shown at INFO
#: whatever ``LOG_LEVEL`` (its verification codes are logged at WARNING anyway).
CONSOLE_SMS_LOGGER = "scheduler.channels.sms.console"


def level_of(name: str | None) -> int:
    """The ``logging`` level named ``name`` (case-insensitive; empty: WARNING); ValueError otherwise."""
    value = (name or "WARNING").strip().upper()
    if value not in LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {name!r}")
    return int(logging.getLevelName(value))


def configure(level: str | None, *, with_pid: bool = False) -> None:
    """Send log records of ``level`` and above to stderr (the handler is added once per process)."""
    number = level_of(level)
    process = "[%(process)d]" if with_pid else ""
    logging.basicConfig(format=f"%(asctime)s %(levelname)s %(name)s{process}: %(message)s")
    logging.getLogger().setLevel(number)
    logging.getLogger(CONSOLE_SMS_LOGGER).setLevel(min(number, logging.INFO))
