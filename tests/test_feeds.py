"""Calendar feeds over HTTP: what shows, validators and 304s, determinism, personal links."""
import datetime as dt
import re

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from tests.pages import prove_number
from icalendar import Calendar
from werkzeug.http import http_date, parse_date

from scheduler.events import operations as ops
from scheduler.extensions import db
from tests.factories import CST, create_event, create_org


@pytest.fixture
def orgs(ctx):
    bureau = create_org("bureau", name_zh="江门市科学技术局", name_en="Jiangmen Bureau")
    return {
        "bureau": bureau,
        "xinhui": create_org("xinhui", parent=bureau, county="xinhui", name_zh="新会区科技局", name_en="Xinhui Office"),
        "lab": create_org("lab", parent=bureau, county="kaiping", name_zh="中微子实验室", name_en="Neutrino Lab"),
    }


def events_of(data: bytes) -> dict[str, Calendar]:
    return {str(e["uid"]): e for e in Calendar.from_ical(data).walk("VEVENT")}


def summaries(client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.data
    return [str(e["summary"]) for e in Calendar.from_ical(response.data).walk("VEVENT")]


def at(day, hour=9, month=6):
    return dt.datetime(2024, month, day, hour, tzinfo=CST)


class TestWhatShows:
    def test_drafts_never_cancelled_for_30_days(self, client, orgs, clock):
        create_event(orgs["xinhui"], title="草稿")
        create_event(orgs["xinhui"], publish=True, title="已发布")
        cancelled = create_event(orgs["xinhui"], publish=True, title="已取消")
        ops.cancel_event(cancelled, "天气原因")
        db.session.commit()
        assert summaries(client, "/calendars/all.ics") == ["已发布", "[已取消 Cancelled] 已取消"]
        clock.advance(days=30, seconds=1)
        assert summaries(client, "/calendars/all.ics") == ["已发布"]

    def test_scopes_and_filters(self, client, orgs):
        create_event(orgs["xinhui"], publish=True, title="新会研学")
        create_event(orgs["lab"], publish=True, title="实验室对接会", kind="matchmaking", details={"sector": "new_energy"})
        create_event(orgs["bureau"], publish=True, title="嘉年华", kind="science_carnival", details={})
        assert summaries(client, "/calendars/kinds/matchmaking.ics") == ["实验室对接会"]
        assert summaries(client, "/calendars/orgs/bureau.ics") == ["新会研学", "实验室对接会", "嘉年华"]  # with children
        assert summaries(client, "/calendars/orgs/xinhui.ics") == ["新会研学"]
        assert summaries(client, "/calendars/counties/kaiping.ics") == ["实验室对接会"]
        assert summaries(client, "/calendars/all.ics?kinds=study_tour,science_carnival") == ["新会研学", "嘉年华"]
        assert summaries(client, "/calendars/all.ics?orgs=xinhui,lab") == ["新会研学", "实验室对接会"]
        assert summaries(client, "/calendars/orgs/bureau.ics?kinds=matchmaking&orgs=lab") == ["实验室对接会"]
        assert summaries(client, "/calendars/kinds/contest.ics") == []  # a valid empty calendar

    @pytest.mark.parametrize("path", ["/calendars/kinds/party.ics", "/calendars/orgs/nobody.ics", "/calendars/counties/atlantis.ics",
                                      "/calendars/personal/pc_unknown.ics", "/calendars/personal/x.ics"])
    def test_unknown_calendars_are_plain_404(self, client, orgs, path):
        response = client.get(path)
        assert (response.status_code, response.content_type) == (404, "text/plain; charset=utf-8")

    @pytest.mark.parametrize("query", ["kinds=party", "orgs=nobody", "alarm=1h", "alarm=PT1M", "alarm=P200D", "alarm=" + "&alarm=".join(["PT1H"] * 6)])
    def test_bad_filters_and_alarms_are_400(self, client, orgs, query):
        response = client.get(f"/calendars/all.ics?{query}")
        assert response.status_code == 400
        assert response.content_type.startswith("text/plain")

    def test_alarms_only_when_asked(self, client, orgs):
        create_event(orgs["xinhui"], publish=True)
        assert b"BEGIN:VALARM" not in client.get("/calendars/all.ics").data
        event = next(iter(events_of(client.get("/calendars/all.ics?alarm=PT1H&alarm=P1D").data).values()))
        triggers = sorted(str(a["trigger"].to_ical(), "ascii") for a in event.walk("VALARM"))
        assert triggers == ["-P1D", "-PT1H"]


class TestContent:
    def test_event_properties(self, client, orgs):
        event = create_event(orgs["xinhui"], publish=True, title="走进实验室", latitude=22.58, longitude=113.08,
                             address="江门市新会区", details={"meeting_point": "科技馆北门", "age_min": 8, "age_max": 12})
        vevent = events_of(client.get("/calendars/all.ics").data)[event.uid]
        assert str(vevent["uid"]) == event.uid
        assert vevent["dtstamp"].dt == event.updated_at == vevent["last-modified"].dt
        assert vevent["dtstart"].dt == at(22) and str(vevent["dtstart"].params["TZID"]) == "Asia/Shanghai"
        assert (vevent["status"], vevent["sequence"]) == ("CONFIRMED", 1)
        assert vevent["geo"].latitude == 22.58
        assert str(vevent["location"]) == "江门市科技馆 江门市新会区"
        assert str(vevent["url"]) == f"http://scheduler.test/events/{event.id}"
        assert [str(c) for c in vevent["categories"].cats] == ["科普研学游", "Science study tour"]
        assert vevent["organizer"].params["CN"] == "新会区科技局 Xinhui Office"
        description = str(vevent["description"])
        assert "集合地点 Meeting point: 科技馆北门" in description and "适合年龄 Ages: 8–12" in description
        assert f"http://scheduler.test/events/{event.id}" in description

    def test_calendar_properties_and_progress(self, client, orgs):
        from scheduler.targets.operations import seed_city_targets

        seed_city_targets(2024)
        create_event(orgs["bureau"], publish=True, kind="science_carnival", details={}, starts_at=at(1), ends_at=at(1, 17))
        create_event(orgs["xinhui"], publish=True)  # 22 June, still ahead
        ops.record_outcome(create_event(orgs["lab"], publish=True, kind="matchmaking", details={"sector": "new_energy"},
                                        starts_at=at(3), ends_at=at(3, 12)), {"achievements_matched": 7, "achievements_commercialized": 2})
        db.session.commit()
        response = client.get("/calendars/all.ics")
        assert response.content_type == "text/calendar; charset=utf-8"
        cal = Calendar.from_ical(response.data)
        assert str(cal["version"]) == "2.0" and "Jiangmen" in str(cal["prodid"])
        assert str(cal["x-wr-calname"]) == str(cal["name"]) == "江门科普活动日程 · Jiangmen science & technology events"
        assert str(cal["x-wr-caldesc"]) == str(cal["description"])
        assert "2024年科普活动 1/5 场(另有 1 场已排期)" in str(cal["description"])
        assert b"REFRESH-INTERVAL;VALUE=DURATION:PT6H\r\n" in response.data
        assert b"X-PUBLISHED-TTL:PT6H\r\n" in response.data
        fairs = str(Calendar.from_ical(client.get("/calendars/kinds/matchmaking.ics").data)["description"])
        assert "对接会 1/4 场、成功对接 7/30 项、落地转化 2/10 项" in fairs
        assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]
        assert len(cal.walk("VTIMEZONE")[0].walk("STANDARD")) == 1 and not cal.walk("DAYLIGHT")

    def test_all_day_multi_day_and_exdate(self, client, orgs):
        week = create_event(orgs["bureau"], publish=True, kind="tech_week", details={}, all_day=True,
                            starts_at=dt.date(2024, 5, 18), ends_at=dt.date(2024, 5, 25))
        series = create_event(orgs["xinhui"], publish=True, rrule="FREQ=WEEKLY;COUNT=3")
        ops.cancel_occurrence(series, at(29))
        db.session.commit()
        vevents = events_of(client.get("/calendars/all.ics").data)
        assert (vevents[week.uid]["dtstart"].dt, vevents[week.uid]["dtend"].dt) == (dt.date(2024, 5, 18), dt.date(2024, 5, 26))
        assert [d.dt for d in vevents[series.uid]["exdate"].dts] == [at(29)]
        assert b"RRULE:FREQ=WEEKLY;COUNT=3\r\n" in client.get("/calendars/all.ics").data


