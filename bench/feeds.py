"""Benchmark of the calendar feeds: building, rebuilding and serving ``/calendars/all.ics``.

For each backend (SQLite in a temporary file, PostgreSQL in a dedicated ``bench_feeds``
database) and each size (feeds of 1,000 and of 5,000 events) the schema is built by the
project's Alembic migrations and realistic events are bulk-loaded with SQLAlchemy Core.
Then

1. the all-events feed is built from the database with cold caches
   (:func:`scheduler.feeds.service.feed_for`), against two floors measured in the same
   run on the same events held in memory: the project's renderer alone
   (:func:`scheduler.feeds.ical.build_calendar` on :class:`~scheduler.feeds.ical.EventView`
   objects) and a plain hand-written ``icalendar`` build of equivalent VEVENTs
   (goal: database build at most 1.5 × the floor);
2. on the largest size, one event's title is changed (``update_event`` + commit) with warm
   caches and the feed is built again (goal: at most 10 % of a cold build); the cached
   path (nothing changed) is timed too;
3. on the smallest size, ``gunicorn wsgi:app`` serves the database and a load generator
   (``wrk`` when on PATH, else a bounded Python one) measures requests per second of
   the feed answered 200, answered 200 gzipped (``Accept-Encoding: gzip``), answered 304
   (``If-None-Match``), and of
   ``/healthz`` on the same server (goals: 304 at least 0.5 and 200 at least 0.3 of
   ``/healthz``).

It prints the tables with their ratios and writes the figures to
``bench/results/feeds-<timestamp>.json``. Run ``python -m bench.feeds --help``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import hashlib
import http.client
import json
import multiprocessing
import contextlib
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from flask import Flask
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from bench.api import (
    BATCH, RESULTS_DIR, TZ, TZ_NAME, UTC, Timing, add_backend_args, batched, build_schema, make_app, postgresql,
    print_closing, sqlite_url,
)
from scheduler.events.kinds import KINDS, SECTOR_NAMES, Kind, Sector, validate_details
from scheduler.events.models import Event, Status
from scheduler.events.operations import update_event
from scheduler.events.times import normalize_times, occurrence_starts
from scheduler.extensions import db
from scheduler.feeds import service
from scheduler.feeds.ical import PRODID, REFRESH, CalendarMeta, EventView, Links, build_calendar
from scheduler.feeds.scopes import CANCELLED_VISIBLE, all_scope
from scheduler.feeds.service import caches, feed_for
from scheduler.util.time import frozen, now

DESCRIPTION = ("Benchmark of the calendar feeds: cold build vs an in-memory icalendar floor, rebuild after one change, "
               "and 200/304 throughput under gunicorn against /healthz.")
DEFAULT_SIZES = (1_000, 5_000)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_feeds"
#: Databases other people's tests use: never dropped by this benchmark.
PROTECTED_DATABASES = frozenset({"test", "test_main"})
FEED_PATH = "/calendars/all.ics"
TRIVIAL_PATH = "/healthz"
ROOT = Path(__file__).resolve().parent.parent

#: The goals.
BUILD_GOAL = 1.5  # database build / in-memory floor
REBUILD_GOAL = 0.10  # rebuild after one change / cold build
LOAD_GOALS = {"feed_304": 0.5, "feed_200": 0.3}  # requests per second / those of /healthz
#: What a client asking for a compressed feed sends.
GZIP = {"Accept-Encoding": "gzip"}

# --------------------------------------------------------------------------- data

#: Share of each kind among the events (the plan has many tours and fairs, few tech weeks).
KIND_WEIGHTS = {
    Kind.SCIENCE_CARNIVAL.value: 0.18,
    Kind.TECH_WEEK.value: 0.05,
    Kind.STUDY_TOUR.value: 0.35,
    Kind.MATCHMAKING.value: 0.27,
    Kind.CONTEST.value: 0.15,
}
#: Which organizations (slugs of :mod:`scheduler.demo`) hold each kind.
KIND_ORGS = {
    Kind.SCIENCE_CARNIVAL.value: ("jmkjj", "pengjiang", "jianghai", "xinhui", "taishan", "kaiping", "heshan", "enping"),
    Kind.TECH_WEEK.value: ("jmkjj", "pengjiang", "jianghai", "xinhui", "taishan", "kaiping", "heshan", "enping"),
    Kind.STUDY_TOUR.value: ("neutrino-lab", "carbon-lab", "wyu", "jmpt", "jm-agri", "jmtcm"),
    Kind.MATCHMAKING.value: ("gdas-jm", "zhuxi", "carbon-lab", "wyu", "jmkjj"),
    Kind.CONTEST.value: ("jmkjj", "zhuxi", "wyu"),
}
PLACES = (  # (venue, address, latitude, longitude)
    ("江门市科技馆", "江门市蓬江区建设三路99号", 22.5905, 113.0821),
    ("五邑大学学术交流中心", "江门市蓬江区东成村22号", 22.6006, 113.0903),
    ("江门中微子实验室", "开平市金鸡镇", 22.1183, 112.5186),
    ("江门双碳实验室", "江门市江海区金瓯路", 22.5726, 113.1311),
    ("珠西创谷路演中心", "江门市江海区高新区", 22.5603, 113.1247),
    ("江门产研院报告厅", "江门市蓬江区棠下镇", 22.6791, 113.0445),
    ("新会区文化广场", "江门市新会区会城街道", 22.5221, 113.0322),
    ("台山市人民广场", "台山市台城街道", 22.2515, 112.7937),
    ("鹤山市科技馆", "鹤山市沙坪街道", 22.7654, 112.9643),
    ("恩平市青少年活动中心", "恩平市恩城街道", 22.1829, 112.3051),
    ("江门市农业科学研究所", "江门市蓬江区杜阮镇", 22.6125, 113.0117),
    ("小鸟天堂湿地科普基地", "江门市新会区会城街道天马村", 22.5448, 113.0654),
)
THEMES = ("科技点亮生活", "走近人工智能", "探索海洋奥秘", "低碳生活 绿色未来", "科学与健康", "航天梦 中国梦", "数字江门")
TOUR_TOPICS = ("探秘中微子", "低碳生活实践", "机器人编程体验", "现代农业研学", "新材料科学营", "中医药文化探索", "湿地生态观察")
TRACKS = ("成长组", "初创组", "智能制造", "新能源", "生物医药", "数字经济")
PARTNERS = ("五邑大学", "江门职业技术学院", "江门产研院", "江门双碳实验室", "广东工业大学", "华南理工大学", "中山大学江门研究院")
SENTENCES = {
    Kind.SCIENCE_CARNIVAL.value: (
        "本次嘉年华设置机器人互动、VR科学体验、趣味化学实验等多个展区,适合亲子家庭参与。",
        "现场将有来自五邑大学、江门职业技术学院的科普志愿者为市民讲解前沿科技知识。",
        "活动当天开放科学表演舞台,每小时一场“疯狂科学秀”,名额有限,先到先得。",
        "请市民朋友合理安排出行,建议乘坐公共交通前往,现场不设停车位。",
        "参与互动展区打卡集章,可兑换科普图书和文创纪念品一份。",
        "活动免费向公众开放,未成年人须由监护人陪同参加。",
    ),
    Kind.TECH_WEEK.value: (
        "全国科技活动周期间,全市各县(市、区)将同步举办科普讲座、科技展览和实验室开放日等系列活动。",
        "今年活动周集中展示江门在智能制造、新能源、新材料等领域的最新创新成果。",
        "市民可通过“江门科普”公众号预约参观重点实验室和科普教育基地。",
        "各分会场活动安排详见下方日程,具体时间以现场公告为准。",
        "活动周期间,江门市科技馆延长开放时间至晚上八点,并推出免费科学影片展映。",
    ),
    Kind.STUDY_TOUR.value: (
        "研学团将走进实验室,在科研人员带领下了解科学研究的基本流程,并动手完成一项小实验。",
        "活动全程由专业研学导师和安全员陪同,请学生穿着运动鞋、自带水杯。",
        "报名成功后,主办方将在活动前一天通过短信发送集合信息,请留意查收。",
        "行程包含午餐和往返交通,费用由主办单位承担。",
        "参与研学的学生可获得研学实践证书一份,计入综合素质评价。",
        "如遇恶劣天气,活动将顺延,具体安排另行通知。",
    ),
    Kind.MATCHMAKING.value: (
        "本期“邑科汇”邀请高校院所发布最新科技成果,与企业开展面对面洽谈。",
        "现场设置成果路演、需求发布和一对一对接三个环节,欢迎有技术需求的企业报名参加。",
        "参会企业可提前提交技术需求清单,主办方将协助匹配合适的科研团队。",
        "本次对接会同步开通线上直播,未能到场的企业可通过直播平台参与互动。",
        "已达成合作意向的项目,可申请市级科技成果转化专项资金支持。",
    ),
    Kind.CONTEST.value: (
        "大赛面向全市科技型中小企业和创业团队征集优秀项目,设成长组和初创组。",
        "决赛采用“路演+答辩”形式,由投资机构代表和行业专家组成评审团现场打分。",
        "获奖项目将优先推荐参加省级创新创业大赛,并获得创业辅导和融资对接服务。",
        "参赛项目须拥有自主知识产权,且未获得过往届大赛一等奖。",
        "比赛现场对公众开放,欢迎关注科技创新的市民前来观摩。",
    ),
}
CANCEL_REASONS = ("受台风影响取消 Cancelled because of a typhoon", "场地维修,活动取消 Venue under repair",
                  "报名人数不足,活动取消 Too few registrations")
#: Events are spread over this window around the time the data are loaded.
PAST, AHEAD = dt.timedelta(days=540), dt.timedelta(days=300)


@dataclass(frozen=True)
class Org:
    """What the feeds show of an organization."""

    id: int
    name_zh: str
    name_en: str


def _local_iso(value: dt.datetime) -> str:
    return value.astimezone(TZ).isoformat()


def _details(kind: str, start: dt.datetime, days: int, rng: random.Random, sector: str) -> dict[str, Any]:
    """Realistic details of ``kind`` for an event starting at ``start`` (local), before validation."""
    if kind == Kind.SCIENCE_CARNIVAL.value:
        return {"theme": rng.choice(THEMES), "expected_attendance": rng.randrange(500, 20_000, 100),
                "booths": rng.randint(10, 120), "audience": "亲子家庭、中小学生"}
    if kind == Kind.TECH_WEEK.value:
        sessions = []
        for day in range(min(days, rng.randint(2, 5))):
            begins = (start + dt.timedelta(days=day)).replace(hour=rng.choice((9, 10, 14, 15)))
            place = rng.choice(PLACES)
            sessions.append({"title": f"{rng.choice(THEMES)}专题讲座", "starts_at": _local_iso(begins),
                             "ends_at": _local_iso(begins + dt.timedelta(hours=2)), "venue": place[0]})
        return {"theme": "科技强国 科普惠民", "sessions": sessions}
    if kind == Kind.STUDY_TOUR.value:
        stops, clock = [], start
        for place in rng.sample(PLACES, rng.randint(2, 4)):
            stops.append({"time": f"{clock:%H:%M}", "place": place[0], "note": rng.choice(("参观讲解", "动手实验", "午餐休息", "交流分享"))})
            clock += dt.timedelta(minutes=rng.choice((45, 60, 90)))
        age_min = rng.randint(6, 12)
        return {"meeting_point": f"{rng.choice(PLACES)[0]}正门", "meeting_time": _local_iso(start - dt.timedelta(minutes=30)),
                "age_min": age_min, "age_max": age_min + rng.randint(2, 6), "itinerary": stops}
    if kind == Kind.MATCHMAKING.value:
        return {"sector": sector, "partners": rng.sample(PARTNERS, rng.randint(1, 4)),
                "achievements_planned": rng.randint(10, 60)}
    return {  # contest: the event is the final
        "registration_deadline": _local_iso(start - dt.timedelta(days=40)),
        "preliminary_at": _local_iso(start - dt.timedelta(days=14)),
        "final_at": _local_iso(start),
        "award_ceremony_at": _local_iso(start + dt.timedelta(hours=4)),
        "tracks": rng.sample(TRACKS, rng.randint(1, 3)),
    }


def _title(kind: str, start: dt.datetime, rng: random.Random, sector: str, n: int) -> str:
    county = rng.choice(("蓬江区", "江海区", "新会区", "台山市", "开平市", "鹤山市", "恩平市"))
    if kind == Kind.SCIENCE_CARNIVAL.value:
        return f"{start.year}年{county}“{rng.choice(THEMES)}”科普嘉年华"
    if kind == Kind.TECH_WEEK.value:
        return f"{start.year}年{county}全国科技活动周"
    if kind == Kind.STUDY_TOUR.value:
        return f"走进{rng.choice(PLACES)[0]}:{rng.choice(TOUR_TOPICS)}研学之旅"
    if kind == Kind.MATCHMAKING.value:
        return f"“邑科汇”{SECTOR_NAMES[sector][0]}领域科技成果对接会(第{n % 60 + 1}期)"
    return f"{start.year}年“科技杯”创新创业大赛{rng.choice(TRACKS)}决赛"


def _description(kind: str, rng: random.Random) -> str:
    pool = SENTENCES[kind]
    return "".join(rng.sample(pool, rng.randint(3, len(pool))))


def event_rows(size: int, orgs: dict[str, Org], seed: int, at: dt.datetime) -> Iterator[dict[str, Any]]:
    """``size`` events every public feed shows, plus ``size // 25`` it does not (drafts, old cancellations), mixed.

    Rows carry explicit ids (1, 2, ...) so the in-memory floor can use the same ids (and so
    the same URLs). Times go through :func:`~scheduler.events.times.normalize_times` and the
    details through :func:`~scheduler.events.kinds.validate_details`, as the application does.
    Shown events: about 10 % all-day (every tech week, a quarter of the carnivals), 2 % weekly
    series with COUNT (a quarter of them with one cancelled occurrence, EXDATE), 1 % cancelled
    in the last 25 days (still shown), past events mostly completed, the rest published.
    """
    rng = random.Random(seed)
    hidden = max(2, size // 25)
    hidden_at = set(rng.sample(range(size + hidden), hidden))
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    sectors = [s.value for s in Sector]
    low = (at - PAST).astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    days_span = (AHEAD + PAST).days
    for i in range(size + hidden):
        kind = rng.choices(kinds, weights)[0]
        sector = rng.choice(sectors)
        day = low + dt.timedelta(days=rng.randrange(days_span))
        start = day.replace(hour=rng.choice((8, 9, 9, 10, 14, 14, 15, 19)), minute=rng.choice((0, 0, 30)))
        if kind == Kind.TECH_WEEK.value:
            all_day_days = 7
        else:
            all_day_days = rng.randint(1, 2) if kind == Kind.SCIENCE_CARNIVAL.value and rng.random() < 0.25 else 0
        recurring = kind == Kind.STUDY_TOUR.value and not all_day_days and rng.random() < 0.06
        rule = f"FREQ=WEEKLY;COUNT={rng.randint(3, 8)}" if recurring else None
        if all_day_days:
            times = normalize_times(start.date(), start.date() + dt.timedelta(days=all_day_days - 1), all_day=True,
                                    tz_name=TZ_NAME, rule_text=None)
        else:
            hours = {Kind.STUDY_TOUR.value: (3, 8), Kind.MATCHMAKING.value: (2, 4), Kind.CONTEST.value: (3, 6)}.get(kind, (4, 8))
            times = normalize_times(start, start + dt.timedelta(hours=rng.randint(*hours)), all_day=False, tz_name=TZ_NAME,
                                    rule_text=rule)
        exdates: list[str] = []
        if rule and rng.random() < 0.25:
            exdates = [occurrence_starts(times.starts_at, TZ_NAME, rule)[1].isoformat()]
        created = min(times.starts_at - dt.timedelta(days=rng.randint(20, 90)), at - dt.timedelta(days=30))
        updated = created + dt.timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 600))
        past = times.last_ends_at < at
        cancelled_at = None
        if i in hidden_at:  # not shown: a draft, or cancelled long ago
            status = Status.DRAFT.value if rng.random() < 0.75 else Status.CANCELLED.value
            if status == Status.CANCELLED.value:
                cancelled_at = updated = at - dt.timedelta(days=rng.randint(60, 400))
                created = min(created, updated - dt.timedelta(days=1))
        elif rng.random() < 0.01:  # cancelled recently: shown, marked cancelled
            status = Status.CANCELLED.value
            cancelled_at = updated = at - dt.timedelta(days=rng.randint(1, 25), minutes=rng.randint(0, 600))
            created = min(created, updated - dt.timedelta(days=1))
        elif past and rng.random() < 0.7:
            status = Status.COMPLETED.value
        else:
            status = Status.PUBLISHED.value
        org = orgs[rng.choice(KIND_ORGS[kind])]
        venue, address, latitude, longitude = rng.choice(PLACES)
        if rng.random() < 0.1:
            latitude = longitude = None
        local_start = times.starts_at.astimezone(TZ)
        yield {
            "id": i + 1,
            "uid": f"bench-feed-{i:06d}@scheduler",
            "kind": kind,
            "title": _title(kind, local_start, rng, sector, i),
            "description": _description(kind, rng),
            "org_id": org.id,
            "venue": venue,
            "address": address,
            "latitude": latitude,
            "longitude": longitude,
            "starts_at": times.starts_at,
            "ends_at": times.ends_at,
            "last_ends_at": times.last_ends_at,
            "span_seconds": times.span_seconds,
            "all_day": bool(all_day_days),
            "timezone": TZ_NAME,
            "rrule": times.rrule,
            "exdates": exdates,
            "status": status,
            "capacity": {Kind.STUDY_TOUR.value: rng.randint(20, 60),
                         Kind.MATCHMAKING.value: rng.choice((100, 200, 300))}.get(kind),
            "details": validate_details(Kind(kind), _details(kind, local_start, max(all_day_days, 1), rng, sector)),
            "reminder_offsets": None,
            "sequence": rng.choice((0, 0, 0, 1, 2)) + (status == Status.CANCELLED.value),
            "cancel_reason": rng.choice(CANCEL_REASONS) if status == Status.CANCELLED.value else None,
            "published_at": None if status == Status.DRAFT.value else created + dt.timedelta(hours=2),
            "cancelled_at": cancelled_at,
            "import_source": None,
            "created_by_id": None,
            "created_at": created,
            "updated_at": max(updated, created),
        }


def load_dataset(size: int, seed: int) -> tuple[list[dict[str, Any]], dict[int, Org]]:
    """Insert the demo organizations, this year's city targets and the events; return the rows and organizations.

    Organizations and targets go through the application (as ``flask seed-demo`` does), the
    events through Core ``executemany`` in batches. PostgreSQL gets ``VACUUM (ANALYZE)`` and
    its id sequence moved past the explicit ids.
    """
    from scheduler.demo import seed_orgs  # the organizations of DOMAIN.md
    from scheduler.targets.operations import seed_city_targets

    at = now().replace(microsecond=0)
    by_slug = seed_orgs()
    seed_city_targets(at.astimezone(TZ).year)
    orgs = {slug: Org(o.id, o.name_zh, o.name_en) for slug, o in by_slug.items()}
    db.session.commit()
    db.session.remove()
    rows = list(event_rows(size, orgs, seed, at))
    with db.engine.begin() as conn:
        for batch in batched(iter(rows), BATCH):
            conn.execute(insert(Event.__table__), batch)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT max(id) FROM events))"))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    return rows, {o.id: o for o in orgs.values()}


#: How long a past event stays in the public feeds: ``FEED_PAST_DAYS``' default (the benchmark's app keeps it).
FEED_PAST = dt.timedelta(days=400)


def shown(row: dict[str, Any], at: dt.datetime) -> bool:
    """Whether the all-events feed shows the event of ``row`` at ``at`` (see :meth:`Scope.conditions`):
    published or held, or cancelled lately, and not yet aged out (``FEED_PAST_DAYS``)."""
    if row["last_ends_at"] < at - FEED_PAST:
        return False
    if row["status"] in (Status.PUBLISHED.value, Status.COMPLETED.value):
        return True
    return row["status"] == Status.CANCELLED.value and row["cancelled_at"] >= at - CANCELLED_VISIBLE


def views_of(rows: Sequence[dict[str, Any]], orgs: dict[int, Org], at: dt.datetime) -> list[EventView]:
    """The feed's events as in-memory :class:`EventView` objects, in the feed's order (start, id)."""
    views = []
    for row in rows:
        if not shown(row, at):
            continue
        org = orgs[row["org_id"]]
        values = {name: row[name] for name in EventView.__dataclass_fields__ if name in row}
        values.update(exdates=tuple(row["exdates"]), org_name_zh=org.name_zh, org_name_en=org.name_en)
        views.append(EventView(**values))
    views.sort(key=lambda v: (v.starts_at, v.id))
    return views


# --------------------------------------------------------------------------- the floors


def floor_build_calendar(meta: CalendarMeta, views: list[EventView], links: dict[int, Links]) -> bytes:
    """Floor 1: the project's pure renderer on in-memory views (no database, no cache)."""
    return build_calendar(meta, views, links)


