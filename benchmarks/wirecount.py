"""Count what a PostgreSQL client sends, on the wire, through a local TCP proxy.

The proxy sits between the ``crontabber`` command and the server and reads the
frontend side of the protocol: every message the client sends, by kind
(``SSLRequest``, ``StartupMessage``, ``Query``, ``Terminate``, ...). psycopg2
speaks the simple query protocol, so every ``Query`` message is one round trip
and carries its SQL text (with the parameters interpolated by psycopg2), which
is everything the driver sends, not only what the program asked for.
Extended-protocol clients are counted by ``Sync`` messages, each one round trip.

SSL is refused by the proxy (it answers ``N`` to the client's SSLRequest, as a
server with ``ssl=off`` does), so the stream is readable; the counted runs are
separate from the timed ones, since the proxy adds latency.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "START", "END", "ABORT"}
MESSAGE_KINDS = {
    b"Q": "Query",
    b"P": "Parse",
    b"B": "Bind",
    b"E": "Execute",
    b"D": "Describe",
    b"S": "Sync",
    b"H": "Flush",
    b"C": "Close",
    b"X": "Terminate",
    b"p": "PasswordMessage",
    b"d": "CopyData",
    b"c": "CopyDone",
    b"f": "CopyFail",
    b"F": "FunctionCall",
}
STARTUP_KINDS = {
    SSL_REQUEST: "SSLRequest",
    GSSENC_REQUEST: "GSSENCRequest",
    CANCEL_REQUEST: "CancelRequest",
}


@dataclass
class WireCount:
    """What the clients sent while the proxy counted."""

    queries: list[str] = field(default_factory=list)
    syncs: int = 0
    connections: int = 0
    messages: list[str] = field(default_factory=list)  # every message's kind, in order

    def summary(self) -> str:
        """The messages in order, runs of one kind collapsed: ``StartupMessage, 2 x Query``."""
        parts: list[str] = []
        previous, run = None, 0
        for kind in [*self.messages, None]:
            if kind == previous:
                run += 1
                continue
            if previous is not None:
                parts.append(previous if run == 1 else f"{run} x {previous}")
            previous, run = kind, 1
        return ", ".join(parts)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class CountingProxy:
    """A TCP proxy to ``upstream`` on an ephemeral local port; a thread per client."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._count = WireCount()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def take(self) -> WireCount:
        """What was counted since the last call, and start counting afresh."""
        with self._lock:
            count, self._count = self._count, WireCount()
        return count

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            upstream = socket.create_connection(self.upstream)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._startup(client, upstream):
                return
            with self._lock:
                self._count.connections += 1
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            self._frontend(client, upstream)
        except (ConnectionError, OSError):
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    sock.close()

    def _startup(self, client: socket.socket, upstream: socket.socket) -> bool:
        """Pass the startup message on, refusing SSL and GSS encryption first."""
        while True:
            header = _recv_exact(client, 4)
            body = _recv_exact(client, int.from_bytes(header, "big") - 4)
            code = int.from_bytes(body[:4], "big")
            with self._lock:
                self._count.messages.append(STARTUP_KINDS.get(code, "StartupMessage"))
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client.sendall(b"N")
                continue
            upstream.sendall(header + body)
            return code != CANCEL_REQUEST

    def _frontend(self, client: socket.socket, upstream: socket.socket) -> None:
        while True:
            kind = _recv_exact(client, 1)
            header = _recv_exact(client, 4)
            body = _recv_exact(client, int.from_bytes(header, "big") - 4)
            with self._lock:
                self._count.messages.append(MESSAGE_KINDS.get(kind, repr(kind)))
                if kind == b"Q":
                    self._count.queries.append(body.rstrip(b"\0").decode("utf-8", "replace"))
                elif kind == b"S":
                    self._count.syncs += 1
            upstream.sendall(kind + header + body)
            if kind == b"X":
                return

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
