"""Progress toward the year's targets."""
import datetime as dt

import pytest

from scheduler.events import operations as ops
from scheduler.extensions import db
from scheduler.targets.defaults import CITY_TARGETS
from scheduler.targets.operations import seed_city_targets, set_target
from tests.factories import CST, create_event, create_org


@pytest.fixture
def city(ctx):
    bureau = create_org("bureau")
    xinhui = create_org("xinhui", parent=bureau, county="xinhui")
    seed_city_targets(2024)
    db.session.commit()
    return {"bureau": bureau, "xinhui": xinhui}


def at(month, day, hour=9):
    return dt.datetime(2024, month, day, hour, tzinfo=CST)


def held(org, kind, month, day, details=None, outcome=None, **kw):
    event = create_event(org, publish=True, kind=kind, starts_at=at(month, day), ends_at=at(month, day, 12), details=details or {}, **kw)
    if outcome:
        ops.record_outcome(event, outcome)
        db.session.commit()
    return event


def progress(client, query="year=2024"):
    response = client.get(f"/api/v1/progress?{query}")
    assert response.status_code == 200, response.json
    return {t["key"]: t for t in response.json["targets"]}


def test_five_event_minimum_counts_popularization_kinds(client, city):
    held(city["bureau"], "science_carnival", 3, 9)
    held(city["bureau"], "tech_week", 5, 18)
    held(city["xinhui"], "study_tour", 6, 1, details={"meeting_point": "北门"})
    held(city["xinhui"], "matchmaking", 6, 2, details={"sector": "new_energy"})  # not popularization
    held(city["xinhui"], "study_tour", 9, 1, details={"meeting_point": "北门"})  # still ahead on 15 June
    draft = create_event(city["xinhui"], kind="science_carnival", starts_at=at(10, 1), ends_at=at(10, 1, 12), details={})
    cancelled = held(city["xinhui"], "science_carnival", 11, 1)
    ops.cancel_event(cancelled, "天气")
    db.session.commit()
    p = progress(client)["popularization_events"]
    assert (p["target"], p["achieved"], p["scheduled"], p["remaining"]) == (5, 3, 1, 2)
    assert p["on_track"] is True  # 3 held by mid-June, pace needs 2
    assert p["plan_covers_target"] is False
    assert draft.status == "draft"


def test_recurring_occurrences_count_one_by_one(client, city):
    held(city["xinhui"], "study_tour", 6, 1, details={"meeting_point": "北门"}, rrule="FREQ=WEEKLY;COUNT=4")  # 1, 8, 15, 22 June
    p = progress(client)["popularization_events"]
    assert (p["achieved"], p["scheduled"]) == (3, 1)


def test_matchmaking_sums_outcomes(client, city):
    sector = {"sector": "intelligent_equipment"}
    held(city["bureau"], "matchmaking", 4, 1, sector, {"achievements_presented": 40, "achievements_matched": 12, "achievements_commercialized": 4})
    held(city["xinhui"], "matchmaking", 5, 1, sector, {"achievements_presented": 30, "achievements_matched": 9, "achievements_commercialized": 3})
    targets = progress(client)
    assert (targets["matchmaking_fairs"]["achieved"], targets["matchmaking_fairs"]["target"]) == (2, 4)
    assert (targets["achievements_matched"]["achieved"], targets["achievements_matched"]["remaining"]) == (21, 9)
    assert targets["achievements_commercialized"]["achieved"] == 7


def test_every_target_of_the_work_plan_is_listed(client, city):
    targets = progress(client)
    assert list(targets) == [spec.key for spec in CITY_TARGETS]
    assert targets["matchmaking_fairs"]["target"] == 4
    assert targets["achievements_matched"]["target"] == 30
    assert targets["achievements_commercialized"]["target"] == 10
    assert targets["provincial_science_bases"]["target"] == 8


def test_past_year_is_judged_on_the_whole_year(client, city, clock):
    held(city["bureau"], "science_carnival", 3, 9)
    clock.set(dt.datetime(2025, 2, 1, tzinfo=CST))
    assert progress(client, "") == {}  # 2025 has no targets: an empty list, not an error
    p = progress(client, "year=2024")["popularization_events"]
    assert (p["achieved"], p["scheduled"], p["on_track"]) == (1, 0, False)


