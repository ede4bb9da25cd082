"""The session's retries and the server's timeouts, without a database: ``give_up``
ends the retries at once, and each statement's ``lock_timeout`` and
``statement_timeout`` sit below its client deadline. (With PostgreSQL and a table
lock: tests/faults/test_table_lock.py.)"""

from __future__ import annotations

import datetime as dt
import time

import psycopg2
import pytest

from crontabber.db.retry import lock_timed_out
from crontabber.db.url import parse_url
from crontabber.errors import StateStoreError
from crontabber.store import open_store
from crontabber.store.session import Session

URL = parse_url("postgresql://u@127.0.0.1:9/db")  # never connected to: see lost_connections
LOST = "server closed the connection unexpectedly"


class Closed:
    """A connection that is already gone: every use fails as a lost connection."""

    def __init__(self) -> None:
        self.used = 0

    def cursor(self) -> None:
        self.used += 1
        raise psycopg2.OperationalError(LOST)

    def close(self) -> None:
        pass


def session(**options: object) -> tuple[Session, list[Closed]]:
    """A session whose every connection is :class:`Closed`, and those it opened."""
    opened: list[Closed] = []

    def connect(_url: object) -> Closed:
        opened.append(Closed())
        return opened[-1]

    made = Session(URL, **options)  # type: ignore[arg-type]
    made.connection_factory = connect  # type: ignore[assignment]
    return made, opened


def write(made: Session) -> None:
    made._retrying("writing", lambda connection: connection.cursor())


def test_without_give_up_a_transient_failure_is_retried_for_retry_for() -> None:
    made, opened = session(retry_for=dt.timedelta(seconds=1.2))
    started = time.monotonic()
    with pytest.raises(StateStoreError, match=f"^writing failed: {LOST}; its claim will expire"):
        write(made)
    assert len(opened) == 2  # pauses of 0.5 s, then 1 s would pass retry_for
    assert 0.4 < time.monotonic() - started < 1.2


def test_give_up_before_a_pause_raises_the_failure_at_once() -> None:
    asked: list[int] = []
    made, opened = session(
        retry_for=dt.timedelta(seconds=60), give_up=lambda: asked.append(1) or True
    )
    started = time.monotonic()
    with pytest.raises(StateStoreError, match=f"^writing failed: {LOST}"):
        write(made)
    assert time.monotonic() - started < 0.2
    assert len(opened) == 1 and asked == [1]


def test_give_up_is_asked_during_a_pause_too() -> None:
    """A signal that comes while a pause is under way ends it within a tenth of a second."""
    made, opened = session(retry_for=dt.timedelta(seconds=60))
    stop_at = time.monotonic() + 2.0  # during the third pause (0.5 s, 1 s, then 2 s)
    made.give_up = lambda: time.monotonic() >= stop_at
    with pytest.raises(StateStoreError):
        write(made)
    assert len(opened) == 3
    assert time.monotonic() - stop_at < 0.3


def test_give_up_is_an_option_of_the_store() -> None:
    def never() -> bool:
        return False

    store = open_store("postgresql://u@127.0.0.1:9/db", give_up=never)
    assert store.give_up is never
    store.give_up = None  # a caller may set it, or clear it, later


@pytest.mark.parametrize(
    ("deadline", "lock_ms", "statement_ms"),
    [
        (10.0, 3000, 9000),  # the default state_timeout: the server ends it 1 s sooner
        (30.0, 3000, 27000),  # a longer deadline: lock_timeout stays a share of timeout
        (4.0, 1800, 3500),  # the end of the retries: never over half the statement's
        (1.0, 200, 500),  # to the tenth of a second
    ],
)
def test_the_server_ends_a_statement_before_its_deadline(
    deadline: float, lock_ms: int, statement_ms: int
) -> None:
    made = Session(URL)  # timeout: 10 s
    timeouts = made.server_timeouts(deadline)
    assert timeouts == {"lock_timeout_ms": lock_ms, "statement_timeout_ms": statement_ms}
    assert timeouts["lock_timeout_ms"] < timeouts["statement_timeout_ms"] < deadline * 1000


def test_no_server_timeouts_without_a_deadline_or_on_sqlite() -> None:
    assert Session(URL, timeout=None).server_timeouts(None) is None
    assert Session(URL, timeout=dt.timedelta(0)).server_timeouts(10.0) is None
    assert Session(parse_url("sqlite:///state.sqlite")).server_timeouts(10.0) is None


class Diag:
    def __init__(self, source_function: str | None) -> None:
        self.source_function = source_function


class LockError(Exception):
    """Stands for psycopg2's LockNotAvailable, whose pgcode and diag are read-only."""

    pgcode = "55P03"

    def __init__(self, message: str, source_function: str | None) -> None:
        super().__init__(message)
        self.diag = Diag(source_function)


def test_a_lock_timeout_is_told_apart_from_a_nowait_lock() -> None:
    """Same SQLSTATE: the server names the C function that raised it (untranslated)."""
    timed_out = "canceling statement due to lock timeout"
    nowait = 'could not obtain lock on row in relation "crontabber"'
    assert lock_timed_out(LockError(timed_out, "ProcessInterrupts"))
    assert not lock_timed_out(LockError(nowait, "heap_lock_tuple"))
    translated = "Abbruch der Anweisung wegen Zeitüberschreitung einer Sperre"
    assert lock_timed_out(LockError(translated, "ProcessInterrupts"))
    # a server or proxy that names no function: the message is all there is
    assert lock_timed_out(LockError(timed_out, None))
    assert not lock_timed_out(LockError(nowait, None))
    assert not lock_timed_out(psycopg2.OperationalError(LOST))
