"""Invisible characters (U+202E RIGHT-TO-LEFT OVERRIDE, zero-width spaces, BOMs, C0/C1 controls) are
dropped where people's text comes in (the API's schemas, organizations) and again where it leaves
(the registrations CSV's file name, robot messages; texts in ``tests/test_sms_channel.py``), so that
rows stored before input was cleaned are harmless too. Chinese text and emoji stay as they are."""
from __future__ import annotations

import json
import sys
import unicodedata
from urllib.parse import unquote

import pytest

from scheduler.channels.robots import build_request, robot_markdown
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.orgs.operations import upsert_org
from scheduler.orgs.models import OrgType
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations import operations as registrations
from scheduler.registrations.models import Registration
from scheduler.util.text import _PLAIN, clean_text, strip_invisible
from tests.factories import auth, create_event, create_org, create_user, event_body
from tests.pages import sign_in

RLO = "\u202e"
#: One of each kind that must go: bidi embedding/override/isolates, marks, zero-width, word joiner,
#: BOM, soft hyphen, C1 controls, the line separator (a line break, then), C0 controls.
INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200e\u200f\u2060\ufeff\u00ad\x85\x9b"
CONTROLS = "\x00\x07\x1b\x7f"


def invisible_in(text: str) -> set[str]:
    """The control and invisible formatting characters in ``text`` (a ZWJ inside an emoji is fine)."""
    return {c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t\u200d"}


# --- the helper ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "kept"), [
    (RLO + "abc", "abc"),
    ("活动\u200b名称\ufeff", "活动名称"),
    ("\u2066江门\u2069科技馆", "江门科技馆"),
    ("a\x9bb\u00adc", "abc"),
    ("行一\u2028行二", "行一\n行二"),
])
def test_invisible_characters_are_dropped(raw, kept):
    assert strip_invisible(raw) == kept
    assert clean_text(raw, multiline=True) == kept


@pytest.mark.parametrize("text", [
    "走进中微子实验室：科普研学游（第2期）",
    "中\u3000文，全角标点！“引号”《书名》",
    "家庭日 👨\u200d👩\u200d👧 与 👩\u200d⚕\ufe0f 医生 ❤\ufe0f\u200d🔥 👍🏽",
    "苏格兰旗 \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "English, 数字 123 & symbols <>",
])
def test_chinese_and_emoji_are_kept(text):
    assert strip_invisible(text) == text
    assert clean_text(text) == text


def test_a_joiner_outside_an_emoji_and_a_stray_tag_are_dropped():
    assert strip_invisible("a\u200db 科\u200d技 x\U000e0067") == "ab 科技 x"


def test_input_cleaning_leaves_c0_controls_for_the_schemas_to_refuse_and_output_cleaning_drops_them():
    assert strip_invisible("a\x07b\tc\nd") == "a\x07b\tc\nd"
    assert clean_text("a\x07b\x1b[31m\tc\r\nd" + RLO) == "ab[31m c d"
    assert clean_text("a\x07b\tc\r\nd", multiline=True) == "ab\tc\nd"
    assert clean_text(None) == ""


