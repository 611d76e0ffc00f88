"""Outgoing HTTP to addresses that users give us: public ones only, pinned, bounded.

:func:`safe_request` (and :func:`safe_get`) resolve the host name once, refuse it when
any of its addresses is not public (loopback, private, link-local, CGNAT, multicast,
reserved, documentation, translation ranges, ...) unless the allow-list opens it, and
then connect to exactly the address that was checked: the ``Host`` header, TLS SNI and
the certificate check still use the name, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot redirect the request. Redirects are
never followed, and the body is read with a size cap.

Every request has one deadline (``OUTBOUND_TIMEOUT``, or the ``timeout`` given) for the
whole exchange: connecting, sending, the status line and headers, and the body. urllib3's
timeouts are per socket operation (a server dripping a byte every few seconds never trips
them), so a watchdog thread cuts the connection's socket when the deadline passes and the
request fails with :class:`NoAnswer` (:class:`NotConnected` while still connecting).

It uses urllib3 (what requests is built on) directly: a connection pool made for the
checked address, which a sender thread keeps for its next message (``keep_alive``).

Why not ``requests-hardened``: it pins the checked address the same way, but its only
opening is "allow loopback" (a flag), while ``OUTBOUND_ALLOWLIST`` opens chosen hosts
and CIDR ranges (an intranet range for webhooks, 127.0.0.1/32 in tests).
"""
from __future__ import annotations

import functools
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from flask import current_app, has_app_context
from urllib3.util.connection import allowed_gai_family

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
USER_AGENT = "JiangmenScienceEvents/1.0"
_CHUNK = 64 * 1024

#: Ranges Python's ``is_global`` lets through (or gets wrong on older versions) that must stay closed.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "100.64.0.0/10",  # CGNAT (shared address space): reaches internal workloads at cloud providers
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "2002::/16",  # 6to4: embeds an IPv4 address
        "64:ff9b::/96",  # NAT64: embeds an IPv4 address
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "fec0::/10",  # deprecated site-local
        "5f00::/16",  # segment routing
        "3fff::/20",  # documentation
    )
)


class FetchError(Exception):
    """A URL could not be fetched; the message says why and is safe to show to the user."""


class UnsafeURL(FetchError):
    """Refused before connecting: a scheme, host or address that is not allowed."""


class NotConnected(FetchError):
    """No connection was made (refused, unreachable, connect timeout): the request never left."""


class NoAnswer(FetchError):
    """The request was sent but no (complete) answer came: the server may have acted on it."""


class Redirected(FetchError):
    """The server answered with a redirect, which is never followed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Allowlist:
    """Hosts and address ranges that outgoing requests may reach although not public."""

    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Read entries such as ``127.0.0.1/32``, ``10.0.0.0/8``, ``::1`` or ``intranet.example``."""
        hosts, networks = set(), []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether ``host`` is listed, or ``address`` lies in a listed range."""
        return host in self.hosts or any(address.version == net.version and address in net for net in self.networks)


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (anything internal or special is not)."""
    address = _plain(address)
    special = (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )
    blocked = any(address in net for net in _EXTRA_BLOCKED if net.version == address.version)
    return address.is_global and not special and not blocked


def configured_timeout() -> float:
    """The application's ``OUTBOUND_TIMEOUT`` in seconds (:data:`DEFAULT_TIMEOUT` outside an application context)."""
    if not has_app_context():
        return DEFAULT_TIMEOUT
    value = current_app.config.get("OUTBOUND_TIMEOUT")
    try:
        timeout = float(value) if value not in (None, "") else DEFAULT_TIMEOUT
    except (TypeError, ValueError):
        raise ValueError("The setting OUTBOUND_TIMEOUT must be a number of seconds.") from None
    if timeout <= 0:
        raise ValueError("The setting OUTBOUND_TIMEOUT must be positive.")
    return timeout


def configured_allowlist() -> Allowlist:
    """The application's ``OUTBOUND_ALLOWLIST`` (empty outside an application context)."""
    if not has_app_context():
        return Allowlist(frozenset(), ())
    entries = current_app.config.get("OUTBOUND_ALLOWLIST") or []
    if isinstance(entries, str):
        entries = entries.split(",")
    return _parsed_allowlist(tuple(entries))


