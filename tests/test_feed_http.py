"""Public feeds over HTTP: past events age out into yearly archives, gzip, Vary, 304s."""
from __future__ import annotations

import datetime as dt
import gzip

import pytest
from icalendar import Calendar

from scheduler.extensions import db
from tests.conftest import NOW
from tests.factories import CST, create_event, create_org


@pytest.fixture
def org(ctx):
    return create_org("xinhui", county="xinhui")


def summaries(response) -> list[str]:
    assert response.status_code == 200, response.data
    body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") == "gzip" else response.data
    return sorted(str(e["summary"]) for e in Calendar.from_ical(body).walk("VEVENT"))


@pytest.fixture
def past(org, clock):
    """Two events of 2023: one ended 402 days before the suite's now, one 380 days before."""
    clock.set(dt.datetime(2023, 4, 1, 9, 0, tzinfo=CST))
    old = create_event(org, publish=True, title="2023年5月 老活动", starts_at=dt.datetime(2023, 5, 10, 9, 0, tzinfo=CST),
                       ends_at=dt.datetime(2023, 5, 10, 12, 0, tzinfo=CST))
    recent = create_event(org, publish=True, title="2023年6月 活动", starts_at=dt.datetime(2023, 6, 1, 9, 0, tzinfo=CST),
                          ends_at=dt.datetime(2023, 6, 1, 12, 0, tzinfo=CST))
    db.session.commit()
    clock.set(NOW)
    return old, recent


def test_past_events_age_out_of_public_feeds_into_their_years_archive(client, org, past, clock):
    create_event(org, publish=True, title="下周活动")
    db.session.commit()
    for path in ("/calendars/all.ics", "/calendars/orgs/xinhui.ics", "/calendars/kinds/study_tour.ics", "/calendars/counties/xinhui.ics"):
        assert summaries(client.get(path)) == ["2023年6月 活动", "下周活动"], path
    assert summaries(client.get("/calendars/archive/2023.ics")) == ["2023年5月 老活动", "2023年6月 活动"]
    assert summaries(client.get("/calendars/archive/2024.ics")) == ["下周活动"]
    assert client.get("/calendars/archive/1999.ics").status_code == 404
    assert client.get("/calendars/archive/2099.ics").status_code == 404
    # the cached feed drops the next one when its time comes, with no change to the data
    before = client.get("/calendars/all.ics")
    clock.advance(days=21)
    after = client.get("/calendars/all.ics", headers={"If-None-Match": before.headers["ETag"]})
    assert summaries(after) == ["下周活动"]
    assert after.headers["Last-Modified"] != before.headers["Last-Modified"]


def test_the_archives_are_listed(client, org, past):
    listed = {c["key"]: c["url"] for c in client.get("/api/v1/calendars").json["items"]}
    assert listed["archive/2023"] == "http://scheduler.test/calendars/archive/2023.ics"
    assert "archive/2024" in listed
    assert "/calendars/archive/2023.ics" in client.get("/calendars").get_data(as_text=True)


def test_past_days_zero_keeps_everything(app, client, org, past, monkeypatch):
    monkeypatch.setitem(app.config, "FEED_PAST_DAYS", 0)
    assert summaries(client.get("/calendars/all.ics")) == ["2023年5月 老活动", "2023年6月 活动"]


def test_gzip_when_asked_with_its_own_etag_and_304s_for_both(client, org):
    for n in range(30):
        create_event(org, publish=True, title=f"活动 {n}")
    db.session.commit()
    plain = client.get("/calendars/all.ics")
    packed = client.get("/calendars/all.ics", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert gzip.decompress(packed.data) == plain.data and len(packed.data) < len(plain.data) / 3
    assert packed.headers["ETag"] != plain.headers["ETag"] and packed.headers["ETag"].endswith('-gz"')
    assert client.get("/calendars/all.ics", headers={"Accept-Encoding": "gzip"}).data == packed.data  # stable bytes
    for response in (plain, packed):
        assert response.headers["Vary"] == "Accept-Encoding"
    for etag in (plain.headers["ETag"], packed.headers["ETag"]):
        for encoding in ("identity", "gzip"):
            again = client.get("/calendars/all.ics", headers={"If-None-Match": etag, "Accept-Encoding": encoding})
            assert again.status_code == 304 and again.data == b""
            assert again.headers["Last-Modified"] == plain.headers["Last-Modified"]
            assert again.headers["Cache-Control"] == "public, max-age=300" and again.headers["Vary"] == "Accept-Encoding"
    since = client.get("/calendars/all.ics", headers={"If-Modified-Since": plain.headers["Last-Modified"]})
    assert since.status_code == 304 and since.headers["Last-Modified"] == plain.headers["Last-Modified"]


def test_a_public_feed_does_not_vary_by_cookie_even_for_a_signed_in_browser(client, org):
    from tests.factories import create_user
    from tests.pages import sign_in

    create_event(org, publish=True)
    db.session.commit()
    sign_in(client, create_user("editor", org).email)
    response = client.get("/calendars/all.ics", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "Cookie" not in response.headers.get("Vary", "") and "Set-Cookie" not in response.headers
