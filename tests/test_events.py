"""Events through the API: lifecycle, sequence, times, filters and outcomes."""
import datetime as dt

import pytest

from tests.factories import CST, auth, create_city, create_event, create_user, event_body


@pytest.fixture
def orgs(ctx):
    return create_city()


@pytest.fixture
def editor(orgs):
    return auth(create_user("manager", orgs["bureau"]))


def test_lifecycle_draft_published_cancelled(client, orgs, editor):
    created = client.post("/api/v1/events", json=event_body("xinhui"), headers=editor).json
    assert (created["status"], created["sequence"]) == ("draft", 0)
    published = client.post(f"/api/v1/events/{created['id']}/publish", headers=editor).json
    assert (published["status"], published["sequence"]) == ("published", 1)
    assert client.get(f"/api/v1/events/{created['id']}").status_code == 200  # public now
    cancelled = client.post(f"/api/v1/events/{created['id']}/cancel", json={"reason": "台风预警"}, headers=editor).json
    assert (cancelled["status"], cancelled["cancel_reason"], cancelled["sequence"]) == ("cancelled", "台风预警", 2)
    assert client.post(f"/api/v1/events/{created['id']}/publish", headers=editor).status_code == 409


def test_sequence_rises_on_time_and_place_not_on_title(client, orgs, editor):
    event = client.post("/api/v1/events", json=event_body("xinhui"), headers=editor).json
    url = f"/api/v1/events/{event['id']}"
    assert client.patch(url, json={"title": "新标题", "description": "更新介绍"}, headers=editor).json["sequence"] == 0
    moved = client.patch(url, json={"starts_at": "2024-07-07T08:30:00+08:00"}, headers=editor).json
    assert moved["sequence"] == 1
    assert moved["ends_at"] == "2024-07-07T17:00:00+08:00"  # moving the start keeps the length
    assert client.patch(url, json={"venue": "五邑大学"}, headers=editor).json["sequence"] == 2
    assert client.patch(url, json={"rrule": "FREQ=WEEKLY;COUNT=2"}, headers=editor).json["sequence"] == 3
    assert client.patch(url, json={"venue": "五邑大学"}, headers=editor).json["sequence"] == 3  # no real change


def test_times_stored_utc_shown_in_event_zone(client, orgs, editor):
    body = event_body("xinhui", starts_at="2024-07-06T00:30:00Z", ends_at="2024-07-06T02:00:00Z")
    event = client.post("/api/v1/events", json=body, headers=editor).json
    assert event["starts_at"] == "2024-07-06T08:30:00+08:00"
    body = event_body("xinhui", timezone="Europe/Berlin", starts_at="2024-07-06T10:00:00+02:00", ends_at="2024-07-06T12:00:00+02:00")
    event = client.post("/api/v1/events", json=body, headers=editor).json
    assert (event["timezone"], event["starts_at"]) == ("Europe/Berlin", "2024-07-06T10:00:00+02:00")


def test_default_end_and_reminders(client, orgs, editor):
    body = event_body("xinhui", kind="matchmaking", details={"sector": "new_energy"})
    del body["ends_at"]
    event = client.post("/api/v1/events", json=body, headers=editor).json
    assert event["ends_at"] == "2024-07-06T10:30:00+08:00"
    assert event["reminders"] == ["P7D", "P1D", "PT2H"]
    own = client.patch(f"/api/v1/events/{event['id']}", json={"reminders": ["P2D"]}, headers=editor).json
    assert own["reminders"] == ["P2D"]


def test_all_day_multi_day_tech_week(client, orgs, editor):
    body = event_body("bureau", kind="tech_week", all_day=True, starts_at="2024-05-18", ends_at="2024-05-25",
                      details={"theme": "科技强国", "sessions": [{"title": "开幕式", "starts_at": "2024-05-18T09:00:00+08:00", "county": "新会区"}]})
    body.pop("capacity")
    event = client.post("/api/v1/events", json=body, headers=editor).json
    assert event["all_day"] is True
    assert event["starts_at"] == "2024-05-18T00:00:00+08:00"
    assert event["ends_at"] == "2024-05-26T00:00:00+08:00"  # exclusive end after the last day


def test_recurring_series(client, orgs, editor):
    body = event_body("xinhui", rrule="FREQ=WEEKLY;COUNT=4")
    event = client.post("/api/v1/events", json=body, headers=editor).json
    assert event["rrule"] == "FREQ=WEEKLY;COUNT=4"
    # the series overlaps July; the last occurrence is on 27 July
    listed = client.get("/api/v1/events?from=2024-07-27&to=2024-07-28", headers=editor).json
    assert [e["id"] for e in listed["items"]] == [event["id"]]


