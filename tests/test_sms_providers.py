"""The SMS providers against fake providers on 127.0.0.1 (tests/fake_sms.py) and the providers' worked examples."""
from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from scheduler.channels.base import Outgoing
from scheduler.channels.sms import console
from scheduler.channels.sms.aliyun import AliyunSms, rpc_signature
from scheduler.channels.sms.base import SmsMessage, provider_from_config, settings
from scheduler.channels.sms.channel import SmsChannel, SmsTarget
from scheduler.channels.sms.console import ConsoleSms
from scheduler.channels.sms.http_gateway import HttpGatewaySms
from scheduler.channels.sms.tencent import TencentSms, tc3_authorization
from tests.fake_sms import FakeAliyun, FakeGateway, FakeTencent

PARAMS = {"title": "江门科技馆：星空探秘", "time": "6月22日 09:00", "place": "江门科技馆三楼"}
TEXT = "【江门科普】您报名的江门科技馆：星空探秘将于6月22日 09:00开始，地点：江门科技馆三楼。"
TIMEOUT = 0.3


def msg(n: int = 0, phone: str | None = None, **changes: Any) -> SmsMessage:
    fields: dict[str, Any] = {
        "id": f"01J0000000000000000000{n:04d}",
        "phone": phone or f"+86138{n:08d}",
        "template": "reminder",
        "params": dict(PARAMS),
        "text": TEXT,
    }
    fields.update(changes)
    return SmsMessage(**fields)


def common(url_key: str, url: str, **settings_: Any) -> dict[str, Any]:
    return {url_key: url, "OUTBOUND_ALLOWLIST": ["127.0.0.1/32"], "SMS_TIMEOUT": TIMEOUT, **settings_}


# ================================================================ Alibaba Cloud


@pytest.fixture
def aliyun_fake() -> Iterator[FakeAliyun]:
    with FakeAliyun(access_key_id="LTAI-test-id", secret="test-secret") as fake:
        yield fake


def aliyun(fake: FakeAliyun, **extra: Any) -> AliyunSms:
    config = common("SMS_ALIYUN_ENDPOINT", fake.url, **{
        "SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "LTAI-test-id", "SMS_ALIYUN_ACCESS_KEY_SECRET": "test-secret",
        "SMS_ALIYUN_SIGN_NAME": "江门科普", "SMS_ALIYUN_TEMPLATES": '{"reminder": "SMS_100000001"}', **extra})
    provider = provider_from_config(config)
    assert isinstance(provider, AliyunSms)
    return provider