class TestHTTP:
    def test_etag_and_if_none_match(self, client, orgs):
        create_event(orgs["xinhui"], publish=True)
        first = client.get("/calendars/all.ics")
        etag = first.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert client.get("/calendars/all.ics", headers={"If-None-Match": etag}).status_code == 304
        assert client.get("/calendars/all.ics", headers={"If-None-Match": '"other"'}).status_code == 200
        not_modified = client.get("/calendars/all.ics", headers={"If-None-Match": f'"x", {etag}'})
        assert (not_modified.status_code, not_modified.data) == (304, b"")
        assert not_modified.headers["ETag"] == etag

    def test_if_modified_since_is_parsed(self, client, orgs):
        create_event(orgs["xinhui"], publish=True)
        last_modified = parse_date(client.get("/calendars/all.ics").headers["Last-Modified"])
        ask = lambda value: client.get("/calendars/all.ics", headers={"If-Modified-Since": value}).status_code  # noqa: E731
        assert ask(http_date(last_modified)) == 304
        assert ask(http_date(last_modified + dt.timedelta(hours=1))) == 304
        assert ask(http_date(last_modified - dt.timedelta(seconds=1))) == 200
        assert ask("yesterday") == 200

    def test_head(self, client, orgs):
        create_event(orgs["xinhui"], publish=True)
        full, head = client.get("/calendars/all.ics"), client.head("/calendars/all.ics")
        assert (head.status_code, head.data) == (200, b"")
        assert head.headers["ETag"] == full.headers["ETag"]
        assert int(head.headers["Content-Length"]) == len(full.data)

    def test_last_modified_follows_changes_cancellations_and_removals(self, client, orgs, clock):
        keep = create_event(orgs["xinhui"], publish=True)
        leaving = create_event(orgs["xinhui"], publish=True)
        modified = lambda: parse_date(client.get("/calendars/orgs/xinhui.ics").headers["Last-Modified"])  # noqa: E731
        assert modified() == leaving.updated_at.replace(microsecond=0)
        clock.advance(hours=1)
        ops.cancel_event(keep, "场地维修")
        db.session.commit()
        assert modified() == clock.at.replace(microsecond=0)
        clock.advance(hours=1)
        ops.update_event(leaving, {}, org=orgs["lab"])  # moved to another organization's feed
        db.session.commit()
        assert modified() == clock.at.replace(microsecond=0)
        clock.advance(hours=1)
        ops.delete_event(db.session.merge(leaving))
        db.session.commit()
        assert parse_date(client.get("/calendars/orgs/lab.ics").headers["Last-Modified"]) == clock.at.replace(microsecond=0)
        clock.advance(days=31)
        assert modified() == (keep.cancelled_at + dt.timedelta(days=30)).replace(microsecond=0)  # it dropped out then


