"""One connection to the state database, and the one retry policy around every use of it.

:class:`Session` is what a state store is built on: it opens its connection
lazily (``connection_factory``, :func:`crontabber.db.connect.connect` unless a
program wraps it), keeps it for the next operation, and runs each operation
through :meth:`Session._retrying`: transient trouble (judged by
:func:`crontabber.db.retry.is_transient`) is retried on a new connection with
the pauses of its :class:`~crontabber.db.retry.RetryPolicy`, and any other
driver error becomes a one-line :class:`~crontabber.errors.StateStoreError`.
A caller may stop the retries early: ``give_up()``, asked before and during each
pause, ends them with the failure at once (a signal to stop, say).

Each statement has two limits. The client's deadline
(:mod:`crontabber.db.deadline`, ``timeout``) shuts a connection down that stops
answering. On PostgreSQL the server is also told, with each statement, to end
it sooner (:meth:`Session.server_timeouts`): ``lock_timeout``
(:data:`LOCK_TIMEOUT_SHARE` of ``timeout``: 3 s of the default 10 s) and
``statement_timeout`` (a little short of the deadline), as ``SET LOCAL`` in the
same query string (see ``timeouts`` in ``sql/postgresql.sql``), unless the
connection has them as its own settings (:mod:`crontabber.store.timeouts`). So a
statement stuck behind another session's lock ends with a one-line error that says
so, on a connection that survives, and is retried like any transient trouble.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from crontabber.db.connect import POSTGRES_DEFAULTS, connect
from crontabber.db.deadline import Deadline
from crontabber.db.retry import (
    LOCK_NOT_AVAILABLE,
    QUERY_CANCELED,
    SHUTDOWN_SQLSTATES,
    RetryPolicy,
    describe_error,
    driver_errors,
    is_lost_connection,
    lock_timed_out,
    sqlstate,
)
from crontabber.errors import CannotReach, LockNotAvailable, StateStoreError, Unreachable
from crontabber.store.timeouts import ConnectionTimeouts

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from crontabber.db.url import DatabaseURL

    T = TypeVar("T")

RETRY_FOR = dt.timedelta(seconds=60)  # how long state writes are retried through trouble
TIMEOUT = dt.timedelta(seconds=10)  # how long one statement may go unanswered
FIRST_DELAY, MAX_DELAY = 0.5, 10.0  # seconds between retries: doubling, capped
GIVE_UP_POLL = 0.1  # seconds: how often give_up() is asked during a pause
# The server's limits on a statement with a deadline of D seconds (PostgreSQL):
# statement_timeout D less a tenth of it, at least 0.5 s (10 s: 9 s), and never under
# D/2; lock_timeout a share of the store's timeout, never over half the statement's.
LOCK_TIMEOUT_SHARE = 0.3
STATEMENT_TIMEOUT_MARGIN, MIN_STATEMENT_TIMEOUT_MARGIN = 0.1, 0.5
EXPIRES = "; its claim will expire and a later run recovers"
PROBE_SECONDS = 2.0  # at most, to ask the hosts whether they are down, when a heartbeat fails
MIN_PROBE_SECONDS = 0.25  # at least: a port that refuses says so at once

log = logging.getLogger("crontabber")


class Session:
    """A state database's URL, its connection (opened when first used) and its retry policy."""

    # How a connection is opened: crontabber.db.connect.connect; a program may wrap it
    # (to trace what is sent, say), taking and returning what it does.
    connection_factory: Callable[[DatabaseURL], Any] = staticmethod(connect)

    def __init__(
        self,
        url: DatabaseURL,
        *,
        retry_for: dt.timedelta = RETRY_FOR,
        timeout: dt.timedelta | None = TIMEOUT,
        give_up: Callable[[], bool] | None = None,
    ) -> None:
        self.url = url
        self.retry_for = retry_for
        self.timeout = timeout
        self.give_up = give_up  # True: stop retrying, raise the failure now
        self.retry = RetryPolicy(
            first_delay=FIRST_DELAY, max_delay=MAX_DELAY, within=retry_for.total_seconds()
        )
        self._connection: Any = None
        # The one connection serves this process's every statement, the heartbeat's
        # thread included, one at a time: a process holds one connection, however busy.
        self._in_use = threading.Lock()
        self._engine: Any = None
        # The server's timeouts of the statements being run (under _in_use), or None.
        self._timeouts: dict[str, int] | None = None
        self._connection_timeouts = ConnectionTimeouts()  # those the connection has

    @property
    def engine(self) -> Any:
        """A SQLAlchemy engine on the same database (imports SQLAlchemy): for
        migrations and tests, never for a tick."""
        if self._engine is None:
            from crontabber.db.connect import sqlalchemy_engine

            self._engine = sqlalchemy_engine(self.url)
        return self._engine

    def close(self) -> None:
        with self._in_use:
            self._close_quietly("_connection")
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _connect(self) -> Any:
        if self._connection is None:
            usual = self.server_timeouts(self.deadline_seconds())
            url = self._connection_timeouts.url(self.url, usual)
            try:
                try:
                    self._connection = self.connection_factory(url)
                except driver_errors() as exc:
                    if url is self.url or not self._connection_timeouts.refuses(exc):
                        raise
                    url = self.url
                    self._connection = self.connection_factory(url)
            except driver_errors() as exc:
                raise Unreachable(exc) from exc
            self._connection_timeouts.opened(usual if url is not self.url else None)
        return self._connection

    def _close_quietly(self, attribute: str) -> None:
        connection = getattr(self, attribute)
        setattr(self, attribute, None)
        if connection is not None:
            try:
                connection.close()
            except driver_errors():
                pass  # it is gone either way

    def _retrying(
        self,
        what: str,
        operation: Callable[[Any], T],
        *,
        claimed: bool = True,
        holds: bool | None = None,
    ) -> T:
        """``operation(connection)``, retried on a new connection through transient
        trouble for ``retry_for``; other errors become one-line StateStoreErrors.

        A database that cannot be reached for the first read of a run is said at
        once; once a run claims, reaching it again is retried too. ``holds``
        (default: ``claimed``): whether a claim is held, so that a failure says it
        will expire; a claim being made holds none yet.
        """
        expires = EXPIRES if (claimed if holds is None else holds) else ""
        pauses = self.retry.pauses()
        while True:
            deadline: Deadline | None = None
            try:
                with self._in_use:
                    connection = self._connect()
                    deadline = self._deadline(connection, self.deadline_seconds(pauses.remaining()))
                    with deadline:
                        return operation(connection)
            except Unreachable as exc:
                error: BaseException = exc.error
                said = f"cannot reach the state database {self.url.safe}: {describe_error(error)}"
                if not claimed:
                    raise CannotReach(said) from error
                failure: StateStoreError = CannotReach(f"{what} failed: {said}{expires}")
                pause = pauses.next()
            except LockNotAvailable:
                raise
            except driver_errors() as exc:
                error = exc
                said, transient = self._failed(exc, deadline)
                failure = StateStoreError(f"{what} failed: {said}{expires}")
                pause = pauses.next() if transient else None
            if pause is None or self._gives_up():
                raise failure from error
            log.warning("%s failed: %s; retrying in %.1fs", what, said, pause)
            if not self._wait_to_retry(pause):
                raise failure from error

    def _once(self, operation: Callable[[Any], T], seconds: float | None) -> T:
        """``operation(connection)``, one attempt under a deadline of ``seconds``: errors
        are raised, the driver's with the connection closed, the server's timeouts (see
        :meth:`server_timeouts`) as a one-line StateStoreError, the connection kept."""
        with self._in_use:
            connection = self._connect()
            deadline = self._deadline(connection, seconds)
            try:
                with deadline:
                    return operation(connection)
            except driver_errors() as exc:
                timed_out = self.server_timed_out(exc, deadline)
                if timed_out is not None:
                    raise StateStoreError(timed_out) from exc
                self._close_quietly("_connection")
                raise

    def _failed(self, exc: BaseException, deadline: Deadline | None) -> tuple[str, bool]:
        """A failed attempt's error in one line, and whether it is worth another."""
        timed_out = self.server_timed_out(exc, deadline)
        if timed_out is not None:  # the server ended the statement: the connection is fine
            return timed_out, True
        if sqlstate(exc) == LOCK_NOT_AVAILABLE:
            raise LockNotAvailable() from exc
        with self._in_use:
            self._close_quietly("_connection")
        self._check_failure(exc)
        said = describe_error(exc)
        if deadline is not None and deadline.expired:
            said = f"the state database did not answer within {deadline.seconds:g}s"
        return said, self.retry.transient(exc)

    def _check_failure(self, exc: BaseException) -> None:
        """Raise a StateStoreError of its own when ``exc`` says more than its line (a
        corrupt SQLite file): nothing on PostgreSQL."""

    def check_integrity(self) -> None:
        """Raise :class:`~crontabber.errors.StateFileCorrupt` when the database is
        damaged: SQLite's ``PRAGMA quick_check`` (it reads the whole file); nothing on
        PostgreSQL, whose server checks its own pages."""

    def _gives_up(self) -> bool:
        return self.give_up is not None and bool(self.give_up())

    def _wait_to_retry(self, seconds: float) -> bool:
        """Sleep ``seconds`` before a retry; False, at once, when ``give_up()`` says so."""
        ends = time.monotonic() + seconds
        while (left := ends - time.monotonic()) > 0:
            if self._gives_up():
                return False
            time.sleep(min(left, GIVE_UP_POLL) if self.give_up is not None else left)
        return True

    def _deadline(self, connection: Any, seconds: float | None) -> Deadline:
        """The deadline of the next statements on ``connection`` (``_in_use`` held), and
        the server's timeouts they are sent with (``_timeouts``)."""
        self._timeouts = self.server_timeouts(seconds)
        return Deadline(connection, seconds)

    def server_timeouts(self, deadline: float | None) -> dict[str, int] | None:
        """The ``lock_timeout_ms`` and ``statement_timeout_ms`` a statement with a client
        deadline of ``deadline`` seconds is sent with: the statement timeout a little
        short of the deadline, so that the server ends the statement first and the
        connection survives, the lock timeout shorter still. None (nothing is sent) on
        SQLite or without a deadline."""
        lock = self.lock_timeout_seconds
        if deadline is None or lock is None or self.url.dialect != "postgresql":
            return None
        margin = max(deadline * STATEMENT_TIMEOUT_MARGIN, MIN_STATEMENT_TIMEOUT_MARGIN)
        statement = max(deadline - margin, deadline / 2)
        return {
            "lock_timeout_ms": tenths_in_ms(min(lock, statement / 2)),
            "statement_timeout_ms": tenths_in_ms(statement),
        }

    @property
    def lock_timeout_seconds(self) -> float | None:
        """How long a statement may wait for another session's lock (PostgreSQL's
        ``lock_timeout``): LOCK_TIMEOUT_SHARE of ``timeout``; None without one."""
        if self.timeout is None or self.timeout <= dt.timedelta(0):
            return None
        return self.timeout.total_seconds() * LOCK_TIMEOUT_SHARE

    def server_timed_out(self, exc: BaseException, deadline: Deadline | None) -> str | None:
        """``exc`` in one line when it is the server ending a statement run under
        ``deadline`` at one of its :meth:`server_timeouts`; None otherwise (a ``NOWAIT``
        lock that was not available, a cancel that came before the statement timeout)."""
        timeouts = None if deadline is None else self.server_timeouts(deadline.seconds)
        if timeouts is None or deadline is None:
            return None
        if lock_timed_out(exc):
            seconds = timeouts["lock_timeout_ms"] / 1000
            return f"the state tables are locked by another session (lock_timeout {seconds:g}s)"
        seconds = timeouts["statement_timeout_ms"] / 1000
        if sqlstate(exc) == QUERY_CANCELED and time.monotonic() - deadline.started >= seconds * 0.9:
            return f"the statement ran past its statement_timeout ({seconds:g}s)"
        return None

    def deadline_seconds(self, remaining: float | None = None) -> float | None:
        """How long the next statement may take: ``timeout``, but no longer than the
        ``remaining`` seconds of its retries (at least one); None: no deadline."""
        if self.timeout is None or self.timeout <= dt.timedelta(0):
            return None
        seconds = self.timeout.total_seconds()
        return seconds if remaining is None else min(seconds, max(remaining, 1.0))

    def server_is_down(self, exc: BaseException, within: float = PROBE_SECONDS) -> bool:
        """Whether ``exc`` shows the database down or restarting for every client alike,
        rather than out of this process's reach: SQLSTATE 57P01-57P03, or a lost
        connection while every host of the URL refuses connections (or, when the URL
        lists several, answers as a standby still in recovery: a failover under
        way), so that no host can claim anything. The lease rule does not count such
        time against a lease; a silent network gives timeouts, never this. Answers
        within ``within`` seconds (a host that has not answered by then is not down)."""
        if isinstance(exc, Unreachable):  # the beat could not even connect
            exc = exc.error
        if sqlstate(exc) in SHUTDOWN_SQLSTATES:
            return True
        if not is_lost_connection(exc):
            return False
        addresses = tcp_addresses(self.url)
        # Within the caller's time, but never too short for a refused port to be seen.
        ends = time.monotonic() + max(min(within, PROBE_SECONDS), MIN_PROBE_SECONDS)
        for host, port in addresses:
            if refuses_connections(host, port, ends):
                continue
            if len(addresses) == 1 or not self._in_recovery(host, port, ends):
                return False
        return bool(addresses)

    def _in_recovery(self, host: str, port: int, ends: float) -> bool:
        """Whether ``host:port`` answers as a standby (in recovery) before ``ends``."""
        import psycopg2  # only when a heartbeat fails: a tick does not pay for it

        args = {**POSTGRES_DEFAULTS, **self.url.connect_args, "host": host, "port": port}
        args.pop("target_session_attrs", None)
        try:  # asynchronous, so that a host that does not answer is given up on in time
            connection = psycopg2.connect(**args, async_=True)
        except Exception:
            return False
        try:
            if not _answered(connection, ends):
                return False
            cursor = connection.cursor()
            cursor.execute("SELECT pg_is_in_recovery()")
            return _answered(connection, ends) and bool(cursor.fetchone()[0])
        except Exception:  # refused, failed or cut: not known to be a standby
            return False
        finally:
            connection.close()