def test_aliyun_signature_matches_the_documented_examples() -> None:
    """Alibaba's SMS "签名机制" example (https://help.aliyun.com/document_detail/101343.htm) and the RPC one."""
    sms_example = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123", "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert rpc_signature(sms_example, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    rpc_example = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
    }
    assert rpc_signature(rpc_example, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_sends_one_text_with_sendsms(aliyun_fake: FakeAliyun) -> None:
    [outcome] = aliyun(aliyun_fake).send([msg(1)])
    assert outcome.status == "sent" and outcome.id == msg(1).id and outcome.provider_id == "000001^0"
    assert aliyun_fake.rejected == []
    [request] = aliyun_fake.requests
    assert request["Action"] == "SendSms"
    assert request["PhoneNumbers"] == "13800000001"  # no +86
    assert request["SignName"] == "江门科普" and request["TemplateCode"] == "SMS_100000001"
    assert json.loads(request["TemplateParam"]) == PARAMS
    assert request["OutId"] == msg(1).id


def test_aliyun_sends_several_numbers_with_sendbatchsms(aliyun_fake: FakeAliyun) -> None:
    messages = [msg(n) for n in range(3)]
    outcomes = aliyun(aliyun_fake).send(messages)
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert [o.id for o in outcomes] == [m.id for m in messages]
    [request] = aliyun_fake.requests
    assert request["Action"] == "SendBatchSms"
    assert request["phones"] == ["13800000000", "13800000001", "13800000002"]
    assert json.loads(request["SignNameJson"]) == ["江门科普"] * 3
    assert request["template_params"] == [PARAMS] * 3
    assert request["OutId"] == ",".join(m.id for m in messages)


def link(n: int) -> str:
    return f"https://hd.jmkp.example/m/{n:x}-Ab3dE{n:04d}"


def personal(n: int) -> SmsMessage:
    """A reminder to number ``n`` with its own short link (so its own text)."""
    params = {**PARAMS, "link": link(n)}
    return msg(n, params=params, text=f"{TEXT}管理提醒：{link(n)}")


def test_aliyun_batches_texts_with_params_per_number(aliyun_fake: FakeAliyun) -> None:
    messages = [personal(n) for n in range(5)]
    aliyun_fake.links = {f"138{n:08d}": link(n) for n in range(5)}
    provider = aliyun(aliyun_fake)
    assert provider.per_number_text
    outcomes = provider.send(messages)
    assert [(o.id, o.status) for o in outcomes] == [(m.id, "sent") for m in messages]
    assert aliyun_fake.rejected == []
    [request] = aliyun_fake.requests  # one SendBatchSms for five different texts
    assert request["Action"] == "SendBatchSms"
    assert request["phones"] == [f"138{n:08d}" for n in range(5)]
    assert request["template_params"] == [{**PARAMS, "link": link(n)} for n in range(5)]
    assert json.loads(request["SignNameJson"]) == ["江门科普"] * 5


def test_aliyun_fake_refuses_params_not_matching_their_number(aliyun_fake: FakeAliyun) -> None:
    """The fake's check has teeth: a link sent with another number's params is refused."""
    aliyun_fake.links = {"13800000001": link(1)}
    outcomes = aliyun(aliyun_fake).send([personal(0), msg(1, params={**PARAMS, "link": link(0)})])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert aliyun_fake.rejected == ["link"] and aliyun_fake.requests == []


def test_aliyun_splits_batches_at_100(aliyun_fake: FakeAliyun) -> None:
    outcomes = aliyun(aliyun_fake).send([msg(n) for n in range(150)])
    assert [len(r["phones"]) for r in aliyun_fake.requests] == [100, 50]
    assert all(o.status == "sent" for o in outcomes)
    assert aliyun_fake.requests[0]["OutId"].startswith("batch:")  # 100 ids do not fit OutId's 256 characters


def test_aliyun_invalid_number(aliyun_fake: FakeAliyun) -> None:
    aliyun_fake.invalid.add("13800000001")
    [outcome] = aliyun(aliyun_fake).send([msg(1)])
    assert outcome.status == "failed" and outcome.invalid_number
    assert "isv.MOBILE_NUMBER_ILLEGAL" in outcome.reason


def test_aliyun_batch_refused_for_one_number_is_sent_one_by_one(aliyun_fake: FakeAliyun) -> None:
    aliyun_fake.invalid.add("13800000001")
    aliyun_fake.limited.add("13800000002")
    outcomes = aliyun(aliyun_fake).send([msg(n) for n in range(4)])
    assert [(o.status, o.invalid_number) for o in outcomes] == [
        ("sent", False), ("failed", True), ("retry", False), ("sent", False)]
    assert [r["Action"] for r in aliyun_fake.requests] == ["SendBatchSms"] + ["SendSms"] * 4


def test_aliyun_rate_limited_number(aliyun_fake: FakeAliyun) -> None:
    aliyun_fake.limited.add("13800000001")
    [outcome] = aliyun(aliyun_fake).send([msg(1)])
    assert outcome.status == "retry" and outcome.retry_after == 60
    assert "isv.BUSINESS_LIMIT_CONTROL" in outcome.reason


@pytest.mark.parametrize("mode", ["server_error", "throttle"])
def test_aliyun_server_error_and_throttling_are_retried(aliyun_fake: FakeAliyun, mode: str) -> None:
    aliyun_fake.mode = mode
    [outcome] = aliyun(aliyun_fake).send([msg(1)])
    assert outcome.status == "retry"
    assert ("ServiceUnavailable" if mode == "server_error" else "Throttling.User") in outcome.reason


def test_aliyun_timeout_is_unknown(aliyun_fake: FakeAliyun) -> None:
    aliyun_fake.mode = "sleep"
    started = time.monotonic()
    outcomes = aliyun(aliyun_fake).send([msg(1), msg(2)])
    assert time.monotonic() - started < 1.5
    assert [o.status for o in outcomes] == ["unknown", "unknown"]
    assert len(aliyun_fake.requests) == 1  # it arrived: exactly why it is not sent again


def test_aliyun_wrong_secret_fails_without_showing_the_number(aliyun_fake: FakeAliyun) -> None:
    [outcome] = aliyun(aliyun_fake, SMS_ALIYUN_ACCESS_KEY_SECRET="not-the-secret").send([msg(1)])
    assert outcome.status == "failed" and "SignatureDoesNotMatch" in outcome.reason
    assert aliyun_fake.rejected == ["signature"]
    assert "13800000001" not in outcome.reason and "not-the-secret" not in outcome.reason


def test_aliyun_unknown_message_type_fails_before_sending(aliyun_fake: FakeAliyun) -> None:
    [outcome] = aliyun(aliyun_fake).send([msg(1, template="promotion")])
    assert outcome.status == "failed" and "SMS_ALIYUN_TEMPLATES" in outcome.reason
    assert aliyun_fake.requests == []


def test_aliyun_refuses_a_private_endpoint_outside_the_allowlist(aliyun_fake: FakeAliyun) -> None:
    [outcome] = aliyun(aliyun_fake, OUTBOUND_ALLOWLIST=[]).send([msg(1)])
    assert outcome.status == "failed" and "refused" in outcome.reason
    assert aliyun_fake.requests == [] and aliyun_fake.rejected == []


def test_a_provider_that_cannot_connect_retries() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = provider_from_config(common(
        "SMS_ALIYUN_ENDPOINT", f"http://127.0.0.1:{port}/", SMS_PROVIDER="aliyun", SMS_ALIYUN_ACCESS_KEY_ID="a",
        SMS_ALIYUN_ACCESS_KEY_SECRET="b", SMS_ALIYUN_SIGN_NAME="c", SMS_ALIYUN_TEMPLATES={"reminder": "SMS_1"}))
    [outcome] = provider.send([msg(1)])
    assert outcome.status == "retry"


# ================================================================ Tencent Cloud


def test_tencent_signature_matches_the_documented_example() -> None:
    """Tencent's "签名方法 v3" worked example (DescribeInstances in ap-guangzhou at 1551113065)."""
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    # The current page, with the keys shown as printed (asterisks included):
    assert tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******", service="cvm",
        host="cvm.tencentcloudapi.com", timestamp=1551113065, payload=payload,
    ) == ("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
          "SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c")
    # Its earlier edition, with ...EXAMPLE keys:
    assert tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", service="cvm",
        host="cvm.tencentcloudapi.com", timestamp=1551113065, payload=payload,
    ).endswith("Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


@pytest.fixture
def tencent_fake() -> Iterator[FakeTencent]:
    with FakeTencent(secret_id="AKID-test", secret_key="test-key", sdk_app_id="1400000001") as fake:
        yield fake


def tencent(fake: FakeTencent, **extra: Any) -> TencentSms:
    config = common("SMS_TENCENT_ENDPOINT", fake.url.rstrip("/"), **{
        "SMS_PROVIDER": "tencent", "SMS_TENCENT_SECRET_ID": "AKID-test", "SMS_TENCENT_SECRET_KEY": "test-key",
        "SMS_TENCENT_SDK_APP_ID": "1400000001", "SMS_TENCENT_SIGN_NAME": "江门科普",
        "SMS_TENCENT_TEMPLATES": '{"reminder": {"id": "1110", "params": ["title", "time", "place"]}}', **extra})
    provider = provider_from_config(config)
    assert isinstance(provider, TencentSms)
    return provider


def test_tencent_sends_one_text(tencent_fake: FakeTencent) -> None:
    [outcome] = tencent(tencent_fake).send([msg(1)])
    assert outcome.status == "sent" and outcome.provider_id == "2645:00010000"
    assert tencent_fake.rejected == []
    [request] = tencent_fake.requests
    assert request["PhoneNumberSet"] == ["+8613800000001"]
    assert request["TemplateId"] == "1110" and request["SignName"] == "江门科普" and request["SmsSdkAppId"] == "1400000001"
    assert request["TemplateParamSet"] == [PARAMS["title"], PARAMS["time"], PARAMS["place"]]
    assert request["SessionContext"] == msg(1).id


def test_tencent_batch_maps_each_numbers_status_back_by_phone(tencent_fake: FakeTencent) -> None:
    tencent_fake.reverse = True
    tencent_fake.invalid.add("+8613800000001")
    tencent_fake.limited.add("+8613800000002")
    messages = [msg(n) for n in range(4)]
    outcomes = tencent(tencent_fake).send(messages)
    assert [o.id for o in outcomes] == [m.id for m in messages]
    assert [(o.status, o.invalid_number) for o in outcomes] == [
        ("sent", False), ("failed", True), ("retry", False), ("sent", False)]
    assert outcomes[2].retry_after is not None and 60 <= outcomes[2].retry_after <= 86400
    assert "LimitExceeded.PhoneNumberDailyLimit" in outcomes[2].reason
    assert outcomes[0].provider_id != outcomes[3].provider_id
    [request] = tencent_fake.requests
    assert request["PhoneNumberSet"] == [m.phone for m in messages]
    assert request["SessionContext"] == ",".join(m.id for m in messages)


def test_tencent_large_batch(tencent_fake: FakeTencent) -> None:
    outcomes = tencent(tencent_fake).send([msg(n) for n in range(250)])
    assert [len(r["PhoneNumberSet"]) for r in tencent_fake.requests] == [200, 50]
    assert all(o.status == "sent" for o in outcomes)
    assert tencent_fake.requests[0]["SessionContext"].startswith("batch:")


def test_tencent_same_number_twice_goes_in_two_requests(tencent_fake: FakeTencent) -> None:
    outcomes = tencent(tencent_fake).send([msg(1), msg(2), msg(3, phone="+8613800000001")])
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert [r["PhoneNumberSet"] for r in tencent_fake.requests] == [
        ["+8613800000001", "+8613800000002"], ["+8613800000001"]]


def test_tencent_wrong_key_fails(tencent_fake: FakeTencent) -> None:
    outcomes = tencent(tencent_fake, SMS_TENCENT_SECRET_KEY="wrong").send([msg(1), msg(2)])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "AuthFailure.SignatureFailure" in outcomes[0].reason
    assert tencent_fake.rejected == ["signature"] and tencent_fake.requests == []


@pytest.mark.parametrize("mode", ["server_error", "throttle"])
def test_tencent_server_error_and_throttling_are_retried(tencent_fake: FakeTencent, mode: str) -> None:
    tencent_fake.mode = mode
    [outcome] = tencent(tencent_fake).send([msg(1)])
    assert outcome.status == "retry"


def test_tencent_timeout_is_unknown(tencent_fake: FakeTencent) -> None:
    tencent_fake.mode = "sleep"
    started = time.monotonic()
    [outcome] = tencent(tencent_fake).send([msg(1)])
    assert time.monotonic() - started < 1.5
    assert outcome.status == "unknown" and "not sent again" in outcome.reason


def test_tencent_missing_template_parameter_fails_before_sending(tencent_fake: FakeTencent) -> None:
    [outcome] = tencent(tencent_fake).send([msg(1, params={"title": "x"})])
    assert outcome.status == "failed" and "time" in outcome.reason
    assert tencent_fake.requests == []


# ================================================================ the HTTP gateway


@pytest.fixture
def gateway_fake() -> Iterator[FakeGateway]:
    with FakeGateway(token="test-token") as fake:
        yield fake


def gateway(fake: FakeGateway, **extra: Any) -> HttpGatewaySms:
    config = common("SMS_HTTP_URL", fake.url + "send", **{
        "SMS_PROVIDER": "http", "SMS_HTTP_AUTH_HEADER": "Authorization: Bearer test-token",
        "SMS_HTTP_SUCCESS": "json:code=0", "SMS_HTTP_ID_FIELD": "data.id", **extra})
    provider = provider_from_config(config)
    assert isinstance(provider, HttpGatewaySms)
    return provider


def test_gateway_sends_the_text(gateway_fake: FakeGateway) -> None:
    text = '【江门科普】"星空" 探秘\n明天见'  # quotes and a newline stay valid JSON
    [outcome] = gateway(gateway_fake).send([msg(1, text=text)])
    assert outcome.status == "sent" and outcome.provider_id == "gw-1"
    assert gateway_fake.requests == [{"id": msg(1).id, "phone": "+8613800000001", "text": text}]


def test_gateway_batches_with_phones(gateway_fake: FakeGateway) -> None:
    messages = [msg(n) for n in range(3)]
    outcomes = gateway(gateway_fake, SMS_HTTP_BATCH_SIZE=2).send(messages)
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert [r["phones"] for r in gateway_fake.requests] == ["+8613800000000,+8613800000001", "+8613800000002"]
    assert gateway_fake.requests[0]["id"] == f"{messages[0].id},{messages[1].id}"


MESSAGES_BODY = '{"messages": {messages}, "ids": "{id}"}'


def test_gateway_batches_different_texts_with_messages(gateway_fake: FakeGateway) -> None:
    messages = [personal(n) for n in range(5)]
    messages[2] = msg(2, text='【江门科普】"星空" 探秘\n明天见 https://hd.jmkp.example/m/2-x')  # quotes, newline: valid JSON
    provider = gateway(gateway_fake, SMS_HTTP_BODY=MESSAGES_BODY, SMS_HTTP_BATCH_SIZE=3)
    assert provider.per_number_text
    outcomes = provider.send(messages)
    assert [(o.id, o.status) for o in outcomes] == [(m.id, "sent") for m in messages]
    assert [o.provider_id for o in outcomes] == ["gw-1"] * 3 + ["gw-2"] * 2
    assert gateway_fake.rejected == []
    assert [r["messages"] for r in gateway_fake.requests] == [
        [{"id": m.id, "phone": m.phone, "text": m.text} for m in messages[:3]],
        [{"id": m.id, "phone": m.phone, "text": m.text} for m in messages[3:]]]
    assert gateway_fake.requests[0]["ids"] == ",".join(m.id for m in messages[:3])


def test_gateway_phones_batches_keep_one_text_per_request(gateway_fake: FakeGateway) -> None:
    provider = gateway(gateway_fake, SMS_HTTP_BATCH_SIZE=10)
    assert not provider.per_number_text
    outcomes = provider.send([msg(0), msg(1), personal(2), msg(3)])
    assert [o.status for o in outcomes] == ["sent"] * 4
    assert [r["phones"] for r in gateway_fake.requests] == [
        "+8613800000000,+8613800000001", "+8613800000002", "+8613800000003"]


def test_gateway_messages_body_rules() -> None:
    with pytest.raises(ValueError, match=r"\{text\}"):
        HttpGatewaySms("https://sms.example/", body='{"m": {messages}, "t": "{text}"}', batch_size=10)
    assert HttpGatewaySms("https://sms.example/", body='{"m": {messages}}').per_number_text  # batch size 1 too
    form = HttpGatewaySms("https://sms.example/", body="batch={messages}", batch_size=10,
                          content_type="application/x-www-form-urlencoded")
    body = form.render([msg(1, text="【签】a&b"), msg(2, text="【签】c")])
    assert json.loads(parse_qs(body.decode())["batch"][0]) == [
        {"id": msg(1).id, "phone": "+8613800000001", "text": "【签】a&b"},
        {"id": msg(2).id, "phone": "+8613800000002", "text": "【签】c"}]


def test_gateway_refusal_fails_without_showing_the_number(gateway_fake: FakeGateway) -> None:
    gateway_fake.invalid.add("+8613800000001")
    [outcome] = gateway(gateway_fake).send([msg(1)])
    assert outcome.status == "failed" and "code=1001" in outcome.reason
    assert "13800000001" not in outcome.reason


def test_gateway_rate_limit_and_server_error(gateway_fake: FakeGateway) -> None:
    gateway_fake.mode = "rate_limited"
    [outcome] = gateway(gateway_fake).send([msg(1)])
    assert outcome.status == "retry" and outcome.retry_after == 30
    gateway_fake.mode = "server_error"
    [outcome] = gateway(gateway_fake).send([msg(1)])
    assert outcome.status == "retry"


def test_gateway_wrong_token_fails(gateway_fake: FakeGateway) -> None:
    [outcome] = gateway(gateway_fake, SMS_HTTP_AUTH_HEADER="Authorization: Bearer nope").send([msg(1)])
    assert outcome.status == "failed" and "401" in outcome.reason
    assert gateway_fake.rejected == ["token"]


def test_gateway_timeout_is_unknown(gateway_fake: FakeGateway) -> None:
    gateway_fake.mode = "sleep"
    started = time.monotonic()
    [outcome] = gateway(gateway_fake).send([msg(1)])
    assert time.monotonic() - started < 1.5
    assert outcome.status == "unknown"


def test_gateway_form_body() -> None:
    provider = HttpGatewaySms("https://sms.example/send", body="to={phone}&msg={text}&ref={id}",
                              content_type="application/x-www-form-urlencoded")
    assert provider.render([msg(1, text="【签】a&b c")]) == (
        f"to=%2B8613800000001&msg=%E3%80%90%E7%AD%BE%E3%80%91a%26b+c&ref={msg(1).id}".encode())


# ================================================================ console, configuration


def test_console_logs_masked_and_keeps_the_text(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # Alembic's fileConfig (the migrations the suite runs) disables loggers that existed before it.
    monkeypatch.setattr(console.log, "disabled", False)
    console.OUTBOX.clear()
    with caplog.at_level(logging.INFO, logger="scheduler.channels.sms.console"):
        outcomes = provider_from_config({}).send([msg(1), msg(2)])
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert list(console.OUTBOX) == [("+8613800000001", TEXT), ("+8613800000002", TEXT)]
    assert "+86 138****0001" in caplog.text and "13800000001" not in caplog.text


def test_provider_choice_and_settings() -> None:
    assert isinstance(provider_from_config({"SMS_PROVIDER": "console"}), ConsoleSms)
    with pytest.raises(ValueError, match="SMS_PROVIDER"):
        provider_from_config({"SMS_PROVIDER": "carrier-pigeon"})
    with pytest.raises(ValueError, match="SMS_ALIYUN_ACCESS_KEY_SECRET"):
        provider_from_config({"SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "a", "SMS_ALIYUN_SIGN_NAME": "b",
                              "SMS_ALIYUN_TEMPLATES": '{"reminder": "SMS_1"}'})
    with pytest.raises(ValueError, match="SMS_TENCENT_TEMPLATES"):
        provider_from_config({"SMS_PROVIDER": "tencent", "SMS_TENCENT_SECRET_ID": "a", "SMS_TENCENT_SECRET_KEY": "b",
                              "SMS_TENCENT_SDK_APP_ID": "1", "SMS_TENCENT_SIGN_NAME": "c", "SMS_TENCENT_TEMPLATES": "{"})
    with pytest.raises(ValueError, match="SMS_HTTP_URL"):
        provider_from_config({"SMS_PROVIDER": "http"})
    with pytest.raises(ValueError, match=r"\{phones\}"):
        provider_from_config({"SMS_PROVIDER": "http", "SMS_HTTP_URL": "https://sms.example/",
                              "SMS_HTTP_BODY": '{"to": "{phone}"}', "SMS_HTTP_BATCH_SIZE": "10"})
    documented = settings()
    assert set(documented) == {"common", "console", "aliyun", "tencent", "http"}
    assert {s.name for s in documented["tencent"] if s.required} == {
        "SMS_TENCENT_SECRET_ID", "SMS_TENCENT_SECRET_KEY", "SMS_TENCENT_SDK_APP_ID", "SMS_TENCENT_SIGN_NAME",
        "SMS_TENCENT_TEMPLATES"}


def test_which_providers_take_a_text_per_number() -> None:
    aliyun_ = provider_from_config({"SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "a",
                                    "SMS_ALIYUN_ACCESS_KEY_SECRET": "b", "SMS_ALIYUN_SIGN_NAME": "c",
                                    "SMS_ALIYUN_TEMPLATES": {"reminder": "SMS_1"}})
    tencent_ = provider_from_config({"SMS_PROVIDER": "tencent", "SMS_TENCENT_SECRET_ID": "a", "SMS_TENCENT_SECRET_KEY": "b",
                                     "SMS_TENCENT_SDK_APP_ID": "1", "SMS_TENCENT_SIGN_NAME": "c",
                                     "SMS_TENCENT_TEMPLATES": {"reminder": {"id": "1", "params": ["title"]}}})
    assert aliyun_.per_number_text is True
    assert ConsoleSms().per_number_text is True
    assert getattr(tencent_, "per_number_text", False) is False  # TemplateParamSet is shared by PhoneNumberSet
    assert HttpGatewaySms("https://sms.example/", body='{"to": "{phones}", "t": "{text}"}', batch_size=9).per_number_text is False


def reminder_outgoing(n: int, provider: Any, *, link_: str | None = None, title: str = "江门科普嘉年华") -> Outgoing:
    data = {"event": {"id": 1, "title": title, "timezone": "Asia/Shanghai", "venue": "江门科技馆", "address": None},
            "reminder": {"id": 1, "offset": "PT10M", "occurrence_start": "2026-06-22T01:00:00Z",
                         "scheduled_at": "2026-06-22T00:50:00Z"}}
    target = SmsTarget(n, f"+86138{n:08d}", link_ or link(n), provider, "江门科普")
    return Outgoing(id=f"d{n}", channel="sms", type="reminder.due", payload={"timestamp": "2026-06-22T00:50:00Z", "data": data},
                    attempt=1, recipient=target)


def test_sms_batch_key_groups_personal_texts_when_the_provider_takes_a_text_per_number() -> None:
    channel = SmsChannel()
    per_number = HttpGatewaySms("https://sms.example/", body='{"m": {messages}}', batch_size=100)
    one_text = HttpGatewaySms("https://sms.example/", body='{"to": "{phones}", "t": "{text}"}', batch_size=100)
    tencent_ = TencentSms("a", "b", "1", "c", {"reminder": {"id": "1", "params": ["title"]}})
    for provider in (per_number, AliyunSms("a", "b", "c", {"reminder": "SMS_1"}), ConsoleSms()):
        keys = {channel.batch_key(reminder_outgoing(n, provider)) for n in range(3)}
        assert keys == {"reminder"}  # three different links, one batch
        assert channel.batch_key(reminder_outgoing(0, provider, title="另一场")) == "reminder"
    for provider in (one_text, tencent_):
        keys = [channel.batch_key(reminder_outgoing(n, provider)) for n in range(3)]
        assert len(set(keys)) == 3  # each text its own wording: no batch
        assert keys[0][0] == "reminder" and ("link", link(0)) in keys[0][1]
        assert channel.batch_key(reminder_outgoing(1, provider, link_=link(0))) == keys[0]  # same wording: same batch
    single = HttpGatewaySms("https://sms.example/", body='{"m": {messages}}')
    assert channel.batch_key(reminder_outgoing(0, single)) is None  # batch size 1: one at a time


def test_secrets_stay_out_of_repr() -> None:
    provider = provider_from_config({"SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "a",
                                     "SMS_ALIYUN_ACCESS_KEY_SECRET": "very-secret", "SMS_ALIYUN_SIGN_NAME": "b",
                                     "SMS_ALIYUN_TEMPLATES": {"reminder": "SMS_1"}})
    assert "very-secret" not in repr(provider)
