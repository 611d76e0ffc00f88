"""Tencent Cloud SMS (``SendSms``, API version 2021-01-11), signed by hand with TC3-HMAC-SHA256.

One request carries up to 200 numbers (``PhoneNumberSet``, E.164 with ``+86``) with the
same template; ``TemplateParamSet`` is the template's variables in order, taken from the
message's named params by ``SMS_TENCENT_TEMPLATES`` (``{"reminder": {"id": "1110",
"params": ["title", "time", "place"]}}``). Each number gets its own status in the answer
(``SendStatusSet``), mapped back to the messages by phone number.

Signing ("Signature v3", https://www.tencentcloud.com/document/product/382/40467; checked against its worked
example in the tests)::

    CanonicalRequest = "POST\\n/\\n\\ncontent-type:<ct>\\nhost:<host>\\n\\ncontent-type;host\\n" + hex(sha256(body))
    StringToSign     = "TC3-HMAC-SHA256\\n" + timestamp + "\\n" + date/sms/tc3_request + "\\n" + hex(sha256(CanonicalRequest))
    key              = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")
    Signature        = hex(HMAC-SHA256(key, StringToSign))          # date: the timestamp's UTC date

Idempotency: Tencent does not deduplicate sends. ``SessionContext`` (echoed in the answer
and in status callbacks, under 512 bytes) carries the delivery's id for one message; for a
batch it carries the ids comma-joined when they fit (18 ULIDs), else ``batch:`` and a
digest of them; each message's own key at Tencent is then its ``SerialNo`` (the callbacks'
``sid``), returned as ``provider_id``. ``ExtendCode`` is not used: it is an approved
reply-code suffix, not a free field.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from scheduler.channels.sms.base import (
    Clock,
    Reply,
    SmsMessage,
    SmsOutcome,
    allowlist_from,
    batch_key_of,
    every,
    json_setting,
    request,
    require,
    scrub,
    server_error,
    timeout_from,
)
from scheduler.util.http import Allowlist

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
DEFAULT_REGION = "ap-guangzhou"
VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
BATCH_SIZE = 200
SESSION_CONTEXT_MAX = 511
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def tc3_signature(secret_key: str, *, service: str, host: str, timestamp: int, payload: bytes,
                  content_type: str = CONTENT_TYPE) -> str:
    """The hex TC3-HMAC-SHA256 signature of a POST to ``/`` with ``payload``."""
    date = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")
    canonical_request = "\n".join([
        "POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
        hashlib.sha256(payload).hexdigest(),
    ])
    string_to_sign = "\n".join([
        "TC3-HMAC-SHA256", str(timestamp), f"{date}/{service}/tc3_request",
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(secret_id: str, secret_key: str, *, service: str, host: str, timestamp: int, payload: bytes,
                      content_type: str = CONTENT_TYPE) -> str:
    """The ``Authorization`` header."""
    date = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")
    signature = tc3_signature(secret_key, service=service, host=host, timestamp=timestamp, payload=payload,
                              content_type=content_type)
    return (f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={signature}")


def session_context(messages: list[SmsMessage]) -> str:
    """``SessionContext``: the id, the ids comma-joined, or ``batch:`` and a digest when they do not fit."""
    return batch_key_of(messages, SESSION_CONTEXT_MAX)


class TencentSms:
    """Tencent Cloud SMS."""

    name = "tencent"
    batch_size = BATCH_SIZE
    #: One TemplateParamSet for every number of a request: only identical texts share one.
    per_number_text = False

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        templates: Mapping[str, Mapping[str, Any]],
        *,
        region: str = DEFAULT_REGION,
        endpoint: str = DEFAULT_ENDPOINT,
        allowlist: Allowlist | None = None,
        timeout: float = 10.0,
        clock: Clock = time.time,
    ) -> None:
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.templates = {k: {"id": str(v["id"]), "params": [str(p) for p in v.get("params", [])]}
                          for k, v in templates.items()}
        self.region = region
        self.endpoint = endpoint
        self.host = urlsplit(endpoint).netloc
        self.allowlist = allowlist or Allowlist(frozenset(), ())
        self.timeout = timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"TencentSms(secret_id={self.secret_id!r}, sdk_app_id={self.sdk_app_id!r}, endpoint={self.endpoint!r})"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TencentSms:
        """Built from the ``SMS_TENCENT_*`` settings."""
        templates = json_setting(config, "SMS_TENCENT_TEMPLATES")
        ok = isinstance(templates, dict) and all(
            isinstance(v, dict) and v.get("id") and isinstance(v.get("params", []), list) for v in templates.values()
        )
        if not ok:
            raise ValueError('SMS: the setting SMS_TENCENT_TEMPLATES must map message types to '
                             '{"id": ..., "params": [...]}, e.g. {"reminder": {"id": "1110", "params": ["title", "time"]}}.')
        return cls(
            require(config, "SMS_TENCENT_SECRET_ID"),
            require(config, "SMS_TENCENT_SECRET_KEY"),
            require(config, "SMS_TENCENT_SDK_APP_ID"),
            require(config, "SMS_TENCENT_SIGN_NAME"),
            templates,
            region=str(config.get("SMS_TENCENT_REGION") or DEFAULT_REGION),
            endpoint=str(config.get("SMS_TENCENT_ENDPOINT") or DEFAULT_ENDPOINT),
            allowlist=allowlist_from(config),
            timeout=timeout_from(config),
        )

    # ------------------------------------------------------------ sending

    def send(self, messages: list[SmsMessage]) -> list[SmsOutcome]:
        """One ``SendSms`` per 200 messages."""
        if not messages:
            return []
        template = self.templates.get(messages[0].template)
        if template is None:
            return every(messages, "failed", f"No Tencent template is configured for {messages[0].template!r} "
                                             "(SMS_TENCENT_TEMPLATES).")
        missing = [p for p in template["params"] if p not in messages[0].params]
        if missing:
            return every(messages, "failed", f"The message lacks the template parameter(s) {', '.join(missing)}.")
        values = [str(messages[0].params[p]) for p in template["params"]]
        outcomes: list[SmsOutcome] = []
        for start in range(0, len(messages), self.batch_size):
            outcomes += self._send_chunk(messages[start:start + self.batch_size], template["id"], values)
        return outcomes

    def signed_request(self, body: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The payload and headers of one signed ``SendSms``."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self._clock())
        headers = {
            "Authorization": tc3_authorization(self.secret_id, self._secret_key, service=SERVICE, host=self.host,
                                               timestamp=timestamp, payload=payload),
            "Content-Type": CONTENT_TYPE,
            "X-TC-Action": "SendSms",
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }
        return payload, headers

    def _send_chunk(self, messages: list[SmsMessage], template_id: str, values: list[str]) -> list[SmsOutcome]:
        phones = list(dict.fromkeys(m.phone for m in messages))  # a number twice in one request would be texted twice
        if len(phones) < len(messages):
            return self._send_by_number(messages, template_id, values)
        body = {
            "PhoneNumberSet": phones,
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": template_id,
            "TemplateParamSet": values,
            "SessionContext": session_context(messages),
        }
        payload, headers = self.signed_request(body)
        reply = request("POST", self.endpoint, data=payload, headers=headers, timeout=self.timeout,
                        allowlist=self.allowlist)
        if isinstance(reply, tuple):
            return every(messages, reply[0], reply[1])
        return self._outcomes(reply, messages, template_id, values)

    def _send_by_number(self, messages: list[SmsMessage], template_id: str, values: list[str]) -> list[SmsOutcome]:
        """Requests without repeated numbers (the same number's messages go in separate requests)."""
        rounds: list[list[int]] = []
        seen: dict[str, int] = defaultdict(int)
        for i, m in enumerate(messages):
            k = seen[m.phone]
            seen[m.phone] += 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(i)
        found: dict[int, SmsOutcome] = {}
        for indexes in rounds:
            for i, outcome in zip(indexes, self._send_chunk([messages[i] for i in indexes], template_id, values)):
                found[i] = outcome
        return [found[i] for i in range(len(messages))]

    def _outcomes(self, reply: Reply, messages: list[SmsMessage], template_id: str, values: list[str]) -> list[SmsOutcome]:
        response = reply.json.get("Response") if isinstance(reply.json, dict) else None
        if not isinstance(response, dict):
            if reply.status >= 500:
                return server_error(reply, messages, "Tencent Cloud SMS")
            if 200 <= reply.status < 300:
                return every(messages, "unknown", f"Tencent Cloud SMS answered {reply.status} without a result: "
                                                  "the text may have been sent.")
            return every(messages, "failed", f"Tencent Cloud SMS answered HTTP {reply.status} without a result.")
        error = response.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            if len(messages) > 1 and code == "InvalidParameterValue.IncorrectPhoneNumber":
                # Refused as a whole for one number's sake: nothing went out; find it one by one.
                outcomes: list[SmsOutcome] = []
                for message_ in messages:
                    outcomes += self._send_chunk([message_], template_id, values)
                return outcomes
            return [self._outcome(m, code, str(error.get("Message", "")), None) for m in messages]
        statuses: dict[str, dict[str, Any]] = {}
        for status in response.get("SendStatusSet") or []:
            if isinstance(status, dict):
                statuses[_e164(str(status.get("PhoneNumber", "")))] = status
        outcomes = []
        for m in messages:
            status = statuses.get(m.phone)
            if status is None:
                outcomes.append(SmsOutcome(m.id, "unknown", "Tencent Cloud SMS accepted the request but gave no status "
                                                            "for this number: the text may have been sent."))
            else:
                outcomes.append(self._outcome(m, str(status.get("Code", "")), str(status.get("Message", "")),
                                              str(status.get("SerialNo") or "") or None))
        return outcomes

    def _outcome(self, m: SmsMessage, code: str, message: str, serial: str | None) -> SmsOutcome:
        if code == "Ok":
            return SmsOutcome(m.id, "sent", "", provider_id=serial)
        text = scrub(message)
        reason = f"Tencent Cloud SMS: {code}" + (f" ({text})" if text else "")
        if code == "InvalidParameterValue.IncorrectPhoneNumber":
            return SmsOutcome(m.id, "failed", reason, provider_id=serial, invalid_number=True)
        if code.startswith("LimitExceeded."):
            return SmsOutcome(m.id, "retry", reason, provider_id=serial, retry_after=self._wait(code))
        if code.startswith("RequestLimitExceeded"):
            return SmsOutcome(m.id, "retry", reason, retry_after=1.0)
        if code == "InternalError.Timeout":
            return SmsOutcome(m.id, "unknown", reason + ": the text may have been sent.", provider_id=serial)
        if code.startswith("InternalError") or code == "ResourceUnavailable" or code.startswith("ResourceUnavailable."):
            return SmsOutcome(m.id, "retry", reason)
        # AuthFailure.*, FailedOperation.* (blacklisted number, template, signature, balance), InvalidParameter*, ...
        return SmsOutcome(m.id, "failed", reason, provider_id=serial)

    def _wait(self, code: str) -> float:
        """How long a rate limit lasts: 30 s, an hour, or until the next local day."""
        if code.endswith("ThirtySecondLimit"):
            return 30.0
        if code.endswith("OneHourLimit"):
            return 3600.0
        if "Daily" in code:
            now = dt.datetime.fromtimestamp(self._clock(), _SHANGHAI)
            midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            return max(60.0, (midnight - now).total_seconds())
        return 60.0


def _e164(phone: str) -> str:
    """Tencent's ``PhoneNumber`` (``+86...``; also read as ``86...`` or 11 digits) as E.164."""
    phone = phone.strip()
    if phone.startswith("+"):
        return phone
    if phone.startswith("0086"):
        return "+" + phone[2:]
    if len(phone) == 11 and phone.startswith("1"):
        return "+86" + phone
    return "+" + phone
