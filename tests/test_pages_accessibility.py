"""Every page, walked from the menus as a visitor and as an organizer, in both languages: a label
on every field, one h1 and headings in order, and every page sent with its language."""
from __future__ import annotations

import datetime as dt

import pytest

from scheduler.auth.models import Role
from scheduler.targets.operations import seed_city_targets
from tests.factories import CST, create_city, create_event, create_user
from tests.pages import sign_in
from tests.walker import PageParser, Walker


class Findings:
    """What the walk found wrong, page by page."""

    def __init__(self) -> None:
        self.problems: dict[str, list[str]] = {}

    def on_page(self, path: str, body: str, parser: PageParser) -> None:
        """Labels, headings and the language of one page."""
        found = [f"no label: {field}" for field in parser.unlabelled()]
        levels = parser.headings
        if levels.count(1) != 1:
            found.append(f"{levels.count(1)} h1 headings")
        found += [f"h{b} after h{a}" for a, b in zip(levels, levels[1:]) if b > a + 1]
        if '<html lang="' not in body:
            found.append("no lang on <html>")
        if found:
            self.problems[path] = found


@pytest.fixture
def city(ctx):
    orgs = create_city()
    seed_city_targets(2024)
    return orgs


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_has_labels_and_ordered_headings(app, city, clock, lang) -> None:
    clock.set(dt.datetime(2024, 6, 15, 10, 0, tzinfo=CST))
    tour = create_event(city["xinhui"], publish=True, capacity=1)
    create_event(city["kaiping"], publish=True, kind="matchmaking", title="邑科汇",
                 starts_at=dt.datetime(2024, 6, 1, 9, tzinfo=CST), ends_at=dt.datetime(2024, 6, 1, 17, tzinfo=CST),
                 details={"sector": "new_energy"})
    create_event(city["xinhui"], kind="contest", title="创新创业大赛",
                 starts_at=dt.datetime(2024, 9, 1, 9, tzinfo=CST), ends_at=dt.datetime(2024, 9, 1, 17, tzinfo=CST),
                 details={"registration_deadline": "2024-08-01T18:00:00+08:00", "final_at": "2024-09-01T09:00:00+08:00"})
    organizer = create_user(Role.MANAGER, city["bureau"])
    findings = Findings()
    visitor, staff = app.test_client(), app.test_client()
    visitor.set_cookie("lang", lang)
    staff.set_cookie("lang", lang)
    seen = Walker(visitor, findings.on_page).walk(["/", f"/events/{tour.id}", "/registrations/cancel", "/calendars", "/login"])
    assert sign_in(staff, organizer.email).status_code == 302
    seen |= Walker(staff, findings.on_page).walk(["/organizer"])
    assert len(seen) >= 10
    assert findings.problems == {}