def _plain_description(view: EventView, info_zh: str, info_en: str, page: str) -> str:
    parts = []
    if view.status == Status.CANCELLED.value:
        parts.append(f"【已取消 Cancelled】{view.cancel_reason or ''}")
    if view.description:
        parts.append(view.description)
    lines = [f"{info_zh} · {info_en}", f"主办 Organizer: {view.org_name_zh} · {view.org_name_en}"]
    for key, value in (view.details or {}).items():
        if isinstance(value, list):
            for item in value:
                lines.append(f"{key}: " + (" ".join(str(v) for v in item.values()) if isinstance(item, dict) else str(item)))
        else:
            lines.append(f"{key}: {value}")
    parts.append("\n".join(lines))
    parts.append(f"详情与报名 Details & registration: {page}")
    return "\n\n".join(parts)


def floor_handwritten(meta: CalendarMeta, views: list[EventView], base: str, organizer: str,
                      vtimezone: icalendar.Timezone) -> bytes:
    """Floor 2: a plain ``icalendar`` build, one ``Calendar`` with equivalent VEVENTs (same properties).

    The VTIMEZONE is computed once beforehand, as the application caches it.
    """
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    for name in ("name", "x-wr-calname"):
        cal.add(name, icalendar.vText(meta.name))
    for name in ("description", "x-wr-caldesc"):
        cal.add(name, icalendar.vText(meta.description))
    cal.add("x-wr-timezone", meta.timezone)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", icalendar.vDuration(REFRESH))
    cal.add_component(vtimezone)
    for view in views:
        tz = ZoneInfo(view.timezone)
        info = KINDS[Kind(view.kind)]
        page = f"{base}/events/{view.id}"
        event = icalendar.Event()
        event.add("uid", view.uid)
        event.add("dtstamp", view.updated_at)
        start, end = view.starts_at.astimezone(tz), view.ends_at.astimezone(tz)
        event.add("dtstart", start.date() if view.all_day else start)
        event.add("dtend", end.date() if view.all_day else end)
        if view.rrule:
            event.add("rrule", icalendar.vRecur.from_ical(view.rrule))
            if view.exdates:
                event.add("exdate", [dt.datetime.fromisoformat(s).astimezone(tz) for s in view.exdates])
        cancelled = view.status == Status.CANCELLED.value
        event.add("summary", ("[已取消 Cancelled] " if cancelled else "") + view.title)
        event.add("description", _plain_description(view, info.name_zh, info.name_en, page))
        if view.venue or view.address:
            event.add("location", f"{view.venue} {view.address}".strip())
        if view.latitude is not None and view.longitude is not None:
            event.add("geo", (view.latitude, view.longitude))
        event.add("url", page)
        event.add("categories", [info.name_zh, info.name_en])
        address = icalendar.vCalAddress(f"mailto:{organizer}")
        address.params["cn"] = icalendar.vText(f"{view.org_name_zh} {view.org_name_en}")
        event.add("organizer", address)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("sequence", view.sequence)
        event.add("created", view.created_at)
        event.add("last-modified", view.updated_at)
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    return cal.to_ical()


