"""Chat-group robots: WeCom (企业微信) group robots, DingTalk (钉钉) and Feishu (飞书) custom bots.

One message per HTTP request, in simplified Chinese, as markdown: several deliveries for the
same robot are folded into one digest (:meth:`RobotChannel.send_many`), since each robot takes
only a few messages a minute. The request builders and the answer classifiers are pure
functions (the signing time is passed in); :class:`RobotChannel` plugs them into the channel
interface of :mod:`scheduler.channels.base` the way :class:`~scheduler.channels.webhook.WebhookChannel` does.

What the platforms document (checked against their docs, see the report of this module):

* WeCom group robot (https://developer.work.weixin.qq.com/document/path/91770): POST to the
  webhook URL, whose ``key`` parameter is the credential (no signature); ``{"msgtype":
  "markdown", "markdown": {"content": ...}}``, content at most 4096 bytes of UTF-8; at most 20
  messages a minute per robot. Answers ``{"errcode": 0, "errmsg": "ok"}``; 45009 "api freq out
  of limit"; 93000 "invalid webhook url" (the robot was removed or the key is wrong); -1 busy.
* DingTalk custom robot (https://open.dingtalk.com/document/robots/custom-robot-access): with
  the "加签" security setting, ``timestamp`` (ms) and ``sign`` = urlencode(base64(HMAC-SHA256(
  key=secret, msg=f"{timestamp}\\n{secret}"))) go in the query string, the timestamp within one
  hour of DingTalk's clock; ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; at most 20
  messages a minute, and a robot that sends more is throttled for 10 minutes. Answers
  ``{"errcode": 0}``; 130101 "send too fast, exceed 20 times per minute"; 310000 for every
  security check (sign not match, invalid timestamp, keywords not in content, ip not in
  whitelist); 300001 "token is not exist".
* Feishu custom bot (https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot):
  ``timestamp`` (s, within one hour) and ``sign`` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}",
  msg=b"")) in the JSON body; body at most 20 KB; 100 requests a minute and 5 a second per
  robot. Answers ``{"code": 0, "msg": "success", ...}`` (older ones ``{"StatusCode": 0}``);
  11232 frequency limited (the open platform's general limit is 99991400 with HTTP 429 and
  ``x-ogw-ratelimit-reset``); 9499 "Bad Request" (malformed or too large body: not a rate
  limit); 19021 sign match fail or timestamp not within one hour; 19022 IP not allowed; 19024
  key words not found; 19001 "param invalid: incoming webhook access token invalid" (the bot is
  gone); 19002 "params error, msg_type need" (our body, not the bot).

Feishu gets an ``interactive`` card whose one ``div`` holds ``lark_md`` text: lark_md renders
the same ``**bold**`` and ``[text](url)`` markup the other two robots take, and the card header
carries the title. A ``post`` (rich text) message does not read markdown at all: it is a
nested list of ``text``/``a``/``at`` tags, a second representation of every message to build
and keep in step, for no gain here.

User text (titles, places, reasons) is escaped by replacing the characters these markdown
dialects act on with their full-width look-alikes (``*`` → ``＊``, ``[`` → ``［``, ...): WeCom's
markdown has no escape character, and full-width forms read naturally in Chinese text.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.channels.base import Defer, Failed, Outgoing, Result, Retry, Sent, Skip
from scheduler.channels.models import WebhookEndpoint
from scheduler.events.kinds import CONTEST_STAGES
from scheduler.reminders.models import Delivery
from scheduler.util import http
from scheduler.util.text import clean_text
from scheduler.util.time import SHANGHAI, now

KINDS = ("wecom", "dingtalk", "feishu")
MAX_ANSWER_BYTES = 64 * 1024

#: Messages per seconds each robot is sent at most, with a margin under the documented limits
#: (WeCom and DingTalk 20 a minute, DingTalk throttling a robot for 10 minutes beyond that;
#: Feishu 100 a minute and 5 a second: 4 in any 3 seconds keeps under both). Meant for a
#: sliding window (a fixed window lets twice as many through around its boundary).
RATE_LIMITS: dict[str, tuple[int, int]] = {"wecom": (18, 60), "dingtalk": (18, 60), "feishu": (4, 3)}

#: Waits before each attempt (the first at once); the delivery is dead after the last. The 11
#: minutes outlast DingTalk's 10-minute throttle.
RETRY_DELAYS: tuple[dt.timedelta, ...] = (
    dt.timedelta(0), dt.timedelta(seconds=5), dt.timedelta(minutes=1), dt.timedelta(minutes=11),
)

#: How long a rate-limited robot is left alone (DingTalk: its documented 10-minute throttle).
RATE_LIMIT_PAUSE: dict[str, dt.timedelta] = {
    "wecom": dt.timedelta(seconds=60), "dingtalk": dt.timedelta(minutes=10), "feishu": dt.timedelta(seconds=60),
}

#: Bytes of markdown each robot takes: WeCom's documented 4096; DingTalk documents no limit
#: that we found, so the same 4096; Feishu limits the whole request body to 20 KB.
CONTENT_LIMITS: dict[str, int] = {"wecom": 4096, "dingtalk": 4096, "feishu": 16 * 1024}

#: Longest user text shown per field (characters), so that one item never fills a message.
_FIELD_CHARS = 120
_LONG_FIELD_CHARS = 300

# --------------------------------------------------------------------------- message text

_ESCAPES = str.maketrans({
    "\\": "＼", "*": "＊", "_": "＿", "[": "［", "]": "］", "<": "＜", ">": "＞", "`": "｀", "~": "～",
    "#": "＃", "|": "｜", "\r": " ", "\n": " ", "\t": " ",
})


def escape(text: Any, limit: int = _FIELD_CHARS) -> str:
    """User text made inert for the robots' markdown, on one line, at most ``limit`` characters, without
    control or invisible formatting characters (U+202E and the like: :func:`~scheduler.util.text.clean_text`),
    whatever the stored row holds."""
    value = re.sub(r"\s+", " ", clean_text(text)).strip()
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value.translate(_ESCAPES)


def _link_url(url: str) -> str:
    """A URL safe inside ``[text](url)`` (spaces and parentheses percent-encoded)."""
    return quote(str(url), safe=":/?#@!$&'*+,;=%-._~")


def _link(text: str, url: str | None) -> str:
    return f"[{text}]({_link_url(url)})" if url else text


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def when(value: Any, all_day: bool = False) -> str:
    """``6月1日 09:30`` in Asia/Shanghai (``6月1日（全天）`` for an all-day event); other text escaped."""
    moment = _moment(value)
    if moment is None:
        return escape(value) if value not in (None, "") else "（未定）"
    local = moment.astimezone(SHANGHAI)
    if all_day:
        return f"{local.month}月{local.day}日（全天）"
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def _place(event: dict[str, Any]) -> str:
    venue, address = escape(event.get("venue")), escape(event.get("address"))
    if venue and address and address != venue:
        return f"{venue}（{address}）"
    return venue or address or "（待定）"


def _event_head(event: dict[str, Any], suffix: str = "") -> str:
    links = event.get("links") or {}
    return f"**{_link(escape(event.get('title'), 200) or '（未命名活动）', links.get('page'))}**{suffix}"


def _organizer(event: dict[str, Any]) -> str | None:
    parts = [escape(event.get(name)) for name in ("org_name_zh", "kind_name_zh") if event.get(name)]
    return "主办：" + " · ".join(parts) if parts else None


def _reminder_block(data: dict[str, Any]) -> list[str]:
    event, reminder = data.get("event") or {}, data.get("reminder") or {}
    start = reminder.get("occurrence_start") or event.get("starts_at")
    lines = [_event_head(event), f"时间：{when(start, bool(event.get('all_day')))}", f"地点：{_place(event)}"]
    stage = reminder.get("stage") or {}
    if stage.get("key") in CONTEST_STAGES and _moment(stage.get("at")):
        lines.insert(1, f"{CONTEST_STAGES[stage['key']][0]}：{when(stage['at'])}")
    meeting = reminder.get("meeting")
    if meeting:
        at = meeting.get("time")
        at_text = when(at) if _moment(at) else escape(at) if at else ""
        lines.append(f"集合：{escape(meeting.get('point'))}" + (f"，{at_text}" if at_text else ""))
    organizer = _organizer(event)
    if organizer:
        lines.append(organizer)
    ics = (event.get("links") or {}).get("ics")
    if ics:
        lines.append(_link("加入日历", ics))
    return lines


def _published_block(data: dict[str, Any]) -> list[str]:
    event = data.get("event") or {}
    lines = [_event_head(event, "（新活动）"), f"时间：{when(event.get('starts_at'), bool(event.get('all_day')))}",
             f"地点：{_place(event)}"]
    organizer = _organizer(event)
    return lines + ([organizer] if organizer else [])


def _cancelled_block(data: dict[str, Any]) -> list[str]:
    event = data.get("event") or {}
    lines = [_event_head(event, " 已取消"), f"原定时间：{when(event.get('starts_at'), bool(event.get('all_day')))}",
             f"地点：{_place(event)}"]
    reason = event.get("cancel_reason") or data.get("reason")
    if reason:
        lines.append(f"取消原因：{escape(reason, _LONG_FIELD_CHARS)}")
    return lines


#: Changed fields as people call them; fields not listed are named "其他信息".
_FIELD_NAMES = {
    "title": "名称", "starts_at": "开始时间", "ends_at": "结束时间", "venue": "地点", "address": "地址",
    "capacity": "名额", "all_day": "全天", "timezone": "时区", "rrule": "重复规则", "exdates": "取消的场次",
    "status": "状态", "description": "简介", "details": "详情", "reminders": "提醒", "org": "主办单位",
    "kind": "活动类型", "latitude": "位置", "longitude": "位置",
}
#: Fields whose values are too long or too technical to show: only that they changed.
_VALUE_HIDDEN = {"description", "details", "rrule", "exdates", "reminders", "latitude", "longitude"}
_STATUS_NAMES = {"draft": "草稿", "published": "已发布", "cancelled": "已取消", "completed": "已结束"}


def _value(name: str, value: Any) -> str:
    if value is None or value == "":
        return "（无）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if name == "status":
        return _STATUS_NAMES.get(str(value), escape(value))
    if _moment(value) is not None:
        return when(value)
    if isinstance(value, (dict, list)):
        return "（已更新）"
    return escape(value, 60)


def _updated_block(data: dict[str, Any]) -> list[str]:
    event = data.get("event") or {}
    lines = [_event_head(event, " 有变更")]
    shown: set[str] = set()
    for name, change in (data.get("changes") or {}).items():
        label = _FIELD_NAMES.get(name, "其他信息")
        if label in shown:
            continue
        shown.add(label)
        if name in _VALUE_HIDDEN or name not in _FIELD_NAMES or not isinstance(change, dict):
            lines.append(f"{label}：已更新")
        else:
            lines.append(f"{label}：{_value(name, change.get('old'))} → {_value(name, change.get('new'))}")
    if len(lines) == 1:
        lines.append("活动信息已更新")
    lines.append(f"时间：{when(event.get('starts_at'), bool(event.get('all_day')))}")
    return lines


def _ping_block(data: dict[str, Any]) -> list[str]:
    return ["**测试消息**", "机器人已连通：之后的科普活动通知会发到本群。"]


def _alert_block(data: dict[str, Any]) -> list[str]:
    kind = data.get("kind")
    head = "**机构提醒**" + (f"（{escape(kind, 40)}）" if kind else "")
    return [head, escape(data.get("message"), _LONG_FIELD_CHARS)]


_BLOCKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "reminder.due": _reminder_block,
    "event.published": _published_block,
    "event.updated": _updated_block,
    "event.cancelled": _cancelled_block,
    "ping": _ping_block,
    "alert": _alert_block,
}
_TITLES = {
    "reminder.due": "科普活动提醒", "event.published": "新科普活动", "event.updated": "科普活动变更",
    "event.cancelled": "科普活动取消", "ping": "测试消息", "alert": "机构提醒",
}


def _data(payload: dict[str, Any]) -> dict[str, Any]:
    """The message's data, from a stored ``{"timestamp", "data"}`` payload (or bare data)."""
    inner = payload.get("data") if isinstance(payload, dict) and "data" in payload else payload
    return inner if isinstance(inner, dict) else {}


