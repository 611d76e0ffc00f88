"""A real webhook receiver for tests and benchmarks: an HTTP/1.1 server on 127.0.0.1.

It checks every request's Standard Webhooks signature with
``standardwebhooks.Webhook(secret).verify(body, headers)`` against the secrets it was
given: a request no secret verifies is recorded in :attr:`Receiver.rejected` and
answered 401, never accepted silently. It answers what a test tells it to::

    with Receiver(secrets=[endpoint.secret]) as receiver:
        receiver.respond(500, Answer(503, {"Retry-After": "60"}), 410)  # then 204 again
        receiver.always(500)                                               # until told otherwise
        receiver.respond(410, path="/b")        # only requests to /b (one receiver, many endpoints)
        receiver.down() ... receiver.up()     # connections refused, then back on the same port
        receiver.messages[0].id, .body, .headers, .path, .at (the app's clock), .wall

``Receiver(fast=True)`` keeps no messages, only counts (``count``, ``ids``: deliveries per
``webhook-id``, so duplicates show), still verifies every signature, and answers 204:
for multi-process tests and benchmarks. :meth:`wait_for` waits (bounded) until a number of
messages arrived, for senders in other threads or processes; tests that send with
``run_once()`` never need it, since a message is recorded before it is answered.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from scheduler.util.time import now

__all__ = ["Answer", "Received", "Receiver", "Rejected"]


@dataclass(frozen=True)
class Answer:
    """What the receiver answers to one request (``Location``/``Retry-After`` go in ``headers``)."""

    status: int = 204
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One request whose signature verified."""

    id: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON
    raw: bytes
    #: The secrets (of those given) whose signature the request carried.
    verified_with: tuple[str, ...]
    #: What it was answered.
    status: int
    #: When it arrived: on the application's (injectable) clock, and the wall clock.
    at: dt.datetime
    wall: float

    @property
    def signatures(self) -> list[str]:
        """The ``webhook-signature`` header's entries (``v1,...``)."""
        return self.headers.get("webhook-signature", "").split()


@dataclass(frozen=True)
class Rejected:
    """A request no given secret verified (answered 401)."""

    path: str
    headers: dict[str, str]
    raw: bytes
    error: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut every open (kept-alive) connection, as a receiver going down would."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the senders use it
    timeout = 5  # an idle kept-alive connection is closed after this many seconds
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (the http.server convention)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        answer = self.server.receiver._handle(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_GET = do_POST  # noqa: N815 (anything that arrives is checked and recorded)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: tests read .messages and .rejected instead


class Receiver:
    """A programmable, verifying webhook receiver (see the module); also a context manager."""

    def __init__(self, secrets: Iterable[str] = (), *, fast: bool = False, port: int = 0) -> None:
        #: Secrets to verify with (a request verifies if any one does); may be replaced at any time.
        self.secrets: list[str] = list(secrets)
        self.fast = fast
        self.messages: list[Received] = []
        self.rejected: list[Rejected] = []
        #: Deliveries per ``webhook-id`` (a value above 1 is a repeat of the same message).
        self.ids: collections.Counter[str] = collections.Counter()
        self.count = 0
        #: Queued and standing answers by path (``None``: any path without its own).
        self._answers: collections.defaultdict[str | None, collections.deque[Answer]] = collections.defaultdict(collections.deque)
        self._defaults: dict[str | None, Answer] = {None: Answer(204)}
        self._lock = threading.Condition()
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Receiver:
        """Listen on 127.0.0.1 (a free port the first time, the same port afterwards)."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", self._port), self)
            self._port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"receiver:{self._port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections: connecting is refused until :meth:`up`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
            assert self._thread is not None
            self._thread.join(timeout=5)

    down = stop
    up = start

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/hook") -> str:
        """The address to give an endpoint (``path`` tells endpoints apart in :attr:`messages`)."""
        return f"http://127.0.0.1:{self._port}{path}"

    # -- programming the answers ------------------------------------------------------------
    def respond(self, *answers: int | Answer, path: str | None = None) -> None:
        """Answer the next requests (to ``path`` only, if given) with these, in order, then the standing answer."""
        with self._lock:
            self._answers[path].extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def always(self, answer: int | Answer, path: str | None = None) -> None:
        """Answer this (to ``path`` only, if given) whenever no queued answer is left (204 at first)."""
        with self._lock:
            self._defaults[path] = answer if isinstance(answer, Answer) else Answer(answer)

    def _next_answer(self, path: str) -> Answer:
        for key in (path, None):
            if self._answers.get(key):
                return self._answers[key].popleft()
        return self._defaults.get(path) or self._defaults[None]

    # -- reading what arrived -----------------------------------------------------------------
    def ids_in_order(self) -> list[str]:
        return [m.id for m in self.messages]

    def by_path(self, path: str) -> list[Received]:
        return [m for m in self.messages if m.path == path]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` verified requests arrived in all (bounded); whether they did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.rejected.clear()
            self.ids.clear()
            self.count = 0

    # -- the server side -------------------------------------------------------------------------
    def _verify(self, headers: dict[str, str], raw: bytes) -> tuple[tuple[str, ...], str]:
        verified, errors = [], []
        for secret in list(self.secrets):
            try:
                Webhook(secret).verify(raw, headers, json_parse=False)
            except (WebhookVerificationError, ValueError, TypeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                verified.append(secret)
                if self.fast:
                    break
        return tuple(verified), "; ".join(errors) or "no secret to verify with"

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        verified, error = self._verify(headers, raw)
        with self._lock:
            if not verified:
                self.rejected.append(Rejected(path, headers, raw, error))
                return Answer(401)
            msg_id = headers.get("webhook-id", "")
            answer = self._next_answer(path)
            self.count += 1
            self.ids[msg_id] += 1
            if not self.fast:
                self.messages.append(Received(msg_id, path, headers, json.loads(raw), raw, verified, answer.status,
                                              now(), time.time()))
            self._lock.notify_all()
            return answer


def receiving(secrets: Iterable[str] = (), **options: Any) -> Iterator[Receiver]:
    """A started receiver, stopped afterwards (the body of the ``receiver`` fixture)."""
    receiver = Receiver(secrets, **options).start()
    try:
        yield receiver
    finally:
        receiver.stop()