# --------------------------------------------------------------------------- results


@dataclass
class Runs:
    """A few timed runs of something slow: the median is the figure, min and max show the spread (ms)."""

    median_ms: float
    min_ms: float
    max_ms: float
    samples_ms: list[float]

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Runs:
        """Summarise ``samples_ms``."""
        return cls(statistics.median(samples_ms), min(samples_ms), max(samples_ms), [round(s, 3) for s in samples_ms])


@dataclass
class BuildResult:
    """Part 1 on one backend at one size: a cold build from the database against the floors."""

    backend: str
    size: int
    events_in_feed: int
    load_seconds: float
    body_bytes: dict[str, int]
    database: Runs
    #: The part of ``database`` spent on the calendar description's progress note.
    database_progress_note: Runs
    floor_build_calendar: Runs
    floor_handwritten: Runs
    same_bytes_as_floor: bool
    first_difference: str | None = None

    @property
    def floor(self) -> float:
        """The lower of the two floors (median ms)."""
        return min(self.floor_build_calendar.median_ms, self.floor_handwritten.median_ms)


@dataclass
class RebuildResult:
    """Part 2 on one backend: rebuild after one change, and the cached path."""

    backend: str
    size: int
    changed_event: dict[str, Any]
    cold_median_ms: float
    rebuild: Runs
    #: The part of ``rebuild`` spent on the calendar description's progress note.
    rebuild_progress_note: Runs
    cached: Timing

    @property
    def ratio(self) -> float:
        """Rebuild over a cold build (medians)."""
        return self.rebuild.median_ms / self.cold_median_ms