class TestDeterminism:
    def test_same_data_same_bytes(self, client, orgs, app):
        from scheduler.feeds.service import caches

        for n in range(3):
            create_event(orgs["xinhui"], publish=True, title=f"活动{n}", starts_at=at(20 + n), ends_at=at(20 + n, 12))
        first = client.get("/calendars/all.ics").data
        caches(app).events.clear()
        caches(app).feeds.clear()
        assert client.get("/calendars/all.ics").data == first

    def test_one_change_changes_only_its_lines(self, client, orgs, clock):
        events = [create_event(orgs["xinhui"], publish=True, title=f"活动{n}", starts_at=at(20 + n), ends_at=at(20 + n, 12)) for n in range(3)]
        before = client.get("/calendars/all.ics")
        clock.advance(minutes=5)
        ops.update_event(events[1], {"starts_at": at(21, 14)})
        db.session.commit()
        after = client.get("/calendars/all.ics")
        assert after.headers["ETag"] != before.headers["ETag"]
        old_lines, new_lines = before.data.split(b"\r\n"), after.data.split(b"\r\n")
        changed = {line for line in set(old_lines) ^ set(new_lines)}
        assert changed and all(line.startswith((b"DTSTART", b"DTEND", b"DTSTAMP", b"SEQUENCE", b"LAST-MODIFIED")) for line in changed)


def person_calendar_path(client, phone: str) -> str:
    """The calendar of every registration of ``phone``, as ``/me`` shows it once the number is proved."""
    prove_number(client, phone)
    page = client.get("/me").get_data(as_text=True)
    return re.search(r'href="http://scheduler\.test(/calendars/personal/pp_[^"]+\.ics)"', page)[1]


