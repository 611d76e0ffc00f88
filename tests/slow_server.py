"""A misbehaving HTTP server on 127.0.0.1 for tests of the outgoing requests' deadline.

``SlowServer(mode)`` answers every connection in one of these ways:

* ``"drip_body"``: the status line and headers at once (``Content-Length: 1000``), then the
  body one byte every ``interval`` seconds;
* ``"drip_headers"``: the status line, then the headers one byte every ``interval`` seconds;
* ``"silent"``: reads the request and never answers (the connection stays open).

It is bounded: each connection is dropped after ``limit`` seconds or when the client goes
away, and :meth:`stop` (the context manager's exit) closes every connection at once.
``connections`` counts what was accepted, ``requests`` the requests read in full (their
first lines), and ``hanging`` the connections open right now.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

__all__ = ["SlowServer"]

_BODY_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"x" * 1000 + b"\r\nContent-Length: 0\r\n\r\n"


class SlowServer:
    """A server that answers slowly or never (see the module); also a context manager."""

    def __init__(self, mode: str, *, interval: float = 0.3, limit: float = 5.0) -> None:
        if mode not in ("drip_body", "drip_headers", "silent"):
            raise ValueError(mode)
        self.mode, self.interval, self.limit = mode, interval, limit
        self.connections = 0
        self.requests: list[bytes] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._accept, name=f"slow-server:{self.port}", daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def url(self, path: str = "/hook") -> str:
        """The server's address with ``path``."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def hanging(self) -> int:
        """Connections open right now."""
        with self._lock:
            return len(self._open)

    def start(self) -> SlowServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every connection."""
        self._stopped.set()
        self._thread.join(timeout=2)
        self._listener.close()
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            self._close(connection)

    def __enter__(self) -> SlowServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.add(connection)
            threading.Thread(target=self._serve, args=(connection,), name="slow-server-connection", daemon=True).start()

    def _close(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()

    def _read_request(self, connection: socket.socket) -> bool:
        """Read up to the end of the headers and the body its Content-Length announces."""
        data = b""
        connection.settimeout(self.limit)
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(4096)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = connection.recv(4096)
            if not chunk:
                return False
            body += chunk
        with self._lock:
            self.requests.append(head.split(b"\r\n", 1)[0])
        return True

    def _serve(self, connection: socket.socket) -> None:
        ends = time.monotonic() + self.limit
        try:
            if not self._read_request(connection):
                return
            if self.mode == "silent":
                while not self._stopped.is_set() and time.monotonic() < ends:
                    connection.settimeout(0.05)
                    try:
                        if connection.recv(1) == b"":
                            return  # the client went away
                    except (TimeoutError, socket.timeout):
                        continue
                return
            if self.mode == "drip_body":
                connection.sendall(_BODY_HEAD)
                payload = b" " * 1000
            else:
                payload = _HEADERS
            for byte in payload:
                if self._stopped.wait(self.interval) or time.monotonic() >= ends:
                    return
                connection.sendall(bytes([byte]))
        except OSError:
            return  # the client went away (broken pipe, reset)
        finally:
            self._close(connection)
