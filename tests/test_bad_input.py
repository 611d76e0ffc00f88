"""Bad input gets a clear error and changes nothing.

A walk through every kind of bad input the API must refuse. Each case sends one bad
request and checks the status, the error code, the field that ``error.fields`` names,
and that nothing was written: the rows of ``events``, ``registrations`` and
``event_outcomes`` are counted, and the event is re-read, before and after.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from scheduler.events.models import Event, EventOutcome
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.registrations.models import Registration
from tests.factories import CST, auth, create_event, create_org, create_user, event_body

ORG = "xinhui"
JSON = "application/json"
#: Removes a key from a valid body (``{"title": DROP}``: the title is missing).
DROP = object()
#: The default factory event (a study tour) runs 2024-06-22 09:00-12:00 +08:00, a week after NOW.
EVENT_DAY = dt.datetime(2024, 6, 22, tzinfo=CST)
PHONE = "13800138000"
#: A valid registration body.
REGISTRANT = {"name": "张三", "phone": PHONE, "consent": NOTICE_VERSION}

STUDY_TOUR = {"meeting_point": "江门市科技馆北门", "age_min": 12, "age_max": 18}
#: A valid ``details`` for each kind, for an event on 2024-07-06.
VALID_DETAILS: dict[str, dict[str, Any]] = {
    "science_carnival": {"theme": "光与影", "booths": 30},
    "tech_week": {"theme": "科技强国", "sessions": [{"title": "开幕式", "starts_at": "2024-07-06T09:00:00+08:00"}]},
    "study_tour": STUDY_TOUR,
    "matchmaking": {"sector": "new_energy"},
    "contest": {"registration_deadline": "2024-06-30T18:00:00+08:00", "final_at": "2024-07-06T09:00:00+08:00"},
}


# --- helpers ---------------------------------------------------------------------------------


def assert_error(response: TestResponse, status: int, code: str | None = None, field: str | None = None) -> dict[str, Any]:
    """Assert the API's error shape, ``status`` and ``code``; with ``field``, that it alone is named.

    Returns the ``error`` object.
    """
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.is_json, text
    body = response.get_json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) <= {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    fields = error.get("fields", {})
    assert isinstance(fields, dict), error
    assert all(isinstance(name, str) and isinstance(message, str) and message.strip() for name, message in fields.items()), error
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert list(fields) == [field], error
    return error


def row_counts() -> dict[str, int]:
    """Rows of the tables a bad request must not touch."""
    tables = (Event, Registration, EventOutcome)
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) or 0 for model in tables}


@contextmanager
def nothing_changes(client: FlaskClient, headers: dict[str, str], *event_ids: int) -> Iterator[None]:
    """Assert that the block changes no row count and none of ``event_ids`` as the API shows them."""

    def state() -> tuple[dict[str, int], list[Any]]:
        events = [client.get(f"/api/v1/events/{event_id}", headers=headers).get_json() for event_id in event_ids]
        return row_counts(), events

    before = state()
    yield
    assert state() == before


def with_changes(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``changes`` applied (a value of :data:`DROP` removes the key)."""
    result = dict(body)
    for name, value in changes.items():
        if value is DROP:
            result.pop(name, None)
        else:
            result[name] = value
    return result


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def org(ctx) -> Organization:
    """The organizing county office; the editor below works for it."""
    return create_org(ORG, county="xinhui")


@pytest.fixture
def lab(org) -> Organization:
    """An organization below ``org`` (so the editor may move events there)."""
    return create_org("xinhui-lab", parent=org, county="xinhui")


@pytest.fixture
def headers(org) -> dict[str, str]:
    """An editor of ``org``."""
    return auth(create_user("editor", org))


@pytest.fixture
def draft(org) -> Event:
    """A draft study tour next week."""
    return create_event(org, capacity=10, details=STUDY_TOUR)


@pytest.fixture
def published(org) -> Event:
    """A published study tour next week, open for registration."""
    return create_event(org, publish=True, capacity=10, details=STUDY_TOUR)


# --- the request envelope, on every writing endpoint -------------------------------------------

#: endpoint name → (method, path with ``{id}``, a valid body)
WRITERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "create": ("POST", "/api/v1/events", event_body(ORG)),
    "update": ("PATCH", "/api/v1/events/{id}", {"title": "新标题"}),
    "cancel": ("POST", "/api/v1/events/{id}/cancel", {"reason": "台风预警"}),
    "outcome": ("PUT", "/api/v1/events/{id}/outcome", {"attendance": 30}),
    "register": ("POST", "/api/v1/events/{id}/registrations", REGISTRANT),
}

def raw(data: str | dict[str, str], content_type: str | None = JSON) -> dict[str, Any]:
    """Request arguments that send ``data`` as it is, with ``content_type`` (none when ``None``)."""
    return {"data": data} if content_type is None else {"data": data, "content_type": content_type}


