"""What a PostgreSQL client sends and waits for, counted on the wire by a proxy.

Why not count psycopg's ``Connection.wait`` calls: a ``wait`` call runs one generator to its
end, and that is one exchange with the server only sometimes. On a connection that is not in
autocommit mode the first statement of a transaction sends ``BEGIN`` and waits for it inside
the same call (two exchanges, one call); in pipeline mode, which both LangGraph's Postgres
savers and Steward's driver use, every ``execute`` is a ``wait`` call that only sends and
returns without waiting for anything, and the one exchange happens at ``sync()`` (many calls,
one exchange). psycopg's generators run in C (psycopg_binary), so there is no Python hook
below ``wait`` either. So the bench counts on the wire instead, where the client library
makes no difference.

:class:`Proxy` listens on a unix socket of its own and relays each connection to the real
server, reading the protocol's message framing in both directions as it goes. Per connection,
after its start-up (the first ``ReadyForQuery``):

round trips
    client flights: bytes from the client after the server last sent something. A client that
    sends several messages (a pipeline) and then waits makes one; each time it has to wait for
    an answer before it can go on makes another. The server sends nothing unasked here (no
    ``LISTEN``), so every flight is one blocking exchange.
transactions
    what ``pg_stat_database.xact_commit`` counts, read from the server's answers: each
    ``COMMIT`` of an explicit block, and each implicit transaction (a statement outside a
    block, or a pipeline's statements up to its ``Sync``) that ended without an error.
    (``xact_commit`` itself lags: a busy backend reports its counters at most once a second,
    and otherwise up to 10 s later, so a per-run delta read from it is not reliable.)
statements
    ``CommandComplete`` messages other than ``BEGIN``/``COMMIT``/``ROLLBACK``.
unflushed
    of the transactions, those committed with ``synchronous_commit`` off: on a connection
    started with ``-c synchronous_commit=off``, or after ``SET LOCAL synchronous_commit = off``
    in the transaction (their commit does not wait for the WAL flush).
errors
    ``ErrorResponse`` messages: statements that failed, and with them their transaction (a
    client that writes optimistically and retries on a conflict shows them here).

Counts are taken with :meth:`Proxy.snapshot` before and after what is measured; connection
start-ups (a pool growing meanwhile) are left out, which is the one place where the
transactions differ from ``xact_commit`` (a new backend's own start-up counts there).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_CONTROL = {b"BEGIN", b"START", b"COMMIT", b"ROLLBACK"}
_LAZY = b"synchronous_commit=off"
_LOCAL_OFF = b"synchronous_commit = off"


@dataclass
class WireCounts:
    trips: int = 0
    transactions: int = 0
    statements: int = 0
    unflushed: int = 0
    errors: int = 0

    def __sub__(self, other: WireCounts) -> WireCounts:
        return WireCounts(*(getattr(self, f.name) - getattr(other, f.name)
                            for f in fields(self)))


class _Frames:
    """Splits a byte stream into protocol messages (type byte, int32 length, body)."""

    def __init__(self, typed: bool) -> None:
        self.buf = bytearray()
        self.typed = typed  # the client's first message (start-up) has no type byte

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buf += data
        out: list[tuple[bytes, bytes]] = []
        while True:
            head = 5 if self.typed else 4
            if len(self.buf) < head:
                return out
            size = struct.unpack_from("!I", self.buf, head - 4)[0]
            end = head - 4 + size
            if len(self.buf) < end:
                return out
            kind = bytes(self.buf[:1]) if self.typed else b""
            out.append((kind, bytes(self.buf[head:end])))
            del self.buf[:end]
            self.typed = True


class _Link:
    """One client connection relayed to one server connection."""

    def __init__(self, proxy: Proxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client, self.server = client, server
        self.ready = False  # past start-up
        self.server_spoke = True  # the server sent something since the client last did
        self.lazy = False  # started with synchronous_commit=off
        self.local_off = False  # SET LOCAL synchronous_commit = off in this transaction
        self.explicit = self.implicit = self.failed = False
        self.from_client = _Frames(typed=False)
        self.from_server = _Frames(typed=True)

    def start(self) -> None:
        for pump in (self._client_to_server, self._server_to_client):
            threading.Thread(target=pump, daemon=True, name="bench-pgwire").start()

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _client_to_server(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.client.recv(65536):
                with self.proxy.lock:
                    if self.ready and self.server_spoke:
                        self.proxy.counts.trips += 1
                    self.server_spoke = False
                    for kind, body in self.from_client.feed(data):
                        if kind == b"" and _LAZY in body:
                            self.lazy = True
                        elif kind in (b"Q", b"P") and _LOCAL_OFF in body:
                            self.local_off = True
                self.server.sendall(data)
        self.close()

    def _server_to_client(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.server.recv(65536):
                with self.proxy.lock:
                    self.server_spoke = True  # before the client can see it and answer
                    for kind, body in self.from_server.feed(data):
                        self._on_server(kind, body)
                self.client.sendall(data)
        self.close()

    def _commit(self) -> None:
        counts = self.proxy.counts
        counts.transactions += 1
        if self.lazy or self.local_off:
            counts.unflushed += 1

    def _on_server(self, kind: bytes, body: bytes) -> None:
        if kind == b"Z":  # ReadyForQuery: the end of a Sync or of a simple query
            if self.ready and self.implicit and not self.failed:
                self._commit()
            self.ready = True
            self.implicit = False
            if body[:1] == b"I":  # idle: no block open
                self.explicit = self.failed = self.local_off = False
        elif kind == b"E":
            self.failed = True
            if self.ready:
                self.proxy.counts.errors += 1
        elif kind == b"C" and self.ready:
            word = body.split(b"\0", 1)[0].split(b" ", 1)[0]
            if word in (b"BEGIN", b"START"):
                self.explicit, self.implicit = True, False  # statements before it join it
            elif word == b"COMMIT":
                if self.explicit and not self.failed:
                    self._commit()
                self.explicit = self.implicit = self.local_off = False
            elif word == b"ROLLBACK":
                self.explicit = self.implicit = self.failed = self.local_off = False
            else:
                self.proxy.counts.statements += 1
                if not self.explicit:
                    self.implicit = True


class Proxy:
    """Relays connections to the server at ``host``/``port`` (``Proxy.to(url)``: the server a
    URL reaches) and counts what they exchange (see the module docstring); ``proxy.url(target)``
    is ``target``, a URL to a database on that server, routed through the proxy. Clients reach
    it on a unix socket, and it reaches the server without TLS. A context manager."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.lock = threading.Lock()
        self.counts = WireCounts()
        self._dir = tempfile.TemporaryDirectory(prefix="bench-pgwire-")
        self.port = port
        self.path = Path(self._dir.name) / f".s.PGSQL.{port}"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        self._links: list[_Link] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True,
                                           name="bench-pgwire-accept")
        self._accepting.start()

    @classmethod
    def to(cls, url: str) -> Proxy:
        """A proxy to the server ``url`` connects to (as libpq resolves it)."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            return cls(conn.info.host, conn.info.port)

    def _connect_upstream(self) -> socket.socket:
        host, port = self.upstream
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(f"{host}/.s.PGSQL.{port}")
            return sock
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                link = _Link(self, client, self._connect_upstream())
                with self.lock:
                    self._links.append(link)
                link.start()

    def url(self, target: str) -> str:
        """``target`` with its host and port replaced by the proxy's socket."""
        parts = urlsplit(target)
        userinfo = parts.netloc.rpartition("@")[0]
        query = [(k, v) for k, v in parse_qsl(parts.query)
                 if k not in ("host", "hostaddr", "port", "sslmode", "gssencmode")]
        query += [("host", str(self.path.parent)), ("port", str(self.port))]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))

    def snapshot(self) -> WireCounts:
        with self.lock:
            return WireCounts(**vars(self.counts))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self.lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        self._dir.cleanup()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
