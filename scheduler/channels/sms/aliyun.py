"""Alibaba Cloud SMS (dysmsapi, API version 2017-05-25) over its RPC API, signed by hand.

One number goes with ``SendSms``; several numbers with the same template go with
``SendBatchSms`` (at most 100 numbers a call: PhoneNumberJson, SignNameJson and
TemplateParamJson, one entry per number in the same order: the signature repeated, and each
message's own parameters, so texts that differ per number, e.g. by their personal short
link, share a request: ``per_number_text`` is true). Parameters go
as a POST form, signed with signature version 1.0 (HMAC-SHA1)::

    StringToSign = "POST&%2F&" + percentEncode(canonicalized query)   # sorted, RFC 3986-encoded
    Signature    = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))

(https://help.aliyun.com/document_detail/101343.htm, checked against its worked example in
the tests). Domestic numbers go without +86 (``13800138000``); others as country code and
number without the ``+``.

Idempotency: Alibaba does not deduplicate (its SendSms/SendBatchSms pages say so), so the
delivery's id goes in ``OutId`` (echoed in delivery receipts) for one message; for a batch
``OutId`` carries the ids comma-joined when they fit its 256 characters (9 ULIDs), else
``batch:`` and a digest of them; each message's outcome carries the batch's ``BizId``.
A batch is all-or-nothing at Alibaba: when it is refused for one number's sake (an invalid
or rate-limited number), nothing was sent, so each message is then sent alone to learn which.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

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

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
VERSION = "2017-05-25"
BATCH_SIZE = 100
OUT_ID_MAX = 255
RATE_LIMIT_WAIT = 60.0

#: Codes about one number: in a batch they say nothing of the others, so the batch is split.
_PER_NUMBER = {"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL", "isv.BLACK_KEY_CONTROL_LIMIT"}
_INVALID_NUMBER = {"isv.MOBILE_NUMBER_ILLEGAL"}
_RATE_LIMITED = {"isv.BUSINESS_LIMIT_CONTROL"}
#: Account-wide caps set in the console: come back later.
_ACCOUNT_CAPS = {"isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL"}
_TRANSIENT = {"ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR", "SignatureNonceUsed"}


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 (``A-Za-z0-9-_.~`` kept; space is ``%20``, ``*`` is ``%2A``)."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The parameters (without ``Signature``) sorted by name, encoded and joined."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )


def rpc_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Signature version 1.0 of an RPC request's parameters."""
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def national(phone: str) -> str:
    """The number as Alibaba takes it: 11 digits for +86, else country code and number."""
    if phone.startswith("+86"):
        return phone[3:]
    return phone.lstrip("+")


def out_id(messages: list[SmsMessage]) -> str:
    """``OutId``: the id, the ids comma-joined, or ``batch:`` and a digest when they do not fit."""
    return batch_key_of(messages, OUT_ID_MAX)


