"""The error pages: 400, 403, 404, 405, 413, 429, 500 and a CSRF failure, in the site's layout and language.

The API keeps its JSON errors (its blueprint's handlers, and :func:`scheduler.api.unrouted_error`
for unknown ``/api/`` addresses); every other failure is a page of ``error.html``:

* **404** helps: a search box for the events and a few upcoming public events.
* **500** never shows the exception. The database session is rolled back first; if the page
  cannot be rendered with the layout (which may read the database for the signed-in user), the
  standalone ``error_minimal.html`` is, and failing that a plain sentence.
* **CSRF failure** (most often a form left open longer than ``WTF_CSRF_TIME_LIMIT``, an hour):
  a view marked :func:`reshown_on_csrf_failure` is run again, so its form comes back as typed
  (its ``FlaskForm`` refuses the expired token, so nothing is done; password fields are not
  re-shown), with a fresh token and the reason (``g.csrf_failed``, shown by ``base.html``), status
  400. A blueprint may handle ``CSRFError`` itself (the registration form does, see
  :mod:`scheduler.pages.public`); anything else gets the reason and a link back to the page.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, make_response, render_template, request, url_for
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

#: How many upcoming events the 404 page suggests.
SUGGESTED = 5

#: Each status's heading and explanation, in the page's language.
MESSAGES = {
    400: (lazy_gettext("The request could not be understood"),
          lazy_gettext("What the browser sent could not be understood. Go back and try again.")),
    403: (lazy_gettext("You may not open this page"),
          lazy_gettext("Your account does not have the right to see or change this. If you think it should, "
                       "ask a manager of your organization.")),
    404: (lazy_gettext("Page not found"),
          lazy_gettext("There is no page at this address: it may have moved, or the event may have been "
                       "removed. Search the events, or pick one of the upcoming events below.")),
    405: (lazy_gettext("This page cannot be opened this way"),
          lazy_gettext("This address does not accept this kind of request. Go back and use the page's links and buttons.")),
    413: (lazy_gettext("What was sent is too large"),
          lazy_gettext("What was sent is larger than the site accepts (%(size)s MB at most). Send less and try again.")),
    429: (lazy_gettext("Too many requests"),
          lazy_gettext("Too many requests from your address: please wait a few minutes and try again.")),
    500: (lazy_gettext("Something went wrong"),
          lazy_gettext("Something went wrong on our side and nothing was saved. Please try again in a moment.")),
}
OTHER = (lazy_gettext("The request could not be completed"), lazy_gettext("Go back and try again."))
CSRF_TITLE = lazy_gettext("The page was open too long")
#: Also shown above a form that comes back after a CSRF failure (``base.html``, the registration form).
CSRF_EXPIRED = lazy_gettext("The page was open too long, so what you sent was not accepted: "
                            "check what you typed and send it again.")

F = TypeVar("F", bound=Callable[..., Any])


def reshown_on_csrf_failure(view: F) -> F:
    """Mark ``view`` safe to run again on a CSRF failure: it changes nothing unless its ``FlaskForm``
    validates (which an expired or missing token never does), so running it shows the form as typed."""
    view.reshown_on_csrf_failure = True  # type: ignore[attr-defined]
    return view


def _size_mb() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return f"{limit / (1024 * 1024):g}"


def _upcoming() -> list[dict[str, Any]]:
    """A few upcoming published events (nothing when the database cannot say)."""
    from scheduler.events.presenters import present_events
    from scheduler.events.queries import list_events
    from scheduler.events.schemas import EventListQuery
    from scheduler.util.time import now

    try:
        query = EventListQuery.model_validate({"status": "published", "from": now(), "per_page": SUGGESTED})
        events, _total = list_events(query, None)
        return present_events(events)
    except Exception:  # noqa: BLE001 - the 404 page shows without suggestions rather than fail
        log.exception("the 404 page could not list upcoming events")
        _rollback()
        return []


def _rollback() -> None:
    from scheduler.extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a broken connection: the page renders without the database
        log.exception("rolling back before an error page failed")


def _back_link() -> str | None:
    """The page the request came from, when it is on this site (its path and query), else ``None``."""
    from scheduler.auth.views import safe_next

    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != request.host:
        return None
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def _page(status: int, title: Any, message: Any, **extra: Any) -> Response:
    return make_response(render_template("error.html", status=status, title=title, message=message, **extra), status)


def error_page(exc: HTTPException) -> Response | HTTPException:
    """The page of an HTTP error (JSON for unknown ``/api/`` addresses, as the API answers)."""
    from scheduler.api import unrouted_error

    if exc.code is None or exc.code < 400:
        return exc
    api = unrouted_error(exc)
    if api is not None:
        return api
    if exc.code >= 500:
        return server_error(exc)
    title, message = MESSAGES.get(exc.code, OTHER)
    extra: dict[str, Any] = {}
    if exc.code == 404:
        extra["events"] = _upcoming()
    elif exc.code == 413:
        message = str(message) % {"size": _size_mb()}
    response = _page(exc.code, title, message, **extra)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response


def server_error(exc: HTTPException) -> Response:
    """The 500 page: no detail of the failure; rendered even when the database session is broken."""
    _rollback()
    code = exc.code if exc.code and exc.code >= 500 else 500
    title, message = MESSAGES[500]
    try:
        return _page(code, title, message)
    except Exception:  # noqa: BLE001 - the layout needs the database (the signed-in user) or failed
        log.exception("the error page could not be rendered; showing the minimal one")
    _rollback()
    try:
        return make_response(render_template("error_minimal.html", title=title, message=message), code)
    except Exception:  # noqa: BLE001 - not even a template: a plain sentence
        log.exception("the minimal error page could not be rendered")
    return Response("Something went wrong on our side; nothing was saved.\n", code, mimetype="text/plain")


def csrf_failed(exc: CSRFError) -> Response:
    """A form sent with an expired or missing token: the form again as typed, or the reason and a link back."""
    g.csrf_failed = True
    view = current_app.view_functions.get(request.endpoint or "")
    # Only a token refused (expired, missing, not this session's) makes the view's form refuse it too;
    # over https a missing or foreign Referer is refused with a token the form would accept.
    if view is not None and getattr(view, "reshown_on_csrf_failure", False) and "referrer" not in (exc.description or ""):
        try:
            response = make_response(current_app.ensure_sync(view)(**(request.view_args or {})))
        except HTTPException as again:  # e.g. the sign-in's rate limit: that error's own handler answers
            return make_response(current_app.handle_http_exception(again))
        if response.status_code < 300:
            response.status_code = 400
        return response
    return _page(400, CSRF_TITLE, CSRF_EXPIRED, back=_back_link() or url_for("pages.event_list"), csrf=True)


def init_app(app: Flask) -> None:
    """Answer every HTTP error outside the API with a page, a CSRF failure with the form again."""
    app.register_error_handler(HTTPException, error_page)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(CSRFError, csrf_failed)
