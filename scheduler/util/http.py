"""Outgoing HTTP to addresses that users give us: public ones only, pinned, bounded.

:func:`safe_request` (and :func:`safe_get`) resolve the host name once, refuse it when
any of its addresses is not public (loopback, private, link-local, CGNAT, multicast,
reserved, documentation, translation ranges, ...) unless the allow-list opens it, and
then connect to exactly the address that was checked: the ``Host`` header, TLS SNI and
the certificate check still use the name, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot redirect the request. Redirects are
never followed, every request has a timeout, and the body is read with a size cap.
It uses urllib3 (what requests is built on) directly: a connection pool made for the
checked address, which a sender thread keeps for its next message (``keep_alive``).

Why not ``requests-hardened``: it pins the checked address the same way, but its only
opening is "allow loopback" (a flag), while ``OUTBOUND_ALLOWLIST`` opens chosen hosts
and CIDR ranges (an intranet range for webhooks, 127.0.0.1/32 in tests).
"""
from __future__ import annotations

import functools
import ipaddress
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
    try:  # an address written in the URL is judged as it is, even where this machine lacks IPv6
        addresses.append(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
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
        if not is_public_address(address) and not allowlist.allows(host, _plain(address)):
            raise UnsafeURL(
                f"{host} resolves to {address}, which is not a public address; "
                "requests to it are refused (OUTBOUND_ALLOWLIST opens chosen hosts and ranges)."
            )
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


def _new_pool(target: Target, verify: bool | str) -> urllib3.HTTPConnectionPool:
    """A pool that connects to the checked address; TLS still names and checks the host (SNI, certificate)."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address, target.port, maxsize=1, retries=False, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
            ca_certs=verify if isinstance(verify, str) else (requests.certs.where() if verify else None),
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, maxsize=1, retries=False)


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


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float, timeout: float) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise FetchError(f"The response is {int(length):,} bytes; at most {max_bytes:,} are read.")
    chunks, total = [], 0
    for chunk in response.stream(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(f"The response is larger than {max_bytes:,} bytes.")
        if time.monotonic() > deadline:
            raise FetchError(f"The response took longer than {timeout:g} s.")
        chunks.append(chunk)
    return b"".join(chunks)


def safe_request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowlist: Allowlist | None = None,
    ok_statuses: range = range(200, 300),
    verify: bool | str = True,
    keep_alive: bool = False,
) -> FetchResult:
    """Send one request to an outside URL safely (see the module) and read the answer.

    Raises :class:`UnsafeURL` for a refused URL or address, :class:`NotConnected` when no
    connection was made, :class:`NoAnswer` when the request went out but no answer came
    back (it may have been acted on), and :class:`FetchError` for a redirect, a status
    outside ``ok_statuses`` or a body over ``max_bytes``. ``allowlist`` defaults to the application's ``OUTBOUND_ALLOWLIST``;
    ``verify`` may name a CA bundle (an intranet CA) instead of the system's.
    ``keep_alive`` reuses this thread's connection to the same checked address (senders).
    """
    target = check_url(url, allowlist)
    sent_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {}), "Host": target.host_header}
    deadline = time.monotonic() + timeout
    pool = _pool_for(target, verify, keep_alive)
    response = None
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
        content = _read_capped(response, max_bytes, deadline, timeout)
        return FetchResult(target.url, response.status, response.headers.get("Content-Type", ""), content, response.headers)
    except urllib3.exceptions.SSLError:
        raise FetchError(f"The TLS connection to {target.host} failed (certificate or protocol).") from None
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError):
        raise NotConnected(f"Could not connect to {target.host}.") from None  # (NewConnectionError is a timeout to urllib3)
    except urllib3.exceptions.TimeoutError:
        raise NoAnswer(f"No answer within {timeout:g} s.") from None
    except (urllib3.exceptions.ProtocolError, OSError):
        raise NoAnswer(f"The connection to {target.host} broke before an answer came.") from None
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"The request failed: {type(exc).__name__}.") from None
    finally:
        if response is not None:
            if response.isclosed() or response.length_remaining == 0:
                response.release_conn()  # read in full: the connection goes back for the next send
            else:
                response.close()  # not read to its end: the connection cannot be reused
                response.release_conn()
        if not keep_alive:
            pool.close()


def safe_get(url: str, *, accept: str = "*/*", **options: Any) -> FetchResult:
    """``GET`` an outside URL safely; options as for :func:`safe_request`."""
    return safe_request("GET", url, headers={"Accept": accept}, **options)
