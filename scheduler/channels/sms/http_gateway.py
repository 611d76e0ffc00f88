"""A generic HTTP SMS gateway: the whole text (with its 【签名】) goes to a URL in a body we fill in.

``SMS_HTTP_BODY`` is a template in which ``{phone}``, ``{phones}`` (comma-joined, for
batches of one text), ``{text}`` and ``{id}`` (the delivery's id: the idempotency key;
comma-joined in a batch) are replaced; other braces are left alone, so a JSON body is written
as it is. Values are escaped for the content type: as JSON string content for ``*json``,
form-encoded for ``application/x-www-form-urlencoded``, as they are otherwise. Numbers are E.164.

``{messages}`` is replaced by a JSON array with one ``{"id", "phone", "text"}`` object per
message, in order (each text JSON-escaped; the array itself form-encoded for a form body);
write it unquoted, e.g. ``{"batch": {messages}}``. A body using it carries a different text
per number in one request (``per_number_text``), so personalised texts (each with its own
short link) are batched; with ``{phones}`` a request carries one ``{text}``, and only texts
with the same wording share it. ``{text}`` cannot be used with ``{messages}``.

Success is ``SMS_HTTP_SUCCESS``: ``status=2xx`` (default), ``status=200``, or
``json:code=0`` (a dotted path in a 2xx JSON answer). A 429 or 5xx answer is ``retry``
(504, a gateway timeout, is ``unknown``), other answers ``failed``; no answer ``unknown``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from scheduler.channels.sms.base import (
    Reply,
    SmsMessage,
    SmsOutcome,
    allowlist_from,
    every,
    request,
    require,
    retry_after_header,
    scrub,
    server_error,
    timeout_from,
)
from scheduler.util.http import Allowlist

DEFAULT_BODY = '{"id": "{id}", "phone": "{phone}", "text": "{text}"}'
DEFAULT_BATCH_BODY = '{"id": "{id}", "phones": "{phones}", "text": "{text}"}'
_PLACEHOLDER = re.compile(r"\{(phone|phones|text|id|messages)\}")
_MISSING = object()


def _path(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _same(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == expected.lower()
    return str(value) == expected


class HttpGatewaySms:
    """A gateway that takes the text."""

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        body: str | None = None,
        content_type: str = "application/json",
        auth_header: str | None = None,
        success: str = "status=2xx",
        id_field: str | None = None,
        batch_size: int = 1,
        allowlist: Allowlist | None = None,
        timeout: float = 10.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("SMS: the setting SMS_HTTP_BATCH_SIZE must be at least 1.")
        self.url = url
        self.method = method.upper()
        self.batch_size = batch_size
        self.body = body or (DEFAULT_BATCH_BODY if batch_size > 1 else DEFAULT_BODY)
        #: One request may carry a different text per number: the body uses ``{messages}``.
        self.per_number_text = "{messages}" in self.body
        if self.per_number_text and "{text}" in self.body:
            raise ValueError("SMS: SMS_HTTP_BODY cannot use {text} with {messages} (each message carries its own text).")
        if batch_size > 1 and "{phones}" not in self.body and not self.per_number_text:
            raise ValueError("SMS: with SMS_HTTP_BATCH_SIZE above 1, SMS_HTTP_BODY must use {phones} or {messages}.")
        if batch_size == 1 and "{phone}" not in self.body and "{phones}" not in self.body and not self.per_number_text:
            raise ValueError("SMS: the setting SMS_HTTP_BODY must use {phone} (or {phones}, or {messages}).")
        self.content_type = content_type
        self._headers = {"Content-Type": content_type, "Accept": "application/json, */*"}
        if auth_header:
            name, sep, value = auth_header.partition(":")
            if not sep or not name.strip() or not value.strip():
                raise ValueError("SMS: the setting SMS_HTTP_AUTH_HEADER must look like 'Authorization: Bearer x'.")
            self._headers[name.strip()] = value.strip()
        self._status_rule, self._json_rule = self._parse_success(success)
        self.id_field = id_field
        self.allowlist = allowlist or Allowlist(frozenset(), ())
        self.timeout = timeout

    def __repr__(self) -> str:
        return (f"HttpGatewaySms(url={self.url!r}, batch_size={self.batch_size}, "
                f"per_number_text={self.per_number_text})")

    @staticmethod
    def _parse_success(rule: str) -> tuple[str, tuple[str, str] | None]:
        rule = rule.strip()
        if rule.startswith("json:"):
            path, sep, value = rule[5:].partition("=")
            if not sep or not path:
                raise ValueError("SMS: the setting SMS_HTTP_SUCCESS must look like 'json:code=0'.")
            return "2xx", (path.strip(), value.strip())
        if rule.startswith("status="):
            status = rule[7:].strip().lower()
            if status == "2xx" or (status.isdigit() and 200 <= int(status) < 300):
                return status, None
        raise ValueError("SMS: the setting SMS_HTTP_SUCCESS must be 'status=2xx', 'status=<2xx code>' or 'json:<field>=<value>'.")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpGatewaySms:
        """Built from the ``SMS_HTTP_*`` settings."""
        try:
            batch_size = int(config.get("SMS_HTTP_BATCH_SIZE") or 1)
        except (TypeError, ValueError):
            raise ValueError("SMS: the setting SMS_HTTP_BATCH_SIZE must be a whole number.") from None
        return cls(
            require(config, "SMS_HTTP_URL"),
            method=str(config.get("SMS_HTTP_METHOD") or "POST"),
            body=config.get("SMS_HTTP_BODY") or None,
            content_type=str(config.get("SMS_HTTP_CONTENT_TYPE") or "application/json"),
            auth_header=config.get("SMS_HTTP_AUTH_HEADER") or None,
            success=str(config.get("SMS_HTTP_SUCCESS") or "status=2xx"),
            id_field=config.get("SMS_HTTP_ID_FIELD") or None,
            batch_size=batch_size,
            allowlist=allowlist_from(config),
            timeout=timeout_from(config),
        )

    # ------------------------------------------------------------ sending

    def render(self, messages: list[SmsMessage]) -> bytes:
        """The body for ``messages`` (one, a batch with the same text, or with ``{messages}`` any batch)."""
        phones = ",".join(m.phone for m in messages)
        values = {"phone": phones, "phones": phones, "text": messages[0].text, "id": ",".join(m.id for m in messages)}
        ct = self.content_type.split(";")[0].strip().lower()
        if ct.endswith("json"):
            escape = lambda v: json.dumps(v, ensure_ascii=False)[1:-1]  # noqa: E731
        elif ct == "application/x-www-form-urlencoded":
            escape = quote_plus
        else:
            escape = str
        listed = ""
        if self.per_number_text:  # a JSON value, not string content: inserted as it is (form-encoded for a form)
            listed = json.dumps([{"id": m.id, "phone": m.phone, "text": m.text} for m in messages], ensure_ascii=False,
                                separators=(",", ":"))
            if ct == "application/x-www-form-urlencoded":
                listed = quote_plus(listed)

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return listed if name == "messages" else escape(values[name])

        return _PLACEHOLDER.sub(fill, self.body).encode("utf-8")

    def send(self, messages: list[SmsMessage]) -> list[SmsOutcome]:
        """Batches of at most ``batch_size`` messages (with ``{phones}``: of the same text)."""
        outcomes: list[SmsOutcome] = []
        start = 0
        while start < len(messages):
            chunk = [messages[start]]
            while (len(chunk) < self.batch_size and start + len(chunk) < len(messages)
                   and (self.per_number_text or messages[start + len(chunk)].text == chunk[0].text)):
                chunk.append(messages[start + len(chunk)])
            outcomes += self._send_chunk(chunk)
            start += len(chunk)
        return outcomes

    def _send_chunk(self, messages: list[SmsMessage]) -> list[SmsOutcome]:
        reply = request(self.method, self.url, data=self.render(messages), headers=self._headers,
                        timeout=self.timeout, allowlist=self.allowlist)
        if isinstance(reply, tuple):
            return every(messages, reply[0], reply[1])
        return self._outcomes(reply, messages)

    def _outcomes(self, reply: Reply, messages: list[SmsMessage]) -> list[SmsOutcome]:
        if reply.status == 429:
            return every(messages, "retry", "The SMS gateway answered 429 (too many requests).",
                         retry_after=retry_after_header(reply.headers) or 60.0)
        if reply.status >= 500:
            return server_error(reply, messages, "The SMS gateway")
        said = self._said(reply)
        ok = 200 <= reply.status < 300 and (self._status_rule == "2xx" or str(reply.status) == self._status_rule)
        if ok and self._json_rule is not None:
            path, expected = self._json_rule
            value = _path(reply.json, path)
            ok = value is not _MISSING and _same(value, expected)
            if not ok:
                return every(messages, "failed", f"The SMS gateway refused the text: {path}="
                             f"{'(missing)' if value is _MISSING else scrub(str(value), 40)}" + (f" ({said})" if said else ""))
        if not ok:
            return every(messages, "failed", f"The SMS gateway answered HTTP {reply.status}" + (f" ({said})" if said else "") + ".")
        provider_id = None
        if self.id_field:
            value = _path(reply.json, self.id_field)
            provider_id = None if value is _MISSING or value is None else str(value)
        return every(messages, "sent", "", provider_id=provider_id)

    @staticmethod
    def _said(reply: Reply) -> str:
        if isinstance(reply.json, dict):
            for key in ("message", "msg", "error", "errmsg", "Message"):
                if reply.json.get(key):
                    return scrub(str(reply.json[key]), 200)
        return ""
