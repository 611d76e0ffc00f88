"""Chat-group robots: the digest text, the three request formats and signatures, and how answers are read.

Requests go over real HTTP to the fakes of :mod:`tests.fake_robots`, which check them the
way WeCom, DingTalk and Feishu do (signatures recomputed there, timestamps against the wall
clock) and answer with the platforms' own shapes.
"""
from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from scheduler.channels.base import Failed, Outgoing, Retry, Sent, Skip
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.robots import (
    CONTENT_LIMITS, RATE_LIMITS, RETRY_DELAYS, RobotChannel, RobotTarget, classify_dingtalk, classify_feishu,
    classify_wecom, robot_markdown,
)
from scheduler.extensions import db
from scheduler.util import http
from tests.factories import create_org
from tests.fake_robots import (
    DINGTALK_KEYWORDS, DINGTALK_TOO_FAST, FEISHU_BAD_REQUEST, FEISHU_LIMITED, WECOM_RATE_LIMITED, Answer, FakeRobots,
    markdown_of,
)

LOCAL = http.Allowlist.parse(["127.0.0.1/32"])
UNSUB = "http://scheduler.test/robots/7/unsubscribe"
DINGTALK_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
FEISHU_SECRET = "fs-secret-0123456789"


@pytest.fixture
def robots() -> Iterator[FakeRobots]:
    with FakeRobots() as fake:
        yield fake
    http.forget_connections()