def digest_title(types: Sequence[str]) -> str:
    """``科普活动提醒`` for one reminder, ``科普活动提醒（3 条）`` for three, ``科普活动通知（N 条）`` when mixed."""
    kinds = set(types)
    base = _TITLES.get(next(iter(kinds)), "科普活动通知") if len(kinds) == 1 else "科普活动通知"
    return base if len(types) == 1 else f"{base}（{len(types)} 条）"


def footer(unsubscribe_url: str | None) -> str:
    """The way out, on every message."""
    if unsubscribe_url:
        return f"退订：{_link('不再接收', unsubscribe_url)}"
    return "退订：请群管理员在群设置中移除本机器人"


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes at a character boundary (only for a single oversize item)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(limit - len("…".encode()), 0)].decode("utf-8", "ignore") + "…"


def robot_markdown(
    items: Sequence[tuple[str, dict[str, Any]]], unsubscribe_url: str | None = None, *,
    limit: int = CONTENT_LIMITS["wecom"], heading: bool = True,
) -> tuple[str, str]:
    """The title and markdown of one message folding ``items`` (``(type, payload)`` pairs) into a digest.

    The markdown opens with the title as a heading (``heading=False`` leaves it out, for a
    card that shows the title itself), then one block per item, then the way out. It stays
    within ``limit`` UTF-8 bytes by leaving out whole items from the end, saying how many.
    """
    types = [type_ for type_, _ in items]
    title = digest_title(types) if items else "科普活动通知"
    head = f"### {title}" if heading else ""
    blocks = ["\n".join(_BLOCKS.get(type_, _unknown_block)(_data(payload))) for type_, payload in items]
    tail = footer(unsubscribe_url)

    def join(parts: list[str], left_out: int) -> str:
        more = [f"……另有 {left_out} 条未能显示，请查看活动网站"] if left_out else []
        return "\n\n".join([p for p in [head] if p] + parts + more + [tail])

    kept = list(blocks)
    while kept and len(join(kept, len(blocks) - len(kept)).encode("utf-8")) > limit:
        kept.pop()
    if not kept and blocks:  # a single item larger than the limit: the first, cut at a character boundary
        room = limit - len(join([], len(blocks) - 1).encode("utf-8")) - 2
        kept = [_fit(blocks[0], room)] if room > 0 else []
    return title, _fit(join(kept, len(blocks) - len(kept)), limit)


