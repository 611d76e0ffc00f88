"""The organizers' dashboard (/organizer): targets with progress bars, and the month chart in SVG."""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from scheduler.pages.charts import Month, month_chart, ticks
from scheduler.extensions import db
from scheduler.targets.models import Target
from scheduler.targets.operations import seed_city_targets
from tests.pages import csrf_token, sign_in
from tests.factories import CST, create_city, create_event, create_user

SVG = "{http://www.w3.org/2000/svg}"




def tour(org, day: dt.date, **overrides):
    """A published study tour of ``org`` on ``day`` (09:00–12:00 Shanghai time)."""
    return create_event(
        org, publish=True, starts_at=dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=CST),
        ends_at=dt.datetime(day.year, day.month, day.day, 12, 0, tzinfo=CST), **overrides,
    )


@pytest.fixture
def city(ctx):
    """The bureau, Xinhui and Kaiping; the 2024 city targets; events held and scheduled.

    The clock is at 2024-06-15 10:00 +08:00. Popularization events: Xinhui held one in March and
    two in May, and has one scheduled in June (the 22nd) and one in October; Kaiping held one in
    May and has one scheduled in December. A draft and a matchmaking fair are not counted.
    """
    orgs = create_city()
    seed_city_targets(2024)
    for day in (dt.date(2024, 3, 9), dt.date(2024, 5, 11), dt.date(2024, 5, 18), dt.date(2024, 6, 22), dt.date(2024, 10, 12)):
        tour(orgs["xinhui"], day)
    for day in (dt.date(2024, 5, 25), dt.date(2024, 12, 7)):
        tour(orgs["kaiping"], day)
    create_event(orgs["xinhui"], starts_at=dt.datetime(2024, 4, 1, 9, tzinfo=CST), ends_at=dt.datetime(2024, 4, 1, 10, tzinfo=CST))
    create_event(
        orgs["xinhui"], publish=True, kind="matchmaking", title="邑科汇·智能装备",
        starts_at=dt.datetime(2024, 4, 20, 9, tzinfo=CST), ends_at=dt.datetime(2024, 4, 20, 17, tzinfo=CST),
        details={"sector": "intelligent_equipment"},
    )
    return orgs


def target_block(html: str, key: str) -> str:
    match = re.search(rf'<li class="target" data-key="{key}">(.*?)</li>', html, re.S)
    assert match, html
    return match[1]


def figures(block: str) -> dict[str, int]:
    """achieved, target, scheduled and remaining as shown, and the progress bar's value and max."""
    found = {
        name: int(re.search(rf'class="{cls}">(\d+)<', block)[1])
        for name, cls in (("achieved", "achieved"), ("target", "target-value"), ("scheduled", "scheduled"), ("remaining", "remaining"))
    }
    bar = re.search(r'<progress aria-labelledby="target-\d+" max="(\d+)" value="(\d+)">', block)
    assert bar, block
    found["bar_max"], found["bar_value"] = int(bar[1]), int(bar[2])
    return found


def chart(html: str) -> ET.Element:
    match = re.search(r"<svg .*?</svg>", html, re.S)
    assert match, html
    return ET.fromstring(match[0])  # valid XML, or this raises


def bars(svg: ET.Element) -> list[tuple[int, float, float]]:
    """Each month's (number, held bar's height, scheduled bar's height)."""
    result = []
    for group in svg.iter(f"{SVG}g"):
        if group.get("class") == "month":
            held = next(r for r in group.iter(f"{SVG}rect") if r.get("class") == "held")
            scheduled = next(r for r in group.iter(f"{SVG}rect") if r.get("class") == "scheduled")
            result.append((int(group.get("data-month")), float(held.get("height")), float(scheduled.get("height"))))
    return result


def test_dashboard_needs_a_signed_in_user(client, city):
    response = client.get("/organizer?year=2024")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert "organizer" in response.headers["Location"]