class TestPersonal:
    def test_registration_calendar_with_waitlist_revoke_and_reissue(self, client, orgs):
        seat = create_event(orgs["xinhui"], publish=True, title="有座位")
        full = create_event(orgs["xinhui"], publish=True, title="已满", capacity=1)
        create_event(orgs["xinhui"], publish=True, title="没报名")
        client.post(f"/api/v1/events/{full.id}/registrations", json={"name": "甲", "phone": "13900139000", "consent": NOTICE_VERSION})
        first = client.post(f"/api/v1/events/{seat.id}/registrations", json={"name": "张三", "phone": "13800138000", "consent": NOTICE_VERSION}).json
        second = client.post(f"/api/v1/events/{full.id}/registrations", json={"name": "张三", "phone": "13800138000", "consent": NOTICE_VERSION}).json
        url = first["calendar"]["url"]
        assert second["calendar"]["url"] != url  # a link belongs to one registration
        token = url.rsplit("/", 1)[1].removesuffix(".ics")
        assert len(token) - 3 >= 22  # at least 128 random bits after the prefix
        path = url.removeprefix("http://scheduler.test")
        response = client.get(path)
        assert response.headers["Cache-Control"].startswith("private")
        assert {str(e["summary"]): str(e["status"]) for e in Calendar.from_ical(response.data).walk("VEVENT")} == {"有座位": "CONFIRMED"}
        waiting = client.get(second["calendar"]["url"].removeprefix("http://scheduler.test"))
        assert {str(e["summary"]): str(e["status"]) for e in Calendar.from_ical(waiting.data).walk("VEVENT")} == {"已满": "TENTATIVE"}
        # the proved number's own calendar holds both
        shown = {str(e["summary"]): str(e["status"]) for e in Calendar.from_ical(client.get(person_calendar_path(client, "13800138000")).data).walk("VEVENT")}
        assert shown == {"有座位": "CONFIRMED", "已满": "TENTATIVE"}

        reg_token = first["token"]
        assert client.get(f"/api/v1/registrations/{reg_token}/calendar").json["links"]["url"] == url  # shown again
        client.delete(f"/api/v1/registrations/{reg_token}/calendar")
        assert client.get(path).status_code == 404
        assert client.get(f"/api/v1/registrations/{reg_token}/calendar").json["links"] is None
        new_url = client.post(f"/api/v1/registrations/{reg_token}/calendar").json["links"]["url"]
        assert new_url != url
        assert client.get(new_url.removeprefix("http://scheduler.test")).status_code == 200
        assert client.get(path).status_code == 404

    def test_a_cancelled_registrations_links_stop_working(self, client, orgs):
        event = create_event(orgs["xinhui"], publish=True, title="报名后取消")
        created = client.post(f"/api/v1/events/{event.id}/registrations", json={"name": "李四", "phone": "13700137000", "consent": NOTICE_VERSION}).json
        path = created["calendar"]["url"].removeprefix("http://scheduler.test")
        assert client.get(path).status_code == 200
        person = person_calendar_path(client, "13700137000")
        client.delete(f"/api/v1/registrations/{created['token']}")
        assert client.get(path).status_code == 404
        for method in ("get", "post", "delete"):  # the cancelled token neither reads nor re-issues nor revokes
            assert getattr(client, method)(f"/api/v1/registrations/{created['token']}/calendar").status_code == 404
        assert Calendar.from_ical(client.get(person).data).walk("VEVENT") == []  # the person's calendar drops it


def test_calendar_list(client, orgs):
    items = {c["key"]: c for c in client.get("/api/v1/calendars").json["items"]}
    assert {"all", "kinds/study_tour", "orgs/xinhui", "counties/kaiping"} <= set(items)
    feed = items["orgs/xinhui"]
    assert feed["url"] == "http://scheduler.test/calendars/orgs/xinhui.ics"
    assert feed["webcal"] == "webcal://scheduler.test/calendars/orgs/xinhui.ics"
    assert feed["google"] == "https://calendar.google.com/calendar/r?cid=webcal%3A%2F%2Fscheduler.test%2Fcalendars%2Forgs%2Fxinhui.ics"
    page = client.get("/calendars").get_data(as_text=True)
    assert "webcal://scheduler.test/calendars/orgs/xinhui.ics" in page and "新会区科技局" in page


def test_single_event_download(client, orgs):
    event = create_event(orgs["xinhui"], publish=True, title="单个活动")
    draft = create_event(orgs["xinhui"], title="草稿")
    assert summaries(client, f"/events/{event.id}.ics") == ["单个活动"]
    assert client.get(f"/events/{draft.id}.ics").status_code == 404
    assert client.get(f"/events/{event.id}").status_code == 200


def test_public_answers_do_not_vary_by_cookie(client, orgs):
    """Shared caches may keep one copy of a feed for everyone."""
    create_event(orgs["xinhui"], publish=True)
    for path in ("/calendars/all.ics", "/api/v1/events", "/healthz"):
        assert "Cookie" not in client.get(path).headers.get("Vary", ""), path