def _unknown_block(data: dict[str, Any]) -> list[str]:
    """A message type this module does not know yet: the event's name and time, if it has an event."""
    event = data.get("event")
    if not isinstance(event, dict):
        return ["科普活动通知"]
    return [_event_head(event), f"时间：{when(event.get('starts_at'), bool(event.get('all_day')))}"]


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RobotRequest:
    """One HTTP request to a robot."""

    url: str
    body: bytes
    headers: dict[str, str]


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def wecom_request(url: str, title: str, markdown: str) -> RobotRequest:
    """A WeCom group robot's markdown message (the key is in ``url``; there is no signature)."""
    return RobotRequest(url, _json({"msgtype": "markdown", "markdown": {"content": markdown}}), dict(_JSON_HEADERS))


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's ``sign``: base64 of HMAC-SHA256(key=secret, msg="timestamp\\nsecret"), *before* URL encoding."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_request(url: str, secret: str, title: str, markdown: str, at: float) -> RobotRequest:
    """A DingTalk custom robot's markdown message, signed when the robot has a secret (``at``: Unix seconds)."""
    if secret:
        timestamp = int(round(at * 1000))
        sign = quote_plus(dingtalk_sign(timestamp, secret))
        url += ("&" if urlsplit(url).query else "?") + f"timestamp={timestamp}&sign={sign}"
    # DingTalk's markdown joins single line breaks; two trailing spaces keep each line.
    text = markdown.replace("\n", "  \n")
    return RobotRequest(url, _json({"msgtype": "markdown", "markdown": {"title": title, "text": text}}), dict(_JSON_HEADERS))