def test_the_quick_path_misses_no_control_or_formatting_character():
    """Text the quick path lets through as it is holds no character of these categories."""
    missed = [hex(code) for code in range(sys.maxunicode + 1)
              if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp") and _PLAIN.fullmatch(chr(code))]
    assert missed == []


# --- input ------------------------------------------------------------------------------------------

@pytest.fixture
def org(ctx):
    return create_org("hyg-org", name_zh="江门市\u202e科技局", name_en="Jiangmen\u200b Bureau")


def test_the_api_stores_an_events_text_without_invisible_characters(client, org):
    headers = auth(create_user("editor", org))
    body = event_body("hyg-org", title=RLO + "abc", venue="江门" + INVISIBLE + "科技馆",
                      description="第一行\u2028第二行" + RLO, address="\ufeff蓬江区",
                      details={"meeting_point": "北门" + RLO, "age_min": 12, "age_max": 18})
    created = client.post("/api/v1/events", json=body, headers=headers)
    assert created.status_code == 201, created.json
    event = db.session.get(Event, created.json["id"])
    assert (event.title, event.venue, event.description, event.address) == ("abc", "江门科技馆", "第一行\n第二行", "蓬江区")
    assert event.details["meeting_point"] == "北门"
    changed = client.patch(f"/api/v1/events/{event.id}", json={"title": "走进\u200b实验室" + RLO}, headers=headers)
    assert changed.json["title"] == "走进实验室"


def test_a_title_of_invisible_characters_only_is_empty(client, org):
    headers = auth(create_user("editor", org))
    response = client.post("/api/v1/events", json=event_body("hyg-org", title=RLO + "\u200b "), headers=headers)
    assert response.status_code == 422 and "title" in response.json["error"]["fields"]


def test_a_registrants_name_is_stored_without_invisible_characters(client, org):
    event = create_event(org, publish=True)
    response = client.post(f"/api/v1/events/{event.id}/registrations",
                           json={"name": RLO + "张三\u200b", "phone": "13800138000", "consent": NOTICE_VERSION})
    assert response.status_code == 201
    assert db.session.get(Registration, response.json["id"]).name == "张三"


def test_organization_names_are_stored_without_invisible_characters(org):
    assert (org.name_zh, org.name_en) == ("江门市科技局", "Jiangmen Bureau")
    again = upsert_org("hyg-org", "江门市\x1b科技局\n", "Bureau", OrgType.COUNTY_OFFICE)
    assert again.name_zh == "江门市科技局"


# --- output: rows stored before input was cleaned ----------------------------------------------------

def test_the_csv_file_name_and_cells_have_no_invisible_characters(client, org):
    """A U+202E in the file name would show ``…vsc.exe`` as ``…exe.csv``."""
    event = create_event(org, publish=True, title="报名表" + RLO + "exe.\x07csv\u200b")
    registrations.register(event, name=RLO + "=1+2\u200b", phone="13800138001", channels=[], consent_version=NOTICE_VERSION)
    db.session.commit()
    assert sign_in(client, create_user("editor", org).email).status_code == 302
    response = client.get(f"/organizer/events/{event.id}/registrations.csv")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    readable = unquote(disposition.split("filename*=UTF-8''", 1)[1])
    assert readable.startswith("报名表exe.csv - ") and readable.endswith(".csv")
    assert invisible_in(readable) == set() and invisible_in(disposition) == set()
    assert "%E2%80%AE" not in disposition.upper() and "%07" not in disposition
    body = response.get_data().decode("utf-8-sig")
    assert invisible_in(body.replace("\r\n", "\n")) == set()
    assert "'=1+2" in body  # cleaned, then still kept from reading as a formula


def _robot_event(**overrides):
    data = {"id": 1, "title": RLO + "江门科技周\u200b开幕式", "kind": "tech_week", "kind_name_zh": "科技活动周",
            "org_name_zh": "江门市\u2066科学技术局\u2069", "venue": "江门\ufeff科技馆", "address": "蓬江区\x85发展大道1号",
            "starts_at": "2024-06-20T09:30:00+08:00", "ends_at": "2024-06-20T11:30:00+08:00", "all_day": False,
            "timezone": "Asia/Shanghai", "status": "cancelled", "cancel_reason": "场地\x1b[31m维修" + RLO,
            "links": {"page": "http://scheduler.test/events/1"}}
    return data | overrides


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_robot_messages_never_carry_invisible_characters(kind):
    items = [
        ("reminder.due", {"data": {"event": _robot_event(), "reminder": {"meeting": {"point": "北门" + RLO, "time": "08:30"}}}}),
        ("event.cancelled", {"data": {"event": _robot_event()}}),
        ("event.updated", {"data": {"event": _robot_event(), "changes": {"title": {"old": RLO + "旧", "new": "新\u200b"}}}}),
    ]
    title, markdown = robot_markdown(items)
    assert invisible_in(title + markdown) == set()
    assert "江门科技周开幕式" in markdown and "江门科技馆" in markdown and "场地[31m维修".replace("[", "［") in markdown
    request = build_request(kind, "https://robot.example/hook?key=k", "secret", items, None, 1_718_000_000.0)
    assert invisible_in(json.dumps(json.loads(request.body), ensure_ascii=False)) == set()
