"""The organizers' webhook and robot endpoints (/organizer/endpoints): health, creating with the
secret shown once, changing, rotating, testing, deleting; and who may do what.

Nothing is sent: a test message is only queued, and failures are recorded as the sender records them.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from scheduler.auth.models import Role
from scheduler.channels.base import Retry, Sent
from scheduler.channels.health import disable_endpoint, record_endpoint_results
from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.reminders.dispatch import queue_ping
from tests.factories import CST, create_city, create_user
from tests.outbox import deliveries, fresh
from tests.pages import fresh_token, html, session_token, signed_in

URL = "https://partner.example.org/hooks"
WECOM_KEY = "693a91f6-7fff-4bc4-97a0-0ec2sifa5aaa"
WECOM = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"
DINGTALK_TOKEN = "c2a5f1e4b8d94e0f9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"
DINGTALK = f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}"
DINGTALK_SECRET = "SECa1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"





def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": session_token(client, "/organizer/deliveries"), **data})


def endpoint_ids(page: str) -> list[int]:
    match = re.search(r'<table id="endpoints".*?</table>', page, re.S)
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)">', match[0])] if match else []


def make_endpoint(org, url: str = URL, **fields) -> WebhookEndpoint:
    values = {"kind": "webhook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "kinds": [], "org_ids": [], "types": []}
    values |= fields
    endpoint = WebhookEndpoint(org_id=org.id, url=url, **values)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


@pytest.fixture
def city(ctx):
    return create_city()


@pytest.fixture
def editor(client, city):
    """The client, signed in as an editor of Xinhui."""
    return signed_in(client, create_user(Role.EDITOR, city["xinhui"]))


def test_the_list_shows_health_after_failures_and_the_alerts(client, city, clock):
    ok = make_endpoint(city["xinhui"], description="合作方系统")
    failing = make_endpoint(city["xinhui"], url="https://failing.example.org/hook")
    gone = make_endpoint(city["xinhui"], url="https://gone.example.org/hook")
    elsewhere = make_endpoint(city["kaiping"], url="https://kaiping.example.org/hook")
    at = dt.datetime(2024, 6, 14, 8, 0, tzinfo=CST)
    record_endpoint_results([(ok.id, Sent(200))], at)
    record_endpoint_results([(failing.id, Retry("The receiver answered 503.", 503))], at)
    record_endpoint_results([(failing.id, Retry("The receiver answered 503.", 503))], at + dt.timedelta(hours=2))
    disable_endpoint(fresh(gone), "The endpoint answered 410 Gone.", at)
    db.session.commit()
    signed_in(client, create_user(Role.VIEWER, city["xinhui"]))
    page = html(client.get("/organizer/endpoints"))
    assert endpoint_ids(page) == [ok.id, failing.id, gone.id]  # not Kaiping's
    assert "kaiping.example.org" not in page and elsewhere.id not in endpoint_ids(page)
    row = re.search(rf'<tr data-id="{failing.id}">(.*?)</tr>', page, re.S)[1]
    assert "已启用" in row and "<strong class=\"error\">2</strong>" in row
    assert "2024年6月14日 08:00" in row and "2024年6月14日 10:00" in row  # failing since, last failure
    assert "The receiver answered 503." in row and "从未" in row  # never a success
    row = re.search(rf'<tr data-id="{gone.id}">(.*?)</tr>', page, re.S)[1]
    assert "已停用" in row and "接收方表示它已不存在" in row
    assert "合作方系统" in page
    alerts = page.split("最近告警", 1)[1]
    assert "接口已停用" in alerts and "https://gone.example.org/hook" in alerts
    english = html(client.get("/organizer/endpoints?lang=en"))
    assert "Webhooks and robots" in english and "Failures in a row" in english
    assert "the receiver says it no longer exists" in english
    assert "Endpoint disabled" in english


def test_the_endpoint_page_shows_health_and_latest_deliveries(client, city):
    endpoint = make_endpoint(city["xinhui"], kinds=["study_tour"], types=["reminder.due"], alerts=True)
    endpoint.consecutive_failures, endpoint.last_error = 3, "Timed out after 10 s."
    endpoint.failing_since = dt.datetime(2024, 6, 13, 12, 0, tzinfo=CST)
    queue_ping(endpoint)
    db.session.commit()
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    page = html(client.get(f"/organizer/endpoints/{endpoint.id}"))
    assert '<dd class="failures">3</dd>' in page and "Timed out after 10 s." in page and "2024年6月13日 12:00" in page
    assert "活动类型：科普研学游" in page
    assert "消息：提醒" in page
    [ping] = deliveries(endpoint_id=endpoint.id)
    assert f'<tr data-id="{ping.id}">' in page and "测试消息" in page
    assert f'href="/organizer/deliveries?endpoint={endpoint.id}"' in page


def test_creating_a_webhook_shows_its_secret_once(editor, city):
    form = html(editor.get("/organizer/endpoints/new"))
    owners = re.search(r'<select id="ep-org".*?</select>', form, re.S)[0]  # whose endpoint: editable ones only
    assert 'for="ep-url"' in form and 'value="xinhui"' in owners and 'value="kaiping"' not in owners
    response = post(editor, "/organizer/endpoints/new", org="xinhui", kind="webhook", url=URL, description="合作方",
                    kinds=["study_tour"], types=["reminder.due", "event.cancelled"], alerts="1")
    page = html(response)
    row = db.session.scalar(select(WebhookEndpoint))
    assert row.secret.startswith("whsec_") and row.secret in page
    assert "请立即复制此签名密钥：它不会再次显示。" in page
    assert response.headers["Cache-Control"] == "no-store"
    assert row.secret not in response.headers.get("Set-Cookie", "")
    assert (row.org_id, row.kind, row.url, row.description, row.kinds, row.types, row.alerts) == (
        city["xinhui"].id, "webhook", URL, "合作方", ["study_tour"], ["event.cancelled", "reminder.due"], True)
    for path in ("/organizer/endpoints", f"/organizer/endpoints/{row.id}", "/organizer/deliveries"):
        assert row.secret not in html(editor.get(path))


def test_a_private_address_is_refused_next_to_the_field(editor, city):
    response = post(editor, "/organizer/endpoints/new", org="xinhui", kind="webhook", url="http://10.0.0.1/hook",
                    description="<script>alert(1)</script>")
    page = html(response, 422)
    assert "10.0.0.1 不是公网地址：消息只发送到公网地址。" in page
    assert re.search(r'id="ep-url"[^>]*aria-describedby="ep-url-help url-error"[^>]*aria-invalid="true"', page)
    assert 'id="url-error"' in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page  # the description, kept and escaped
    assert db.session.scalar(select(WebhookEndpoint.id)) is None
    fresh_token()
    editor.get("/organizer/endpoints?lang=en")
    english = html(post(editor, "/organizer/endpoints/new", org="xinhui", kind="webhook", url="ftp://x.example.org/"), 422)
    assert "Give an http:// or https:// URL with a host." in english


def test_a_webhook_takes_no_secret_and_unknown_choices_are_refused(editor, city):
    page = html(post(editor, "/organizer/endpoints/new", org="xinhui", kind="webhook", url=URL, secret="mine"), 422)
    assert "Webhook 的签名密钥由系统生成" in page and "mine" not in page
    page = html(post(editor, "/organizer/endpoints/new", org="xinhui", kind="email", url=URL, types=["event.deleted"]), 422)
    assert "请选择地址的类型。" in page
    assert db.session.scalar(select(WebhookEndpoint.id)) is None
    assert post(editor, "/organizer/endpoints/new", org="kaiping", kind="webhook", url=URL).status_code == 403


def test_a_robots_key_and_secret_never_appear_after_creation(editor, city):
    response = post(editor, "/organizer/endpoints/new", org="xinhui", kind="dingtalk", url=DINGTALK, secret=DINGTALK_SECRET)
    assert response.status_code == 303
    row = db.session.scalar(select(WebhookEndpoint))
    assert (row.kind, row.url, row.secret) == ("dingtalk", DINGTALK, DINGTALK_SECRET)
    assert response.headers["Location"] == f"/organizer/endpoints/{row.id}"
    post(editor, f"/organizer/endpoints/{row.id}/test")
    wecom = post(editor, "/organizer/endpoints/new", org="xinhui", kind="wecom", url=WECOM)
    assert wecom.status_code == 303
    page = html(editor.get(response.headers["Location"]))
    assert "机器人已添加" in page and "https://oapi.dingtalk.com/robot/send?access_token=c2a5…" in page
    assert "生成新的签名密钥" not in page  # robots have no secret made here
    for path in (response.headers["Location"], wecom.headers["Location"], "/organizer/endpoints", "/organizer/deliveries",
                 f"/organizer/endpoints/{row.id}/delete", "/organizer/deliveries?lang=en"):
        page = html(editor.get(path))
        for secret in (DINGTALK_TOKEN, DINGTALK_SECRET, WECOM_KEY):
            assert secret not in page, path
    assert "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a…" in html(editor.get("/organizer/endpoints"))
    # a robot's secret given in the form is taken, and not shown either
    assert post(editor, f"/organizer/endpoints/{row.id}", secret="SECnew", description="钉钉群").status_code == 303
    assert fresh(row).secret == "SECnew" and "SECnew" not in html(editor.get(f"/organizer/endpoints/{row.id}"))


def test_rotating_shows_a_new_secret_and_keeps_the_old_one_for_a_day(editor, city):
    endpoint = make_endpoint(city["xinhui"])
    old = endpoint.secret
    page = html(post(editor, f"/organizer/endpoints/{endpoint.id}/rotate"))
    row = fresh(endpoint)
    assert row.secret != old and row.secret in page and old not in page
    assert row.previous_secret == old and row.previous_secret_until == dt.datetime(2024, 6, 16, 10, tzinfo=CST)
    assert "2024年6月16日 10:00" in page and "它不会再次显示" in page
    assert row.secret not in html(editor.get(f"/organizer/endpoints/{endpoint.id}"))


def test_disable_and_enable_again(editor, city):
    endpoint = make_endpoint(city["xinhui"])
    endpoint.consecutive_failures, endpoint.failing_since = 7, dt.datetime(2024, 6, 14, tzinfo=CST)
    waiting = queue_ping(endpoint)
    db.session.commit()
    response = post(editor, f"/organizer/endpoints/{endpoint.id}/disable")
    assert response.status_code == 303 and response.headers["Location"] == f"/organizer/endpoints/{endpoint.id}"
    assert fresh(endpoint).enabled is False
    assert [d.status for d in deliveries(id=waiting)] == ["cancelled"]
    page = html(editor.get(response.headers["Location"]))
    assert "接口已停用：不再向它发送消息" in page and "由所属组织停用。" in page and "启用</button>" in page
    assert "发送测试消息" not in page
    assert post(editor, f"/organizer/endpoints/{endpoint.id}/enable").status_code == 303
    row = fresh(endpoint)
    assert (row.enabled, row.consecutive_failures, row.failing_since, row.disabled_reason) == (True, 0, None, None)


def test_a_test_message_is_queued_and_followed_in_the_log(editor, city):
    endpoint = make_endpoint(city["xinhui"])
    response = post(editor, f"/organizer/endpoints/{endpoint.id}/test")
    assert response.status_code == 303
    [ping] = deliveries(endpoint_id=endpoint.id)
    assert (ping.type, ping.status) == ("ping", "pending")
    page = html(editor.get(response.headers["Location"]))
    assert "测试消息已排队等待发送。" in page and f'href="/organizer/deliveries?endpoint={endpoint.id}">在投递记录中查看' in page
    log = html(editor.get(f"/organizer/deliveries?endpoint={endpoint.id}"))
    assert f'<tr data-id="{ping.id}">' in log
    endpoint.enabled = False
    db.session.commit()
    response = post(editor, f"/organizer/endpoints/{endpoint.id}/test")
    assert "接口已停用：请先启用。" in html(editor.get(response.headers["Location"]))
    assert len(deliveries(endpoint_id=endpoint.id)) == 1


def test_changing_the_description_filters_and_alerts(editor, city):
    endpoint = make_endpoint(city["xinhui"], types=["reminder.due"], alerts=True)
    response = post(editor, f"/organizer/endpoints/{endpoint.id}", description="新的说明", kinds=["matchmaking"])
    assert response.status_code == 303
    row = fresh(endpoint)
    assert (row.description, row.kinds, row.types, row.alerts) == ("新的说明", ["matchmaking"], [], False)
    assert "已保存" in html(editor.get(response.headers["Location"]))
    page = html(post(editor, f"/organizer/endpoints/{endpoint.id}", description="x" * 201), 422)
    assert re.search(r'id="ep-description"[^>]*aria-invalid="true" aria-describedby="description-error"', page)
    assert fresh(endpoint).description == "新的说明"


def test_changing_the_address_checks_it_and_an_empty_one_keeps_it(editor, city):
    endpoint = make_endpoint(city["xinhui"])
    path = f"/organizer/endpoints/{endpoint.id}"
    assert post(editor, path, url="", description="").status_code == 303
    assert fresh(endpoint).url == URL  # empty: kept
    page = html(post(editor, path, url="http://10.0.0.1/hook", description=""), 422)
    assert re.search(r'id="ep-url"[^>]*aria-invalid="true"', page) and "10.0.0.1" in page
    assert fresh(endpoint).url == URL
    assert post(editor, path, url="https://partner.example.org/new-hook", description="").status_code == 303
    assert fresh(endpoint).url == "https://partner.example.org/new-hook"


def test_the_organizations_filter_is_set_and_cleared_on_the_page(editor, city):
    endpoint = make_endpoint(city["xinhui"])
    path = f"/organizer/endpoints/{endpoint.id}"
    assert post(editor, path, description="", orgs=["xinhui", "kaiping"]).status_code == 303
    assert sorted(fresh(endpoint).org_ids) == sorted([city["xinhui"].id, city["kaiping"].id])
    page = html(editor.get(path))
    assert re.search(r'name="orgs" value="xinhui" checked', page) and not re.search(r'name="orgs" value="bureau" checked', page)
    assert post(editor, path, description="", orgs=["no-such-org"]).status_code == 422
    assert post(editor, path, description="").status_code == 303  # none ticked: every organization
    assert fresh(endpoint).org_ids == []


def test_delete_asks_first(editor, city):
    endpoint = make_endpoint(city["xinhui"], description="旧系统")
    queue_ping(endpoint)
    db.session.commit()
    page = html(editor.get(f"/organizer/endpoints/{endpoint.id}"))
    assert f'href="/organizer/endpoints/{endpoint.id}/delete"' in page
    confirm = html(editor.get(f"/organizer/endpoints/{endpoint.id}/delete"))
    assert "删除此接口？" in confirm and "1 条投递记录" in confirm and "删除接口</button>" in confirm
    assert db.session.get(WebhookEndpoint, endpoint.id) is not None  # asking deleted nothing
    response = post(editor, f"/organizer/endpoints/{endpoint.id}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/organizer/endpoints"
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id) is None
    assert f"接口 {URL} 已删除。" in html(editor.get("/organizer/endpoints"))
    assert "没有符合筛选条件的投递。" in html(editor.get("/organizer/deliveries"))  # its log went with it


def test_viewers_see_no_buttons_and_get_403(client, city):
    endpoint = make_endpoint(city["xinhui"])
    signed_in(client, create_user(Role.VIEWER, city["bureau"]))
    listing = html(client.get("/organizer/endpoints"))
    assert endpoint_ids(listing) == [endpoint.id] and "/organizer/endpoints/new" not in listing
    page = html(client.get(f"/organizer/endpoints/{endpoint.id}"))
    assert "<button" not in page.split("</header>", 1)[1] and "/delete" not in page
    assert client.get("/organizer/endpoints/new").status_code == 403
    assert client.get(f"/organizer/endpoints/{endpoint.id}/delete").status_code == 403
    for action in ("", "/enable", "/disable", "/rotate", "/test", "/delete"):
        assert post(client, f"/organizer/endpoints/{endpoint.id}{action}", description="x").status_code == 403, action
    assert post(client, "/organizer/endpoints/new", org="xinhui", kind="webhook", url=URL).status_code == 403
    row = fresh(endpoint)
    assert (row.enabled, row.description, row.secret) == (True, "", endpoint.secret) and deliveries() == []


def test_other_organizations_endpoints_are_not_found(client, city):
    endpoint = make_endpoint(city["kaiping"])
    signed_in(client, create_user(Role.MANAGER, city["xinhui"]))
    assert client.get(f"/organizer/endpoints/{endpoint.id}").status_code == 404
    assert post(client, f"/organizer/endpoints/{endpoint.id}/disable").status_code == 404
    assert client.get("/organizer/endpoints/99999999999").status_code == 404
    assert fresh(endpoint).enabled is True


def test_forms_need_the_csrf_token(editor, city):
    endpoint = make_endpoint(city["xinhui"])
    assert editor.post("/organizer/endpoints/new", data={"org": "xinhui", "kind": "webhook", "url": URL}).status_code == 400
    assert editor.post(f"/organizer/endpoints/{endpoint.id}/delete").status_code == 400
    assert editor.post(f"/organizer/endpoints/{endpoint.id}/rotate").status_code == 400
    assert db.session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.id != endpoint.id)) is None
    assert fresh(endpoint).secret == endpoint.secret