@functools.lru_cache(maxsize=16)
def _parsed_allowlist(entries: tuple[str, ...]) -> Allowlist:
    return Allowlist.parse(entries)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` is written as, in any form the resolver reads without DNS, or ``None`` for a name.

    Besides the usual forms this reads what ``inet_aton`` does (``127.1``, ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``), since connecting to such a "name" reaches that address.
    """
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or any(c.isspace() for c in host):
        return None
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, OSError, ValueError):
        return None
    for info in infos:
        try:
            return ipaddress.ip_address(str(info[4][0]).split("%")[0])
        except ValueError:
            continue
    return None


def host_refusal(host: str, address: IPAddress, allowlist: Allowlist) -> str | None:
    """Why ``address`` (``host``'s, or ``host`` itself) may not be reached, or ``None`` when it may."""
    if is_public_address(address) or allowlist.allows(host, _plain(address)):
        return None
    return (f"{host} resolves to {address}, which is not a public address; "
            "requests to it are refused (OUTBOUND_ALLOWLIST opens chosen hosts and ranges).")


@dataclass(frozen=True)
class Target:
    """A checked URL: its host name, the address to connect to, and the ``Host`` header."""

    url: str
    scheme: str
    host: str
    host_header: str
    address: str
    port: int = 80
    #: The path and query to request.
    target: str = "/"


@functools.lru_cache(maxsize=1024)
def _prepared_url(url: str) -> str:
    """The URL as requests will send it (IDNA host, quoted path): a pure function, so cached."""
    try:
        prepared = requests.Request("GET", url).prepare()
    except (requests.RequestException, ValueError) as exc:
        raise UnsafeURL(f"Not a valid URL: {exc}") from None
    assert prepared.url is not None
    return prepared.url


def check_url(url: str, allowlist: Allowlist | None = None) -> Target:
    """Parse ``url``, resolve its host once and check every address; raise :class:`UnsafeURL`."""
    prepared_url = _prepared_url(url)
    parts = urlsplit(prepared_url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Only http:// and https:// URLs are fetched.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if "@" in parts.netloc:
        raise UnsafeURL("URLs with a user name or password are not accepted.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("The URL's port is not valid.") from None
    host = parts.hostname.rstrip(".")
    allowlist = allowlist if allowlist is not None else configured_allowlist()
    addresses: list[IPAddress] = []
    literal = literal_address(host)
    if literal is not None:  # an address written in the URL is judged as it is, even where this machine lacks IPv6
        addresses.append(literal)
    else:
        try:
            infos = socket.getaddrinfo(host, port, family=allowed_gai_family(), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise FetchError(f"The host {host} could not be resolved.") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise FetchError(f"The host {host} has no address.")
    for address in addresses:
        refusal = host_refusal(host, address, allowlist)
        if refusal:
            raise UnsafeURL(refusal)
    first = _plain(addresses[0])
    return Target(
        url=prepared_url,
        scheme=parts.scheme,
        host=parts.hostname,
        host_header=parts.netloc,
        address=str(first),
        port=port,
        target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    )


_local = threading.local()
#: Connection pools a sender thread keeps open at most (to as many checked addresses).
_MAX_KEPT_POOLS = 32


class _Exchange:
    """One request's deadline and the connections it used: cut when the deadline passes before it ends."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.cut = False
        self._done = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def watch(self, connection: Any) -> None:
        """``connection`` (a urllib3 connection) works for this request now."""
        with self._lock:
            if not self._done and connection not in self._connections:
                self._connections.append(connection)
        if self.cut:
            _cut(connection)

    def expire(self) -> None:
        """The deadline passed: cut the connections unless the request ended meanwhile."""
        with self._lock:
            if self._done:
                return
            self.cut = True
            connections = list(self._connections)
        for connection in connections:
            _cut(connection)

    def end(self) -> None:
        """The request ended (answered or failed): its connections are no longer cut."""
        with self._lock:
            self._done = True
            self._connections.clear()


def _cut(connection: Any) -> None:
    """Shut the connection's socket down: a read or write blocked on it returns at once."""
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:  # the plain socket's shutdown, also under TLS (SSLSocket's own one drops its state first)
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except (OSError, TypeError, ValueError):
            pass


class _Watchdog:
    """One daemon thread that expires the requests whose deadline passed (a heap of deadlines)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Exchange]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, exchange: _Exchange) -> None:
        """Cut ``exchange`` at its deadline unless it ends before."""
        with self._wake:
            heapq.heappush(self._heap, (exchange.deadline, next(self._order), exchange))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbound-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is exchange:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                due = []
                while self._heap and self._heap[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._heap)[2])
            for exchange in due:
                exchange.expire()


_watchdog = _Watchdog()


def _current_exchange() -> _Exchange | None:
    return getattr(_local, "exchange", None)


class _WatchedConnection:
    """Mixed into urllib3's connections: each one reports to the request it works for (see :class:`_Exchange`)."""

    def connect(self) -> None:
        exchange = _current_exchange()
        if exchange is not None:
            exchange.watch(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        exchange = _current_exchange()
        if exchange is not None:
            exchange.watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _new_pool(target: Target, verify: bool | str) -> urllib3.HTTPConnectionPool:
    """A pool that connects to the checked address; TLS still names and checks the host (SNI, certificate)."""
    if target.scheme == "https":
        return _HTTPSConnectionPool(
            target.address, target.port, maxsize=1, retries=False, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
            ca_certs=verify if isinstance(verify, str) else (requests.certs.where() if verify else None),
        )
    return _HTTPConnectionPool(target.address, target.port, maxsize=1, retries=False)


def _pool_for(target: Target, verify: bool | str, keep_alive: bool) -> urllib3.HTTPConnectionPool:
    """A new pool, or (``keep_alive``) this thread's kept one for the same checked address."""
    if not keep_alive:
        return _new_pool(target, verify)
    kept: dict[tuple[Any, ...], urllib3.HTTPConnectionPool] = _local.__dict__.setdefault("pools", {})
    key = (target.scheme, target.host, target.address, target.port, verify)
    pool = kept.get(key)
    if pool is None:
        if len(kept) >= _MAX_KEPT_POOLS:
            forget_connections()
            kept = _local.__dict__.setdefault("pools", {})
        pool = kept[key] = _new_pool(target, verify)
    return pool


def forget_connections() -> None:
    """Close the connections this thread keeps open (tests; a sender thread that stops)."""
    for pool in _local.__dict__.pop("pools", {}).values():
        pool.close()


@dataclass(frozen=True)
class FetchResult:
    """A response read in full."""

    url: str
    status: int
    content_type: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, exchange: _Exchange, timeout: float) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise FetchError(f"The response is {int(length):,} bytes; at most {max_bytes:,} are read.")
    chunks, total = [], 0
    for chunk in response.stream(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"The response is larger than {max_bytes:,} bytes.")
        if exchange.cut or time.monotonic() > exchange.deadline:
            raise NoAnswer(_late(timeout))
        chunks.append(chunk)
    if exchange.cut:  # a body without a length ends where the cut ended it: not the whole answer
        raise NoAnswer(_late(timeout))
    return b"".join(chunks)


def _late(timeout: float) -> str:
    return f"No complete answer within {timeout:g} s (connecting, headers and body together)."


def safe_request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowlist: Allowlist | None = None,
    ok_statuses: range = range(200, 300),
    verify: bool | str = True,
    keep_alive: bool = False,
) -> FetchResult:
    """Send one request to an outside URL safely (see the module) and read the answer.

    Raises :class:`UnsafeURL` for a refused URL or address, :class:`NotConnected` when no
    connection was made, :class:`NoAnswer` when the request went out but no (complete) answer
    came back within ``timeout`` (it may have been acted on), and :class:`FetchError` for a
    redirect, a status outside ``ok_statuses`` or a body over ``max_bytes``. ``timeout`` (seconds,
    for the whole exchange) defaults to the application's ``OUTBOUND_TIMEOUT``, ``allowlist`` to
    its ``OUTBOUND_ALLOWLIST``; ``verify`` may name a CA bundle (an intranet CA) instead of the
    system's. ``keep_alive`` reuses this thread's connection to the same checked address (senders).
    """
    timeout = configured_timeout() if timeout is None else timeout
    target = check_url(url, allowlist)
    sent_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {}), "Host": target.host_header}
    exchange = _Exchange(time.monotonic() + timeout)
    pool = _pool_for(target, verify, keep_alive)
    response = None
    _local.exchange = exchange
    _watchdog.add(exchange)
    try:
        response = pool.urlopen(
            method, target.target, body=data, headers=sent_headers, retries=False, redirect=False, assert_same_host=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout), preload_content=False, decode_content=True,
        )
        if 300 <= response.status < 400:
            location = response.headers.get("Location", "")
            raise Redirected(
                f"The server answered {response.status} (a redirect to {location!r}); "
                "redirects are not followed: give the final address.",
                response.status,
            )
        if response.status not in ok_statuses:
            raise FetchError(f"The server answered {response.status} {response.reason or ''}".rstrip() + ".")
        content = _read_capped(response, max_bytes, exchange, timeout)
        return FetchResult(target.url, response.status, response.headers.get("Content-Type", ""), content, response.headers)
    except urllib3.exceptions.SSLError:
        if exchange.cut:
            raise NoAnswer(_late(timeout)) from None
        raise FetchError(f"The TLS connection to {target.host} failed (certificate or protocol).") from None
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError):
        # (NewConnectionError is a timeout to urllib3)
        raise NotConnected(f"Could not connect to {target.host}" + (f" within {timeout:g} s." if exchange.cut else ".")) from None
    except urllib3.exceptions.TimeoutError:
        raise NoAnswer(_late(timeout)) from None
    except (urllib3.exceptions.ProtocolError, OSError):
        if exchange.cut:
            raise NoAnswer(_late(timeout)) from None
        raise NoAnswer(f"The connection to {target.host} broke before an answer came.") from None
    except urllib3.exceptions.HTTPError as exc:
        if exchange.cut:
            raise NoAnswer(_late(timeout)) from None
        raise FetchError(f"The request failed: {type(exc).__name__}.") from None
    finally:
        exchange.end()  # before the connection goes back: a kept connection is never cut later
        _local.exchange = None
        if response is not None:
            if not exchange.cut and (response.isclosed() or response.length_remaining == 0):
                response.release_conn()  # read in full: the connection goes back for the next send
            else:
                response.close()  # not read to its end (or cut): the connection cannot be reused
                response.release_conn()
        if not keep_alive:
            pool.close()


def safe_get(url: str, *, accept: str = "*/*", **options: Any) -> FetchResult:
    """``GET`` an outside URL safely; options as for :func:`safe_request`."""
    return safe_request("GET", url, headers={"Accept": accept}, **options)
