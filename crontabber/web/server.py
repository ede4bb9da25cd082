"""Serving the status page with cheroot, CherryPy's production WSGI server.

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
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cheroot import wsgi

from crontabber.errors import WebConfigError
from crontabber.jobs.spec import JobSpec
from crontabber.store.abc import DEFAULT_MAX_AGE
from crontabber.web.app import StatusApp, create_app

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
THREADS = 8

log = logging.getLogger("crontabber.web")


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


class RunningServer:
    """A server serving in a thread of its own."""

    def __init__(self, server: wsgi.Server, app: StatusApp) -> None:
        self.server = server
        self.app = app
        self.thread = threading.Thread(target=server.serve, name="crontabber-web", daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return str(self.server.bind_addr[0])

    @property
    def port(self) -> int:
        return int(self.server.bind_addr[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)
        self.app.close()


def start_server(
    app: StatusApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> RunningServer:
    """Listen on ``host``:``port`` (0: any free port) and serve ``app`` in a thread.

    Refuses a non-loopback ``host`` unless the app wants a token; a port that
    cannot be had is a one-line WebConfigError."""
    check_bind(host, app.auth_token)
    server = wsgi.Server((host, port), app, numthreads=THREADS, server_name="crontabber")
    try:
        server.prepare()
    except OSError as exc:
        raise WebConfigError(
            f"cannot serve the status page on {host}:{port}: {exc.strerror or exc} "
            "(set web.host and web.port)"
        ) from None
    return RunningServer(server, app)


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
