"""Sign-in sessions that don't make public answers vary by cookie."""
from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from werkzeug.wrappers import Response

#: Blueprints whose answers never depend on the session cookie (feeds, the token API, health).
COOKIE_FREE_BLUEPRINTS = frozenset({"feeds", "api", "health", "metrics"})


class SessionInterface(SecureCookieSessionInterface):
    """Flask-Login looks at the session after every request, which makes Flask add
    ``Vary: Cookie``; for answers that ignore the cookie that only defeats shared caches.
    """

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save as usual, but leave ``Vary: Cookie`` off the cookie-free blueprints' answers."""
        if request.blueprint in COOKIE_FREE_BLUEPRINTS and not session.modified:
            session.accessed = False  # type: ignore[attr-defined]
        super().save_session(app, session, response)
