"""A connection to PostgreSQL is opened with the usual ``lock_timeout`` and
``statement_timeout`` as its own settings (libpq's ``options``), read back before its
second statement; from then on a statement with the usual timeouts carries no
``SET LOCAL`` (crontabber.store.timeouts). Behind a PgBouncer that refuses the options,
or drops them, every statement carries its timeouts as before, and a table lock still
ends at ``lock_timeout``."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crontabber.db.connect import connect
from crontabber.db.url import DatabaseURL
from crontabber.errors import StateStoreError
from crontabber.store import Holder, StateStore, open_store
from crontabber.store.queries import queries
from crontabber.store.timeouts import ConnectionTimeouts

from ..helpers.pgbouncer import pgbouncer, through
from ..helpers.store import table_locked

pytestmark = pytest.mark.postgres

TIMEOUT = dt.timedelta(seconds=2)  # lock_timeout 600 ms, statement_timeout 1.5 s
RETRY_FOR = dt.timedelta(seconds=2)
CARRIED = queries("postgresql")["timeouts"] + ";\n"
CHECK = queries("postgresql")["session_timeouts"]
# 0.6 s at first; a retry has less time left, and a shorter lock timeout
LOCKED = re.compile(r"the state tables are locked by another session \(lock_timeout [\d.]+s\)")


class Sent:
    """What a store sends: each query string, and the options of each connect."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.params: list[Any] = []
        self.options: list[str | None] = []

    def connect(self, url: DatabaseURL) -> Any:
        self.options.append(url.connect_args.get("options"))
        return _Connection(connect(url), self)

    def kinds(self) -> list[str]:
        """Per query string: "check", "carried" (with SET LOCAL) or "bare"."""
        return [
            "check" if sql == CHECK else "carried" if sql.startswith(CARRIED) else "bare"
            for sql in self.sql
        ]


class _Connection:
    def __init__(self, connection: Any, sent: Sent) -> None:
        self._connection, self._sent = connection, sent

    def cursor(self) -> Any:
        cursor, sent = self._connection.cursor(), self._sent

        class Cursor:
            def execute(self, text: str, params: Any = None) -> Any:
                sent.sql.append(text)
                sent.params.append(params)
                return cursor.execute(text, params)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc_info: Any) -> None:
                cursor.close()

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


@contextlib.contextmanager
def sent_by(url: str) -> Iterator[tuple[StateStore, Sent]]:
    with contextlib.closing(open_store(url)) as schema:
        schema.ensure_schema()
    store = open_store(url, retry_for=RETRY_FOR, timeout=TIMEOUT)
    sent = Sent()
    store.connection_factory = sent.connect  # type: ignore[assignment]
    try:
        yield store, sent
    finally:
        store.close()


def own_settings(store: StateStore) -> tuple[str, str]:
    with store._connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
        )
        return cursor.fetchone()


def test_statements_stop_carrying_the_timeouts_the_connection_has(pg_url: str) -> None:
    with sent_by(pg_url) as (store, sent):
        for _ in range(3):
            store.load_states()
        assert sent.options == ["-c lock_timeout=600 -c statement_timeout=1500"]
        assert sent.kinds() == ["carried", "check", "bare", "bare"]
        assert own_settings(store) == ("600ms", "1500ms")


def test_a_connection_that_serves_one_statement_is_not_checked(pg_url: str) -> None:
    with sent_by(pg_url) as (store, sent):
        store.load_states()
        store.close()
        store.load_states()
        assert sent.kinds() == ["carried", "carried"]  # two connections, one statement each


def test_a_statement_with_other_timeouts_carries_them(pg_url: str) -> None:
    """A heartbeat under a short lease has a shorter deadline than the usual one."""
    with sent_by(pg_url) as (store, sent):
        store.load_states()
        store.load_states()
        store.heartbeat("nobody", Holder("here", 1), dt.timedelta(seconds=3))  # 1 s deadline
        assert sent.kinds() == ["carried", "check", "bare", "carried"]
        assert sent.params[-1]["statement_timeout_ms"] == 500


def locked_read(store: StateStore, url: str) -> str:
    with table_locked(url):
        started = time.monotonic()
        with pytest.raises(StateStoreError) as failed:
            store.load_states()
        assert time.monotonic() - started < RETRY_FOR.total_seconds() + TIMEOUT.total_seconds()
    return str(failed.value)


def test_a_table_lock_ends_at_the_connections_own_lock_timeout(pg_url: str) -> None:
    with sent_by(pg_url) as (store, sent):
        store.load_states()
        store.load_states()
        assert LOCKED.search(locked_read(store, pg_url))
        assert sent.kinds()[2] == "bare"  # under the connection's own (a retry with less
        # time left carries shorter ones)
        assert len(sent.options) == 1  # the connection survived the lock timeouts


def test_behind_a_pgbouncer_that_refuses_the_options_statements_carry_them(pg_url: str) -> None:
    with pgbouncer(pg_url) as port, sent_by(through(pg_url, port)) as (store, sent):
        for _ in range(3):
            store.load_states()
        store.close()  # a new connection does not ask again
        store.load_states()
        assert sent.options == ["-c lock_timeout=600 -c statement_timeout=1500", None, None]
        assert sent.kinds() == ["carried"] * 4
        assert LOCKED.search(locked_read(store, pg_url))


def test_behind_a_pgbouncer_that_drops_the_options_statements_carry_them(pg_url: str) -> None:
    """``ignore_startup_parameters = options``: the connect succeeds and the settings are
    not there. Read back, they are found missing: the lock timeout still holds."""
    with (
        pgbouncer(pg_url, ignore="options") as port,
        sent_by(through(pg_url, port)) as (
            store,
            sent,
        ),
    ):
        for _ in range(3):
            store.load_states()
        assert sent.options == ["-c lock_timeout=600 -c statement_timeout=1500"]
        assert sent.kinds() == ["carried", "check", "carried", "carried"]
        assert LOCKED.search(locked_read(store, pg_url))


@pytest.mark.parametrize(
    "said",
    [
        "FATAL:  unsupported startup parameter: options",
        "FATAL:  unsupported startup parameter in options: lock_timeout",
        "FATAL:  unsupported options startup parameter: parameter too long",
    ],
)
def test_each_way_a_pgbouncer_refuses_the_options_is_heard(said: str) -> None:
    known = ConnectionTimeouts()
    assert not known.refuses(Exception("FATAL:  password authentication failed"))
    assert not known.refused
    assert known.refuses(Exception(said))
    assert known.refused


def test_the_timeouts_follow_the_options_a_url_has_and_sqlite_gets_none() -> None:
    from crontabber.db.url import parse_url

    known = ConnectionTimeouts()
    timeouts = {"lock_timeout_ms": 3000, "statement_timeout_ms": 9000}
    given = parse_url("postgresql://u@h/db?options=-c%20search_path%3Dcron")
    asked = known.url(given, timeouts)
    assert asked.connect_args["options"] == (
        "-c search_path=cron -c lock_timeout=3000 -c statement_timeout=9000"
    )
    assert asked.text == given.text  # what is said of the URL stays as the operator wrote it
    sqlite = parse_url("sqlite:////tmp/state.sqlite")
    assert known.url(sqlite, timeouts) is sqlite
    known.refused = True
    assert known.url(given, timeouts) is given