@dataclass
class LoadPhase:
    """One endpoint under load."""

    name: str
    path: str
    headers: dict[str, str]
    expected_status: int
    expected_body_bytes: int
    requests: int
    seconds: float
    rps: float
    statuses: dict[str, int]
    #: Responses of the expected status but another body length (counted in ``statuses`` too).
    wrong_length: int
    errors: dict[str, int]
    #: Medians over the rounds (each round is one run of the load generator).
    p50_ms: float | None
    p95_ms: float | None
    round_rps: list[float]

    @classmethod
    def of(cls, name: str, path: str, headers: dict[str, str], expected_status: int, expected_body_bytes: int,
           rounds: Sequence[dict[str, Any]]) -> LoadPhase:
        """Add up the rounds of one endpoint."""
        requests = sum(r["requests"] for r in rounds)
        seconds = sum(r["seconds"] for r in rounds)
        statuses: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for r in rounds:
            statuses.update(r["statuses"])
            errors.update(r["errors"])

        def median(key: str) -> float | None:
            values = [r[key] for r in rounds if r[key] is not None]
            return statistics.median(values) if values else None

        return cls(name, path, headers, expected_status, expected_body_bytes, requests, seconds,
                   requests / seconds if seconds else 0.0, dict(statuses), sum(r["wrong_length"] for r in rounds), dict(errors),
                   median("p50_ms"), median("p95_ms"),
                   [r["requests"] / r["seconds"] if r["seconds"] else 0.0 for r in rounds])

    @property
    def bad(self) -> int:
        """Responses that were not as expected, plus transport errors."""
        unexpected = sum(n for code, n in self.statuses.items() if code not in (str(self.expected_status), "<400"))
        return unexpected + self.wrong_length + sum(self.errors.values())


@dataclass
class LoadResult:
    """Part 3 on one backend: gunicorn under a load generator."""

    backend: str
    size: int
    generator: str
    server: str
    concurrency: int
    duration: float
    feed_bytes: int
    phases: list[LoadPhase] = field(default_factory=list)
    error: str | None = None
    #: The same feed gzipped (``Accept-Encoding: gzip``).
    feed_gzip_bytes: int = 0
    #: Events in the feed (those not aged out of it: ``FEED_PAST_DAYS``).
    feed_events: int = 0

    def ratio(self, name: str) -> float | None:
        """Requests per second of phase ``name`` over those of ``/healthz`` (all rounds together)."""
        by_name = {p.name: p for p in self.phases}
        if name not in by_name or "healthz" not in by_name or not by_name["healthz"].rps:
            return None
        return by_name[name].rps / by_name["healthz"].rps

    def round_ratios(self, name: str) -> list[float]:
        """The same ratio round by round (each round against the ``/healthz`` run just before it)."""
        by_name = {p.name: p for p in self.phases}
        if name not in by_name or "healthz" not in by_name:
            return []
        return [x / h for x, h in zip(by_name[name].round_rps, by_name["healthz"].round_rps, strict=True) if h]


# --------------------------------------------------------------------------- part 1: builds


def clear_caches(app: Flask) -> None:
    """Empty every feed cache of ``app`` (rendered VEVENTs, feeds, progress notes, and any cache added later)."""
    for cache in vars(caches(app)).values():
        if hasattr(cache, "clear"):
            cache.clear()


def unfolded(body: bytes) -> bytes:
    """``body`` with RFC 5545 line folding undone."""
    return body.replace(b"\r\n ", b"").replace(b"\r\n\t", b"")


def calendar_meta(body: bytes, timezone: str) -> CalendarMeta:
    """The calendar's own name and description, read back from a rendered feed (its head only)."""
    head = body.split(b"BEGIN:VTIMEZONE", 1)[0].split(b"BEGIN:VEVENT", 1)[0]
    cal = icalendar.Calendar.from_ical(head + b"END:VCALENDAR\r\n")
    return CalendarMeta(str(cal["x-wr-calname"]), str(cal["x-wr-caldesc"]), timezone)


class ProgressClock:
    """Times ``scheduler.feeds.service.progress_note`` (the calendar description's progress note) within ``feed_for``.

    Timing only: the function is wrapped while the clock is installed (``with PROGRESS:``) and
    restored afterwards; where the service has no such function the figure stays 0.
    """

    def __init__(self) -> None:
        self.ms = 0.0
        self._original: Callable[..., Any] | None = None

    def __enter__(self) -> ProgressClock:
        original = self._original = getattr(service, "progress_note", None)
        if original is not None:
            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.ms += (time.perf_counter() - started) * 1000

            service.progress_note = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._original is not None:
            service.progress_note = self._original  # type: ignore[assignment]
            self._original = None


PROGRESS = ProgressClock()


def db_build(app: Flask, at: dt.datetime, cold: bool = True) -> tuple[float, Any]:
    """Time one ``feed_for(all)`` at ``at`` in a fresh application context (caches emptied first when ``cold``).

    The application's clock is frozen at ``at``: feeds also change with time alone (an event
    starting changes the progress note, a cancelled event drops out), which must not happen
    between the runs compared.
    """
    with frozen(at), app.app_context():
        scope = all_scope()
        if cold:
            clear_caches(app)
        gc.collect()
        PROGRESS.ms = 0.0
        started = time.perf_counter()
        feed = feed_for(scope)
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, feed


def first_difference(a: bytes, b: bytes) -> str | None:
    """The first differing line of two calendars, or ``None`` when equal."""
    if a == b:
        return None
    for i, (x, y) in enumerate(zip(a.split(b"\r\n"), b.split(b"\r\n"), strict=False)):
        if x != y:
            return f"line {i + 1}: database {x[:80]!r} / floor {y[:80]!r}"
    return f"lengths differ: {len(a)} / {len(b)} bytes"


