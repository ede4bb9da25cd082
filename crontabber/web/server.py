"""Serving the status page with waitress, a WSGI server that reads each request whole in
an event loop before a worker thread runs it: a slow or silent client costs a socket,
not a thread, so ``/healthz`` answers while hundreds of them trickle.

Every request is bounded: its head (request line and headers) to :data:`MAX_HEAD`
bytes (431 past it, unread), its body to :data:`MAX_BODY` (413), its arrival to
:data:`REQUEST_SECONDS` from its first byte, a connection's silence to
:data:`IDLE_SECONDS`; at most :data:`CONNECTIONS` connections at once. The server's own
error answers carry the security headers of the application's.

:func:`serve` is what ``crontabber --serve`` calls: it blocks until SIGTERM or
SIGINT. :func:`start_server` serves in a thread and returns at once, for a
daemon that serves while it runs jobs, and for tests. Neither touches the
database before a request does, so they start, and stay up, while it is down.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from crontabber.errors import WebConfigError
from crontabber.jobs.spec import JobSpec
from crontabber.store.abc import DEFAULT_MAX_AGE
from crontabber.web.app import StatusApp, create_app
from crontabber.web.http import SECURITY_HEADERS

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
THREADS = 4  # run requests; reading and writing them is the event loop's
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_BODY = 64 * 1024  # bytes of a request's body (the page's forms are tiny)
REQUEST_SECONDS = 20  # for a request, head and body, to arrive from its first byte
IDLE_SECONDS = 30  # a connection that sends nothing, between or within requests
CHECK_SECONDS = 2  # how often connections are checked against those two
CONNECTIONS = 1000  # at once; past it, new ones wait in the listen backlog
BACKLOG = 1024

log = logging.getLogger("crontabber.web")
# waitress warns of a queue as short as one request behind busy threads; not worth a line
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, auth_token: str) -> None:
    """Refuse to serve beyond this host without a token."""
    if not is_loopback(host) and not auth_token:
        raise WebConfigError(
            f"refusing to serve the status page on {host}, beyond this host, without "
            "web.auth_token: set web.auth_token, or keep web.host on 127.0.0.1"
        )


class _Parser(HTTPRequestParser):
    """A request being read, which knows when its first byte came."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.monotonic()


class _ErrorTask(ErrorTask):
    """The server's own answer to a request it will not pass on (400, 413, 431, 500),
    with the headers every answer of the application carries."""

    def execute(self) -> None:
        self.response_headers.extend([("Cache-Control", "no-store"), *SECURITY_HEADERS])
        super().execute()


class _Channel(HTTPChannel):
    error_task_class = _ErrorTask
    parser_class = _Parser


class _Server(TcpWSGIServer):
    """waitress's server on a bound socket, run until :meth:`shut_down`: it also closes
    a connection whose request has been arriving for over ``REQUEST_SECONDS``."""

    channel_class = _Channel

    def __init__(self, app: StatusApp, sock: socket.socket, adj: Adjustments) -> None:
        self.request_seconds = REQUEST_SECONDS
        self.stopping = threading.Event()
        sockinfo = (sock.family, sock.type, sock.proto, sock.getsockname())
        super().__init__(app, {}, _sock=sock, adj=adj, sockinfo=sockinfo, bind_socket=False)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # the idle ones
        late = time.monotonic() - self.request_seconds
        for channel in self.active_channels.values():
            request = channel.request
            if request is not None and not request.completed and request.started < late:
                channel.will_close = True

    def run(self) -> None:
        while not self.stopping.is_set():
            wasyncore.loop(self.adj.asyncore_loop_timeout, True, self._map, count=1)

    def shut_down(self) -> None:
        """After :meth:`run` returned: close every connection, then the workers, the
        listening socket and the trigger."""
        for entry in list(self._map.values()):
            if isinstance(entry, HTTPChannel):
                if entry.request is not None:
                    entry.request.close()
                entry.handle_close()
        self.task_dispatcher.shutdown(timeout=5)
        self.close()
        wasyncore.close_all(self._map)


class RunningServer:
    """A server serving in a thread of its own."""

    def __init__(self, server: _Server, app: StatusApp) -> None:
        self.server = server
        self.app = app
        self.thread = threading.Thread(target=server.run, name="crontabber-web", daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return str(self.server.effective_host)

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self.server.stopping.is_set():
            return
        self.server.stopping.set()
        self.server.pull_trigger()
        self.thread.join(timeout=10)
        self.server.shut_down()
        self.app.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``; a one-line WebConfigError when it cannot be."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise WebConfigError(
            f"cannot serve the status page on {host}:{port}: {exc.strerror or exc} "
            "(set web.host and web.port)"
        ) from None
    return sock


def start_server(
    app: StatusApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> RunningServer:
    """Listen on ``host``:``port`` (0: any free port) and serve ``app`` in a thread.

    Refuses a non-loopback ``host`` unless the app wants a token; a port that
    cannot be had is a one-line WebConfigError."""
    check_bind(host, app.auth_token)
    sock = listening_socket(host, port)
    adj = Adjustments(
        sockets=[sock],
        threads=THREADS,
        ident="crontabber",  # the Server header, with no version
        max_request_header_size=MAX_HEAD,
        max_request_body_size=MAX_BODY,
        channel_timeout=IDLE_SECONDS,
        cleanup_interval=CHECK_SECONDS,
        connection_limit=CONNECTIONS,
        backlog=BACKLOG,
        asyncore_use_poll=True,  # select() stops at file descriptor 1024
        log_socket_errors=False,  # a client gone away is not worth a traceback
    )
    try:
        return RunningServer(_Server(app, sock, adj), app)
    except BaseException:
        sock.close()
        raise


def serve(
    database_url: str,
    specs: Sequence[JobSpec],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    auth_token: str = "",
    max_ongoing_age: dt.timedelta = DEFAULT_MAX_AGE,
    problems: Sequence[str] = (),
    refresh_seconds: float = 10,
    every: tuple[float, Callable[[], object]] | None = None,
) -> int:
    """Serve the status page of ``specs`` read from ``database_url`` until SIGTERM or
    SIGINT (Ctrl-C); returns the exit status, 0. Raises WebConfigError (one line)
    for a host it may not bind without a token, or a port it cannot have.
    ``every``: (seconds, work) to do that often meanwhile (delivering notifications)."""
    check_bind(host, auth_token)
    app = create_app(
        database_url,
        specs,
        auth_token=auth_token,
        max_ongoing_age=max_ongoing_age,
        problems=problems,
        refresh_seconds=refresh_seconds,
    )
    running = start_server(app, host, port)
    log.info(
        "serving the status page on %s/ (%s)",
        running.url,
        "operators may act with the token" if auth_token else "read-only",
    )
    print(f"crontabber: serving the status page on {running.url}/", flush=True)
    stopping = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stopping.set())
    due = time.monotonic()
    try:
        while not stopping.wait(1.0):
            if not running.thread.is_alive():
                break
            if every is not None and time.monotonic() >= due:
                due = time.monotonic() + every[0]
                every[1]()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        running.stop()
    log.info("stopped serving the status page")
    return 0