class AliyunSms:
    """Alibaba Cloud SMS."""

    name = "aliyun"
    batch_size = BATCH_SIZE
    #: ``TemplateParamJson`` holds one parameters object per number.
    per_number_text = True

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        templates: Mapping[str, str],
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        allowlist: Allowlist | None = None,
        timeout: float = 10.0,
        clock: Clock = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.endpoint = endpoint
        self.allowlist = allowlist or Allowlist(frozenset(), ())
        self.timeout = timeout
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        return f"AliyunSms(access_key_id={self.access_key_id!r}, sign_name={self.sign_name!r}, endpoint={self.endpoint!r})"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AliyunSms:
        """Built from the ``SMS_ALIYUN_*`` settings."""
        templates = json_setting(config, "SMS_ALIYUN_TEMPLATES")
        if not isinstance(templates, dict) or not all(isinstance(v, str) and v for v in templates.values()):
            raise ValueError('SMS: the setting SMS_ALIYUN_TEMPLATES must map message types to template codes, '
                             'e.g. {"reminder": "SMS_123456789"}.')
        return cls(
            require(config, "SMS_ALIYUN_ACCESS_KEY_ID"),
            require(config, "SMS_ALIYUN_ACCESS_KEY_SECRET"),
            require(config, "SMS_ALIYUN_SIGN_NAME"),
            templates,
            endpoint=str(config.get("SMS_ALIYUN_ENDPOINT") or DEFAULT_ENDPOINT),
            allowlist=allowlist_from(config),
            timeout=timeout_from(config),
        )

    # ------------------------------------------------------------ sending

    def send(self, messages: list[SmsMessage]) -> list[SmsOutcome]:
        """``SendSms`` for one message, ``SendBatchSms`` (by 100) for several."""
        if not messages:
            return []
        code = self.templates.get(messages[0].template)
        if not code:
            return every(messages, "failed", f"No Alibaba template code is configured for {messages[0].template!r} "
                                             "(SMS_ALIYUN_TEMPLATES).")
        outcomes: list[SmsOutcome] = []
        for start in range(0, len(messages), self.batch_size):
            outcomes += self._send_chunk(messages[start:start + self.batch_size], code)
        return outcomes

    def _send_chunk(self, messages: list[SmsMessage], code: str) -> list[SmsOutcome]:
        params = [json.dumps(m.params, ensure_ascii=False, separators=(",", ":")) for m in messages]
        if len(messages) == 1:
            fields = {
                "Action": "SendSms",
                "PhoneNumbers": national(messages[0].phone),
                "SignName": self.sign_name,
                "TemplateCode": code,
                "TemplateParam": params[0],
                "OutId": out_id(messages),
            }
        else:
            n = len(messages)
            fields = {
                "Action": "SendBatchSms",
                "PhoneNumberJson": json.dumps([national(m.phone) for m in messages]),
                "SignNameJson": json.dumps([self.sign_name] * n, ensure_ascii=False),
                "TemplateCode": code,
                "TemplateParamJson": "[" + ",".join(params) + "]",  # each number's own, in order
                "OutId": out_id(messages),
            }
        reply = self._call(fields)
        if isinstance(reply, tuple):
            return every(messages, reply[0], reply[1])
        return self._outcomes(reply, messages, code)

    def signed_form(self, fields: Mapping[str, str]) -> bytes:
        """The POST body: ``fields`` with the common parameters and the signature."""
        params = {
            "AccessKeyId": self.access_key_id,
            "Format": "JSON",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
            "Version": VERSION,
            **fields,
        }
        signature = rpc_signature(params, self._secret, "POST")
        return (canonical_query(params) + "&Signature=" + percent_encode(signature)).encode("ascii")

    def _call(self, fields: Mapping[str, str]) -> Reply | tuple[Any, str]:
        return request(
            "POST", self.endpoint, data=self.signed_form(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            timeout=self.timeout, allowlist=self.allowlist,
        )

    def _outcomes(self, reply: Reply, messages: list[SmsMessage], code: str) -> list[SmsOutcome]:
        body = reply.json if isinstance(reply.json, dict) else None
        if body is None or "Code" not in body:
            if reply.status >= 500:
                return server_error(reply, messages, "Alibaba Cloud SMS")
            if 200 <= reply.status < 300:
                return every(messages, "unknown", f"Alibaba Cloud SMS answered {reply.status} without a result code: "
                                                  "the text may have been sent.")
            return every(messages, "failed", f"Alibaba Cloud SMS answered HTTP {reply.status} without a result code.")
        result = str(body.get("Code"))
        message = scrub(str(body.get("Message", "")))
        if result == "OK":
            return every(messages, "sent", "", provider_id=str(body.get("BizId") or "") or None)
        if len(messages) > 1 and result in _PER_NUMBER:
            # The batch was refused as a whole: nothing went out; find the number(s) one by one.
            outcomes: list[SmsOutcome] = []
            for message_ in messages:
                outcomes += self._send_chunk([message_], code)
            return outcomes
        reason = f"Alibaba Cloud SMS: {result}" + (f" ({message})" if message else "")
        if result in _INVALID_NUMBER:
            return every(messages, "failed", reason, invalid_number=True)
        if result in _RATE_LIMITED:
            return every(messages, "retry", reason, retry_after=RATE_LIMIT_WAIT)
        if result in _ACCOUNT_CAPS:
            return every(messages, "retry", reason, retry_after=3600.0)
        if result.startswith("Throttling"):
            return every(messages, "retry", reason, retry_after=1.0)
        if result in _TRANSIENT or reply.status >= 500:
            return every(messages, "retry", reason)
        # isv.* (template, signature, account), SignatureDoesNotMatch, InvalidAccessKeyId.*, Forbidden.*, ...
        return every(messages, "failed", reason)
