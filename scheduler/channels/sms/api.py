"""SMS endpoints: the providers' reply callback (``TD`` stops texts) and the text preview."""
from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, request
from pydantic import Field

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import NotFound
from scheduler.api.schemas import Body, Out
from scheduler.auth.permissions import require_user
from scheduler.channels.sms.choices import is_stop_reply, record_choice
from scheduler.channels.sms.templates import MAX_CHARS, PARAMS, TEMPLATES, render
from scheduler.extensions import db
from scheduler.util.phone import InvalidPhone, normalize_phone


class RepliesOut(Out):
    """What the callback did, in the shapes Alibaba (``code``) and Tencent (``result``) expect."""

    code: int = 0
    msg: str = "成功"
    result: int = 0
    errmsg: str = "OK"
    stopped: int = Field(0, description="Numbers that asked for no more texts.")


def _replies(document: Any) -> list[tuple[str, str]]:
    """(phone, text) pairs from Alibaba's (``phone_number``, ``content``), Tencent's (``mobile``, ``text``,
    ``nationcode``) or a plain (``phone``, ``text``) callback, one object or a list."""
    items = document if isinstance(document, list) else [document]
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        phone = item.get("phone_number") or item.get("mobile") or item.get("phone")
        text = item.get("content") or item.get("text") or ""
        if item.get("nationcode") and phone and not str(phone).startswith("+"):
            phone = f"+{item['nationcode']}{phone}"
        if isinstance(phone, (str, int)) and isinstance(text, str):
            found.append((str(phone), text))
    return found


@endpoint(bp, "/sms/replies/<token>", "POST", summary="Replies to our texts (provider callback)", tag="sms",
          response=RepliesOut, auth="none")
def sms_replies(token: str) -> RepliesOut:
    """Configure the provider to push replies (上行短信) here, with ``SMS_REPLY_TOKEN`` as the last part of
    the path. A reply of ``TD``, ``T``, ``R`` (or ``退订``) stops every text to that number, recorded with
    the time and the reply."""
    expected = current_app.config.get("SMS_REPLY_TOKEN") or ""
    if not expected or not hmac.compare_digest(token, expected):
        raise NotFound("No such callback.")
    stopped = 0
    for raw_phone, text in _replies(request.get_json(silent=True, force=True)):
        if not is_stop_reply(text):
            continue
        try:
            phone = normalize_phone(raw_phone)
        except InvalidPhone:
            continue
        record_choice(phone, True, "reply", detail=text.strip()[:20])
        stopped += 1
    db.session.commit()
    return RepliesOut(stopped=stopped)


class PreviewBody(Body):
    """The parameters of a text, as the organizer's form has them."""

    type: str = Field("reminder", description="reminder, cancellation, change or promotion.", pattern="^(reminder|cancellation|change|promotion)$")
    params: dict[str, str] = Field(default_factory=dict, description="title, time, place, meeting, reason, change, link.")


class PreviewOut(Out):
    """The text as people will get it."""

    text: str
    characters: int
    segments: int
    shortened: bool
    template: str


@endpoint(bp, "/sms/preview", "POST", summary="Preview a text and its SMS segments", tag="sms", body=PreviewBody, response=PreviewOut)
def sms_preview(body: PreviewBody) -> PreviewOut:
    """The approved template filled in, shortened on a field if too long, with its length in billed segments."""
    require_user(api_user())
    params = {name: value for name, value in body.params.items() if name in PARAMS[body.type]}
    params.setdefault("link", current_app.config["BASE_URL"] + "/m/xxxxxx")
    rendered = render(body.type, params, sign=current_app.config.get("SMS_SIGN_NAME") or "江门科技", max_chars=MAX_CHARS)
    return PreviewOut(text=rendered.text, characters=len(rendered.text), segments=rendered.segments,
                      shortened=rendered.params != {n: params.get(n, "") for n in PARAMS[body.type]}, template=TEMPLATES[body.type])
