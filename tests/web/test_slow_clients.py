"""The status page's server against slow and hostile clients, over real sockets on
127.0.0.1: slow clients cost a socket, not a thread, so ``/healthz`` still answers;
a huge head is refused unread; the server's own errors carry the security headers;
a request that takes too long to arrive, or a connection that says nothing, is closed.
And the ``/healthz`` liveness hook."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from crontabber import web
from crontabber.store import open_store
from crontabber.web import server as web_server
from crontabber.web.http import SECURITY_HEADERS

from ..helpers.wsgi import call

SLOW_CLIENTS = 200


@pytest.fixture
def sqlite_state(sqlite_url: str) -> str:
    store = open_store(sqlite_url)
    store.ensure_schema()
    store.close()
    return sqlite_url


@pytest.fixture
def served(sqlite_state: str) -> Iterator[web.RunningServer]:
    running = web.start_server(web.create_app(sqlite_state, []), "127.0.0.1", 0)
    yield running
    running.stop()


def connect(running: web.RunningServer) -> socket.socket:
    return socket.create_connection((running.host, running.port), timeout=10)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer on ``sock``, read until the server closes
    (a reset after the answer is a close too)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def ask(running: web.RunningServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(running) as sock:
        sock.sendall(request)
        return read_answer(sock)


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def assert_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS:
        assert headers.get(name) == value, (name, headers)


class Dripping:
    """Clients that each send a request's head one line at a time, ``every`` seconds."""

    def __init__(self, running: web.RunningServer, count: int, every: float) -> None:
        self.sockets = [connect(running) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self.every, self.rounds, self.failures = every, 0, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.drip, daemon=True)
        self.thread.start()

    def drip(self) -> None:
        while not self.stopping.wait(self.every):
            for sock in self.sockets:
                try:
                    sock.sendall(b"X-Slow-%d: still coming\r\n" % self.rounds)
                except OSError:
                    self.failures += 1
            self.rounds += 1

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        for sock in self.sockets:
            sock.close()


def test_slow_clients_cost_a_socket_not_a_thread(served: web.RunningServer) -> None:
    dripping = Dripping(served, SLOW_CLIENTS, every=1.0)
    try:
        for _ in range(20):  # over some rounds of lines
            started = time.monotonic()
            status, _, body = ask(served, get("/healthz"))
            assert (status, body) == (200, b"ok\n")
            assert time.monotonic() - started < 5
            time.sleep(0.15)
        assert dripping.rounds >= 2 and dripping.failures == 0  # all still connected
    finally:
        dripping.close()
    assert ask(served, get("/healthz"))[0] == 200


def memory_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def test_a_huge_head_is_refused_unread(served: web.RunningServer) -> None:
    assert ask(served, get("/healthz"))[0] == 200  # warm
    try:  # count the peak from here on, where the kernel lets us
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        field = "VmHWM"
    except OSError:
        field = "VmRSS"
    before = memory_kib("VmRSS")
    chunk, sent = b"a" * 65536, 0
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        sock.settimeout(2)
        while sent < 8 * 2**20 and not select.select([sock], [], [], 0)[0]:
            try:
                sent += sock.send(chunk)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break  # the server stopped reading, or closed
        sock.settimeout(10)
        status, headers, _ = read_answer(sock)
    assert status == 431
    assert_security_headers(headers)
    assert headers["Connection"] == "close"
    assert memory_kib(field) - before < 8 * 1024, (field, sent)
    assert ask(served, get("/healthz"))[0] == 200


def test_the_servers_own_errors_carry_the_security_headers(served: web.RunningServer) -> None:
    status, headers, _ = ask(served, b"NOT AN HTTP REQUEST LINE\r\n\r\n")
    assert status == 400
    assert_security_headers(headers)
    big_body = b"POST /api/jobs/x/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
    status, headers, _ = ask(served, big_body % (2 * web_server.MAX_BODY))
    assert status == 413
    assert_security_headers(headers)
    assert headers["Server"] == "crontabber"  # and no version


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("DELETE", "/", "GET, HEAD"), ("POST", "/healthz", "GET, HEAD")],
)
def test_another_method_is_405_with_allow(
    served: web.RunningServer, method: str, path: str, allow: str
) -> None:
    status, headers, _ = ask(served, get(path, method))
    assert (status, headers["Allow"]) == (405, allow)
    assert_security_headers(headers)


def closed_within(sock: socket.socket, seconds: float, drip: float | None = None) -> float:
    """Seconds until the server closes ``sock``, sending a header line every ``drip``
    seconds meanwhile (none when None)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if drip is not None:
            try:
                sock.sendall(b"X-Slow: still coming\r\n")
            except OSError:
                return time.monotonic() - started
        if select.select([sock], [], [], drip or 0.2)[0]:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
    raise AssertionError(f"still open after {seconds} s")


def test_a_head_that_takes_too_long_and_a_silent_client_are_closed(
    sqlite_state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_server, "REQUEST_SECONDS", 2)
    monkeypatch.setattr(web_server, "IDLE_SECONDS", 2)
    monkeypatch.setattr(web_server, "CHECK_SECONDS", 0.5)
    running = web.start_server(web.create_app(sqlite_state, []), "127.0.0.1", 0)
    try:
        with connect(running) as slow, connect(running) as silent:
            connected = time.monotonic()
            slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert closed_within(slow, 15, drip=0.3) > 1.5  # busy, but never done
            closed_within(silent, 15)
            assert time.monotonic() - connected > 1.5
        assert ask(running, get("/healthz"))[0] == 200
    finally:
        running.stop()


def test_a_liveness_hook_fails_healthz_with_its_reason(sqlite_state: str) -> None:
    reason: list[str | None] = [None]
    app = web.create_app(sqlite_state, [], liveness=lambda: reason[0])
    try:
        reply = call(app, "/healthz")
        assert (reply.status, reply.body) == (200, "ok\n")
        reason[0] = "the scheduler has not ticked for 5 minutes"
        reply = call(app, "/healthz")
        assert (reply.status, reply.body) == (503, "the scheduler has not ticked for 5 minutes\n")
        assert reply.headers["Content-Type"].startswith("text/plain")
        assert_security_headers(reply.headers)
        assert call(app, "/").status == 200  # the pages go on
        reason[0] = "two\nlines"
        assert call(app, "/healthz").body == "two lines\n"
    finally:
        app.close()
    app = web.create_app("postgresql://nobody@127.0.0.1:9/nowhere", [], liveness=lambda: None)
    try:
        assert call(app, "/healthz").status == 503  # no hook says: the database check
    finally:
        app.close()
