"""A deadline on every statement: a database that stops answering cannot hold crontabber.

A network that drops packets without closing the connection (a partition, a
frozen proxy, a host that went away) leaves a blocking read waiting for ever:
TCP keepalives do not help while a proxy's kernel still answers them. So each
statement crontabber sends to the state database runs under a
:class:`Deadline`: when it has not returned in time, a watchdog thread (one per
process, started with the first deadline, woken only when a deadline is sooner
than any it waits for) shuts the connection's socket down, the driver's read fails at once with a lost
connection, and the caller's retry policy (:mod:`crontabber.db.retry`) decides
what happens next: another attempt on a new connection, or one line and an exit.

Connecting has its own deadline, libpq's ``connect_timeout``
(:data:`crontabber.db.connect.POSTGRES_DEFAULTS`). SQLite has no network and no
deadline here: its busy timeout bounds a wait for another process's lock.
"""

from __future__ import annotations

import os
import threading
import time

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


class Deadline:
    """``with Deadline(connection, seconds):`` shuts the connection's socket down if the
    block outlives ``seconds`` (None or a connection without a socket: no deadline).
    ``expired`` says afterwards whether it did, ``started`` when the block began."""

    def __init__(self, connection: Any, seconds: float | None) -> None:
        fileno = getattr(connection, "fileno", None)
        self.seconds = seconds
        self.expired = False
        self.started = 0.0  # when the block began (monotonic)
        self._fileno = fileno() if callable(fileno) and seconds is not None else None

    def __enter__(self) -> Deadline:
        self.started = time.monotonic()
        if self._fileno is not None and self.seconds is not None:
            _watchdog.arm(self, time.monotonic() + max(self.seconds, 0.0))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fileno is not None:
            _watchdog.disarm(self)

    def _expire(self) -> None:
        self.expired = True
        assert self._fileno is not None
        shutdown(self._fileno)


class _Watchdog:
    """The one thread that expires deadlines. Arming and disarming are a dict write
    under a lock; the thread is woken only when a new deadline is sooner than the one
    it sleeps until, so a statement costs no thread start and, mostly, no wake-up."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._armed: dict[int, tuple[float, Deadline]] = {}
        self._thread: threading.Thread | None = None
        self._until: float | None = None  # when the thread wakes next (None: not waiting)

    def arm(self, deadline: Deadline, when: float) -> None:
        with self._lock:
            self._armed[id(deadline)] = (when, deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="crontabber-deadlines", daemon=True
                )
                self._thread.start()
            elif self._until is None or when < self._until:
                self._lock.notify()

    def disarm(self, deadline: Deadline) -> None:
        with self._lock:
            self._armed.pop(id(deadline), None)

    def _loop(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for key, (when, deadline) in list(self._armed.items()):
                    if when <= now:
                        del self._armed[key]
                        deadline._expire()
                earliest = min((when for when, _ in self._armed.values()), default=None)
                self._until = earliest
                self._lock.wait(None if earliest is None else earliest - now)
                self._until = None

    def _after_fork(self) -> None:
        """In a forked child: no thread, no lock held, nothing armed."""
        self.__init__()  # type: ignore[misc]


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog._after_fork)


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