def tenths_in_ms(seconds: float) -> int:
    """``seconds`` to the tenth (at least one), in milliseconds: a timeout as it is said."""
    return max(round(seconds * 10), 1) * 100


def _answered(connection: Any, ends: float) -> bool:
    """Poll an asynchronous psycopg2 connection until its operation is done (True) or
    ``ends`` (monotonic) has passed (False)."""
    import select

    import psycopg2.extensions as ext

    while True:
        state = connection.poll()
        if state == ext.POLL_OK:
            return True
        left = ends - time.monotonic()
        if left <= 0:
            return False
        if state == ext.POLL_READ:
            select.select([connection.fileno()], [], [], left)
        else:
            select.select([], [connection.fileno()], [], left)


def tcp_addresses(url: DatabaseURL) -> list[tuple[str, int]]:
    """The TCP hosts and ports of a PostgreSQL URL, in order; none when any is a socket
    file or the URL gives ``hostaddr`` (whose hosts a probe would not find the same)."""
    host = str(url.connect_args.get("host") or "")
    if url.dialect != "postgresql" or not host or "hostaddr" in url.connect_args:
        return []
    hosts = host.split(",")
    ports = str(url.connect_args.get("port") or "5432").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    if len(ports) != len(hosts) or any(not h or h.startswith("/") for h in hosts):
        return []
    return [(h, int(p) if p.isdigit() else 5432) for h, p in zip(hosts, ports, strict=True)]


def refuses_connections(host: str, port: int, ends: float | None = None) -> bool:
    """Whether ``host:port`` actively refuses a TCP connection (nothing listens there),
    asked for a second at most, and not past ``ends`` (monotonic)."""
    import socket  # only when a heartbeat fails: a tick does not pay for the import

    seconds = 1.0 if ends is None else min(1.0, ends - time.monotonic())
    if seconds <= 0:
        return False
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False
