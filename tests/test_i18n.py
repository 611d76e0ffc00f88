"""The pages in Chinese (the default) and English: catalogs complete, the locale chosen, dates local."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask_babel import get_babel

from scheduler import ROOT, create_app
from scheduler.channels.sms.links import manage_code
from scheduler.extensions import db
from scheduler.i18n import LANGUAGES, TRANSLATIONS
from scheduler.registrations.operations import register
from tests.factories import CST, create_event, create_org

#: The keywords ``pybabel extract -k lazy_gettext`` uses.
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None}


def extracted_msgids() -> set[str]:
    """Every message id in the code and templates, read as ``pybabel extract -F babel.cfg`` does."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")
    ids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True,
    ):
        ids.update([message] if isinstance(message, str) else [m for m in message if m])
    return ids


def test_extraction_finds_the_pages_strings() -> None:
    ids = extracted_msgids()
    assert {"Time: %(when)s", "Sign in", "Saved", "Wrong e-mail address or password.", "Import now"} <= ids
    assert len(ids) > 50


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_translates_every_extracted_string(lang: str) -> None:
    """Run the extraction and compare: nothing missing, untranslated, fuzzy or obsolete."""
    extracted = extracted_msgids()
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    entries = {message.id: message for message in catalog if message.id}
    missing = sorted(extracted - entries.keys())
    obsolete = sorted(entries.keys() - extracted) + sorted(str(m.id) for m in catalog.obsolete.values())
    untranslated = sorted(id for id, m in entries.items() if not m.string)
    fuzzy = sorted(id for id, m in entries.items() if m.fuzzy) + (["(header)"] if catalog.fuzzy else [])
    problems = {"missing": missing, "obsolete": obsolete, "untranslated": untranslated, "fuzzy": fuzzy}
    assert problems == dict.fromkeys(problems, []), f"{lang}: run pybabel extract and update (README, Languages)"
    if lang == "en":
        assert [id for id, m in entries.items() if m.string != id] == []
    else:
        still_english = [id for id, m in entries.items() if not re.search(r"[\u4e00-\u9fff]", m.string)]
        assert still_english == []
    # the placeholders survive translation
    for id, message in entries.items():
        assert sorted(re.findall(r"%\(\w+\)s", message.string)) == sorted(re.findall(r"%\(\w+\)s", id)), id


def test_template_catalog_lists_the_same_strings() -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as pot:
        assert {m.id for m in read_po(pot) if m.id} == extracted_msgids()


@pytest.fixture
def orgs(ctx):
    return {"xinhui": create_org("xinhui", county="xinhui", name_zh="新会区科技局", name_en="Xinhui Office")}


def page(response) -> str:
    assert response.status_code == 200
    return response.get_data(as_text=True)


def is_chinese(html: str) -> bool:
    return '<html lang="zh-CN">' in html and "订阅日历" in html and "Subscribe to a calendar" not in html


def is_english(html: str) -> bool:
    return '<html lang="en">' in html and "Subscribe to a calendar" in html and "订阅日历" not in html


def test_pages_are_chinese_by_default(client, orgs):
    response = client.get("/calendars")
    html = page(response)
    assert is_chinese(html) and "新会区科技局" in html and "Xinhui Office" not in html
    assert "Set-Cookie" not in response.headers
    assert {"Accept-Language", "Cookie"} <= set(response.vary)
    assert is_chinese(page(client.get("/calendars", headers={"Accept-Language": "fr-FR, de;q=0.8"})))
    assert is_chinese(page(client.get("/calendars?lang=klingon")))


def test_lang_parameter_switches_and_is_remembered(client, orgs):
    response = client.get("/calendars?lang=en")
    html = page(response)
    assert is_english(html) and "Xinhui Office" in html
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    # the cookie keeps English, whatever the browser prefers
    assert is_english(page(client.get("/calendars", headers={"Accept-Language": "zh-CN,zh;q=0.9"})))
    login = page(client.get("/login"))
    assert '<html lang="en">' in login and "Password" in login and "密码" not in login
    # and ?lang=zh switches back (remembered too)
    assert is_chinese(page(client.get("/calendars?lang=zh")))
    assert is_chinese(page(client.get("/calendars")))