#: (how to send a valid body badly, status, code, field)
ENVELOPES = [
    pytest.param(lambda body: raw(json.dumps(body)[:-5]), 400, "malformed_json", None, id="malformed-json"),
    pytest.param(lambda body: raw("{'title': 'x'}"), 400, "malformed_json", None, id="single-quoted-json"),
    pytest.param(lambda body: raw(""), 400, "malformed_json", None, id="empty-body"),
    pytest.param(lambda body: raw("[" * 5000 + "]" * 5000), 400, "malformed_json", None, id="deeply-nested-json"),
    pytest.param(lambda body: raw('{"title": "\\ud800"}'), 400, "malformed_json", None, id="lone-surrogate"),
    pytest.param(lambda body: {"json": [body]}, 422, "invalid", "body", id="json-array"),
    pytest.param(lambda body: {"json": "event"}, 422, "invalid", "body", id="json-string"),
    pytest.param(lambda body: raw("null"), 422, "invalid", "body", id="json-null"),
    pytest.param(lambda body: raw(json.dumps(body), None), 415, "unsupported_media_type", None, id="missing-content-type"),
    pytest.param(lambda body: raw(json.dumps(body), "text/plain"), 415, "unsupported_media_type", None, id="text-content-type"),
    pytest.param(lambda body: raw({"title": "x"}, None), 415, "unsupported_media_type", None, id="form-encoded"),
    pytest.param(lambda body: {"json": {**body, "colour": "red"}}, 422, "invalid", "colour", id="unknown-field"),
]


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize(("send", "status", "code", "field"), ENVELOPES)
def test_request_envelope_refused(client, headers, published, writer, send, status, code, field):
    method, path, body = WRITERS[writer]
    with nothing_changes(client, headers, published.id):
        response = client.open(path.format(id=published.id), method=method, headers=headers, **send(body))
    error = assert_error(response, status, code, field)
    if field == "colour":
        assert error["fields"]["colour"] == "Unknown field."


# --- POST /api/v1/events ---------------------------------------------------------------------

