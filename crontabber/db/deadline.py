"""A deadline on every statement: a database that stops answering cannot hold crontabber.

A network that drops packets without closing the connection (a partition, a
frozen proxy, a host that went away) leaves a blocking read waiting for ever:
TCP keepalives do not help while a proxy's kernel still answers them. So each
statement crontabber sends to the state database runs under a
:class:`Deadline`: when it has not returned in time, a timer thread shuts the
connection's socket down, the driver's read fails at once with a lost
connection, and the caller's retry policy (:mod:`crontabber.db.retry`) decides
what happens next: another attempt on a new connection, or one line and an exit.

Connecting has its own deadline, libpq's ``connect_timeout``
(:data:`crontabber.db.connect.POSTGRES_DEFAULTS`). SQLite has no network and no
deadline here: its busy timeout bounds a wait for another process's lock.
"""

from __future__ import annotations

import os
import threading

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


class Deadline:
    """``with Deadline(connection, seconds):`` shuts the connection's socket down if the
    block outlives ``seconds`` (None or a connection without a socket: no deadline).
    ``expired`` says afterwards whether it did."""

    def __init__(self, connection: Any, seconds: float | None) -> None:
        fileno = getattr(connection, "fileno", None)
        self.seconds = seconds
        self.expired = False
        self._fileno = fileno() if callable(fileno) and seconds is not None else None
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        if self._fileno is not None and self.seconds is not None:
            self._timer = threading.Timer(max(self.seconds, 0.0), self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        assert self._fileno is not None
        shutdown(self._fileno)


def shutdown(fileno: int) -> None:
    """Shut down the socket behind ``fileno`` for reading and writing; the descriptor
    stays open (its owner closes it), and a socket already gone is no error."""
    import socket  # only when a deadline passes: a tick does not pay for the import

    try:
        duplicate = os.dup(fileno)
    except OSError:
        return
    try:
        with socket.socket(fileno=duplicate) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