def test_admin_sees_the_city_targets_with_held_and_scheduled(client, city):
    admin = create_user(None, admin=True)
    sign_in(client, admin.email)
    response = client.get("/organizer")  # this year (2024 on the suite's clock) by default
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "2024年目标" in html and "全市" in html
    assert "科普活动(科普嘉年华、全国科技活动周、科普研学游等)" in html  # the label in the page's language
    popular = figures(target_block(html, "popularization_events"))
    assert popular == {"achieved": 4, "target": 5, "scheduled": 3, "remaining": 1, "bar_max": 5, "bar_value": 4}
    block = target_block(html, "popularization_events")
    assert "进度正常" in block  # 4 held ≥ 5 × (mid-June) — on track, said in words
    assert "可达到目标" in block  # 4 + 3 ≥ 5
    fairs = figures(target_block(html, "matchmaking_fairs"))
    assert (fairs["achieved"], fairs["target"], fairs["scheduled"], fairs["remaining"]) == (1, 4, 0, 3)
    assert "进度正常" in target_block(html, "matchmaking_fairs")  # 1 held ≥ ⌊4 × 0.45⌋
    assert "还差 3" in target_block(html, "matchmaking_fairs")  # the plan falls short
    matched = target_block(html, "achievements_matched")
    assert "落后于进度" in matched and 'class="scheduled"' not in matched  # 0 of 30: behind; outcomes are not scheduled
    # the header: signed-in links, in a labelled nav
    assert re.search(r'<nav aria-label="组织者页面" class="account">', html)
    assert 'href="/organizer" aria-current="page"' in html and 'href="/organizer/import"' in html
    assert "action=\"/logout\"" in html
    # the selector offers the city and every organization
    assert 'value="city" selected' in html and 'value="kaiping"' in html and 'value="xinhui"' in html


def test_admin_can_pick_an_organization(client, city):
    sign_in(client, create_user(None, admin=True).email)
    html = client.get("/organizer?year=2024&org=kaiping").get_data(as_text=True)
    assert figures(target_block(html, "popularization_events"))["achieved"] == 1
    assert client.get("/organizer?year=2024&org=nowhere").status_code == 404
    assert client.get("/organizer?year=20x4").status_code == 400


def test_bureau_member_sees_the_city(client, city):
    sign_in(client, create_user("viewer", city["bureau"]).email)
    html = client.get("/organizer?year=2024").get_data(as_text=True)
    assert figures(target_block(html, "popularization_events"))["scheduled"] == 3


def achieved(block: str) -> tuple[int, int]:
    """A target's achieved figure and its progress bar's value."""
    return (int(re.search(r'class="achieved">(\d+)<', block)[1]),
            int(re.search(r'<progress aria-labelledby="target-\d+" max="\d+" value="(\d+)">', block)[1]))


def test_a_bureau_manager_records_a_target_counted_by_hand(client, city):
    sign_in(client, create_user("manager", city["bureau"]).email)
    html = client.get("/organizer?year=2024").get_data(as_text=True)
    block = target_block(html, "provincial_science_bases")
    assert achieved(block) == (0, 0) and 'name="achieved"' in block
    assert 'name="achieved"' not in target_block(html, "popularization_events")  # counted from events
    action = re.search(r'<form method="post" action="(/organizer/targets/\d+/progress)"', block)[1]
    token = csrf_token(client.get("/organizer?year=2024"))
    assert client.post(action, data={"achieved": "3", "year": "2024"}).status_code == 400  # no CSRF token
    response = client.post(action, data={"achieved": "3", "year": "2024", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/organizer?year=2024"
    html = client.get("/organizer?year=2024").get_data(as_text=True)
    assert "已记录：新增省级科普基地，目前已完成 3。" in html
    assert achieved(target_block(html, "provincial_science_bases")) == (3, 3)
    client.post(action, data={"achieved": "很多", "year": "2024", "csrf_token": token})
    html = client.get("/organizer?year=2024").get_data(as_text=True)
    assert "请填写 0 到 10000000 之间的整数。" in html and achieved(target_block(html, "provincial_science_bases")) == (3, 3)


def test_viewers_cannot_record_the_citys_targets(client, city):
    sign_in(client, create_user("viewer", city["bureau"]).email)
    html = client.get("/organizer?year=2024").get_data(as_text=True)
    assert 'name="achieved"' not in html
    action = "/organizer/targets/{}/progress".format(
        db.session.scalar(db.select(Target.id).where(Target.key == "provincial_science_bases", Target.year == 2024)))
    assert client.post(action, data={"achieved": "3", "csrf_token": csrf_token(client.get("/organizer"))}).status_code == 403


def test_county_editor_sees_their_contribution_only(client, city):
    editor = create_user("editor", city["xinhui"])
    sign_in(client, editor.email)
    response = client.get("/organizer?year=2024")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    popular = figures(target_block(html, "popularization_events"))
    assert (popular["achieved"], popular["scheduled"], popular["remaining"]) == (3, 2, 2)
    assert "组织" in html and "及其下属组织的活动" in html
    assert 'name="org"' not in html  # one readable organization: no selector
    assert "按全市登记" in target_block(html, "provincial_science_bases")  # manual totals are not split
    # the other county and the city are not theirs to see
    assert client.get("/organizer?year=2024&org=kaiping").status_code == 403
    assert client.get("/organizer?year=2024&org=city").status_code == 403
    assert client.get("/organizer?year=2024&org=xinhui").status_code == 200
    # the chart counts Xinhui's events only
    months = {number: (held, scheduled) for number, held, scheduled in bars(chart(html))}
    assert months[5][0] > 0 and months[12] == (0.0, 0.0)


def test_member_of_several_organizations_gets_a_selector_limited_to_them(client, city):
    from scheduler.auth.models import Role
    from scheduler.auth.operations import set_membership
    from scheduler.extensions import db

    user = create_user("viewer", city["xinhui"])
    set_membership(user, city["neutrino"], Role.EDITOR)
    db.session.commit()
    sign_in(client, user.email)
    html = client.get("/organizer?year=2024").get_data(as_text=True)
    assert 'value="xinhui" selected' in html and 'value="neutrino-lab"' in html
    assert 'value="kaiping"' not in html and 'value="city"' not in html
    assert client.get("/organizer?year=2024&org=neutrino-lab").status_code == 200
    assert client.get("/organizer?year=2024&org=kaiping").status_code == 403


def test_chart_has_twelve_bars_matching_the_counts_and_a_pace_line(client, city):
    sign_in(client, create_user(None, admin=True).email)
    svg = chart(client.get("/organizer?year=2024").get_data(as_text=True))
    assert svg.get("role") == "img" and svg.get("aria-label") and svg.get("viewBox")
    assert svg.get("width") is None  # scales to the container
    assert svg.find(f"{SVG}title").text and svg.find(f"{SVG}desc").text
    found = bars(svg)
    assert [number for number, _, _ in found] == list(range(1, 13))
    held = {3: 1, 5: 3}
    scheduled = {6: 1, 10: 1, 12: 1}
    unit = found[2][1]  # March: one event held
    assert unit > 0
    for number, held_height, scheduled_height in found:
        assert held_height == pytest.approx(held.get(number, 0) * unit), number
        assert scheduled_height == pytest.approx(scheduled.get(number, 0) * unit), number
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "month-label"]
    assert labels == [f"{n}月" for n in range(1, 13)]
    pace = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "pace"]
    assert len(pace) == 1 and pace[0].get("data-target") == "5"
    # the pace line climbs from the baseline at January to the target's height in December
    baseline = float(pace[0].get("y1"))
    assert baseline - float(pace[0].get("y2")) == pytest.approx(5 * unit)
    cumulative = [p for p in svg.iter(f"{SVG}polyline") if p.get("class") == "cumulative"]
    points = [tuple(map(float, pair.split(","))) for pair in cumulative[0].get("points").split()]
    assert len(points) == 13 and baseline - points[-1][1] == pytest.approx(7 * unit)