def test_browser_preference_chooses_english(client, orgs):
    assert is_english(page(client.get("/calendars", headers={"Accept-Language": "en-US,en;q=0.9"})))
    assert is_chinese(page(client.get("/calendars", headers={"Accept-Language": "zh-CN,en;q=0.8"})))
    assert is_english(page(client.get("/calendars", headers={"Accept-Language": "fr, en-GB;q=0.5"})))


def test_language_switch_keeps_the_page_and_its_query(client, orgs):
    html = page(client.get("/calendars?lang=zh&x=1"))
    assert 'href="/calendars?x=1&amp;lang=en"' in html and 'aria-current="true" lang="zh-CN">中文' in html
    html = page(client.get("/calendars?lang=en"))
    assert 'href="/calendars?lang=zh"' in html and 'aria-current="true" lang="en">English' in html


def test_login_form_and_its_errors_in_both_languages(client):
    html = page(client.get("/login"))
    assert "邮箱" in html and "密码" in html and ">登录<" in html and "Password" not in html
    html = page(client.get("/login?lang=en"))
    assert "E-mail" in html and "Password" in html and "密码" not in html
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)[1]
    wrong = client.post("/login", data={"email": "nobody@example.org", "password": "x", "csrf_token": token})
    assert "Wrong e-mail address or password." in page(wrong)
    wrong = client.post("/login?lang=zh", data={"email": "nobody@example.org", "password": "x", "csrf_token": token})
    assert "邮箱或密码不正确。" in page(wrong)


def test_event_page_shows_the_date_in_each_languages_convention(client, orgs):
    event = create_event(orgs["xinhui"], publish=True, capacity=10,
                         starts_at=dt.datetime(2024, 6, 22, 9, 0, tzinfo=CST),
                         ends_at=dt.datetime(2024, 6, 22, 13, 30, tzinfo=CST))
    zh = page(client.get(f"/events/{event.id}"))
    assert "时间：" in zh and "2024年6月22日 09:00" in zh and "2024年6月22日 13:30" in zh
    assert "剩余名额：10 / 共 10 个" in zh and "加入日历" in zh and "科普研学游" in zh
    en = page(client.get(f"/events/{event.id}?lang=en")).replace("\u202f", " ")  # CLDR: a narrow space before AM
    assert "Time: " in en and "Jun 22, 2024, 9:00 AM" in en and "Jun 22, 2024, 1:30 PM" in en
    assert "Seats left: 10 of 10" in en and "Add to calendar" in en and "年" not in en
    assert '<time datetime="2024-06-22T09:00:00+08:00">' in en


def test_event_page_dates_are_in_the_events_time_zone(client, orgs):
    # 01:00 UTC is 09:00 in Shanghai
    event = create_event(orgs["xinhui"], publish=True, starts_at=dt.datetime(2024, 6, 22, 1, 0, tzinfo=dt.timezone.utc),
                         ends_at=dt.datetime(2024, 6, 22, 4, 0, tzinfo=dt.timezone.utc))
    assert "2024年6月22日 09:00" in page(client.get(f"/events/{event.id}"))


def test_flash_messages_are_translated(client, ctx):
    org = create_org("xinhui", county="xinhui")
    registration, _ = register(create_event(org, publish=True), name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    code = manage_code(registration.id)
    html = page(client.get(f"/m/{code}?lang=en"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)[1]
    answer = client.post(f"/m/{code}", data={"csrf_token": token, "action": "stop_event"}, follow_redirects=True)
    assert "<strong>Saved</strong>" in page(answer) and "Text me about this event again" in page(answer)
    html = page(client.get(f"/m/{code}?lang=zh"))
    assert "短信提醒" in html and "恢复本活动的短信提醒" in html


def test_missing_compiled_catalogs_fall_back_to_the_english_ids(tmp_path, monkeypatch):
    """Without ``.mo`` files (``make install`` not run) the app starts and shows the English ids."""
    other = create_app({
        "TESTING": True, "SECRET_KEY": "x", "SCHEDULER_MODE": "off", "SERVER_NAME": None,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.db'}", "RATELIMIT_STORAGE_URI": "memory://",
        "BABEL_TRANSLATION_DIRECTORIES": str(tmp_path),
    })
    with other.app_context():
        domain = get_babel().instance.domain_instance
        monkeypatch.setattr(domain, "cache", {})  # translations are cached per locale, not per app
    html = page(other.test_client().get("/login"))
    assert '<html lang="zh-CN">' in html and "Password" in html and ">Sign in<" in html