def test_kind_specific_details_are_kept(client, orgs, editor):
    details = {"registration_deadline": "2024-08-01T18:00:00+08:00", "preliminary_at": "2024-09-01T09:00:00+08:00",
               "final_at": "2024-10-20T14:00:00+08:00", "tracks": ["成长组"]}
    body = event_body("bureau", kind="contest", details=details, starts_at="2024-10-20T14:00:00+08:00", ends_at="2024-10-20T18:00:00+08:00")
    event = client.post("/api/v1/events", json=body, headers=editor).json
    assert event["details"]["tracks"] == ["成长组"]
    assert event["registration_closes_at"] == "2024-08-01T18:00:00+08:00"


def test_outcome_completes_a_finished_event(client, orgs, editor, clock):
    body = event_body("xinhui", kind="matchmaking", details={"sector": "intelligent_equipment"},
                      starts_at="2024-06-10T14:00:00+08:00", ends_at="2024-06-10T17:00:00+08:00")
    event = client.post("/api/v1/events", json=body, headers=editor).json
    client.post(f"/api/v1/events/{event['id']}/publish", headers=editor)
    outcome = {"attendance": 120, "achievements_presented": 30, "achievements_matched": 8, "achievements_commercialized": 2}
    result = client.put(f"/api/v1/events/{event['id']}/outcome", json=outcome, headers=editor).json
    assert result["status"] == "completed"
    assert result["outcome"]["achievements_matched"] == 8
    replaced = client.put(f"/api/v1/events/{event['id']}/outcome", json={"attendance": 130, "achievements_matched": 9}, headers=editor).json
    assert replaced["outcome"]["attendance"] == 130
    assert replaced["outcome"]["achievements_presented"] is None  # PUT replaces the whole outcome


def test_outcome_during_a_multi_day_event_keeps_it_published(client, orgs, editor):
    body = event_body("bureau", kind="tech_week", all_day=True, starts_at="2024-06-14", ends_at="2024-06-20", details={})
    event = client.post("/api/v1/events", json=body, headers=editor).json
    client.post(f"/api/v1/events/{event['id']}/publish", headers=editor)
    result = client.put(f"/api/v1/events/{event['id']}/outcome", json={"attendance": 500}, headers=editor).json
    assert result["status"] == "published"


class TestList:
    @pytest.fixture
    def plan(self, orgs):
        make = lambda org, day, **kw: create_event(orgs[org], publish=True, starts_at=dt.datetime(2024, *day, 9, tzinfo=CST),  # noqa: E731
                                                   ends_at=dt.datetime(2024, *day, 12, tzinfo=CST), **kw)
        return {
            "tour_may": make("xinhui", (5, 10), title="新会研学"),
            "fair_may": make("neutrino", (5, 20), kind="matchmaking", details={"sector": "new_energy"}, title="新能源对接会"),
            "tour_jun": make("kaiping", (6, 20), title="开平碉楼科普研学", venue="开平碉楼"),
            "carnival_jul": make("bureau", (7, 1), kind="science_carnival", details={}, title="科普嘉年华"),
        }

    def titles(self, client, query):
        response = client.get(f"/api/v1/events?{query}")
        assert response.status_code == 200, response.json
        return [e["title"] for e in response.json["items"]]

    def test_filters(self, client, plan):
        assert self.titles(client, "kind=matchmaking") == ["新能源对接会"]
        assert self.titles(client, "kind=matchmaking,science_carnival") == ["新能源对接会", "科普嘉年华"]
        assert self.titles(client, "kind=matchmaking&kind=science_carnival") == ["新能源对接会", "科普嘉年华"]
        assert self.titles(client, "org=bureau") == ["新会研学", "新能源对接会", "开平碉楼科普研学", "科普嘉年华"]  # children included
        assert self.titles(client, "org=kaiping") == ["开平碉楼科普研学"]
        assert self.titles(client, "county=kaiping") == ["新能源对接会", "开平碉楼科普研学"]
        assert self.titles(client, "month=2024-05") == ["新会研学", "新能源对接会"]
        assert self.titles(client, "from=2024-06-01&to=2024-07-01") == ["开平碉楼科普研学"]
        assert self.titles(client, "q=碉楼") == ["开平碉楼科普研学"]
        assert self.titles(client, "q=100%25") == []
        assert self.titles(client, "status=cancelled") == []

    def test_pagination(self, client, plan):
        first = client.get("/api/v1/events?per_page=3").json
        second = client.get("/api/v1/events?per_page=3&page=2").json
        assert (first["total"], len(first["items"]), len(second["items"])) == (4, 3, 1)
        assert first["items"][0]["title"] == "新会研学"

    def test_multi_day_event_shows_in_every_month_it_covers(self, client, orgs):
        create_event(orgs["bureau"], publish=True, kind="tech_week", all_day=True, details={},
                     starts_at=dt.date(2024, 5, 28), ends_at=dt.date(2024, 6, 3), title="科技活动周")
        assert self.titles(client, "month=2024-05") == ["科技活动周"]
        assert self.titles(client, "month=2024-06") == ["科技活动周"]
        assert self.titles(client, "month=2024-07") == []

    def test_long_series_listed_with_the_rest_in_time_order(self, client, orgs, plan):
        create_event(orgs["xinhui"], publish=True, title="周末研学(全年)", rrule="FREQ=WEEKLY;COUNT=40",
                     starts_at=dt.datetime(2024, 1, 6, 9, tzinfo=CST), ends_at=dt.datetime(2024, 1, 6, 11, tzinfo=CST))
        assert self.titles(client, "month=2024-05") == ["周末研学(全年)", "新会研学", "新能源对接会"]
        assert self.titles(client, "month=2024-05&kind=matchmaking") == ["新能源对接会"]
        listed = client.get("/api/v1/events?month=2024-06&per_page=1&page=2").json
        assert (listed["total"], [e["title"] for e in listed["items"]]) == (2, ["开平碉楼科普研学"])
        assert self.titles(client, "month=2024-12") == []  # the series ended in October