def test_dashboard_in_english(client, city):
    sign_in(client, create_user(None, admin=True).email)
    html = client.get("/organizer?year=2024&lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Targets 2024" in html and "Science-popularization events (carnivals, tech week, study tours)" in html
    assert "On track" in html and "Behind the pace" in html and "Dashboard" in html and "Sign out" in html
    labels = [t.text for t in chart(html).iter(f"{SVG}text") if t.get("class") == "month-label"]
    assert labels[:3] == ["Jan", "Feb", "Mar"] and len(labels) == 12
    assert "per month, 2024" in html


def test_another_year_without_targets(client, city):
    sign_in(client, create_user(None, admin=True).email)
    html = client.get("/organizer?year=2023").get_data(as_text=True)
    assert "2023年尚未设定目标" in html and "<svg" not in html


def test_user_without_organizations(client, city):
    sign_in(client, create_user(None).email)
    response = client.get("/organizer")
    assert response.status_code == 200 and "您不是任何组织的成员" in response.get_data(as_text=True)


# --- the chart module, alone -------------------------------------------------------------------------

def test_chart_escapes_every_text_and_is_valid_xml():
    months = [Month(i % 3, i % 2, f"<m{i}>&", tooltip=f'"{i}" <script>') for i in range(12)]
    svg = month_chart(months, 5, title="<script>alert(1)</script>", desc="a & b", chart_id='x" onload="evil')
    assert "<script>" not in svg and "onload=" not in svg.replace('id="xonloadevil', "")
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "<script>alert(1)</script>"
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "month-label"][0] == "<m0>&"


def test_chart_needs_twelve_months_and_scales_to_the_largest():
    with pytest.raises(ValueError):
        month_chart([Month(0, 0, "x")] * 11, 5, title="t", desc="d")
    assert ticks(5) == [0, 1, 2, 3, 4, 5]
    assert ticks(7) == [0, 2, 4, 6, 8]
    assert ticks(30) == [0, 10, 20, 30]
    svg = ET.fromstring(month_chart([Month(0, 0, "m")] * 11 + [Month(9, 0, "d")], 5, title="t", desc="d"))
    pace = next(line for line in svg.iter(f"{SVG}line") if line.get("class") == "pace")
    december = bars(svg)[-1][1]
    assert december == pytest.approx((float(pace.get("y1")) - float(pace.get("y2"))) * 9 / 5)