def measure_builds(app: Flask, backend: str, size: int, rows: list[dict[str, Any]], orgs: dict[int, Org], load_seconds: float,
                   runs: int, at: dt.datetime) -> BuildResult:
    """Part 1 at ``at``: ``runs`` rounds of (database cold build, floor 1, floor 2) after one untimed round."""
    _, feed = db_build(app, at)  # warm-up: imports, compiled SQL, the VTIMEZONE cache
    views = views_of(rows, orgs, at)
    base, organizer = app.config["BASE_URL"], app.config.get("ORGANIZER_EMAIL", "noreply@example.org")
    meta = calendar_meta(feed.body, app.config["TIMEZONE"])
    links = {v.id: Links(f"{base}/events/{v.id}", organizer) for v in views}
    vtimezone = icalendar.Timezone.from_tzid(TZ_NAME, first_date=dt.date(2000, 1, 1), last_date=dt.date(2100, 1, 1))
    floor_body = floor_build_calendar(meta, views, links)
    hand_body = floor_handwritten(meta, views, base, organizer, vtimezone)
    counts = {name: body.count(b"BEGIN:VEVENT") for name, body in (("database", feed.body), ("build_calendar", floor_body),
                                                                      ("handwritten", hand_body))}
    if len(set(counts.values())) != 1 or counts["database"] != len(views):
        raise RuntimeError(f"the feeds do not hold the {len(views)} events of the {size} shown at {at}: {counts}")
    samples: dict[str, list[float]] = {"database": [], "progress": [], "build_calendar": [], "handwritten": []}

    def floor(call: Callable[[], bytes]) -> float:
        gc.collect()
        started = time.perf_counter()
        call()
        return (time.perf_counter() - started) * 1000

    for _ in range(runs):
        elapsed, feed = db_build(app, at)
        samples["database"].append(elapsed)
        samples["progress"].append(PROGRESS.ms)
        samples["build_calendar"].append(floor(lambda: floor_build_calendar(meta, views, links)))
        samples["handwritten"].append(floor(lambda: floor_handwritten(meta, views, base, organizer, vtimezone)))
    difference = first_difference(feed.body, floor_body)
    return BuildResult(
        backend, size, counts["database"], load_seconds,
        {"database": len(feed.body), "build_calendar": len(floor_body), "handwritten": len(hand_body)},
        Runs.of(samples["database"]), Runs.of(samples["progress"]), Runs.of(samples["build_calendar"]),
        Runs.of(samples["handwritten"]),
        difference is None, difference,
    )


# --------------------------------------------------------------------------- part 2: rebuild


def pick_event(rows: Sequence[dict[str, Any]], at: dt.datetime) -> dict[str, Any]:
    """An editable event to change: published, single, of a kind the calendar description counts, this year if possible.

    Such a change also invalidates the description's progress note: the most work a title change can cause.
    """
    year = at.astimezone(TZ).year
    candidates = [r for r in rows if r["status"] == Status.PUBLISHED.value and not r["rrule"]
                  and r["kind"] == Kind.SCIENCE_CARNIVAL.value]
    this_year = [r for r in candidates if r["starts_at"].astimezone(TZ).year == year and r["starts_at"] > at]
    chosen = (this_year or candidates or [r for r in rows if r["status"] == Status.PUBLISHED.value])[0]
    return chosen


def measure_rebuild(app: Flask, backend: str, build: BuildResult, rows: Sequence[dict[str, Any]], args: argparse.Namespace,
                    at: dt.datetime) -> RebuildResult:
    """Part 2: warm caches; change one title (``update_event`` + commit) and time ``feed_for`` again, ``runs`` times.

    Change ``i`` happens at ``at`` + ``i`` seconds (the application's clock frozen), so each has its own ``updated_at``.
    """
    _, feed = db_build(app, at, cold=False)  # the caches are warm from part 1; make sure
    chosen = pick_event(rows, at)
    samples, progress = [], []
    for i in range(args.runs):
        title = f"{chosen['title']}(第{i + 1}次更新)"
        moment = at + dt.timedelta(seconds=i + 1)
        with frozen(moment), app.app_context():
            event = db.session.get(Event, chosen["id"])
            update_event(event, {"title": title})
            db.session.commit()
        elapsed, new_feed = db_build(app, moment, cold=False)
        if new_feed.etag == feed.etag or title.encode() not in unfolded(new_feed.body):
            raise RuntimeError(f"the feed was not rebuilt after changing event {chosen['id']}'s title")
        samples.append(elapsed)
        progress.append(PROGRESS.ms)
        feed = new_feed
    cached = []
    for i in range(args.warmup + args.requests):
        elapsed, same = db_build(app, moment, cold=False)
        if same.etag != feed.etag:
            raise RuntimeError("the feed changed although nothing did")
        if i >= args.warmup:
            cached.append(elapsed)
    changed = {"id": chosen["id"], "kind": chosen["kind"], "starts_at": chosen["starts_at"].isoformat(), "field": "title"}
    return RebuildResult(backend, build.size, changed, build.database.median_ms, Runs.of(samples), Runs.of(progress),
                         Timing.of(cached))


# --------------------------------------------------------------------------- part 3: load

#: wrk script (``--check each``): counts statuses and bodies of the wrong length per thread, prints the totals at the end.
WRK_SCRIPT_EACH = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  expected_status = tonumber(args[1])
  expected_length = tonumber(args[2])
  statuses = {}
  wrong_length = 0
end
function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == expected_status and #body ~= expected_length then wrong_length = wrong_length + 1 end
end
function done(summary, latency, requests)
  local counts, wrong = {}, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do counts[code] = (counts[code] or 0) + n end
    wrong = wrong + thread:get("wrong_length")
  end
  for code, n in pairs(counts) do io.write(string.format("BENCH status %s %d\n", code, n)) end
  local e = summary.errors
  io.write(string.format("BENCH summary %d %d %d %d %d %d %d %d %d\n", summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, wrong))
  io.write(string.format("BENCH latency %d %d\n", latency:percentile(50), latency:percentile(95)))