def event(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """An event as messages carry it (the API's fields that the text uses)."""
    data = {
        "id": n, "title": f"江门科技周开幕式{n}", "kind": "tech_week", "kind_name_zh": "科技活动周",
        "org_name_zh": "江门市科学技术局", "venue": "江门科技馆", "address": "蓬江区发展大道1号",
        "starts_at": "2024-06-20T09:30:00+08:00", "ends_at": "2024-06-20T11:30:00+08:00", "all_day": False,
        "timezone": "Asia/Shanghai", "status": "published", "cancel_reason": None,
        "links": {"page": f"http://scheduler.test/events/{n}", "ics": f"http://scheduler.test/calendars/events/{n}.ics"},
    }
    return data | overrides


def reminder(n: int = 1, start: str = "2024-06-20T01:30:00Z", **extra: Any) -> dict[str, Any]:
    return {"timestamp": "2024-06-19T01:30:00Z",
            "data": {"event": event(n), "reminder": {"id": n, "offset": "P1D", "occurrence_start": start, **extra}}}


def outgoing(target: RobotTarget, payload: dict[str, Any], type_: str = "reminder.due", n: int = 1) -> Outgoing:
    return Outgoing(id=f"d{n}", channel=target.kind, type=type_, payload=payload, attempt=1, recipient=target)


def target(url: str, kind: str, secret: str = "", allowlist: http.Allowlist = LOCAL, endpoint_id: int = 7) -> RobotTarget:
    return RobotTarget(endpoint_id, kind, url, secret, allowlist, UNSUB)


def robot(robots: FakeRobots, kind: str, token: str = "tok") -> RobotTarget:
    """A registered robot of ``kind`` (DingTalk and Feishu ones sign) and its target."""
    secret = {"wecom": "", "dingtalk": DINGTALK_SECRET, "feishu": FEISHU_SECRET}[kind]
    return target(robots.add(kind, token, secret), kind, secret)


# --------------------------------------------------------------------------- the text


def test_one_reminder_reads_in_chinese_with_local_times() -> None:
    title, text = robot_markdown([("reminder.due", reminder())], UNSUB)
    assert title == "科普活动提醒"
    assert text.startswith("### 科普活动提醒\n")
    assert "**[江门科技周开幕式1](http://scheduler.test/events/1)**" in text
    assert "时间：6月20日 09:30" in text  # 01:30 UTC shown in Asia/Shanghai
    assert "地点：江门科技馆（蓬江区发展大道1号）" in text
    assert "主办：江门市科学技术局 · 科技活动周" in text
    assert "[加入日历](http://scheduler.test/calendars/events/1.ics)" in text
    assert text.endswith(f"退订：[不再接收]({UNSUB})")


def test_a_study_tour_says_where_and_when_to_meet() -> None:
    payload = reminder(meeting={"point": "市政府北门", "time": "2024-06-20T08:45:00+08:00"})
    _, text = robot_markdown([("reminder.due", payload)])
    assert "集合：市政府北门，6月20日 08:45" in text
    _, text = robot_markdown([("reminder.due", reminder(meeting={"point": "北门", "time": "08:15"}))])
    assert "集合：北门，08:15" in text


def test_a_contests_reminder_names_the_stage_it_is_ahead_of() -> None:
    payload = reminder(offset="registration_deadline:P3D", stage={"key": "registration_deadline", "at": "2024-06-01T09:00:00Z"})
    _, text = robot_markdown([("reminder.due", payload)])
    assert "报名截止：6月1日 17:00" in text


def test_cancelled_updated_published_ping_and_alert() -> None:
    cancelled = {"timestamp": "t", "data": {"event": event(cancel_reason="台风*预警*，停课")}}
    updated = {"timestamp": "t", "data": {"event": event(), "changes": {
        "starts_at": {"old": "2024-06-20T01:30:00Z", "new": "2024-06-21T06:00:00Z"},
        "venue": {"old": "江门科技馆", "new": "五邑大学"},
        "description": {"old": "a", "new": "b"},
    }}}
    items = [
        ("event.cancelled", cancelled), ("event.updated", updated), ("event.published", {"data": {"event": event(3)}}),
        ("ping", {"timestamp": "t", "data": {"endpoint_id": 7}}),
        ("alert", {"timestamp": "t", "data": {"kind": "webhook.disabled", "message": "一个接收地址已停用"}}),
    ]
    title, text = robot_markdown(items, None)
    assert title == "科普活动通知（5 条）"
    assert "江门科技周开幕式1](http://scheduler.test/events/1)** 已取消" in text
    assert "取消原因：台风＊预警＊，停课" in text
    assert "开始时间：6月20日 09:30 → 6月21日 14:00" in text
    assert "地点：江门科技馆 → 五邑大学" in text
    assert "简介：已更新" in text
    assert "（新活动）" in text
    assert "**测试消息**" in text
    assert "**机构提醒**（webhook.disabled）" in text and "一个接收地址已停用" in text
    assert text.endswith("退订：请群管理员在群设置中移除本机器人")


def test_user_text_cannot_inject_markdown() -> None:
    payload = reminder()
    payload["data"]["event"]["title"] = "**大奖**[点我](http://evil.example)<font color=red>`x`</font>\n# 标题"
    _, text = robot_markdown([("reminder.due", payload)])
    assert "[点我]" not in text and "<font" not in text and "\n# " not in text
    assert "＊＊大奖＊＊［点我］(http://evil.example)＜font color=red＞｀x｀＜/font＞ ＃ 标题" in text


def test_long_digests_leave_out_whole_items_under_the_byte_limit() -> None:
    items = [("reminder.due", reminder(n)) for n in range(1, 41)]
    for item in items:
        item[1]["data"]["event"]["title"] = f"第{item[1]['data']['event']['id']}场·" + "科学探索之旅" * 12
    title, text = robot_markdown(items, UNSUB, limit=4096)
    raw = text.encode("utf-8")
    assert len(raw) <= 4096
    assert raw.decode("utf-8") == text
    assert title == "科普活动提醒（40 条）"
    kept = text.count("时间：")
    assert 0 < kept < 40
    assert text.count("[加入日历]") == kept  # each item shown whole, or not at all
    assert f"……另有 {40 - kept} 条未能显示" in text
    assert text.endswith(f"退订：[不再接收]({UNSUB})")


def test_a_single_oversize_item_is_cut_at_a_character_boundary() -> None:
    payload = {"data": {"kind": "x", "message": "测" * 400}}
    _, text = robot_markdown([("alert", payload)], UNSUB, limit=301)
    assert len(text.encode("utf-8")) <= 301
    assert text.encode("utf-8").decode("utf-8") == text
    assert "退订" in text


# --------------------------------------------------------------------------- sending


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_a_digest_of_three_reminders_is_one_request(robots: FakeRobots, kind: str) -> None:
    aim = robot(robots, kind)
    batch = [outgoing(aim, reminder(n, start=f"2024-06-2{n}T01:30:00Z"), n=n) for n in (1, 2, 3)]

    results = RobotChannel(kind).send_many(batch)

    assert robots.rejected == []
    assert len(robots.messages) == 1
    assert all(isinstance(r, Sent) for r in results) and len(results) == 3
    text = markdown_of(robots.messages[0])
    for n in (1, 2, 3):
        assert f"江门科技周开幕式{n}" in text
        assert f"时间：6月2{n}日 09:30" in text
    body = robots.messages[0].body
    if kind == "wecom":
        assert body == {"msgtype": "markdown", "markdown": {"content": text}}
        assert text.startswith("### 科普活动提醒（3 条）")
    elif kind == "dingtalk":
        assert body["markdown"]["title"] == "科普活动提醒（3 条）"
        assert set(robots.messages[0].query) == {"access_token", "timestamp", "sign"}
    else:
        assert body["msg_type"] == "interactive"
        assert body["card"]["header"]["title"] == {"tag": "plain_text", "content": "科普活动提醒（3 条）"}
        assert body["card"]["elements"][0]["text"]["tag"] == "lark_md"
        assert {"timestamp", "sign"} <= set(body)


def test_send_one_and_deliveries_for_two_robots(robots: FakeRobots) -> None:
    first, second = robot(robots, "wecom", "a"), robot(robots, "wecom", "b")
    second = RobotTarget(8, "wecom", second.url, "", LOCAL)
    channel = RobotChannel("wecom")

    assert isinstance(channel.send(outgoing(first, reminder())), Sent)
    results = channel.send_many([outgoing(first, reminder(1), n=1), outgoing(second, reminder(2), n=2),
                                 outgoing(first, reminder(3), n=3)])

    assert [type(r) for r in results] == [Sent, Sent, Sent]
    assert [m.token for m in robots.messages] == ["a", "a", "b"]
    assert "（2 条）" in markdown_of(robots.messages[1])


def test_long_digests_fit_wecom(robots: FakeRobots) -> None:
    aim = robot(robots, "wecom")
    batch = [outgoing(aim, reminder(n), n=n) for n in range(1, 61)]
    assert all(isinstance(r, Sent) for r in RobotChannel("wecom").send_many(batch))
    assert robots.rejected == []
    assert len(markdown_of(robots.messages[0]).encode()) <= CONTENT_LIMITS["wecom"]


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_a_wrong_secret_fails_without_disabling(robots: FakeRobots, kind: str) -> None:
    aim = robot(robots, kind)
    wrong = target(aim.url, kind, secret="not-the-secret")
    result = RobotChannel(kind).send(outgoing(wrong, reminder()))
    assert isinstance(result, Failed) and not result.gone
    assert len(robots.rejected) == 1 and robots.messages == []


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_signatures_use_the_wall_clock(robots: FakeRobots, kind: str, clock: Any) -> None:
    """The app's clock may be anywhere (tests freeze it in 2024): the platform checks the sign's time against its own."""
    aim = robot(robots, kind)
    assert isinstance(RobotChannel(kind).send(outgoing(aim, reminder())), Sent)
    robots.clock_skew = 2 * 3600  # the platform's clock two hours ahead: the timestamp is refused
    result = RobotChannel(kind).send(outgoing(aim, reminder()))
    assert isinstance(result, Failed) and not result.gone


def test_dingtalk_unsigned_robot_gets_no_signature(robots: FakeRobots) -> None:
    aim = target(robots.add("dingtalk", "plain"), "dingtalk")
    assert isinstance(RobotChannel("dingtalk").send(outgoing(aim, reminder())), Sent)
    assert set(robots.messages[0].query) == {"access_token"}


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_an_unknown_robot_is_gone(robots: FakeRobots, kind: str) -> None:
    aim = target(robots.url(kind, "removed"), kind, secret="s" if kind != "wecom" else "")
    result = RobotChannel(kind).send(outgoing(aim, reminder()))
    assert isinstance(result, Failed) and result.gone


@pytest.mark.parametrize(("kind", "answer", "wait"), [
    ("wecom", Answer(200, WECOM_RATE_LIMITED), dt.timedelta(seconds=60)),
    ("dingtalk", Answer(200, DINGTALK_TOO_FAST), dt.timedelta(minutes=10)),
    ("feishu", Answer(200, FEISHU_LIMITED), dt.timedelta(seconds=60)),
    ("feishu", Answer(429, {"code": 99991400, "msg": "request trigger frequency limit"},
                      {"x-ogw-ratelimit-limit": "100", "x-ogw-ratelimit-reset": "52"}), dt.timedelta(seconds=52)),
])
def test_rate_limits_retry_later(robots: FakeRobots, clock: Any, kind: str, answer: Answer, wait: dt.timedelta) -> None:
    aim = robot(robots, kind)
    robots.respond(answer)
    result = RobotChannel(kind).send(outgoing(aim, reminder()))
    assert isinstance(result, Retry)
    assert result.not_before == clock() + wait
    assert isinstance(RobotChannel(kind).send(outgoing(aim, reminder())), Sent)


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_server_errors_retry(robots: FakeRobots, kind: str) -> None:
    aim = robot(robots, kind)
    robots.respond(Answer(502, None), Answer(503, {"message": "upstream"}))
    first, second = (RobotChannel(kind).send(outgoing(aim, reminder())) for _ in range(2))
    assert isinstance(first, Retry) and first.status_code == 502
    assert isinstance(second, Retry) and second.status_code == 503


def test_refusals_of_the_content_fail(robots: FakeRobots) -> None:
    robots.respond(Answer(200, DINGTALK_KEYWORDS))
    result = RobotChannel("dingtalk").send(outgoing(robot(robots, "dingtalk"), reminder()))
    assert isinstance(result, Failed) and not result.gone and "310000" in result.reason
    robots.respond(Answer(200, FEISHU_BAD_REQUEST))
    result = RobotChannel("feishu").send(outgoing(robot(robots, "feishu"), reminder()))
    assert isinstance(result, Failed) and not result.gone and "9499" in result.reason


def test_the_allow_list_is_needed_for_private_addresses(robots: FakeRobots) -> None:
    aim = target(robots.add("wecom", "k"), "wecom", allowlist=http.Allowlist.parse([]))
    result = RobotChannel("wecom").send(outgoing(aim, reminder()))
    assert isinstance(result, Failed) and "not a public address" in result.reason
    assert robots.messages == [] and robots.rejected == []


def test_no_connection_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    aim = target(f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k", "wecom")
    result = RobotChannel("wecom").send(outgoing(aim, reminder()))
    assert isinstance(result, Retry) and "connect" in result.reason


def test_no_answer_retries() -> None:
    """The request left but the connection closed unanswered: retried (a rare duplicate in a chat is acceptable)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def swallow() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        aim = target(f"http://127.0.0.1:{server.getsockname()[1]}/robot/send?access_token=t", "dingtalk")
        result = RobotChannel("dingtalk").send(outgoing(aim, reminder()))
    finally:
        thread.join(5)
        server.close()
        http.forget_connections()
    assert isinstance(result, Retry)


# --------------------------------------------------------------------------- answers and settings


def test_answer_shapes() -> None:
    at = dt.datetime(2024, 6, 15, 2, 0, tzinfo=dt.UTC)
    assert isinstance(classify_wecom(200, b'{"errcode":0,"errmsg":"ok"}', at), Sent)
    assert isinstance(classify_wecom(200, b'{"errcode":-1,"errmsg":"system busy"}', at), Retry)
    assert classify_wecom(200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', at) == Failed(
        "WeCom: the webhook URL is no longer valid (93000 invalid webhook url).", 200, gone=True)
    assert isinstance(classify_dingtalk(200, b'{"errcode":0,"errmsg":"ok"}', at), Sent)
    assert classify_dingtalk(200, b'{"errcode":300001,"errmsg":"token is not exist"}', at).gone  # type: ignore[union-attr]
    assert isinstance(classify_feishu(200, b'{"StatusCode":0,"StatusMessage":"success"}', at), Sent)  # older answers
    assert isinstance(classify_feishu(200, b'{"code":0,"msg":"success","data":{}}', at), Sent)
    params = classify_feishu(200, b'{"code":19002,"msg":"params error, msg_type need"}', at)
    assert isinstance(params, Failed) and not params.gone
    assert isinstance(classify_feishu(200, b"<html>gateway</html>", at), Retry)
    assert isinstance(classify_wecom(404, b"not found", at), Failed)


def test_limits_keep_a_margin_under_the_platforms() -> None:
    for kind, per_minute in (("wecom", 20), ("dingtalk", 20), ("feishu", 100)):
        count, seconds = RATE_LIMITS[kind]
        assert count * 60 / seconds < per_minute
    count, seconds = RATE_LIMITS["feishu"]
    assert count < 5  # Feishu's 5 a second, even within one second of the window
    assert RETRY_DELAYS[0] == dt.timedelta(0) and RETRY_DELAYS[-1] > dt.timedelta(minutes=10)


def test_recipients_load_each_robot(ctx: None) -> None:
    org = create_org()
    rows = [
        WebhookEndpoint(org_id=org.id, kind="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=a", secret="SECa"),
        WebhookEndpoint(org_id=org.id, kind="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=b", secret="SECb",
                        enabled=False, disabled_reason="Removed from the group."),
        WebhookEndpoint(org_id=org.id, kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=c", secret=""),
    ]
    db.session.add_all(rows)
    db.session.flush()
    deliveries = [SimpleNamespace(id=f"d{i}", endpoint_id=e.id) for i, e in enumerate(rows)]
    deliveries.append(SimpleNamespace(id="gone", endpoint_id=10_000))

    found = RobotChannel("dingtalk", unsubscribe_url=lambda e: f"http://scheduler.test/robots/{e.id}/off").recipients(
        db.session, deliveries)

    assert found["d0"] == RobotTarget(rows[0].id, "dingtalk", rows[0].url, "SECa", http.configured_allowlist(),
                                      f"http://scheduler.test/robots/{rows[0].id}/off")
    assert isinstance(found["d1"], Skip) and "Removed from the group." in found["d1"].reason
    assert isinstance(found["d2"], Skip)  # a WeCom robot is not this channel's
    assert isinstance(found["gone"], Skip)
