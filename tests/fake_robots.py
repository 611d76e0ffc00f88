"""Fake WeCom, DingTalk and Feishu robots: one HTTP/1.1 server on 127.0.0.1 checking requests as each platform does.

Paths are the platforms' own, so the channel builds real-looking URLs on the fake's port:

* ``POST /cgi-bin/webhook/send?key=KEY`` (WeCom): the key must be a robot's; the JSON must be
  ``{"msgtype": "markdown", "markdown": {"content": str}}`` with content <= 4096 UTF-8 bytes.
  Unknown key → ``{"errcode": 93000, "errmsg": "invalid webhook url, ..."}``.
* ``POST /robot/send?access_token=TOKEN[&timestamp=&sign=]`` (DingTalk): unknown token → 300001;
  a robot with a secret needs ``timestamp`` (ms) within one hour of the fake's wall clock and
  ``sign`` equal to base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), recomputed here from
  the query (310000 "invalid timestamp" / "sign not match" otherwise); the JSON must be
  ``{"msgtype": "markdown", "markdown": {"title": str, "text": str}}``.
* ``POST /open-apis/bot/v2/hook/TOKEN`` (Feishu): unknown token → 19001; a bot with a secret
  needs ``timestamp`` (s, within one hour) and ``sign`` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}",
  msg=b"")) in the body (19021 otherwise); body <= 20 KB (9499 "Bad Request" otherwise); the
  message must be an ``interactive`` card or a ``post``/``text`` with its content.

The signature checks are written here independently of :mod:`scheduler.channels.robots`. A
request that fails a check is recorded in :attr:`FakeRobots.rejected` with the platform's
answer; an accepted one in :attr:`FakeRobots.messages` (before it is answered). Tests script
answers for the next requests with :meth:`FakeRobots.respond` (``Answer(status, json)``;
the request is still recorded).
"""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Answer", "FakeRobots", "Received", "WECOM_OK", "DINGTALK_OK", "FEISHU_OK"]

WECOM_OK = {"errcode": 0, "errmsg": "ok"}
DINGTALK_OK = {"errcode": 0, "errmsg": "ok"}
FEISHU_OK = {"code": 0, "msg": "success", "data": {}, "Extra": None, "StatusCode": 0, "StatusMessage": "success"}
#: Real answers, for scripting (as the platforms word them).
_WECOM_MORE = "more info at https://open.work.weixin.qq.com/devtool/query?e="
WECOM_RATE_LIMITED = {"errcode": 45009, "errmsg": f"api freq out of limit, {_WECOM_MORE}45009"}
WECOM_INVALID_URL = {"errcode": 93000, "errmsg": f"invalid webhook url, {_WECOM_MORE}93000"}
DINGTALK_TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
DINGTALK_SIGN = {"errcode": 310000, "errmsg": "sign not match"}
DINGTALK_KEYWORDS = {"errcode": 310000, "errmsg": "keywords not in content"}
DINGTALK_NO_TOKEN = {"errcode": 300001, "errmsg": "token is not exist"}
FEISHU_LIMITED = {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]", "data": {}}
FEISHU_SIGN = {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time", "data": {}}
FEISHU_INVALID = {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}}
FEISHU_BAD_REQUEST = {"code": 9499, "msg": "Bad Request", "data": {}}

ONE_HOUR = 3600
WECOM_MAX_CONTENT = 4096
FEISHU_MAX_BODY = 20 * 1024


@dataclass(frozen=True)
class Answer:
    """A scripted answer: HTTP status and JSON body (``None``: an empty body)."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One request as the robot saw it."""

    robot: str  # wecom | dingtalk | feishu
    token: str
    path: str
    query: dict[str, str]
    body: Any
    raw: bytes
    answer: dict[str, Any] | None
    status: int