def feishu_sign(timestamp: int, secret: str) -> str:
    """Feishu's ``sign``: base64 of HMAC-SHA256(key="timestamp\\nsecret", msg=b"")."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode("utf-8"), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_request(url: str, secret: str, title: str, markdown: str, at: float) -> RobotRequest:
    """A Feishu custom bot's card with the markdown as ``lark_md``, signed in the body when the bot has a secret."""
    body: dict[str, Any] = {}
    if secret:
        timestamp = int(at)
        body |= {"timestamp": str(timestamp), "sign": feishu_sign(timestamp, secret)}
    body |= {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": title}, "template": "blue"},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": markdown}}],
        },
    }
    return RobotRequest(url, _json(body), dict(_JSON_HEADERS))


def build_request(kind: str, url: str, secret: str, items: Sequence[tuple[str, dict[str, Any]]],
                  unsubscribe_url: str | None, at: float) -> RobotRequest:
    """The request carrying ``items`` as one message to a robot of ``kind`` (``at``: the signing time, Unix seconds)."""
    title, markdown = robot_markdown(items, unsubscribe_url, limit=CONTENT_LIMITS[kind], heading=kind != "feishu")
    if kind == "wecom":
        return wecom_request(url, title, markdown)
    if kind == "dingtalk":
        return dingtalk_request(url, secret, title, markdown, at)
    if kind == "feishu":
        return feishu_request(url, secret, title, markdown, at)
    raise ValueError(f"Not a robot kind: {kind!r}")


