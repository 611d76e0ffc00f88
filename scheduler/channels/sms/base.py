"""SMS providers behind one interface: a batch of texts in, one outcome per text out.

A provider knows one outside service (Alibaba Cloud SMS, Tencent Cloud SMS, a generic HTTP
gateway, or the console for development) and nothing of the database, the app or policy:
:meth:`SmsProvider.send` takes messages that share a template (and, unless the provider's
:attr:`~SmsProvider.per_number_text` is true, its parameters), so a provider may put several
numbers in one request, and says, per message, ``sent``,
``retry`` (nothing went out, or the provider asked us to come back later), ``failed``
(will not succeed by trying again) or ``unknown`` (the request went out and no answer
came: the text may have arrived, so it must never be re-sent blindly).

Build one from the application's settings with :func:`provider_from_config`
(``provider_from_config(app.config)``); :func:`settings` lists every provider's keys.
Providers take the ``OUTBOUND_ALLOWLIST`` from that mapping, so they work without an
application context. Full phone numbers and secrets never reach a log or a ``reason``.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from scheduler.util.http import (
    Allowlist,
    FetchError,
    FetchResult,
    NoAnswer,
    NotConnected,
    Redirected,
    UnsafeURL,
    check_url,
    safe_request,
)
from scheduler.util.phone import mask_phone

#: The message types a template exists for.
MESSAGE_TYPES = ("reminder", "cancellation", "change", "promotion", "stage", "verify")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class SmsMessage:
    """One text to one number."""

    #: The delivery's ULID: the idempotency key (Alibaba ``OutId``, Tencent ``SessionContext``, gateway ``{id}``).
    id: str
    #: E.164, e.g. ``+8613800138000``.
    phone: str
    #: The message type: ``reminder`` | ``cancellation`` | ``change`` | ``promotion``.
    template: str
    #: Named parameters, e.g. ``{"title": ..., "time": "6月22日 09:00", "place": ..., "meeting": ...}``.
    params: dict[str, str]
    #: The whole text as a person reads it, with the 【签名】 prefix (for providers that take text).
    text: str


@dataclass(frozen=True)
class SmsOutcome:
    """How sending one message went."""

    #: The :attr:`SmsMessage.id` it is about.
    id: str
    status: Literal["sent", "retry", "failed", "unknown"]
    #: Human-readable English; never the full phone number or a secret.
    reason: str = ""
    #: The provider's id for the text (Alibaba ``BizId``, Tencent ``SerialNo``, the gateway's id).
    provider_id: str | None = None
    #: Seconds, when the provider said when to come back (rate limits).
    retry_after: float | None = None
    #: The provider says the number is wrong or cannot receive texts (permanent).
    invalid_number: bool = False


class SmsProvider(Protocol):
    """One outside SMS service."""

    name: str
    #: The most numbers one request carries (1: no batching).
    batch_size: int
    #: True when one request may carry different parameters (a different text) per number, so that
    #: personalised texts (each with its own short link) go in one batch: Alibaba ``SendBatchSms``
    #: (``TemplateParamJson``, one object per number), a gateway whose body uses ``{messages}``, the
    #: console. False when a request shares one set of parameters across its numbers (Tencent
    #: ``SendSms``: ``TemplateParamSet``; a gateway's ``{phones}`` with one ``{text}``); a provider that
    #: does not say is taken as False.
    per_number_text: bool

    def send(self, messages: list[SmsMessage]) -> list[SmsOutcome]:
        """Send ``messages`` (all with the same template; with the same params too unless
        :attr:`per_number_text`): one outcome each, same order."""
        ...


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class Setting:
    """One configuration key a provider reads."""

    name: str
    description: str
    required: bool = False
    default: str | None = None
    secret: bool = False


_COMMON = (
    Setting("SMS_PROVIDER", "Which provider sends texts: console, aliyun, tencent or http.", default="console"),
    Setting("SMS_TIMEOUT", "Seconds the whole request to the provider may take (connect, send, headers and body); "
            "after it the outcome is 'unknown'. Unset: OUTBOUND_TIMEOUT."),
    Setting("OUTBOUND_ALLOWLIST", "Hosts and CIDR ranges outgoing requests may reach although not public "
            "(a list, or comma-separated); needed only for an intranet gateway or tests."),
)

_SETTINGS: dict[str, tuple[Setting, ...]] = {
    "console": (),
    "aliyun": (
        Setting("SMS_ALIYUN_ACCESS_KEY_ID", "AccessKey ID of a RAM user allowed dysms:SendSms and dysms:SendBatchSms.",
                required=True),
        Setting("SMS_ALIYUN_ACCESS_KEY_SECRET", "Its AccessKey secret.", required=True, secret=True),
        Setting("SMS_ALIYUN_SIGN_NAME", "The approved signature name (签名), without 【】.", required=True),
        Setting("SMS_ALIYUN_TEMPLATES", 'JSON object: message type -> approved template code, '
                'e.g. {"reminder": "SMS_123456789"}; the template\'s variables are the message\'s params by name.',
                required=True),
        Setting("SMS_ALIYUN_ENDPOINT", "The RPC endpoint.", default="https://dysmsapi.aliyuncs.com/"),
    ),
    "tencent": (
        Setting("SMS_TENCENT_SECRET_ID", "SecretId of a CAM user allowed sms:SendSms.", required=True),
        Setting("SMS_TENCENT_SECRET_KEY", "Its SecretKey.", required=True, secret=True),
        Setting("SMS_TENCENT_SDK_APP_ID", "The SMS application's SdkAppId (e.g. 1400006666).", required=True),
        Setting("SMS_TENCENT_SIGN_NAME", "The approved signature content (签名), without 【】.", required=True),
        Setting("SMS_TENCENT_TEMPLATES", 'JSON object: message type -> {"id": template id, "params": [names in the '
                'template\'s {1}, {2}, ... order]}, e.g. {"reminder": {"id": "1110", "params": ["title", "time", "place"]}}.',
                required=True),
        Setting("SMS_TENCENT_REGION", "X-TC-Region.", default="ap-guangzhou"),
        Setting("SMS_TENCENT_ENDPOINT", "The API endpoint.", default="https://sms.tencentcloudapi.com"),
    ),
    "http": (
        Setting("SMS_HTTP_URL", "The gateway's URL.", required=True),
        Setting("SMS_HTTP_METHOD", "HTTP method.", default="POST"),
        Setting("SMS_HTTP_BODY", "Body template; {phone}, {phones} (comma-joined, batches of one text), {text} and "
                "{id} (comma-joined ids in a batch) are replaced, escaped for the content type (JSON string content, "
                "or form-encoded); {messages} is replaced by a JSON array of {\"id\", \"phone\", \"text\"} objects, "
                "one per number (write it unquoted, e.g. {\"messages\": {messages}}): then one request carries a "
                "different text per number. Default: a JSON object with id, phone (phones when batching) and text."),
        Setting("SMS_HTTP_CONTENT_TYPE", "Content-Type of the body.", default="application/json"),
        Setting("SMS_HTTP_AUTH_HEADER", "One header sent with every request, e.g. 'Authorization: Bearer x'.", secret=True),
        Setting("SMS_HTTP_SUCCESS", "What success is: 'status=2xx', 'status=200', or 'json:<field>=<value>' "
                "(a dotted path in a 2xx JSON answer, e.g. json:code=0).", default="status=2xx"),
        Setting("SMS_HTTP_ID_FIELD", "Dotted path of the gateway's message id in its JSON answer (optional)."),
        Setting("SMS_HTTP_BATCH_SIZE", "Numbers per request; above 1 the body must use {phones} (one text for all) "
                "or {messages} (a text per number).", default="1"),
    ),
}


def batch_key_of(messages: list[SmsMessage], max_bytes: int) -> str:
    """The idempotency key a request carries: the id, the ids comma-joined, or ``batch:`` and a
    digest of them when they do not fit in ``max_bytes`` (Alibaba ``OutId``, Tencent ``SessionContext``)."""
    joined = ",".join(m.id for m in messages)
    if len(joined.encode()) <= max_bytes:
        return joined
    return "batch:" + hashlib.sha256(joined.encode()).hexdigest()


def settings() -> dict[str, tuple[Setting, ...]]:
    """Every configuration key, per provider (``"common"``: read by all of them)."""
    return {"common": _COMMON, **_SETTINGS}


def require(config: Mapping[str, Any], name: str) -> str:
    """The setting ``name`` as text; a :class:`ValueError` naming it when missing or empty."""
    value = config.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"SMS: the setting {name} is required for SMS_PROVIDER={config.get('SMS_PROVIDER')!r}.")
    return str(value).strip()


def json_setting(config: Mapping[str, Any], name: str) -> Any:
    """A setting holding JSON (or already a mapping); a :class:`ValueError` naming it when it is not valid."""
    value = config.get(name)
    if isinstance(value, Mapping):
        return dict(value)
    text = require(config, name)
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"SMS: the setting {name} is not valid JSON.") from None


def allowlist_from(config: Mapping[str, Any]) -> Allowlist:
    """``OUTBOUND_ALLOWLIST`` (a list or a comma-separated string) as an :class:`Allowlist`."""
    entries = config.get("OUTBOUND_ALLOWLIST") or []
    if isinstance(entries, str):
        entries = entries.split(",")
    return Allowlist.parse(entries)


def timeout_from(config: Mapping[str, Any]) -> float:
    """``SMS_TIMEOUT`` in seconds, or ``OUTBOUND_TIMEOUT`` when it is unset (the deadline of a whole request)."""
    name = "SMS_TIMEOUT" if config.get("SMS_TIMEOUT") not in (None, "") else "OUTBOUND_TIMEOUT"
    value = config.get(name)
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"SMS: the setting {name} must be a number of seconds.") from None
    if timeout <= 0:
        raise ValueError(f"SMS: the setting {name} must be positive.")
    return timeout


def provider_from_config(config: Mapping[str, Any]) -> SmsProvider:
    """The provider ``config["SMS_PROVIDER"]`` names (``console`` when unset), built from ``config``."""
    name = str(config.get("SMS_PROVIDER") or "console").strip().lower()
    if name == "console":
        from scheduler.channels.sms.console import ConsoleSms

        return ConsoleSms()
    if name == "aliyun":
        from scheduler.channels.sms.aliyun import AliyunSms

        return AliyunSms.from_config(config)
    if name == "tencent":
        from scheduler.channels.sms.tencent import TencentSms

        return TencentSms.from_config(config)
    if name == "http":
        from scheduler.channels.sms.http_gateway import HttpGatewaySms

        return HttpGatewaySms.from_config(config)
    raise ValueError(f"SMS: the setting SMS_PROVIDER is {name!r}; use console, aliyun, tencent or http.")


# ---------------------------------------------------------------- shared by the HTTP providers

_LONG_NUMBER = re.compile(r"\+?\d{7,}")


def scrub(text: str, limit: int = 300) -> str:
    """``text`` (a provider's message) shortened, with anything like a phone number masked."""

    def mask(match: re.Match[str]) -> str:
        digits = match.group().lstrip("+")
        return mask_phone("+" + digits) if len(digits) >= 11 else digits[:2] + "****" + digits[-2:]

    text = _LONG_NUMBER.sub(mask, " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def every(messages: list[SmsMessage], status: Literal["sent", "retry", "failed", "unknown"], reason: str,
          **extra: Any) -> list[SmsOutcome]:
    """The same outcome for each message."""
    return [SmsOutcome(m.id, status, reason, **extra) for m in messages]


@dataclass(frozen=True)
class Reply:
    """The provider's answer: its status and body (parsed JSON when it was JSON)."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    json: Any = None


def request(
    method: str, url: str, *, data: bytes, headers: Mapping[str, str], timeout: float, allowlist: Allowlist,
) -> Reply | tuple[Literal["retry", "failed", "unknown"], str]:
    """Send one request; the reply, or (status, reason) when there was none.

    The URL is checked (and its name resolved) before anything is sent, so a name that
    does not resolve is ``retry``; after that only :class:`NotConnected` (the request never
    left) is ``retry``: no answer, a broken answer or a TLS failure mid-way is ``unknown``.
    """
    try:
        check_url(url, allowlist)
    except UnsafeURL as exc:
        return "failed", f"The SMS endpoint is refused: {exc}"
    except FetchError as exc:
        return "retry", str(exc)
    try:
        result: FetchResult = safe_request(
            method, url, data=data, headers=headers, timeout=timeout, ok_statuses=range(100, 600),
            allowlist=allowlist, max_bytes=1024 * 1024,
        )
    except UnsafeURL as exc:
        return "failed", f"The SMS endpoint is refused: {exc}"
    except NotConnected as exc:
        return "retry", str(exc)
    except NoAnswer as exc:
        return "unknown", f"{exc} The text may have been sent; it is not sent again blindly."
    except Redirected as exc:
        return "failed", f"The SMS endpoint answered a redirect ({exc.status}); set the final address."
    except FetchError as exc:
        return "unknown", f"{exc} The text may have been sent; it is not sent again blindly."
    parsed = None
    try:
        parsed = json.loads(result.content.decode("utf-8")) if result.content else None
    except (UnicodeDecodeError, ValueError):
        parsed = None
    return Reply(result.status, result.content, result.headers, parsed)


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """A ``Retry-After`` given in seconds."""
    value = str(headers.get("Retry-After", "")).strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def server_error(reply: Reply, messages: list[SmsMessage], provider: str) -> list[SmsOutcome]:
    """A 5xx answer: ``retry``, except 504 (a gateway timed out: the service may have acted): ``unknown``."""
    if reply.status == 504:
        return every(messages, "unknown", f"{provider} answered 504 (gateway timeout): the text may have been sent.")
    return every(messages, "retry", f"{provider} answered HTTP {reply.status}.", retry_after=retry_after_header(reply.headers))


Clock = Callable[[], float]