def test_cancel_one_occurrence_of_a_series(client, orgs, editor):
    event = client.post("/api/v1/events", json=event_body("xinhui", rrule="FREQ=WEEKLY;COUNT=3"), headers=editor).json
    url = f"/api/v1/events/{event['id']}/occurrences/cancel"
    changed = client.post(url, json={"starts_at": "2024-07-13T08:30:00+08:00"}, headers=editor).json
    assert changed["exdates"] == ["2024-07-13T08:30:00+08:00"]
    assert changed["sequence"] == event["sequence"] + 1
    assert client.post(url, json={"starts_at": "2024-07-13T08:30:00+08:00"}, headers=editor).status_code == 409
    wrong = client.post(url, json={"starts_at": "2024-07-14T08:30:00+08:00"}, headers=editor)
    assert (wrong.status_code, list(wrong.json["error"]["fields"])) == (422, ["starts_at"])
    client.post(url, json={"starts_at": "2024-07-06T08:30:00+08:00"}, headers=editor)
    last = client.post(url, json={"starts_at": "2024-07-20T08:30:00+08:00"}, headers=editor)
    assert last.json["error"]["code"] == "last_occurrence"


def test_delete_drafts_freely_published_only_as_manager(client, orgs, editor):
    own_editor = auth(create_user("editor", orgs["xinhui"]))
    draft = client.post("/api/v1/events", json=event_body("xinhui"), headers=own_editor).json
    assert client.delete(f"/api/v1/events/{draft['id']}", headers=own_editor).status_code == 204
    assert client.get(f"/api/v1/events/{draft['id']}", headers=own_editor).status_code == 404
    published = create_event(orgs["xinhui"], publish=True)
    assert client.delete(f"/api/v1/events/{published.id}", headers=own_editor).status_code == 403
    assert client.delete(f"/api/v1/events/{published.id}", headers=editor).status_code == 204  # bureau manager


def test_cancelled_occurrence_moves_with_its_series(client, orgs, editor):
    event = client.post("/api/v1/events", json=event_body("xinhui", rrule="FREQ=WEEKLY;COUNT=3"), headers=editor).json
    url = f"/api/v1/events/{event['id']}"
    client.post(f"{url}/occurrences/cancel", json={"starts_at": "2024-07-13T08:30:00+08:00"}, headers=editor)
    moved = client.patch(url, json={"starts_at": "2024-07-07T08:30:00+08:00"}, headers=editor).json
    assert moved["exdates"] == ["2024-07-14T08:30:00+08:00"]
    shorter = client.patch(url, json={"rrule": "FREQ=WEEKLY;COUNT=1"}, headers=editor).json
    assert shorter["exdates"] == []  # that occurrence is no longer in the series
