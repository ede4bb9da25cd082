"""A webhook receiver on 127.0.0.1 that a test starts: it keeps every JSON body POSTed
to it, and answers as the test says (200, a 503 while "down", or not at all)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.status = 200  # what it answers
        self.hang = threading.Event()  # set: requests wait until it is cleared
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.paths.append(self.path)  # every request, as it arrives
                hung = receiver.hang.is_set()
                while receiver.hang.is_set():  # a receiver that does not answer
                    time.sleep(0.05)
                with receiver._lock:
                    if receiver.status == 200 and not hung:  # a hung one is not received
                        receiver.bodies.append(json.loads(body or b"{}"))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self, kind: str | None = None, app_name: str | None = None) -> list[dict]:
        with self._lock:
            return [
                body
                for body in self.bodies
                if (kind is None or body.get("event") == kind)
                and (app_name is None or body.get("app_name") == app_name)
            ]


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.hang.clear()
        found.server.shutdown()
        found.server.server_close()
        thread.join(timeout=5)


class Mailbox:
    """What a local SMTP server (aiosmtpd) received: each message's subject and body."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.port = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        import email

        message = email.message_from_bytes(envelope.content)  # type: ignore[attr-defined]
        self.messages.append((str(message["Subject"]), message.get_payload()))
        return "250 OK"

    def subjects(self, containing: str) -> list[str]:
        return [subject for subject, _ in self.messages if containing in subject]


@contextmanager
def mailbox() -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1, in a thread of its own (no STARTTLS, no login)."""
    import socket

    from aiosmtpd.controller import Controller

    found = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        found.port = probe.getsockname()[1]
    controller = Controller(found, hostname="127.0.0.1", port=found.port)
    controller.start()
    try:
        yield found
    finally:
        controller.stop()
