"""All user text is escaped, and every form needs its CSRF token: a script typed into every text field of every form never comes back
as markup, neither on the page that answers the form nor on any page that shows it later.

The test does not know the forms: it walks the site from its menus (as a visitor, then as an
organizer), reads every form it finds, and sends each one twice: once with the script in every
text field (so error pages echo it back; a POST form first without its CSRF token, refused), and once with plausible values in the fields that have
a format (phone, e-mail, URL, dates, numbers) so that the free-text fields are stored. Then it
walks every page again and looks for the script.
"""
from __future__ import annotations

import datetime as dt
import itertools
import re
from urllib.parse import urlencode, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from scheduler.auth.models import Role
from scheduler.targets.operations import seed_city_targets
from tests.factories import CST, create_city, create_event, create_user
from tests.pages import fresh_token, sign_in
from tests.walker import SKIP, Form, PageParser, Walker

PAYLOAD = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
#: What must never appear in a page: the payload's tags, unescaped.
RAW = ("<script>alert", "<img src=x")
#: Text-like fields (everything else keeps its value or gets a plausible one).
TEXT_TYPES = {"text", "search", "textarea", "tel", "email", "url", ""}
_phones = itertools.count(100)


#: Free text (names, titles, descriptions, places, reasons…): the script goes in these when the
#: form is sent with plausible values; a field with a format keeps what the form gave it.
FREE_TEXT = ("name", "title", "description", "venue", "address", "reason", "q", "meeting_point", "theme",
             "audience", "partners", "tracks", "note", "notes")


def _plausible(name: str, kind: str, value: str) -> str:
    """A value the field's format accepts (so that the form's free text is stored)."""
    lowered = name.lower()
    if kind == "tel" or "phone" in lowered:
        return f"13800138{next(_phones):03d}"
    if kind == "email" or "email" in lowered:
        return "someone@example.org"
    if kind == "url" or lowered == "url":
        return "https://hooks.example.org/in"
    if lowered.rsplit(".", 1)[-1] in FREE_TEXT:
        return PAYLOAD
    return value


def _data(form: Form, plausible: bool) -> list[tuple[str, str]]:
    data: list[tuple[str, str]] = []
    for item in form.fields:
        if item["type"] in TEXT_TYPES or item["type"] == "textarea":
            text = _plausible(item["name"], item["type"], item["value"]) if plausible else PAYLOAD
            data.append((item["name"], text))
        elif item["type"] not in ("file",):
            data.append((item["name"], item["value"]))
    for name, options in form.selects.items():
        chosen = [value for value, selected in options if selected] or [value for value, _ in options if value][:1]
        data.extend((name, value) for value in chosen)
    if form.buttons:
        data.append(form.buttons[0])
    return data


def _check(path: str, body: str) -> None:
    for raw in RAW:
        assert raw not in body, f"{path}: unescaped user text: …{body[max(0, body.find(raw) - 200):body.find(raw) + 100]}…"


class Filler:
    """Submits every form the walker meets (once per set of fields), and checks every answer."""

    def __init__(self, client) -> None:
        self.client = client
        self.walker = Walker(client, self.on_page)
        self.submitting = True
        self.submitted: set[tuple[str, str]] = set()
        self.filled: set[str] = set()
        #: Pages (other than the form's answer) showing the escaped script.
        self.stored: set[str] = set()

    def on_page(self, path: str, body: str, parser: PageParser) -> None:
        """Check the page; submit its forms."""
        _check(path, body)
        if self.submitting:
            for form in parser.forms:
                self._submit(form)

    def _submit(self, form: Form) -> None:
        target = urlsplit(form.action).path
        names = tuple(sorted(f["name"] for f in form.fields))
        if form.multipart or any(s in target for s in SKIP) or (target, str(names)) in self.submitted:
            return
        self.submitted.add((target, str(names)))
        if form.method == "post":  # CSRF on every form: refused without the token
            assert "csrf_token" in names, f"POST {target}: a form without a CSRF token"
            without = [(name, value) for name, value in _data(form, True) if name != "csrf_token"]
            assert self.client.post(target, data=MultiDict(without)).status_code == 400, f"POST {target} without CSRF token"
        if not any(f["type"] in TEXT_TYPES or f["type"] == "textarea" for f in form.fields if f["type"] != "hidden"):
            return
        for plausible in (False, True):
            fresh_token()
            data = _data(form, plausible)
            self.filled.update(name for name, value in data if value == PAYLOAD)
            if form.method == "post":
                response = self.client.post(target, data=MultiDict(data), follow_redirects=True)
            else:
                response = self.client.get(target + "?" + urlencode(data), follow_redirects=True)
            body = response.get_data(as_text=True)
            _check(f"{form.method.upper()} {target}", body)
            if "&lt;script&gt;alert" in body and response.request.path != target:
                self.stored.add(response.request.path)


@pytest.fixture
def city(ctx):
    orgs = create_city()
    seed_city_targets(2024)
    return orgs


def test_no_text_typed_into_a_form_comes_back_as_markup(app, city, clock) -> None:
    clock.set(dt.datetime(2024, 6, 15, 10, 0, tzinfo=CST))
    tour = create_event(city["xinhui"], publish=True, capacity=1, title="研学 <b>一</b>")
    create_event(city["kaiping"], publish=True, kind="matchmaking", title="邑科汇",
                 starts_at=dt.datetime(2024, 6, 1, 9, tzinfo=CST), ends_at=dt.datetime(2024, 6, 1, 17, tzinfo=CST),
                 details={"sector": "new_energy"})
    organizer = create_user(Role.MANAGER, city["bureau"])

    visitor = Filler(app.test_client())
    visitor.walker.walk(["/", f"/events/{tour.id}", "/registrations/cancel", "/calendars", "/login"])
    staff = Filler(app.test_client())
    assert sign_in(staff.client, organizer.email).status_code == 302
    staff.walker.walk(["/organizer"])

    filled = visitor.filled | staff.filled
    assert {"name", "phone", "token", "email", "title", "description", "reason", "venue", "url",
            "details.meeting_point", "q"} <= filled, sorted(filled)
    # Walk everything again, as both, now that the script is stored wherever a form keeps text.
    visitor.submitting = staff.submitting = False
    pages = {**visitor.walker.walk(["/", "/calendars"]), **staff.walker.walk(["/organizer"])}
    stored = {path for path, body in pages.items() if "&lt;script&gt;alert" in body} | visitor.stored | staff.stored
    # stored where participants, events, endpoints and deliveries are shown (else the test proves nothing)
    for shown in (r"^/events/\d+$", r"^/organizer/events/\d+/registrations$", r"^/organizer/events/\d+$",
                  r"^/organizer/endpoints/\d+$", r"^/organizer/deliveries"):
        assert any(re.match(shown, path) for path in stored), (shown, sorted(stored))