end
"""
#: wrk script (``--check bytes``): no response hook, so wrk parses responses without keeping them; prints wrk's counters.
WRK_SCRIPT_BYTES = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH summary %d %d %d %d %d %d %d %d 0\n", summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("BENCH latency %d %d\n", latency:percentile(50), latency:percentile(95)))
end
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Seconds the untimed priming requests may take (a cold build of a large feed).
PRIMING_TIMEOUT = 120.0


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One GET on 127.0.0.1:``port``: status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class Server:
    """``gunicorn wsgi:app`` on a free port of 127.0.0.1, as a child process; always stopped by :meth:`stop`."""

    def __init__(self, url: str, workers: int, threads: int, log_dir: Path, app: str = "wsgi:app",
                 env: dict[str, str] | None = None, worker_connections: int = 1000) -> None:
        self.port = free_port()
        self.log_path = log_dir / "gunicorn.log"
        self.command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
                        "--worker-connections", str(worker_connections), "--bind", f"127.0.0.1:{self.port}",
                        "--keep-alive", "5", "--log-level", "warning", app]
        self.env = {**os.environ, "SCHEDULER_MODE": "off", "DATABASE_URL": url, "RATELIMIT_STORAGE_URI": "memory://",
                    **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout: float = 30) -> None:
        """Start gunicorn and wait (at most ``timeout`` seconds) until ``/healthz`` answers 200."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.1) + 1):
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if get(self.port, TRIVIAL_PATH, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer {TRIVIAL_PATH} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The end of gunicorn's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to gunicorn's master (it stops its workers); SIGKILL to its process group after 15 s."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group of the child started here (start_new_session)
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def wire_size(port: int, path: str, headers: dict[str, str]) -> int:
    """Bytes of one whole response (status line, headers, body) to the request wrk sends."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        for _ in range(10_000):
            if b"\r\n\r\n" in data:
                break
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(match[1]) if match and not head.startswith((b"HTTP/1.1 304", b"HTTP/1.0 304")) else 0
        for _ in range(100_000):
            if len(body) >= length:
                break
            body += sock.recv(1 << 20)
    return len(head) + 4 + length


def run_wrk(port: int, path: str, headers: dict[str, str], seconds: float, concurrency: int, expected_status: int,
            expected_length: int, expected_wire: int, each: bool, scripts: dict[bool, Path]) -> dict[str, Any]:
    """One wrk run; its figures parsed from the script's ``BENCH`` lines.

    ``each``: a Lua hook counts every response's status and body length (exact, but wrk then copies
    every body into Lua, which costs CPU the server shares on a small machine). Otherwise wrk
    counts responses >= 400 and socket errors itself, and the bytes received must be those of
    the completed responses at ``expected_wire`` bytes each, plus less than one per connection
    (the responses cut off when the run stopped): any other status changes the size (a 304
    instead of a 200 is 1 KB instead of 1.5 MB).
    """
    command = ["wrk", "--threads", str(min(2, concurrency)), "--connections", str(concurrency),
               "--duration", f"{round(seconds)}s", "--timeout", "10s", "--script", str(scripts[each])]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    command += [f"http://127.0.0.1:{port}{path}", "--", str(expected_status), str(expected_length)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"wrk failed ({output.returncode}): {output.stderr.strip() or output.stdout.strip()}")
    statuses: dict[str, int] = {}
    summary: list[int] | None = None
    latency: list[int] = []
    for line in output.stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["BENCH", "status"]:
            statuses[parts[2]] = int(parts[3])
        elif parts[:2] == ["BENCH", "summary"]:
            summary = [int(x) for x in parts[2:]]
        elif parts[:2] == ["BENCH", "latency"]:
            latency = [int(x) for x in parts[2:]]
    if summary is None:
        raise RuntimeError(f"no summary in wrk's output:\n{output.stdout}\n{output.stderr}")
    duration_us, requests, received, connect, read, write, status, timeout, wrong = summary
    if not each:
        statuses = {"<400": requests - status} | ({"400+": status} if status else {})
        low, high = requests * expected_wire, (requests + concurrency) * expected_wire
        off_by = 0 if status or low <= received < high else abs(received - (low if received < low else high))
        wrong = min(requests, -(-off_by // expected_wire))  # responses (at least) not of the expected size
    return {
        "requests": requests, "seconds": duration_us / 1e6, "statuses": statuses, "wrong_length": wrong,
        # wrk's "status" errors are responses >= 400: already in ``statuses``, not counted twice
        "errors": {"connect": connect, "read": read, "write": write, "timeout": timeout},
        "p50_ms": latency[0] / 1000 if latency else None, "p95_ms": latency[1] / 1000 if latency else None,
    }


def _python_connection(port: int, path: str, headers: dict[str, str], seconds: float, max_requests: int,
                       expected_status: int, expected_length: int) -> dict[str, Any]:
    """One keep-alive connection sending GETs back to back until ``seconds`` pass or ``max_requests`` are sent."""
    statuses: Counter[str] = Counter()
    errors, wrong, latencies = 0, 0, []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.perf_counter()
    deadline = started + seconds
    for _ in range(max_requests):
        begun = time.perf_counter()
        if begun >= deadline:
            break
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append((time.perf_counter() - begun) * 1000)
        statuses[str(response.status)] += 1
        if response.status == expected_status and len(body) != expected_length:
            wrong += 1
    conn.close()
    return {"statuses": dict(statuses), "errors": errors, "wrong": wrong, "latencies": latencies,
            "seconds": time.perf_counter() - started}


def _python_process(job: tuple[Any, ...]) -> list[dict[str, Any]]:
    """One load process: ``connections`` threads, each a keep-alive connection."""
    from concurrent.futures import ThreadPoolExecutor

    port, path, headers, seconds, connections, max_requests, expected_status, expected_length = job
    with ThreadPoolExecutor(connections) as pool:
        futures = [pool.submit(_python_connection, port, path, headers, seconds, max_requests, expected_status, expected_length)
                   for _ in range(connections)]
        return [f.result() for f in futures]


def run_python_load(port: int, path: str, headers: dict[str, str], seconds: float, concurrency: int, expected_status: int,
                    expected_length: int, max_requests: int) -> dict[str, Any]:
    """The built-in generator: up to ``os.cpu_count()`` processes sharing ``concurrency`` keep-alive connections."""
    processes = max(1, min(concurrency, os.cpu_count() or 1))
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    jobs = [(port, path, headers, seconds, share, max_requests, expected_status, expected_length) for share in shares]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        connections = [c for result in pool.map(_python_process, jobs) for c in result]
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    for c in connections:
        statuses.update(c["statuses"])
        latencies.extend(c["latencies"])
    requests = sum(statuses.values())
    elapsed = max(c["seconds"] for c in connections)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) >= 2 else None
    return {
        "requests": requests, "seconds": elapsed, "statuses": dict(statuses),
        "wrong_length": sum(c["wrong"] for c in connections),
        "errors": {"connection": sum(c["errors"] for c in connections)},
        "p50_ms": cuts[49] if cuts else None, "p95_ms": cuts[94] if cuts else None,
    }


def measure_load(backend: str, url: str, size: int, args: argparse.Namespace, events: int | None = None) -> LoadResult:
    """Part 3: gunicorn on ``url``; /healthz, the feed answered 200, the feed answered 304, each for ``--duration`` s."""
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk") is not None)
    check = "each response" if args.check == "each" else "bytes"
    generator = (f"wrk {min(2, args.concurrency)} threads, check {check}" if use_wrk
                 else f"python {max(1, min(args.concurrency, os.cpu_count() or 1))} processes (http.client keep-alive)")
    # At most concurrency / workers connections per worker: otherwise the first worker to wake up
    # may accept most of the generator's connections at once, and a run measures one worker on one
    # CPU (measured: /healthz then gives half as many requests per second, in one run out of three).
    per_worker = -(-args.concurrency // args.workers)
    server_text = (f"gunicorn --workers {args.workers} --threads {args.threads} --worker-connections {per_worker}"
                   f" {args.wsgi_app}")
    result = LoadResult(backend, size, generator, server_text, args.concurrency, args.duration, 0)
    with tempfile.TemporaryDirectory(prefix="bench-feeds-load-") as tmp:
        scripts = {True: Path(tmp) / "each.lua", False: Path(tmp) / "bytes.lua"}
        scripts[True].write_text(WRK_SCRIPT_EACH)
        scripts[False].write_text(WRK_SCRIPT_BYTES)
        each = args.check == "each"
        server = Server(url, args.workers, args.threads, Path(tmp), app=args.wsgi_app, worker_connections=per_worker)
        try:
            server.start()
            # the first request of each worker builds the feed cold (about 11 s at 20,000 events): not a timed request
            status, headers, body = get(server.port, FEED_PATH, timeout=PRIMING_TIMEOUT)
            if status != 200:
                raise RuntimeError(f"{FEED_PATH} answered {status}: {body[:300]!r}")
            etag = headers.get("ETag") or headers.get("etag")
            expected = size if events is None else events
            if not etag or body.count(b"BEGIN:VEVENT") != expected:
                raise RuntimeError(f"{FEED_PATH}: ETag {etag!r}, {body.count(b'BEGIN:VEVENT')} events (expected {expected})")
            result.feed_bytes, result.feed_events = len(body), expected
            health_bytes = len(get(server.port, TRIVIAL_PATH)[2])
            gz_status, gz_headers, gz_body = get(server.port, FEED_PATH, GZIP, timeout=PRIMING_TIMEOUT)
            for _ in range(2 * args.workers):  # every worker's cache warm before the timed rounds
                get(server.port, FEED_PATH, timeout=PRIMING_TIMEOUT)
            if gz_status != 200 or (gz_headers.get("Content-Encoding") or gz_headers.get("content-encoding")) != "gzip":
                raise RuntimeError(f"{FEED_PATH} with {GZIP}: {gz_status}, not gzip")
            result.feed_gzip_bytes = len(gz_body)
            phases = (
                ("healthz", TRIVIAL_PATH, {}, 200, health_bytes),
                ("feed_200", FEED_PATH, {}, 200, len(body)),
                ("feed_200_gzip", FEED_PATH, GZIP, 200, len(gz_body)),
                ("feed_304", FEED_PATH, {"If-None-Match": etag}, 304, 0),
            )
            wire = {path + str(extra): wire_size(server.port, path, extra) for _, path, extra, _, _ in phases}

            def load(path: str, extra: dict[str, str], expected: int, length: int, seconds: float) -> dict[str, Any]:
                if use_wrk:
                    return run_wrk(server.port, path, extra, seconds, args.concurrency, expected, length, wire[path + str(extra)],
                                   each, scripts)
                return run_python_load(server.port, path, extra, seconds, args.concurrency, expected, length, args.max_requests)

            # Warm every worker: each builds its own cache on its first feed request.
            if args.load_warmup:
                load(FEED_PATH, {}, 200, len(body), args.load_warmup)
            # Interleaved rounds (healthz, 200, 304, healthz, ...): a change in the machine's load
            # during the run touches every endpoint alike, and each round spreads new connections
            # over the workers afresh.
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in phases}
            for _ in range(args.rounds):
                for name, path, extra, expected, length in phases:
                    rounds[name].append(load(path, extra, expected, length, args.round_seconds))
            for name, path, extra, expected, length in phases:
                result.phases.append(LoadPhase.of(name, path, extra, expected, length, rounds[name]))
            if server.process is not None and server.process.poll() is not None:
                raise RuntimeError(f"gunicorn died during the load:\n{server.log_tail()}")
        except Exception as exc:  # noqa: BLE001  (reported with the rest; the server is stopped below either way)
            result.error = str(exc)
            result.phases.clear()
        finally:
            server.stop()
    return result


# --------------------------------------------------------------------------- one backend


Outcome = tuple[list[BuildResult], RebuildResult | None, LoadResult | None]


def run_backend(backend: str, urls: Callable[[], Any], args: argparse.Namespace) -> Outcome:
    """Every size on one backend: load, part 1; part 2 on the largest size, part 3 on the smallest."""
    with PROGRESS:
        return _run_backend(backend, urls, args)


def _run_backend(backend: str, urls: Callable[[], Any], args: argparse.Namespace) -> Outcome:
    builds: list[BuildResult] = []
    rebuild = load_result = None
    sizes = sorted(args.sizes)
    for size in sizes:
        print(f"{backend}: {size:,} events ...", flush=True)
        with urls() as url:
            app = make_app(url)
            # Parts 1 and 2 time the work a change causes: this process must see every change at
            # once, not up to FEED_VERSION_TTL seconds later (gunicorn, in part 3, keeps the setting).
            app.config["FEED_VERSION_TTL"] = 0
            try:
                with app.app_context():
                    build_schema()
                    started = time.perf_counter()
                    rows, orgs = load_dataset(size, args.seed)
                    load_seconds = time.perf_counter() - started
                at = now()
                build = measure_builds(app, backend, size, rows, orgs, load_seconds, args.runs, at)
                builds.append(build)
                print(f"  cold build {build.database.median_ms:,.0f} ms, floors {build.floor_build_calendar.median_ms:,.0f} /"
                      f" {build.floor_handwritten.median_ms:,.0f} ms", flush=True)
                if size == sizes[-1]:
                    rebuild = measure_rebuild(app, backend, build, rows, args, at + dt.timedelta(seconds=1))
                    print(f"  rebuild after one change {rebuild.rebuild.median_ms:,.1f} ms,"
                          f" cached path p50 {rebuild.cached.p50_ms:.2f} ms", flush=True)
            finally:
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
            if size == sizes[0] and not args.no_load:
                print(f"  under load: {args.duration:g} s per endpoint ...", flush=True)
                load_result = measure_load(backend, url, size, args, events=sum(shown(row, now()) for row in rows))
                if load_result.error:
                    print(f"  load test failed: {load_result.error}", flush=True)
    return builds, rebuild, load_result


# --------------------------------------------------------------------------- reporting


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def print_report(builds: Sequence[BuildResult], rebuilds: Sequence[RebuildResult], loads: Sequence[LoadResult],
                 args: argparse.Namespace) -> None:
    """Print the three tables."""
    print()
    print(f"1. Cold build of {FEED_PATH} (feed_for, caches emptied first) vs in-memory floors; median of {args.runs} runs, ms")
    header = (f"{'backend':<10} {'events':>6} {'KB':>6} │ {'database':>9} │ {'floor 1':>9} {'floor 2':>9} │"
              f" {'db/floor1':>9} {'db/floor2':>9} │ goal db ≤ {BUILD_GOAL} × floor")
    print(header)
    print("─" * len(header))
    for b in builds:
        r1, r2 = b.database.median_ms / b.floor_build_calendar.median_ms, b.database.median_ms / b.floor_handwritten.median_ms
        print(f"{b.backend:<10} {b.size:>6,} {b.body_bytes['database'] / 1024:>6,.0f} │ {b.database.median_ms:>9,.1f} │"
              f" {b.floor_build_calendar.median_ms:>9,.1f} {b.floor_handwritten.median_ms:>9,.1f} │ {r1:>9.2f} {r2:>9.2f} │"
              f" {_met(max(r1, r2) <= BUILD_GOAL)}{'' if b.same_bytes_as_floor else '  (bytes differ from floor 1!)'}")
    print("floor 1 = scheduler.feeds.ical.build_calendar on the same events as in-memory EventViews (same bytes as the feed:"
          f" {'yes' if all(b.same_bytes_as_floor for b in builds) else 'NO'});")
    print("floor 2 = a plain hand-written icalendar Calendar of equivalent VEVENTs (same properties);"
          " the goal must hold against both.")
    print("Each round runs the three back to back; the ratios are of the medians (the minima, less sensitive to other work on"
          " the machine, are given below).")
    for b in builds:
        spread = " ".join(f"{name} {runs.min_ms:,.0f}-{runs.max_ms:,.0f}" for name, runs in
                          (("database", b.database), ("floor1", b.floor_build_calendar), ("floor2", b.floor_handwritten)))
        low1, low2 = b.database.min_ms / b.floor_build_calendar.min_ms, b.database.min_ms / b.floor_handwritten.min_ms
        print(f"  {b.backend} {b.size:,}: spread (min-max ms) {spread}; minimum over minimum {low1:.2f} / {low2:.2f};"
              f" progress note {b.database_progress_note.median_ms:,.0f} ms of the database build")
    if rebuilds:
        print()
        print(f"2. Rebuild after one event's title changed (update_event + commit), warm caches; median of {args.runs} runs, ms")
        header = (f"{'backend':<10} {'events':>6} │ {'cold':>9} │ {'rebuild':>9} {'/cold':>6} {'progress':>9} │"
                  f" goal ≤ {REBUILD_GOAL:.0%} │ {'cached p50':>10} {'p95':>7} {'/cold':>7}")
        print(header)
        print("─" * len(header))
        for r in rebuilds:
            print(f"{r.backend:<10} {r.size:>6,} │ {r.cold_median_ms:>9,.1f} │ {r.rebuild.median_ms:>9,.1f} {r.ratio:>6.1%}"
                  f" {r.rebuild_progress_note.median_ms:>9,.1f} │"
                  f" {_met(r.ratio <= REBUILD_GOAL):<10} │ {r.cached.p50_ms:>10.3f} {r.cached.p95_ms:>7.3f}"
                  f" {r.cached.p50_ms / r.cold_median_ms:>7.2%}")
        print("progress = the part of the rebuild spent in service.progress_note (the calendar description's progress note).")
        print(f"cached = feed_for when nothing changed ({args.requests} timed calls after {args.warmup},"
              " each in its own app context, FEED_VERSION_TTL=0 so each reads the feeds' version)."
              f" Changed: a published {rebuilds[0].changed_event['kind']} event (its kind counts in the calendar description).")
    if loads:
        print()
        first = next((x for x in loads if not x.error), loads[0])
        print(f"3. Under load: {first.server}, {first.generator}, {args.concurrency} connections,"
              f" {args.duration:g} s per endpoint"
              f" in {args.rounds} interleaved rounds, after {args.load_warmup:g} s of warm-up")
        header = (f"{'backend':<10} {'endpoint':<36} {'want':>4} │ {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} │"
                  f" {'bad':>5} │ {'vs healthz':>10} {'rounds':>11} │ goal")
        print(header)
        print("─" * len(header))
        labels = {"healthz": f"GET {TRIVIAL_PATH}", "feed_200": f"GET {FEED_PATH}", "feed_200_gzip": f"GET {FEED_PATH} gzip",
                  "feed_304": f"GET {FEED_PATH} If-None-Match"}
        for load in loads:
            if load.error:
                print(f"{load.backend:<10} FAILED: {load.error.splitlines()[0]}")
                continue
            for p in load.phases:
                ratio = load.ratio(p.name)
                spread = load.round_ratios(p.name) if p.name != "healthz" else []
                spread_text = f"{min(spread):.2f}-{max(spread):.2f}" if spread else ""
                goal = LOAD_GOALS.get(p.name)
                goal_text = f"≥ {goal}: {_met(ratio is not None and ratio >= goal and p.bad == 0)}" if goal else "(reference)"
                print(f"{load.backend:<10} {labels[p.name]:<36} {p.expected_status:>4} │ {p.requests:>8,} {p.rps:>8,.0f}"
                      f" {p.p50_ms or 0:>7.2f} {p.p95_ms or 0:>7.2f} │ {p.bad:>5} │ {ratio or 0:>10.3f} {spread_text:>11} │"
                      f" {goal_text}")
            print(f"{'':<10} feed of {load.feed_events:,} events ({load.size:,} in the database), {load.feed_bytes / 1024:,.0f} KB per 200 response,"
                  f" {load.feed_gzip_bytes / 1024:,.0f} KB gzipped"
                  f" ({next((p.rps for p in load.phases if p.name == 'feed_200'), 0) * load.feed_bytes / 2**20:,.0f} MB/s)")
            for p in load.phases:
                if p.bad:
                    print(f"  {load.backend} {p.name}: statuses {p.statuses}, wrong length {p.wrong_length}, errors {p.errors}")
        if args.check == "bytes" and any(x.generator.startswith("wrk") for x in loads):
            print("bad (wrk, --check bytes) = responses >= 400 counted by wrk, plus responses of another size than expected"
                  " (from the bytes received), plus socket errors;")
        print("bad = responses of another status or body length than expected, plus connection errors; vs healthz = req/s over"
              " those of /healthz, all rounds together (rounds: the lowest and highest round by round);"
              " p50/p95: medians of the rounds.")


def git_state() -> dict[str, Any]:
    """HEAD and the digests of the feed modules measured (read-only: no git command that touches the index)."""
    state: dict[str, Any] = {}
    try:
        state["head"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10,
                                       check=False).stdout.strip()
    except OSError:
        pass
    for name in ("feeds/service.py", "feeds/ical.py", "feeds/views.py", "feeds/scopes.py", "feeds/versioning.py",
                 "targets/progress.py"):
        path = ROOT / "scheduler" / name
        if path.exists():
            state[f"scheduler/{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return state


def write_json(builds: Sequence[BuildResult], rebuilds: Sequence[RebuildResult], loads: Sequence[LoadResult],
               args: argparse.Namespace, skipped: dict[str, str], loadavg: dict[str, Any]) -> Path:
    """Write the figures to ``bench/results/feeds-<timestamp>.json``; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"feeds-{stamp}.json"
    document = {
        "benchmark": "bench.feeds",
        "feed": f"GET {FEED_PATH}",
        "created": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k != "pg_url"}
        | {"pg_url": None if args.sqlite_only else make_url(args.pg_url).render_as_string()},
        "goals": {"build_over_floor_max": BUILD_GOAL, "rebuild_over_cold_max": REBUILD_GOAL, "load_over_healthz_min": LOAD_GOALS},
        "platform": {"python": platform.python_version(), "machine": platform.machine(), "system": platform.platform(),
                     "cpus": os.cpu_count(), "icalendar": icalendar.__version__, "wrk": shutil.which("wrk")},
        "code": git_state(),
        "load_average": loadavg,
        "skipped": skipped,
        "builds": [asdict(b) | {"ratio_floor1": b.database.median_ms / b.floor_build_calendar.median_ms,
                                "ratio_floor2": b.database.median_ms / b.floor_handwritten.median_ms} for b in builds],
        "rebuilds": [asdict(r) | {"ratio": r.ratio} for r in rebuilds],
        "loads": [asdict(x) | {"ratios": {p.name: x.ratio(p.name) for p in x.phases},
                               "round_ratios": {p.name: x.round_ratios(p.name) for p in x.phases}} for x in loads],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (it accepts bench.api's options too, so ``make bench BENCH_ARGS=...`` feeds both)."""
    parser = argparse.ArgumentParser(prog="python -m bench.feeds", description=DESCRIPTION)
    add_backend_args(parser, DEFAULT_PG_URL)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(DEFAULT_SIZES),
                        help="events in the feed, comma-separated; the smallest is served under load, the largest rebuilt"
                        " [default: 1000,5000]")
    parser.add_argument("--runs", type=int, default=5, help="timed builds of each kind (the median is reported) [default: 5]")
    parser.add_argument("--requests", type=int, default=200, help="timed calls of the cached path [default: 200]")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls of the cached path first [default: 20]")
    parser.add_argument("--seed", type=int, default=20250501, help="random seed of the events")
    parser.add_argument("--no-load", action="store_true", help="skip part 3 (gunicorn under load)")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds of load per endpoint, all rounds together [default: 10]")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the duration is split into [default: 5]")
    parser.add_argument("--load-warmup", type=int, default=2, help="seconds of load on the feed before measuring [default: 2]")
    parser.add_argument("--concurrency", type=int, default=8, help="connections kept busy by the load generator [default: 8]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes [default: 2]")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker [default: 4]")
    parser.add_argument("--wsgi-app", default="wsgi:app", metavar="MODULE:APP",
                        help="what gunicorn serves: another entry point (one that patches, then imports wsgi) measures a"
                        " change before it is made; importable from the project's root or $PYTHONPATH [default: wsgi:app]")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if on PATH (auto), or the built-in Python one [default: auto]")
    parser.add_argument("--check", choices=("bytes", "each"), default="bytes",
                        help="how wrk checks the answers: 'bytes', wrk's own counters (responses >= 400, socket errors) and"
                        " the bytes received (every response of the expected size); 'each', a Lua hook counting every status"
                        " and body length, which makes wrk copy each body (on 2 CPUs it lowers the 200 figure markedly)."
                        " The Python generator always checks each response [default: bytes]")
    parser.add_argument("--max-requests", type=int, default=200_000,
                        help="the Python generator's bound on requests per connection and phase [default: 200000]")
    parser.add_argument("--series-days", type=int, default=0, help=argparse.SUPPRESS)  # bench.api's; no effect here
    args = parser.parse_args(argv)
    if args.sqlite_only and args.pg_only:
        parser.error("--sqlite-only and --pg-only exclude each other")
    if args.runs < 1 or args.requests < 2 or args.warmup < 0:
        parser.error("--runs must be at least 1, --requests at least 2")
    if min(args.sizes) < 10:
        parser.error("every size must be at least 10")
    if not 1 <= args.duration <= 300 or not 0 <= args.load_warmup <= 60:
        parser.error("--duration must be within 1-300 s, --load-warmup within 0-60 s")
    if not 1 <= args.rounds <= 20 or args.duration / args.rounds < 1:
        parser.error("--rounds must be within 1-20, and leave at least 1 s per run")
    # wrk takes whole seconds: each round lasts duration / rounds, rounded
    args.round_seconds = max(1, round(args.duration / args.rounds))
    args.duration = args.round_seconds * args.rounds
    if args.max_requests < 1:
        parser.error("--max-requests must be at least 1")
    if not 1 <= args.concurrency <= 256 or args.workers < 1 or args.threads < 1:
        parser.error("--concurrency must be within 1-256; --workers and --threads at least 1")
    if args.generator == "wrk" and not args.no_load and shutil.which("wrk") is None:
        parser.error("--generator wrk: wrk is not on PATH (Debian: apt-get install wrk)")
    if not args.sqlite_only and make_url(args.pg_url).database in PROTECTED_DATABASES:
        parser.error(f"--pg-url: the database {make_url(args.pg_url).database!r} belongs to the test suite; use another")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every part on every backend, print the report and write the JSON file."""
    args = parse_args(argv)
    builds: list[BuildResult] = []
    rebuilds: list[RebuildResult] = []
    loads: list[LoadResult] = []
    skipped: dict[str, str] = {}
    loadavg = {"start": os.getloadavg()}
    started = time.perf_counter()

    def collect(result: tuple[list[BuildResult], RebuildResult | None, LoadResult | None]) -> None:
        builds.extend(result[0])
        if result[1] is not None:
            rebuilds.append(result[1])
        if result[2] is not None:
            loads.append(result[2])

    if not args.pg_only:
        collect(run_backend("sqlite", sqlite_url, args))
    if not args.sqlite_only:
        with postgresql(args, skipped) as usable:
            if usable:
                collect(run_backend("postgresql", lambda: contextlib.nullcontext(args.pg_url), args))
    loadavg["end"] = os.getloadavg()
    print_report(builds, rebuilds, loads, args)
    print_closing(write_json(builds, rebuilds, loads, args, skipped, loadavg), started, loadavg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