RRULE_CASES = [
    pytest.param({"rrule": "every saturday"}, "rrule", id="rrule-garbage"),
    pytest.param({"rrule": "FREQ=WEEKLY"}, "rrule", id="rrule-without-count-or-until"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=400"}, "rrule", id="rrule-too-many-occurrences"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=99999999999999999999"}, "rrule", id="rrule-huge-count"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=2\r\nX-EVIL:1"}, "rrule", id="rrule-line-injection"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=2\nDTSTART:20240101T000000Z"}, "rrule", id="rrule-dtstart-injection"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=2;X-EVIL=1"}, "rrule", id="rrule-unknown-part"),
    pytest.param({"rrule": "FREQ=FORTNIGHTLY;COUNT=2"}, "rrule", id="rrule-unknown-frequency"),
    pytest.param({"rrule": "FREQ=DAILY;BYHOUR=99;COUNT=2"}, "rrule", id="rrule-hour-out-of-range"),
    pytest.param({"rrule": "FREQ=DAILY;INTERVAL=0;COUNT=2"}, "rrule", id="rrule-interval-zero"),
    pytest.param({"rrule": "FREQ=WEEKLY;INTERVAL=-1;COUNT=3"}, "rrule", id="rrule-interval-negative"),
    pytest.param({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=2"}, "rrule", id="rrule-never-matches"),
    pytest.param({"rrule": "FREQ=MINUTELY;COUNT=2"}, "rrule", id="rrule-sub-daily"),
    pytest.param({"rrule": "FREQ=YEARLY;BYWEEKNO=60;COUNT=2"}, "rrule", id="rrule-byweekno"),
    pytest.param({"rrule": "FREQ=WEEKLY;BYDAY=2MO;COUNT=2"}, "rrule", id="rrule-numbered-byday-weekly"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=2;UNTIL=20240801T000000Z"}, "rrule", id="rrule-count-and-until"),
    pytest.param({"rrule": "FREQ=DAILY;UNTIL=20240801"}, "rrule", id="rrule-until-not-utc"),
    pytest.param({"rrule": "FREQ=DAILY;UNTIL=20200101T000000Z"}, "rrule", id="rrule-until-before-start"),
    pytest.param({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31;COUNT=2"}, "rrule", id="rrule-no-occurrence"),
    pytest.param({"rrule": "FREQ=MONTHLY;COUNT=24"}, "rrule", id="rrule-spans-over-366-days"),
    pytest.param({"rrule": "x" * 501}, "rrule", id="rrule-501-chars"),
]

REMINDER_CASES = [
    pytest.param({"reminders": ["1 day"]}, "reminders", id="reminder-not-a-duration"),
    pytest.param({"reminders": ["PT1M"]}, "reminders", id="reminder-under-5-minutes"),
    pytest.param({"reminders": ["P91D"]}, "reminders", id="reminder-over-90-days"),
    pytest.param({"reminders": ["-P1D"]}, "reminders", id="reminder-negative"),
    pytest.param({"reminders": ["P1D", "P1D"]}, "reminders", id="reminder-duplicate"),
    pytest.param({"reminders": ["P1D", "PT24H"]}, "reminders", id="reminder-duplicate-written-differently"),
    pytest.param({"reminders": "P1D"}, "reminders", id="reminders-not-a-list"),
    pytest.param({"reminders": [86400]}, "reminders.0", id="reminder-as-number"),
    pytest.param({"reminders": [f"PT{hours}H" for hours in range(1, 12)]}, "reminders", id="reminders-more-than-10"),
]

CREATE_CASES = [
    # wrong types (the body is read strictly: no "40" for 40)
    pytest.param({"capacity": "40"}, "capacity", id="capacity-as-string"),
    pytest.param({"capacity": 2.5}, "capacity", id="capacity-fractional"),
    pytest.param({"title": 42}, "title", id="title-as-number"),
    pytest.param({"all_day": "true"}, "all_day", id="all_day-as-string"),
    pytest.param({"details": ["meeting_point"]}, "details", id="details-as-list"),
    pytest.param({"latitude": "22.6"}, "latitude", id="latitude-as-string"),
    pytest.param({"starts_at": 1720225800}, "starts_at", id="start-as-number"),
    # missing, null, blank and unknown fields
    pytest.param({"title": DROP}, "title", id="missing-title"),
    pytest.param({"kind": DROP}, "kind", id="missing-kind"),
    pytest.param({"starts_at": DROP}, "starts_at", id="missing-start"),
    pytest.param({"title": None}, "title", id="null-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"status": "published"}, "status", id="status-cannot-be-set"),
    pytest.param({"details": {**STUDY_TOUR, "bus": 3}}, "details.bus", id="unknown-field-in-details"),
    # kind, organization, time zone
    pytest.param({"kind": "lecture"}, "kind", id="unknown-kind"),
    pytest.param({"kind": "Study_Tour"}, "kind", id="kind-wrong-case"),
    pytest.param({"org": "atlantis"}, "org", id="unknown-org"),
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", id="unknown-time-zone"),
    pytest.param({"timezone": "../../etc/passwd"}, "timezone", id="time-zone-path"),
    pytest.param({"timezone": ""}, "timezone", id="time-zone-empty"),
    # times
    pytest.param({"ends_at": "2024-07-06T08:00:00+08:00"}, "ends_at", id="end-before-start"),
    pytest.param({"ends_at": "2024-07-06T08:30:00+08:00"}, "ends_at", id="end-equals-start"),
    pytest.param({"ends_at": "2024-07-06T00:00:00+00:00"}, "ends_at", id="end-before-start-in-another-offset"),
    pytest.param({"all_day": True, "starts_at": "2024-07-06", "ends_at": "2024-07-05"}, "ends_at", id="all-day-end-before-start"),
    pytest.param({"ends_at": "2025-07-07T17:00:00+08:00"}, "ends_at", id="longer-than-366-days"),
    pytest.param({"starts_at": "2024-07-06T08:30:00"}, "starts_at", id="naive-start"),
    pytest.param({"ends_at": "2024-07-06T17:00:00"}, "ends_at", id="naive-end"),
    pytest.param({"starts_at": "2024-07-06"}, "starts_at", id="date-start-without-all_day"),
    pytest.param({"starts_at": "next saturday"}, "starts_at", id="start-not-a-time"),
    pytest.param({"starts_at": "2024-02-30T08:30:00+08:00"}, "starts_at", id="start-impossible-date"),
    pytest.param({"starts_at": "1999-12-31T08:00:00+08:00", "ends_at": DROP}, "starts_at", id="start-before-2000"),
    pytest.param({"starts_at": "0001-01-01T00:00:00+08:00", "ends_at": DROP}, "starts_at", id="start-before-year-1-in-utc"),
    pytest.param({"starts_at": "9999-12-31T23:00:00-05:00", "ends_at": DROP}, "starts_at", id="start-after-year-9999-in-utc"),
    pytest.param({"ends_at": "9999-12-31T23:00:00-05:00"}, "ends_at", id="end-after-year-9999-in-utc"),
    pytest.param({"all_day": True, "starts_at": "0001-01-01", "ends_at": DROP}, "starts_at", id="all-day-start-year-1"),
    # numbers and lengths
    pytest.param({"capacity": -1}, "capacity", id="negative-capacity"),
    pytest.param({"capacity": 10**30}, "capacity", id="capacity-huge"),
    pytest.param({"latitude": 91}, "latitude", id="latitude-out-of-range"),
    pytest.param({"title": "科" * 201}, "title", id="title-201-chars"),
    pytest.param({"description": "x" * 10_001}, "description", id="description-10001-chars"),
    pytest.param({"venue": "x" * 201}, "venue", id="venue-201-chars"),
    pytest.param({"address": "x" * 301}, "address", id="address-301-chars"),
    pytest.param({"org": "x" * 65}, "org", id="org-65-chars"),
    # text the database cannot store
    pytest.param({"title": "科普\x00日"}, "title", id="title-with-nul"),
    pytest.param({"description": "\x00"}, "description", id="description-with-nul"),
    pytest.param({"details": {**STUDY_TOUR, "meeting_point": "北门\x00"}}, "details", id="details-with-nul"),
    *RRULE_CASES,
    *REMINDER_CASES,
]


@pytest.mark.parametrize(("changes", "field"), CREATE_CASES)
def test_create_event_refused(client, headers, org, lab, changes, field):
    with nothing_changes(client, headers):
        response = client.post("/api/v1/events", json=with_changes(event_body(ORG), changes), headers=headers)
    assert_error(response, 422, "invalid", field)


def jul(day: int, hour: int) -> str:
    """``2024-07-<day>T<hour>:00:00+08:00``."""
    return f"2024-07-{day:02d}T{hour:02d}:00:00+08:00"


SESSION = {"title": "开幕式", "starts_at": jul(6, 9)}
CONTEST = VALID_DETAILS["contest"]  # registration closes 2024-06-30, final on 2024-07-06

#: (kind, details, the field of ``details`` named): each kind's own rules
DETAILS_CASES = [
    pytest.param("science_carnival", {"booths": -1}, "booths", id="carnival-negative-booths"),
    pytest.param("science_carnival", {"expected_attendance": "many"}, "expected_attendance", id="carnival-attendance-as-string"),
    pytest.param("science_carnival", {"mascot": "熊猫"}, "mascot", id="carnival-unknown-field"),
    pytest.param("tech_week", {"sessions": [{"starts_at": jul(6, 9)}]}, "sessions.0.title", id="tech-week-session-without-title"),
    pytest.param("tech_week", {"sessions": [{"title": "开幕式"}]}, "sessions.0.starts_at", id="tech-week-session-without-start"),
    pytest.param(
        "tech_week", {"sessions": [{**SESSION, "starts_at": "2024-07-06T09:00:00"}]}, "sessions.0.starts_at",
        id="tech-week-session-naive-start",
    ),
    pytest.param(
        "tech_week", {"sessions": [SESSION, {**SESSION, "ends_at": jul(6, 8)}]}, "sessions.1.ends_at",
        id="tech-week-session-ends-before-start",
    ),
    pytest.param("tech_week", {"sessions": "开幕式"}, "sessions", id="tech-week-sessions-not-a-list"),
    pytest.param("study_tour", {"age_min": 12}, "meeting_point", id="study-tour-without-meeting-point"),
    pytest.param("study_tour", {"meeting_point": "  "}, "meeting_point", id="study-tour-blank-meeting-point"),
    pytest.param("study_tour", {**STUDY_TOUR, "age_min": 18, "age_max": 12}, "age_min", id="study-tour-age-min-above-age-max"),
    pytest.param("study_tour", {**STUDY_TOUR, "age_min": -1}, "age_min", id="study-tour-negative-age"),
    pytest.param(
        "study_tour", {**STUDY_TOUR, "itinerary": [{"time": "25:00", "place": "实验室"}]}, "itinerary.0.time",
        id="study-tour-stop-bad-time",
    ),
    pytest.param(
        "study_tour", {**STUDY_TOUR, "itinerary": [{"time": "09:00"}]}, "itinerary.0.place", id="study-tour-stop-without-place",
    ),
    pytest.param("matchmaking", {"sector": "space_mining"}, "sector", id="matchmaking-unknown-sector"),
    pytest.param("matchmaking", {}, "sector", id="matchmaking-without-sector"),
    pytest.param(
        "matchmaking", {"sector": "new_energy", "achievements_planned": -3}, "achievements_planned",
        id="matchmaking-negative-plan",
    ),
    pytest.param("contest", {"final_at": jul(6, 9)}, "registration_deadline", id="contest-without-deadline"),
    pytest.param("contest", {**CONTEST, "registration_deadline": jul(7, 18)}, "final_at", id="contest-final-before-deadline"),
    pytest.param("contest", {**CONTEST, "preliminary_at": jul(10, 9)}, "final_at", id="contest-final-before-preliminary"),
    pytest.param("contest", {**CONTEST, "award_ceremony_at": jul(1, 9)}, "award_ceremony_at", id="contest-ceremony-before-final"),
    pytest.param(
        "contest", {**CONTEST, "registration_deadline": "2024-06-30T18:00:00"}, "registration_deadline",
        id="contest-naive-deadline",
    ),
    pytest.param(
        "contest", {**CONTEST, "registration_deadline": "9999-12-31T23:00:00-05:00"}, "registration_deadline",
        id="contest-deadline-after-year-9999-in-utc",
    ),
]


@pytest.mark.parametrize(("kind", "details", "field"), DETAILS_CASES)
def test_create_event_refuses_bad_details(client, headers, org, kind, details, field):
    body = event_body(ORG, kind=kind, details=details)
    with nothing_changes(client, headers):
        response = client.post("/api/v1/events", json=body, headers=headers)
    assert_error(response, 422, "invalid", f"details.{field}")


@pytest.mark.parametrize("kind", list(VALID_DETAILS))
def test_valid_details_of_every_kind_are_accepted(client, headers, org, kind):
    """The control of the table above: each kind's valid details pass, so the failures are the fields'."""
    response = client.post("/api/v1/events", json=event_body(ORG, kind=kind, details=VALID_DETAILS[kind]), headers=headers)
    assert response.status_code == 201, response.json


# --- PATCH /api/v1/events/<id> ---------------------------------------------------------------

UPDATE_CASES = [
    pytest.param({"title": None}, "title", id="null-title"),
    pytest.param({"starts_at": None}, "starts_at", id="null-start"),
    pytest.param({"org": None}, "org", id="null-org"),
    pytest.param({"all_day": None}, "all_day", id="null-all_day"),
    pytest.param({"description": None}, "description", id="null-description"),
    pytest.param({"venue": None}, "venue", id="null-venue"),
    pytest.param({"details": None}, "details.meeting_point", id="null-details-of-study-tour"),
    pytest.param({"kind": "contest"}, "kind", id="kind-cannot-change"),
    pytest.param({"status": "published"}, "status", id="status-cannot-change"),
    pytest.param({"id": 1}, "id", id="id-cannot-change"),
    pytest.param({"title": 42}, "title", id="title-as-number"),
    pytest.param({"capacity": "40"}, "capacity", id="capacity-as-string"),
    pytest.param({"all_day": "true"}, "all_day", id="all_day-as-string"),
    pytest.param({"capacity": -1}, "capacity", id="negative-capacity"),
    pytest.param({"title": "科" * 201}, "title", id="title-201-chars"),
    pytest.param({"description": "x" * 10_001}, "description", id="description-10001-chars"),
    pytest.param({"title": "科普\x00日"}, "title", id="title-with-nul"),
    pytest.param({"org": "atlantis"}, "org", id="unknown-org"),
    pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", id="unknown-time-zone"),
    pytest.param({"ends_at": "2024-06-22T08:00:00+08:00"}, "ends_at", id="end-before-start"),
    pytest.param(
        {"starts_at": "2024-06-22T13:00:00+08:00", "ends_at": "2024-06-22T12:00:00+08:00"}, "ends_at", id="start-moved-after-end",
    ),
    pytest.param({"starts_at": "2024-06-22T09:00:00"}, "starts_at", id="naive-start"),
    pytest.param({"starts_at": "9999-12-31T23:00:00-05:00"}, "starts_at", id="start-after-year-9999-in-utc"),
    pytest.param({"details": {"age_min": 12}}, "details.meeting_point", id="details-without-meeting-point"),
    pytest.param(
        {"details": {**STUDY_TOUR, "age_min": 18, "age_max": 12}}, "details.age_min",
        id="details-age-min-above-age-max",
    ),
    pytest.param({"details": {**STUDY_TOUR, "bus": 3}}, "details.bus", id="unknown-field-in-details"),
    pytest.param({"rrule": "FREQ=WEEKLY"}, "rrule", id="rrule-without-count-or-until"),
    pytest.param({"rrule": "FREQ=DAILY;COUNT=2\r\nX-EVIL:1"}, "rrule", id="rrule-line-injection"),
    pytest.param({"reminders": ["1 day"]}, "reminders", id="reminder-not-a-duration"),
    pytest.param({"reminders": ["P1D", "P1D"]}, "reminders", id="reminder-duplicate"),
    # a valid change next to an invalid one: all or nothing
    pytest.param({"title": "新标题", "ends_at": "2024-06-22T08:00:00+08:00"}, "ends_at", id="valid-title-with-bad-end"),
    pytest.param({"org": "xinhui-lab", "ends_at": "2024-06-22T08:00:00+08:00"}, "ends_at", id="valid-org-with-bad-end"),
    pytest.param({"reminders": ["P2D"], "timezone": "Mars/Olympus_Mons"}, "timezone", id="valid-reminders-with-bad-time-zone"),
    pytest.param({"details": {"meeting_point": "南门"}, "rrule": "FREQ=WEEKLY"}, "rrule", id="valid-details-with-bad-rrule"),
    pytest.param(
        {"capacity": 50, "venue": "五邑大学", "rrule": "FREQ=DAILY;COUNT=400"}, "rrule",
        id="valid-capacity-and-venue-with-bad-rrule",
    ),
    pytest.param(
        {"org": "xinhui-lab", "details": {"meeting_point": ""}}, "details.meeting_point",
        id="valid-org-with-bad-details",
    ),
]


@pytest.mark.parametrize("status", ["draft", "published"])
@pytest.mark.parametrize(("changes", "field"), UPDATE_CASES)
def test_update_event_refused(client, headers, lab, draft, published, changes, field, status):
    event = draft if status == "draft" else published
    with nothing_changes(client, headers, event.id):
        response = client.patch(f"/api/v1/events/{event.id}", json=changes, headers=headers)
    assert_error(response, 422, "invalid", field)


# --- state conflicts: publish, cancel, PATCH of a finished event --------------------------------


def _cancel(client: FlaskClient, headers: dict[str, str], event: Event) -> None:
    response = client.post(f"/api/v1/events/{event.id}/cancel", json={"reason": "台风预警"}, headers=headers)
    assert response.status_code == 200, response.json


def _complete(client: FlaskClient, headers: dict[str, str], event: Event, clock) -> None:
    clock.set(EVENT_DAY.replace(hour=13))
    response = client.put(f"/api/v1/events/{event.id}/outcome", json={"attendance": 8}, headers=headers)
    assert response.json["status"] == "completed", response.json


#: (state the published event is brought into, "METHOD action" on the event, body, code): all 409
CONFLICT_CASES = [
    pytest.param("published", "POST /publish", None, "invalid_transition", id="publish-twice"),
    pytest.param("cancelled", "POST /publish", None, "invalid_transition", id="publish-cancelled"),
    pytest.param("cancelled", "POST /cancel", {"reason": "又下雨了"}, "invalid_transition", id="cancel-twice"),
    pytest.param("completed", "POST /cancel", {"reason": "太晚了"}, "invalid_transition", id="cancel-completed"),
    pytest.param("cancelled", "PATCH ", {"title": "新标题"}, "not_editable", id="patch-cancelled"),
    pytest.param("completed", "PATCH ", {"title": "新标题"}, "not_editable", id="patch-completed"),
    pytest.param("cancelled", "PUT /outcome", {"attendance": 8}, "invalid_transition", id="outcome-of-cancelled"),
]


@pytest.mark.parametrize(("state", "request_", "body", "code"), CONFLICT_CASES)
def test_state_conflicts(client, headers, published, clock, state, request_, body, code):
    if state == "cancelled":
        _cancel(client, headers, published)
    elif state == "completed":
        _complete(client, headers, published, clock)
    method, action = request_.split(" ")
    with nothing_changes(client, headers, published.id):
        response = client.open(f"/api/v1/events/{published.id}{action}", method=method, json=body, headers=headers)
    assert_error(response, 409, code)


def test_publish_draft_twice(client, headers, draft):
    assert client.post(f"/api/v1/events/{draft.id}/publish", headers=headers).status_code == 200
    with nothing_changes(client, headers, draft.id):
        response = client.post(f"/api/v1/events/{draft.id}/publish", headers=headers)
    assert_error(response, 409, "invalid_transition")


CANCEL_CASES = [
    pytest.param({"reason": ""}, "reason", id="empty-reason"),
    pytest.param({"reason": "   "}, "reason", id="blank-reason"),
    pytest.param({}, "reason", id="missing-reason"),
    pytest.param({"reason": None}, "reason", id="null-reason"),
    pytest.param({"reason": 12}, "reason", id="reason-as-number"),
    pytest.param({"reason": "雨" * 501}, "reason", id="reason-501-chars"),
    pytest.param({"reason": "台风\x00"}, "reason", id="reason-with-nul"),
]


@pytest.mark.parametrize(("body", "field"), CANCEL_CASES)
def test_cancel_refused(client, headers, published, body, field):
    with nothing_changes(client, headers, published.id):
        response = client.post(f"/api/v1/events/{published.id}/cancel", json=body, headers=headers)
    assert_error(response, 422, "invalid", field)


# --- PUT /api/v1/events/<id>/outcome -----------------------------------------------------------


def test_outcome_for_a_future_event(client, headers, published):
    with nothing_changes(client, headers, published.id):
        response = client.put(f"/api/v1/events/{published.id}/outcome", json={"attendance": 8}, headers=headers)
    assert_error(response, 409, "not_started")


def test_outcome_for_a_draft(client, headers, draft, clock):
    clock.set(EVENT_DAY.replace(hour=13))
    with nothing_changes(client, headers, draft.id):
        response = client.put(f"/api/v1/events/{draft.id}/outcome", json={"attendance": 8}, headers=headers)
    assert_error(response, 409, "invalid_transition")


OUTCOME_CASES = [
    pytest.param(
        "study_tour", {"attendance": 30, "achievements_presented": 3}, "achievements_presented", id="achievements-on-study-tour",
    ),
    pytest.param("science_carnival", {"achievements_matched": 1}, "achievements_matched", id="achievements-on-carnival"),
    pytest.param(
        "matchmaking", {"achievements_presented": 3, "achievements_matched": 5}, "achievements_matched",
        id="matched-above-presented",
    ),
    pytest.param(
        "matchmaking", {"achievements_presented": 9, "achievements_matched": 5, "achievements_commercialized": 6},
        "achievements_commercialized", id="commercialized-above-matched",
    ),
    pytest.param("matchmaking", {"attendance": -1}, "attendance", id="negative-attendance"),
    pytest.param("matchmaking", {"attendance": "30"}, "attendance", id="attendance-as-string"),
    pytest.param("matchmaking", {"achievements_presented": 2.5}, "achievements_presented", id="fractional-achievements"),
    pytest.param("matchmaking", {"notes": "x" * 5001}, "notes", id="notes-5001-chars"),
]


@pytest.mark.parametrize(("kind", "body", "field"), OUTCOME_CASES)
def test_outcome_refused(client, headers, org, clock, kind, body, field):
    event = create_event(org, publish=True, kind=kind, details=VALID_DETAILS[kind])
    clock.set(EVENT_DAY.replace(hour=13))  # the event is over
    with nothing_changes(client, headers, event.id):
        response = client.put(f"/api/v1/events/{event.id}/outcome", json=body, headers=headers)
    assert_error(response, 422, "invalid", field)


def test_outcome_refused_keeps_the_recorded_one(client, headers, org, clock):
    event = create_event(org, publish=True, kind="matchmaking", details={"sector": "new_energy"})
    clock.set(EVENT_DAY.replace(hour=10))  # started, not finished: the event stays published
    first = {"attendance": 40, "achievements_presented": 9, "achievements_matched": 4}
    assert client.put(f"/api/v1/events/{event.id}/outcome", json=first, headers=headers).status_code == 200
    with nothing_changes(client, headers, event.id):
        response = client.put(f"/api/v1/events/{event.id}/outcome", json={**first, "achievements_matched": 10}, headers=headers)
    assert_error(response, 422, "invalid", "achievements_matched")
    assert client.get(f"/api/v1/events/{event.id}", headers=headers).json["outcome"]["achievements_matched"] == 4


# --- POST /api/v1/events/<id>/registrations ------------------------------------------------------

REGISTRATION_CASES = [
    pytest.param({"phone": "12345"}, "phone", id="phone-too-short"),
    pytest.param({"phone": "138001380001"}, "phone", id="phone-too-long"),
    pytest.param({"phone": "abcdefghijk"}, "phone", id="phone-letters"),
    pytest.param({"phone": "0750-3500000"}, "phone", id="phone-landline"),
    pytest.param({"phone": "+86 750 350 0000"}, "phone", id="phone-landline-international"),
    pytest.param({"phone": ""}, "phone", id="phone-empty"),
    pytest.param({"phone": 13800138000}, "phone", id="phone-as-number"),
    pytest.param({"phone": DROP}, "phone", id="phone-missing"),
    pytest.param({"phone": "138\x0000138000"}, "phone", id="phone-with-nul"),
    pytest.param({"name": "张" * 101}, "name", id="name-101-chars"),
    pytest.param({"name": "   "}, "name", id="name-blank"),
    pytest.param({"name": DROP}, "name", id="name-missing"),
    pytest.param({"name": "张\x00三"}, "name", id="name-with-nul"),
    pytest.param({"channels": ["email"]}, "channels.0", id="email-channel-does-not-exist"),
    pytest.param({"channels": ["fax"]}, "channels.0", id="unknown-channel"),
    pytest.param({"channels": "sms"}, "channels", id="channels-not-a-list"),
    pytest.param({"channels": ["sms", "sms"]}, "channels", id="channels-too-many"),
    pytest.param({"email": "zhang@example.org"}, "email", id="email-not-collected"),
    pytest.param({"consent": DROP}, "consent", id="consent-missing"),
    pytest.param({"consent": ""}, "consent", id="consent-empty"),
    pytest.param({"consent": "2020-01"}, "consent", id="consent-to-an-old-notice"),
    pytest.param({"consent": True}, "consent", id="consent-not-a-version"),
]


@pytest.mark.parametrize(("changes", "field"), REGISTRATION_CASES)
def test_registration_refused(client, headers, published, changes, field):
    body = with_changes(REGISTRANT, changes)
    with nothing_changes(client, headers, published.id):
        response = client.post(f"/api/v1/events/{published.id}/registrations", json=body)
    assert_error(response, 422, "invalid", field)


def _contest(org: Organization) -> Event:
    """A published contest on 2024-06-29 whose registration closed on 2024-06-20."""
    details = {"registration_deadline": "2024-06-20T18:00:00+08:00", "final_at": "2024-06-29T09:00:00+08:00"}
    return create_event(
        org, publish=True, kind="contest", details=details,
        starts_at=dt.datetime(2024, 6, 29, 9, tzinfo=CST), ends_at=dt.datetime(2024, 6, 29, 17, tzinfo=CST),
    )


#: (how to get the event into its state, status, code)
CLOSED_CASES = [
    pytest.param("started", 409, "registration_closed", id="after-the-start"),
    pytest.param("at-the-start", 409, "registration_closed", id="at-the-start"),
    pytest.param("contest-deadline-passed", 409, "registration_closed", id="contest-after-its-deadline"),
    pytest.param("cancelled", 409, "registration_closed", id="cancelled-event"),
    pytest.param("completed", 409, "registration_closed", id="completed-event"),
    pytest.param("draft", 404, "not_found", id="draft-event"),
    pytest.param("missing", 404, "not_found", id="no-such-event"),
]


@pytest.mark.parametrize(("state", "status", "code"), CLOSED_CASES)
def test_registration_closed(client, headers, org, published, draft, clock, state, status, code):
    event_id = published.id
    if state == "started":
        clock.set(EVENT_DAY.replace(hour=9, minute=1))
    elif state == "at-the-start":
        clock.set(EVENT_DAY.replace(hour=9))
    elif state == "contest-deadline-passed":
        event_id = _contest(org).id
        clock.set(dt.datetime(2024, 6, 21, 9, tzinfo=CST))  # after the deadline, a week before the final
    elif state == "cancelled":
        _cancel(client, headers, published)
    elif state == "completed":
        _complete(client, headers, published, clock)
    elif state == "draft":
        event_id = draft.id
    elif state == "missing":
        event_id = published.id + 1000
    with nothing_changes(client, headers, published.id, draft.id):
        response = client.post(f"/api/v1/events/{event_id}/registrations", json=REGISTRANT)
    assert_error(response, status, code)


def test_contest_registration_open_before_its_deadline(client, org, clock):
    """The control of the contest case above: a day earlier, the same registration succeeds."""
    event = _contest(org)
    clock.set(dt.datetime(2024, 6, 20, 9, tzinfo=CST))
    response = client.post(f"/api/v1/events/{event.id}/registrations", json=REGISTRANT)
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    "again",
    [
        pytest.param("13800138000", id="same-digits"),
        pytest.param("+86 138 0013 8000", id="international-with-spaces"),
        pytest.param("+8613800138000", id="e164"),
        pytest.param("138-0013-8000", id="with-dashes"),
        pytest.param(" 13800138000 ", id="padded"),
    ],
)
def test_duplicate_phone(client, headers, published, again):
    first = client.post(f"/api/v1/events/{published.id}/registrations", json=REGISTRANT)
    assert first.status_code == 201, first.json
    with nothing_changes(client, headers, published.id):
        response = client.post(f"/api/v1/events/{published.id}/registrations", json={"name": "张三丰", "phone": again, "consent": NOTICE_VERSION})
    # without a proved number the answer does not say whether the number is registered
    error = assert_error(response, 409, "not_registered")
    assert PHONE[-4:] not in error["message"]


# --- authentication and permission -----------------------------------------------------------


@pytest.fixture
def other_editor(ctx) -> dict[str, str]:
    """An editor of another county's office."""
    return auth(create_user("editor", create_org("kaiping", county="kaiping")))


@pytest.fixture
def viewer(org) -> dict[str, str]:
    """A viewer of ``org``: may read drafts, not change them."""
    return auth(create_user("viewer", org))


HUGE_ID = 99999999999999999999  # beyond any integer column
BIG_ID = 3_000_000_000  # beyond PostgreSQL's ``integer``

#: (who, "METHOD path" below /api/v1 with ``{draft}``/``{published}``, body, status, code)
ACCESS_CASES = [
    pytest.param("nobody", "POST /events", event_body(ORG), 401, "unauthorized", id="create-without-token"),
    pytest.param("bad-token", "POST /events", event_body(ORG), 401, "invalid_token", id="create-with-unknown-token"),
    pytest.param("basic", "POST /events", event_body(ORG), 401, "unauthorized", id="create-with-basic-auth"),
    pytest.param("viewer", "POST /events", event_body(ORG), 403, "forbidden", id="create-as-viewer"),
    pytest.param("other", "POST /events", event_body(ORG), 403, "forbidden", id="create-for-another-org"),
    pytest.param("nobody", "PATCH /events/{published}", {"title": "x"}, 401, "unauthorized", id="patch-without-token"),
    pytest.param("viewer", "PATCH /events/{draft}", {"title": "x"}, 403, "forbidden", id="patch-as-viewer"),
    pytest.param("other", "PATCH /events/{published}", {"title": "x"}, 403, "forbidden", id="patch-another-orgs-event"),
    pytest.param("other", "PATCH /events/{draft}", {"title": "x"}, 404, "not_found", id="patch-another-orgs-draft"),
    pytest.param("editor", "PATCH /events/{draft}", {"org": "kaiping"}, 403, "forbidden", id="move-to-another-org"),
    pytest.param("other", "POST /events/{published}/cancel", {"reason": "x"}, 403, "forbidden", id="cancel-another-orgs-event"),
    pytest.param("nobody", "POST /events/{draft}/publish", None, 401, "unauthorized", id="publish-without-token"),
    pytest.param("nobody", "PUT /events/{published}/outcome", {"attendance": 1}, 401, "unauthorized", id="outcome-without-token"),
    pytest.param("editor", f"GET /events/{HUGE_ID}", None, 404, "not_found", id="read-id-beyond-bigint"),
    pytest.param("editor", f"PATCH /events/{HUGE_ID}", {"title": "x"}, 404, "not_found", id="patch-id-beyond-bigint"),
    pytest.param(
        "nobody", f"POST /events/{HUGE_ID}/registrations", REGISTRANT, 404, "not_found",
        id="register-id-beyond-bigint",
    ),
    pytest.param("editor", f"GET /events/{BIG_ID}", None, 404, "not_found", id="read-id-beyond-integer"),
    pytest.param("editor", f"POST /events/{BIG_ID}/cancel", {"reason": "x"}, 404, "not_found", id="cancel-id-beyond-integer"),
    pytest.param("editor", "DELETE /events/{published}", None, 403, "forbidden", id="delete-published-as-editor"),
    pytest.param("other", "DELETE /events/{draft}", None, 404, "not_found", id="delete-another-orgs-draft"),
    pytest.param("editor", "PUT /events/{draft}", {"title": "x"}, 405, "method_not_allowed", id="put-event-not-allowed"),
    pytest.param("editor", "POST /nothing-here", {}, 404, "not_found", id="unknown-path"),
]


@pytest.mark.parametrize(("who", "request_", "body", "status", "code"), ACCESS_CASES)
def test_refused_for_this_user_or_path(
    client, headers, other_editor, viewer, draft, published, who, request_, body, status, code
):
    as_user = {
        "nobody": {},
        "bad-token": {"Authorization": "Bearer not-a-token"},
        "basic": {"Authorization": "Basic dXNlcjpwdw=="},
        "viewer": viewer,
        "other": other_editor,
        "editor": headers,
    }[who]
    method, path = request_.split(" ")
    path = "/api/v1" + path.format(draft=draft.id, published=published.id)
    with nothing_changes(client, headers, draft.id, published.id):
        response = client.open(path, method=method, json=body, headers=as_user)
    assert_error(response, status, code)


# --- query parameters ------------------------------------------------------------------------

LIST_CASES = [
    pytest.param("colour=red", "colour", id="unknown-parameter"),
    pytest.param("kind=lecture", "kind.0", id="unknown-kind"),
    pytest.param("kind=study_tour,lecture", "kind.1", id="unknown-kind-in-list"),
    pytest.param("status=archived", "status.0", id="unknown-status"),
    pytest.param("month=2024-13", "month", id="month-13"),
    pytest.param("month=June", "month", id="month-as-name"),
    pytest.param("month=2024-6", "month", id="month-one-digit"),
    pytest.param("month=0000-01", "month", id="month-year-zero"),
    pytest.param("month=9999-12", "month", id="month-at-the-end-of-time"),
    pytest.param("per_page=101", "per_page", id="per-page-over-100"),
    pytest.param("per_page=0", "per_page", id="per-page-zero"),
    pytest.param("per_page=ten", "per_page", id="per-page-not-a-number"),
    pytest.param("page=0", "page", id="page-zero"),
    pytest.param("page=99999999999999999999", "page", id="page-huge"),
    pytest.param("org=atlantis", "org", id="unknown-org"),
    pytest.param("org=xinhui,atlantis", "org", id="unknown-org-in-list"),
    pytest.param("county=atlantis", "county", id="unknown-county"),
    pytest.param("from=2024-07-01&to=2024-06-01", "to", id="to-before-from"),
    pytest.param("from=2024-07-01&to=2024-07-01", "to", id="to-equals-from"),
    pytest.param("month=2024-06&from=2024-07-01", "to", id="from-after-month"),
    pytest.param("from=yesterday", "from", id="from-not-a-date"),
    pytest.param("from=2024-07-01T08:00:00", "from", id="from-naive-time"),
    pytest.param("to=0001-01-01", "to", id="to-year-1"),
    pytest.param("from=9999-12-31T23:00:00-05:00", "from", id="from-after-year-9999-in-utc"),
    pytest.param("q=" + "x" * 101, "q", id="search-101-chars"),
    pytest.param("q=%00", "q", id="search-with-nul"),
    pytest.param("org=%00", "org", id="org-with-nul"),
]


@pytest.mark.parametrize(("query", "field"), LIST_CASES)
def test_event_list_query_refused(client, headers, published, query, field):
    assert_error(client.get(f"/api/v1/events?{query}", headers=headers), 422, "invalid", field)


PROGRESS_CASES = [
    pytest.param("year=abc", "year", id="year-not-a-number"),
    pytest.param("year=2024.5", "year", id="year-fractional"),
    pytest.param("year=1999", "year", id="year-before-2000"),
    pytest.param("year=2101", "year", id="year-after-2100"),
    pytest.param("org=atlantis", "org", id="unknown-org"),
    pytest.param("org=%00", "org", id="org-with-nul"),
    pytest.param("colour=red", "colour", id="unknown-parameter"),
]


@pytest.mark.parametrize(("query", "field"), PROGRESS_CASES)
def test_progress_query_refused(client, org, query, field):
    assert_error(client.get(f"/api/v1/progress?{query}"), 422, "invalid", field)


REGISTRATION_LIST_CASES = [
    pytest.param("status=gone", "status.0", id="unknown-status"),
    pytest.param("per_page=501", "per_page", id="per-page-over-500"),
    pytest.param("colour=red", "colour", id="unknown-parameter"),
]


@pytest.mark.parametrize(("query", "field"), REGISTRATION_LIST_CASES)
def test_registration_list_query_refused(client, headers, published, query, field):
    response = client.get(f"/api/v1/events/{published.id}/registrations?{query}", headers=headers)
    assert_error(response, 422, "invalid", field)


@pytest.mark.parametrize("text", ["标\x0b题", "\x1b[31m红色", "a\x7fb"], ids=["vertical-tab", "escape", "delete"])
def test_control_characters_refused(client, text):
    """iCalendar allows no control characters in text, so they never get in."""
    from tests.factories import auth, create_org, create_user, event_body

    org = create_org("ctl-org")
    headers = auth(create_user("editor", org))
    response = client.post("/api/v1/events", json=event_body("ctl-org", title=text), headers=headers)
    assert response.status_code == 422
    assert response.json["error"]["fields"]["title"].endswith("text must not contain control characters")