def test_current_year_by_default(client, city):
    response = client.get("/api/v1/progress").json
    assert response["year"] == 2024
    assert len(response["targets"]) == len(CITY_TARGETS)


def test_org_scope(client, city):
    held(city["bureau"], "science_carnival", 3, 9)
    held(city["xinhui"], "science_carnival", 4, 9)
    spec = next(s for s in CITY_TARGETS if s.key == "popularization_events")
    # Xinhui has no targets of its own: the city's, counted over Xinhui's events.
    contribution = progress(client, "year=2024&org=xinhui")["popularization_events"]
    assert (contribution["achieved"], contribution["counted_for"], contribution["scope"]) == (1, "xinhui", "city")
    set_target(2024, spec, city["xinhui"], value=2)
    db.session.commit()
    own = progress(client, "year=2024&org=xinhui")
    assert list(own) == ["popularization_events"]
    assert (own["popularization_events"]["target"], own["popularization_events"]["achieved"], own["popularization_events"]["scope"]) == (2, 1, "xinhui")


def test_targets_behind_their_pace_alert_the_top_organization_once_a_week(city, clock):
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from scheduler.alerts.models import Alert
    from scheduler.targets.alerts import alert_behind_pace

    tz = ZoneInfo("Asia/Shanghai")
    for day in (3, 10):  # two science events held by mid-June, three planned later: the minimum of five is covered
        held(city["xinhui"], "science_carnival", 5, day)
    for day in (5, 12, 19):
        create_event(city["xinhui"], publish=True, kind="science_carnival", starts_at=at(9, day), ends_at=at(9, day, 12), details={})
    raised = alert_behind_pace(clock.at, tz)
    kinds = {a.subject.split(":")[1] for a in db.session.scalars(select(Alert).where(Alert.kind == "target.behind"))}
    assert raised == len(kinds) > 0
    messages = [a.message for a in db.session.scalars(select(Alert).where(Alert.kind == "target.behind"))]
    assert not any(m.startswith("科普活动") for m in messages)  # behind the steady pace, but the plan reaches the five
    assert any(m.startswith("“邑科汇”科技成果对接会：已完成 0，按进度应达 1，已排期 0，目标 4。") for m in messages)
    assert all(a.org_id == city["bureau"].id for a in db.session.scalars(select(Alert)))
    assert alert_behind_pace(clock.at, tz) == 0  # once a week
    clock.advance(days=7)
    assert alert_behind_pace(clock.at, tz) == raised


def test_managers_record_the_targets_counted_by_hand(client, city):
    from tests.factories import auth, create_user

    path = "/api/v1/targets/2024/provincial_science_bases"
    bureau_manager = auth(create_user("manager", city["bureau"]))
    shown = client.put(path, json={"achieved": 3}, headers=bureau_manager)
    assert shown.status_code == 200, shown.json
    assert (shown.json["achieved"], shown.json["remaining"], shown.json["scope"]) == (3, 5, "city")
    assert progress(client)["provincial_science_bases"]["achieved"] == 3

    county_manager = auth(create_user("manager", city["xinhui"]))  # the city's targets are the bureau's to record
    assert client.put(path, json={"achieved": 4}, headers=county_manager).status_code == 403
    assert client.put(path, json={"achieved": 4}, headers=auth(create_user("editor", city["bureau"]))).status_code == 403
    assert client.put(path, json={"achieved": 4}).status_code == 401
    assert client.put(path, json={"achieved": -1}, headers=bureau_manager).status_code == 422
    counted = client.put("/api/v1/targets/2024/popularization_events", json={"achieved": 9}, headers=bureau_manager)
    assert (counted.status_code, counted.json["error"]["code"]) == (409, "not_manual")
    assert client.put("/api/v1/targets/2023/provincial_science_bases", json={"achieved": 1}, headers=bureau_manager).status_code == 404
    assert progress(client)["provincial_science_bases"]["achieved"] == 3