class FakeRobots:
    """The three fake robots; ``with FakeRobots() as robots: robots.wecom_url("key")``."""

    def __init__(self, clock_skew: float = 0.0) -> None:
        #: Robots by platform: token → secret ("" for none).
        self.robots: dict[str, dict[str, str]] = {"wecom": {}, "dingtalk": {}, "feishu": {}}
        self.messages: list[Received] = []
        self.rejected: list[Received] = []
        self.clock_skew = clock_skew
        self._script: collections.deque[Answer] = collections.deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer, headers = fake._handle(self.path, raw, {k.lower(): v for k, v in self.headers.items()})
                data = json.dumps(answer, ensure_ascii=False).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ----------------------------------------------------------------- set-up

    def __enter__(self) -> FakeRobots:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, robot: str, token: str, secret: str = "") -> str:
        """Register a robot; returns its webhook URL on this fake."""
        self.robots[robot][token] = secret
        return self.url(robot, token)

    def url(self, robot: str, token: str) -> str:
        """The webhook URL of ``token`` on ``robot`` (registered or not)."""
        base = f"http://127.0.0.1:{self.port}"
        return {
            "wecom": f"{base}/cgi-bin/webhook/send?key={token}",
            "dingtalk": f"{base}/robot/send?access_token={token}",
            "feishu": f"{base}/open-apis/bot/v2/hook/{token}",
        }[robot]

    def respond(self, *answers: Answer) -> None:
        """Answer the next requests so (after checking them), then the checks' answers again."""
        self._script.extend(answers)

    def contents(self, robot: str | None = None) -> Iterator[str]:
        """The markdown text of each accepted message."""
        for message in self.messages:
            if robot is None or message.robot == robot:
                yield markdown_of(message)

    # ----------------------------------------------------------------- checks

    def _now(self) -> float:
        return time.time() + self.clock_skew

    def _handle(self, target: str, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if parts.path == "/cgi-bin/webhook/send":
            robot, token = "wecom", query.get("key", "")
            refusal = self._check_wecom(token, raw)
        elif parts.path == "/robot/send":
            robot, token = "dingtalk", query.get("access_token", "")
            refusal = self._check_dingtalk(token, query, raw)
        elif parts.path.startswith("/open-apis/bot/v2/hook/"):
            robot, token = "feishu", parts.path.rsplit("/", 1)[1]
            refusal = self._check_feishu(token, raw)
        else:
            return 404, {"code": 404, "msg": "not found"}, {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        with self._lock:
            if refusal is not None:
                self.rejected.append(Received(robot, token, parts.path, query, body, raw, refusal, 200))
                return 200, refusal, {}
            scripted = self._script.popleft() if self._script else None
            ok = {"wecom": WECOM_OK, "dingtalk": DINGTALK_OK, "feishu": FEISHU_OK}[robot]
            status, answer, extra = (scripted.status, scripted.body, scripted.headers) if scripted else (200, ok, {})
            self.messages.append(Received(robot, token, parts.path, query, body, raw, answer, status))
        return status, answer, extra

    def _check_wecom(self, key: str, raw: bytes) -> dict[str, Any] | None:
        if key not in self.robots["wecom"]:
            return WECOM_INVALID_URL
        body = _json_or_none(raw)
        markdown = body.get("markdown") if isinstance(body, dict) else None
        if not (isinstance(body, dict) and body.get("msgtype") == "markdown" and isinstance(markdown, dict)
                and isinstance(markdown.get("content"), str) and markdown["content"]):
            return {"errcode": 40008, "errmsg": "invalid message type (fake: expected a markdown message)"}
        if len(markdown["content"].encode("utf-8")) > WECOM_MAX_CONTENT:
            return {"errcode": 40058, "errmsg": "markdown.content exceed max length 4096 (fake)"}
        return None

    def _check_dingtalk(self, token: str, query: dict[str, str], raw: bytes) -> dict[str, Any] | None:
        if token not in self.robots["dingtalk"]:
            return DINGTALK_NO_TOKEN
        secret = self.robots["dingtalk"][token]
        if secret:
            stamp = query.get("timestamp", "")
            if not stamp.isdigit() or abs(int(stamp) / 1000 - self._now()) > ONE_HOUR:
                return {"errcode": 310000, "errmsg": "invalid timestamp"}
            expected = base64.b64encode(
                hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
            ).decode()
            if not hmac.compare_digest(query.get("sign", ""), expected):
                return DINGTALK_SIGN
        body = _json_or_none(raw)
        markdown = body.get("markdown") if isinstance(body, dict) else None
        if not (isinstance(body, dict) and body.get("msgtype") == "markdown" and isinstance(markdown, dict)
                and isinstance(markdown.get("title"), str) and isinstance(markdown.get("text"), str) and markdown["text"]):
            return {"errcode": 40035, "errmsg": "缺少参数 markdown (fake)"}
        return None

    def _check_feishu(self, token: str, raw: bytes) -> dict[str, Any] | None:
        if token not in self.robots["feishu"]:
            return FEISHU_INVALID
        if len(raw) > FEISHU_MAX_BODY:
            return FEISHU_BAD_REQUEST
        body = _json_or_none(raw)
        if not isinstance(body, dict):
            return FEISHU_BAD_REQUEST
        secret = self.robots["feishu"][token]
        if secret:
            stamp = str(body.get("timestamp", ""))
            if not stamp.isdigit() or abs(int(stamp) - self._now()) > ONE_HOUR:
                return FEISHU_SIGN
            expected = base64.b64encode(hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(str(body.get("sign", "")), expected):
                return FEISHU_SIGN
        if "msg_type" not in body:
            return {"code": 19002, "msg": "params error, msg_type need", "data": {}}
        if body["msg_type"] == "interactive":
            card = body.get("card")
            if not (isinstance(card, dict) and isinstance(card.get("elements"), list) and card["elements"]):
                return {"code": 19002, "msg": "params error, unknown card value (fake)", "data": {}}
        elif body["msg_type"] in ("post", "text"):
            if not isinstance(body.get("content"), dict):
                return {"code": 19002, "msg": "params error, content need (fake)", "data": {}}
        else:
            return {"code": 19002, "msg": "params error, msg_type unknown (fake)", "data": {}}
        return None


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def markdown_of(message: Received) -> str:
    """The markdown a message carried, whichever robot it went to."""
    body = message.body or {}
    if message.robot == "wecom":
        return body["markdown"]["content"]
    if message.robot == "dingtalk":
        return body["markdown"]["text"]
    return "\n".join(e["text"]["content"] for e in body["card"]["elements"] if e.get("tag") == "div")