# --------------------------------------------------------------------------- answers


#: An answer's headers, names in lower case (only Feishu's ``x-ogw-ratelimit-reset`` is read).
Headers = dict[str, str] | None


def _parse(content: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _pause(kind: str, at: dt.datetime | None) -> dt.datetime:
    return (at or now()) + RATE_LIMIT_PAUSE[kind]


def _http_error(status: int, kind: str, at: dt.datetime | None, headers: dict[str, str] | None = None) -> Result:
    if status == 429:
        return Retry(f"The {kind} robot answered 429 (rate limited).", status, _reset(headers, kind, at))
    if status >= 500:
        return Retry(f"The {kind} robot answered {status}.", status)
    return Failed(f"The {kind} robot answered {status}.", status)


def _unreadable(status: int, kind: str, at: dt.datetime | None, headers: dict[str, str] | None) -> Result:
    """An answer without the platform's result: judged by its status (a 2xx without one: try again)."""
    if status >= 300:
        return _http_error(status, kind, at, headers)
    return Retry(f"The {kind} robot answered {status} without a result.", status)


def _reset(headers: dict[str, str] | None, kind: str, at: dt.datetime | None) -> dt.datetime:
    """Feishu's ``x-ogw-ratelimit-reset`` (seconds), else the robot's usual pause."""
    value = str((headers or {}).get("x-ogw-ratelimit-reset", "")).strip()
    if value.isdigit():
        return (at or now()) + dt.timedelta(seconds=min(int(value), 3600))
    return _pause(kind, at)


def classify_wecom(status: int, content: bytes, at: dt.datetime | None = None, headers: Headers = None) -> Result:
    """A WeCom answer as a channel result (``at``: the application's now, for ``not_before``)."""
    answer = _parse(content)
    if answer is None or "errcode" not in answer:
        return _unreadable(status, "wecom", at, headers)
    code, message = answer.get("errcode"), str(answer.get("errmsg", ""))[:200]
    if code == 0:
        return Sent(status)
    if code == 45009:
        return Retry(f"WeCom: rate limited (45009 {message}).", status, _pause("wecom", at))
    if code == -1:
        return Retry(f"WeCom: busy (-1 {message}).", status)
    if code == 93000:
        return Failed(f"WeCom: the webhook URL is no longer valid (93000 {message}).", status, gone=True)
    return Failed(f"WeCom refused the message ({code} {message}).", status)


def classify_dingtalk(status: int, content: bytes, at: dt.datetime | None = None, headers: Headers = None) -> Result:
    """A DingTalk answer as a channel result."""
    answer = _parse(content)
    if answer is None or "errcode" not in answer:
        return _unreadable(status, "dingtalk", at, headers)
    code, message = answer.get("errcode"), str(answer.get("errmsg", ""))[:200]
    if code == 0:
        return Sent(status)
    if code == 130101:
        return Retry(f"DingTalk: sent too fast, throttled for 10 minutes (130101 {message}).", status,
                     _pause("dingtalk", at))
    if code == -1:
        return Retry(f"DingTalk: busy (-1 {message}).", status)
    if code == 310000:
        return Failed(f"DingTalk: the robot's security check failed (sign, timestamp, keyword or IP; 310000 {message}).",
                      status)
    if code == 300001:
        return Failed(f"DingTalk: the robot's token does not exist (300001 {message}).", status, gone=True)
    return Failed(f"DingTalk refused the message ({code} {message}).", status)


def classify_feishu(status: int, content: bytes, at: dt.datetime | None = None, headers: Headers = None) -> Result:
    """A Feishu answer as a channel result (``code``, or ``StatusCode`` in older answers)."""
    answer = _parse(content)
    code = None if answer is None else answer.get("code", answer.get("StatusCode"))
    if code is None:
        return _unreadable(status, "feishu", at, headers)
    message = str(answer.get("msg", answer.get("StatusMessage", "")) if answer else "")[:200]
    if code == 0:
        return Sent(status)
    if code in (11232, 99991400):
        return Retry(f"Feishu: frequency limited ({code} {message}).", status, _reset(headers, "feishu", at))
    if code == 19001:
        return Failed(f"Feishu: the webhook is no longer valid (19001 {message}).", status, gone=True)
    if code in (19021, 19022, 19024):
        return Failed(f"Feishu: the bot's security check failed ({code} {message}).", status)
    if status >= 500:
        return Retry(f"Feishu answered {status} ({code} {message}).", status)
    return Failed(f"Feishu refused the message ({code} {message}).", status)


CLASSIFIERS: dict[str, Callable[..., Result]] = {
    "wecom": classify_wecom, "dingtalk": classify_dingtalk, "feishu": classify_feishu,
}


# --------------------------------------------------------------------------- the channel


@dataclass(frozen=True)
class RobotTarget:
    """Where and how one delivery goes: the robot's URL, its signing secret and what opens the address."""

    endpoint_id: int
    kind: str
    url: str
    #: The signing secret ("" for WeCom, whose key is in the URL, or a robot without signing).
    secret: str
    #: The application's ``OUTBOUND_ALLOWLIST``, read when claimed (senders run outside the app).
    allowlist: http.Allowlist
    #: Where the group stops these messages (``None``: the footer says to remove the robot).
    unsubscribe_url: str | None = None
    #: The application's ``OUTBOUND_TIMEOUT``: seconds the whole request may take.
    timeout: float = http.DEFAULT_TIMEOUT


#: Deliveries one digest message carries at most.
DIGEST_ITEMS = 10


def _room(session: Session, endpoint_id: int, limit: tuple[int, int], at: dt.datetime) -> tuple[int, dt.datetime]:
    """How many more deliveries the robot takes now, in digest slots (:data:`DIGEST_ITEMS` a message),
    and when the window frees next.

    A sliding window over the messages sent to it: the deliveries recorded at one moment went
    in digests of up to :data:`DIGEST_ITEMS` (a sender records all of a round's digests at
    once, so one ``sent_at`` may be several messages). With nothing sent in the window, what
    is sent now fills it until ``at`` plus the window.
    """
    count, seconds = limit
    window = dt.timedelta(seconds=seconds)
    sent = session.execute(
        select(Delivery.sent_at, func.count()).where(Delivery.endpoint_id == endpoint_id, Delivery.sent_at > at - window)
        .group_by(Delivery.sent_at).order_by(Delivery.sent_at)
    ).all()
    messages = sum(-(-deliveries // DIGEST_ITEMS) for _, deliveries in sent)
    return (count - messages) * DIGEST_ITEMS, (sent[0][0] if sent else at) + window


class RobotChannel:
    """Sends deliveries whose recipient is a WeCom, DingTalk or Feishu group robot (one kind per channel)."""

    def __init__(self, kind: str, unsubscribe_url: Callable[[WebhookEndpoint], str | None] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"Not a robot kind: {kind!r}")
        #: The channel's name is the endpoint kind (deliveries' ``channel`` is the endpoint's ``kind``).
        self.name = kind
        self.rate_limit = RATE_LIMITS[kind]
        self._unsubscribe_url = unsubscribe_url

    #: Deliveries folded into one digest message at most (more would be cut from the text).
    batch_size = DIGEST_ITEMS

    def batch_key(self, outgoing: Outgoing) -> int:
        """Deliveries to the same robot go in one digest."""
        return outgoing.recipient.endpoint_id

    def recipients(self, session: Session, deliveries: list[Any]) -> dict[str, Any]:
        """Each delivery's robot (URL, secret, kind); a disabled, deleted or re-kinded endpoint is skipped,
        and what the robot's rate limit does not allow now waits (``Defer``) for the window to free."""
        ids = {d.endpoint_id for d in deliveries}
        endpoints = {e.id: e for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))}
        found: dict[str, Any] = {}
        allowlist, timeout = http.configured_allowlist(), http.configured_timeout()
        room = {endpoint_id: _room(session, endpoint_id, self.rate_limit, now()) for endpoint_id in ids}
        for delivery in deliveries:
            endpoint = endpoints.get(delivery.endpoint_id)
            budget, free_at = room.get(delivery.endpoint_id, (0, now()))
            if endpoint is not None and endpoint.enabled and endpoint.kind == self.name and budget <= 0:
                found[delivery.id] = Defer(free_at, f"The {self.name} robot's rate limit ({self.rate_limit[0]} per {self.rate_limit[1]} s).")
                continue
            if endpoint is not None:
                room[delivery.endpoint_id] = (budget - 1, free_at)
            if endpoint is None:
                found[delivery.id] = Skip("The robot was deleted.")
            elif not endpoint.enabled:
                found[delivery.id] = Skip(f"The robot is disabled: {endpoint.disabled_reason or 'by its owner'}.")
            elif endpoint.kind != self.name:
                found[delivery.id] = Skip(f"The endpoint is now a {endpoint.kind}, not a {self.name} robot.")
            else:
                link = self._unsubscribe_url(endpoint) if self._unsubscribe_url else None
                found[delivery.id] = RobotTarget(
                    endpoint.id, endpoint.kind, endpoint.url, endpoint.secret or "", allowlist, link, timeout,
                )
        return found

    def send(self, outgoing: Outgoing) -> Result:
        """Send one message to its robot."""
        return self.send_many([outgoing])[0]

    def send_many(self, outgoings: list[Outgoing]) -> list[Result]:
        """Send the deliveries, folding those for the same robot into one digest (one request each);
        every delivery of a digest gets the digest's result. Results are in the order given."""
        groups: dict[int, list[int]] = {}
        for index, outgoing in enumerate(outgoings):
            groups.setdefault(outgoing.recipient.endpoint_id, []).append(index)
        results: list[Result | None] = [None] * len(outgoings)
        for indexes in groups.values():
            result = self._send_digest([outgoings[i] for i in indexes])
            for i in indexes:
                results[i] = result
        return [r for r in results if r is not None]

    def _send_digest(self, outgoings: list[Outgoing]) -> Result:
        target: RobotTarget = outgoings[0].recipient
        items = [(o.type, o.payload) for o in outgoings]
        # The signature's timestamp is the wall clock of this attempt: the platform checks it against its own.
        request = build_request(target.kind, target.url, target.secret, items, target.unsubscribe_url, time.time())
        try:
            answer = http.safe_request(
                "POST", request.url, data=request.body, headers=request.headers, timeout=target.timeout,
                max_bytes=MAX_ANSWER_BYTES, ok_statuses=range(100, 600), keep_alive=True, allowlist=target.allowlist,
            )
        except http.UnsafeURL as exc:
            return Failed(str(exc))
        except http.Redirected as exc:
            return Retry(str(exc), status_code=exc.status)
        except http.NoAnswer as exc:  # the group may have it already: a rare duplicate is acceptable in a chat
            return Retry(str(exc))
        except http.FetchError as exc:  # NotConnected, an oversize answer, TLS
            return Retry(str(exc))
        headers = {k.lower(): v for k, v in dict(answer.headers).items()}
        return CLASSIFIERS[target.kind](answer.status, answer.content, now(), headers)
