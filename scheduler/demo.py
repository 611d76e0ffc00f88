"""The demo plan: the organizations of DOMAIN.md, the work plan's targets, and a year in progress.

Dates are relative to today so a newcomer always sees held events with outcomes,
upcoming published ones with registrations, a draft and a cancelled event.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from scheduler.auth.models import Role
from scheduler.auth.operations import create_user, get_user_by_email, set_membership
from scheduler.events import operations as events
from scheduler.events.kinds import Kind, Sector
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.orgs.models import Organization, OrgType
from scheduler.orgs.operations import upsert_org
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.operations import register
from scheduler.targets.models import Target
from scheduler.targets.operations import seed_city_targets

BUREAU = ("jmkjj", "江门市科学技术局", "Jiangmen Municipal Bureau of Science and Technology")
COUNTY_OFFICES = (
    ("pengjiang", "蓬江区科学技术局", "Pengjiang District Science and Technology Bureau"),
    ("jianghai", "江海区科学技术局", "Jianghai District Science and Technology Bureau"),
    ("xinhui", "新会区科学技术局", "Xinhui District Science and Technology Bureau"),
    ("taishan", "台山市科学技术局", "Taishan Science and Technology Bureau"),
    ("kaiping", "开平市科学技术局", "Kaiping Science and Technology Bureau"),
    ("heshan", "鹤山市科学技术局", "Heshan Science and Technology Bureau"),
    ("enping", "恩平市科学技术局", "Enping Science and Technology Bureau"),
)
OTHER_ORGS = (
    ("wyu", "五邑大学", "Wuyi University", OrgType.UNIVERSITY, "pengjiang"),
    ("jmpt", "江门职业技术学院", "Jiangmen Polytechnic", OrgType.UNIVERSITY, "pengjiang"),
    ("jmtcm", "江门中医药职业学院", "Jiangmen Vocational College of Traditional Chinese Medicine", OrgType.UNIVERSITY, "pengjiang"),
    ("carbon-lab", "江门双碳实验室", "Jiangmen Laboratory of Carbon Science and Technology", OrgType.LAB, "jianghai"),
    ("neutrino-lab", "江门中微子实验室", "Jiangmen Underground Neutrino Observatory", OrgType.LAB, "kaiping"),
    ("gdas-jm", "省科学院江门产业研究院(江门产研院)", "GDAS Jiangmen Industrial Technology Research Institute", OrgType.INSTITUTE, "pengjiang"),
    ("jm-agri", "江门市农业科学研究所", "Jiangmen Institute of Agricultural Sciences", OrgType.INSTITUTE, "pengjiang"),
    ("zhuxi", "珠西创谷", "Zhuxi Innovation Valley", OrgType.INCUBATOR, "jianghai"),
)
#: Hand-recorded progress of the demo year's manual targets.
DEMO_MANUAL_PROGRESS = {"provincial_science_bases": 3, "joint_rd_projects": 31, "basic_research_projects": 17}


def seed_orgs() -> dict[str, Organization]:
    """Create (or refresh) the organizations of DOMAIN.md; return them by slug."""
    bureau = upsert_org(*BUREAU, OrgType.BUREAU)
    orgs = {bureau.slug: bureau}
    for slug, zh, en in COUNTY_OFFICES:
        orgs[slug] = upsert_org(slug, zh, en, OrgType.COUNTY_OFFICE, bureau, county=slug)
    for slug, zh, en, kind, county in OTHER_ORGS:
        orgs[slug] = upsert_org(slug, zh, en, kind, bureau, county=county)
    return orgs


@dataclass
class DemoEvent:
    """One event of the demo plan, placed relative to today."""

    n: int
    kind: Kind
    org: str
    title: str
    start: dt.datetime
    hours: float = 3
    venue: str = ""
    address: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    capacity: int | None = None
    all_day_days: int = 0
    rrule: str | None = None
    state: str = "published"  # draft | published | cancelled
    outcome: dict[str, int] | None = None
    registrants: int = 0
    description: str = ""


def _plan(today: dt.date, tz: ZoneInfo) -> list[DemoEvent]:
    jan1, dec31 = dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)

    def past(fraction: float, hour: int = 9) -> dt.datetime:
        day = jan1 + dt.timedelta(days=int((today - jan1).days * fraction))
        return dt.datetime.combine(min(day, today - dt.timedelta(days=1)), dt.time(hour), tzinfo=tz)

    def ahead(fraction: float, hour: int = 9) -> dt.datetime:
        day = today + dt.timedelta(days=max(3, int((dec31 - today).days * fraction)))
        return dt.datetime.combine(day, dt.time(hour), tzinfo=tz)

    year = today.year
    final = ahead(0.5, 14)
    return [
        DemoEvent(1, Kind.SCIENCE_CARNIVAL, "jmkjj", f"{year}江门科普嘉年华", past(0.25), 7, "江门市科技馆", "江门市蓬江区建设三路",
                  {"theme": "科技点亮生活", "expected_attendance": 10000, "booths": 80}, outcome={"attendance": 12600}),
        DemoEvent(2, Kind.TECH_WEEK, "jmkjj", f"{year}年江门市全国科技活动周", past(0.4), all_day_days=7, venue="全市各县(市、区)",
                  details={"theme": "科技强国 科普惠民", "sessions": []}, outcome={"attendance": 31000}),
        DemoEvent(3, Kind.STUDY_TOUR, "neutrino-lab", "走进江门中微子实验室", past(0.55, 8), 8, "江门中微子实验室", "开平市金鸡镇",
                  {"meeting_point": "江门市科技馆北门", "age_min": 12, "age_max": 18,
                   "itinerary": [{"time": "08:00", "place": "江门市科技馆北门集合"}, {"time": "10:00", "place": "中微子实验室展厅"}]},
                  capacity=40, outcome={"attendance": 38}),
        DemoEvent(4, Kind.MATCHMAKING, "gdas-jm", "“邑科汇”智能装备领域科技成果对接会", past(0.3, 14), 3, "江门产研院报告厅", "江门市蓬江区",
                  {"sector": Sector.INTELLIGENT_EQUIPMENT.value, "partners": ["五邑大学", "江门职业技术学院"]},
                  outcome={"attendance": 180, "achievements_presented": 42, "achievements_matched": 9, "achievements_commercialized": 3}),
        DemoEvent(5, Kind.MATCHMAKING, "carbon-lab", "“邑科汇”新能源领域科技成果对接会", past(0.7, 14), 3, "江门双碳实验室", "江门市江海区",
                  {"sector": Sector.NEW_ENERGY.value},
                  outcome={"attendance": 150, "achievements_presented": 35, "achievements_matched": 8, "achievements_commercialized": 2}),
        DemoEvent(6, Kind.CONTEST, "jmkjj", f"{year}年“科技杯”创新创业大赛决赛", final, 5, "珠西创谷路演中心", "江门市江海区",
                  {"registration_deadline": past(0.5, 18).isoformat(), "preliminary_at": past(0.8).isoformat(),
                   "final_at": final.isoformat(), "tracks": ["成长组", "初创组"]}),
        DemoEvent(7, Kind.STUDY_TOUR, "wyu", "走进五邑大学智能制造实验室", ahead(0.15, 9), 4, "五邑大学", "江门市蓬江区东成村22号",
                  {"meeting_point": "五邑大学南门", "age_min": 10, "age_max": 16}, capacity=12, registrants=14),
        DemoEvent(8, Kind.MATCHMAKING, "zhuxi", "“邑科汇”家电领域科技成果对接会", ahead(0.35, 14), 3, "珠西创谷", "江门市江海区",
                  {"sector": Sector.HOME_APPLIANCES.value}, capacity=200, registrants=6),
        DemoEvent(9, Kind.SCIENCE_CARNIVAL, "xinhui", "新会区科普嘉年华", ahead(0.6, 9), 6, "新会区文化广场", "江门市新会区",
                  {"expected_attendance": 5000, "booths": 40}, registrants=3),
        DemoEvent(10, Kind.STUDY_TOUR, "jm-agri", "走进农科所:现代农业研学", ahead(0.8, 9), 4, "江门市农业科学研究所", "",
                  {"meeting_point": "农科所大门"}, capacity=30, state="draft"),
        DemoEvent(11, Kind.SCIENCE_CARNIVAL, "taishan", "台山海洋科普嘉年华", ahead(0.25, 9), 6, "台山市人民广场", "台山市",
                  {"theme": "海洋科普"}, state="cancelled"),
        DemoEvent(12, Kind.STUDY_TOUR, "carbon-lab", "双碳科普周末研学", ahead(0.1, 9), 3, "江门双碳实验室", "江门市江海区",
                  {"meeting_point": "江门双碳实验室一楼大厅", "age_min": 8, "age_max": 14}, capacity=25,
                  rrule="FREQ=WEEKLY;COUNT=3", registrants=5),
    ]


def _create(spec: DemoEvent, org: Organization, year: int) -> Event:
    uid = f"demo-{year}-{spec.n}@scheduler"
    existing = db.session.scalar(select(Event).where(Event.uid == uid))
    if existing is not None:
        return existing
    if spec.all_day_days:
        start: dt.date | dt.datetime = spec.start.date()
        end: dt.date | dt.datetime = spec.start.date() + dt.timedelta(days=spec.all_day_days - 1)
    else:
        start, end = spec.start, spec.start + dt.timedelta(hours=spec.hours)
    event = events.create_event(
        org=org, kind=spec.kind, title=spec.title, starts_at=start, ends_at=end, all_day=bool(spec.all_day_days),
        rrule=spec.rrule, details=spec.details, uid=uid, venue=spec.venue, address=spec.address,
        capacity=spec.capacity, description=spec.description or f"{spec.title}(演示数据 demo data)",
    )
    if spec.state in ("published", "cancelled"):
        events.publish_event(event)
    for i in range(spec.registrants):
        register(event, name=f"参与者{i + 1}", phone=f"1380013{spec.n:02d}{i:02d}", channels=["sms"], consent_version=NOTICE_VERSION)
    if spec.outcome:
        events.record_outcome(event, spec.outcome)
    if spec.state == "cancelled":
        events.cancel_event(event, "受台风影响取消 Cancelled because of a typhoon")
    return event


def seed_demo(today: dt.date, tz: ZoneInfo, admin_email: str) -> str | None:
    """Load the demo plan; return the admin's new password, or ``None`` if the admin existed."""
    orgs = seed_orgs()
    password = None
    if get_user_by_email(admin_email) is None:
        _, password = create_user(admin_email, name="Administrator", is_admin=True)
    for year in sorted({2024, today.year}):
        seed_city_targets(year)
    for key, value in DEMO_MANUAL_PROGRESS.items():
        target = db.session.scalar(select(Target).where(Target.year == today.year, Target.org_id.is_(None), Target.key == key))
        if target is not None and not target.manual_value:
            target.manual_value = value
    for spec in _plan(today, tz):
        _create(spec, orgs[spec.org], today.year)
    demo_manager = get_user_by_email("xinhui.manager@example.org")
    if demo_manager is None:
        demo_manager, _ = create_user("xinhui.manager@example.org", name="新会区科技局管理员")
        set_membership(demo_manager, orgs["xinhui"], Role.MANAGER)
    db.session.flush()
    return password
