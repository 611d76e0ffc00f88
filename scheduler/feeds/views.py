"""Feed endpoints: ``/calendars/...ics`` with validators and conditional answers."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, render_template, request
from werkzeug.datastructures import Headers
from werkzeug.http import http_date, is_resource_modified

from scheduler.api.errors import NotFound
from scheduler.events.queries import get_visible_event
from scheduler.events.schemas import parse_offset
from scheduler.feeds import scopes
from scheduler.feeds.links import subscribe_links
from scheduler.feeds.personal import phone_hash_for_token, registration_for_token
from scheduler.feeds.service import feed_for
from scheduler.util.urls import absolute_url

bp = Blueprint("feeds", __name__)

MAX_ALARMS = 5


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _alarms() -> tuple[dt.timedelta, ...]:
    """``?alarm=PT1H&alarm=P1D``: reminders the subscriber asked for (bad values → 400)."""
    values = request.args.getlist("alarm")
    if len(values) > MAX_ALARMS:
        abort(_plain(400, f"At most {MAX_ALARMS} alarms."))
    offsets = set()
    for value in values:
        try:
            offsets.add(parse_offset(value.strip()))
        except ValueError as exc:
            abort(_plain(400, f"alarm: {exc}"))
    return tuple(sorted(offsets))


def _csv(name: str) -> list[str]:
    return [part.strip() for value in request.args.getlist(name) for part in value.split(",") if part.strip()]


def _serve(scope: scopes.Scope | None, personal: bool = False) -> Response:
    if scope is None:
        return _plain(404, "No such calendar.")
    try:
        scope = scope.narrowed(_csv("kinds"), _csv("orgs"))
    except scopes.UnknownFilter as exc:
        return _plain(400, str(exc))
    feed = feed_for(scope, _alarms())
    packed = request.accept_encodings["gzip"] > 0
    etag = f"{feed.etag}-gz" if packed else feed.etag  # each representation its own validator
    headers = {
        "ETag": f'"{etag}"',
        "Last-Modified": http_date(feed.last_modified),
        "Cache-Control": ("private" if personal else "public") + ", max-age=300",
        "Vary": "Accept-Encoding",  # the only thing a feed's answer varies on
    }
    if _not_modified(feed.etag, feed.last_modified):
        return NotModified(status=304, headers=headers, mimetype="text/calendar")
    body = feed.gzipped() if packed else feed.body
    response = Response(body, content_type="text/calendar; charset=utf-8", headers=headers)
    if packed:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Content-Disposition"] = 'inline; filename="calendar.ics"'
    return response


class NotModified(Response):
    """A 304 that keeps ``Last-Modified``: werkzeug strips it as an entity header, yet calendar
    clients and caches revalidate with it (RFC 9110 lets a 304 carry it)."""

    def get_wsgi_headers(self, environ: dict[str, object]) -> Headers:  # type: ignore[override]
        """The headers werkzeug sends, with ``Last-Modified`` put back."""
        headers = super().get_wsgi_headers(environ)  # type: ignore[arg-type]
        if "Last-Modified" in self.headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def _not_modified(etag: str, last_modified: dt.datetime) -> bool:
    """Whether the client holds this feed already: either representation's ETag (plain or ``-gz``:
    a cache may have stored the other), else Last-Modified."""
    wanted = request.if_none_match
    if wanted:
        return wanted.contains(etag) or wanted.contains(f"{etag}-gz") or wanted.star_tag
    return not is_resource_modified(request.environ, last_modified=last_modified)


@bp.get("/calendars/all.ics")
def all_events() -> Response:
    """Every public event."""
    return _serve(scopes.all_scope())


@bp.get("/calendars/kinds/<kind>.ics")
def by_kind(kind: str) -> Response:
    """One kind of event."""
    return _serve(scopes.kind_scope(kind))


@bp.get("/calendars/orgs/<slug>.ics")
def by_org(slug: str) -> Response:
    """An organization and those below it."""
    return _serve(scopes.org_scope(slug))


@bp.get("/calendars/counties/<county>.ics")
def by_county(county: str) -> Response:
    """The organizations of one county."""
    return _serve(scopes.county_scope(county))


@bp.get("/calendars/personal/<token>.ics")
def personal(token: str) -> Response:
    """A registration's event, or every event a verified person registered for; waitlisted ones are
    TENTATIVE. A revoked link, or a cancelled or erased registration's, is a 404."""
    registration = registration_for_token(token)
    if registration is not None:
        return _serve(scopes.registration_scope(registration.id), personal=True)
    phone_hash = phone_hash_for_token(token)
    return _serve(scopes.person_scope(phone_hash) if phone_hash else None, personal=True)


@bp.get("/calendars/archive/<int:year>.ics")
def archive(year: int) -> Response:
    """Every public event that started in ``year``, kept for good (public feeds drop the past)."""
    return _serve(scopes.archive_scope(year))


@bp.get("/events/<int:event_id>.ics")
def single_event(event_id: int) -> Response:
    """One event, to add to a calendar."""
    try:
        get_visible_event(event_id, None)
    except NotFound:
        return _plain(404, "No such event.")
    return _serve(scopes.event_scope(event_id))


def feed_url(scope: scopes.Scope) -> str:
    """The absolute URL of a public feed."""
    kind, _, rest = scope.key.partition("/")
    if kind == "all":
        return absolute_url("feeds.all_events")
    if kind == "archive":
        return absolute_url("feeds.archive", year=int(rest))
    endpoint = {"kinds": ("feeds.by_kind", "kind"), "orgs": ("feeds.by_org", "slug"), "counties": ("feeds.by_county", "county")}[kind]
    return absolute_url(endpoint[0], **{endpoint[1]: rest})


@bp.get("/calendars")
def calendar_list() -> str:
    """Every public feed with its subscribe links."""
    feeds = [(scope, subscribe_links(feed_url(scope))) for scope in scopes.every_public_scope()]
    return render_template("calendars.html", feeds=feeds)
