"""How the status page reads the state database: read-only, by construction.

The page reads through a :class:`~crontabber.store.abc.StateStore` whose connections
are opened read-only: on PostgreSQL each statement runs in a transaction begun
``READ ONLY``, under the store's own ``SET LOCAL`` timeouts, so any write fails in the
server and no session state is left behind (PgBouncer in transaction mode is
safe); on SQLite the file is opened without creating it and with ``PRAGMA
query_only``. The store never migrates (``auto_migrate`` off).
One connection serves every request, one request at a time.

(What operators do through the page is written through a store of its own:
see :mod:`crontabber.web.acting`.)

What goes wrong is told in words that name no URL, host or user: the page is
for anyone who may see the jobs, not necessarily their database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

from crontabber.db.connect import POSTGRES_DEFAULTS, SQLITE_BUSY_TIMEOUT_SECONDS
from crontabber.db.url import DatabaseURL
from crontabber.errors import CannotReach, StateStoreError
from crontabber.store import open_store
from crontabber.store.abc import DEFAULT_MAX_AGE, StateStore
from crontabber.store.outbox import Notification
from crontabber.store.records import AuditEntry, LogCounts, LogPage, Snapshot
from crontabber.store.tally import LogTally

T = TypeVar("T")
READ_RETRY = dt.timedelta(seconds=2)  # one retry on a new connection (a restarted server)

log = logging.getLogger("crontabber.web")


class Unavailable(Exception):
    """The state database could not be read; ``reason`` is one line fit for anyone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def connect_read_only(url: DatabaseURL) -> Any:
    """A connection on which nothing can be written, and which changes no session state.

    On PostgreSQL each statement is a transaction of its own, begun ``READ ONLY``
    (the store sends it with its ``SET LOCAL`` timeouts), and ended at once: nothing outlives it,
    so a pooler (PgBouncer in transaction mode) hands the server connection on
    as it found it.
    """
    if url.dialect == "postgresql":
        import psycopg2

        args = {**POSTGRES_DEFAULTS, **url.connect_args}
        connection = psycopg2.connect(**args)
        connection.set_session(readonly=True)  # not autocommit: BEGIN READ ONLY, per transaction
        return ReadOnlyTransactions(connection)
    path = quote(url.connect_args["database"])
    connection = sqlite3.connect(
        f"file:{path}?mode=rw",  # rw, not rwc: a missing file is an error, not created
        uri=True,
        timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,  # used by one request at a time, under Reader's lock
    )
    connection.execute("PRAGMA query_only = ON")
    return connection


class ReadOnlyTransactions:
    """A psycopg2 connection whose every cursor runs in a read-only transaction of its
    own, rolled back when the cursor closes."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @contextlib.contextmanager
    def cursor(self) -> Iterator[Any]:
        cursor = self._connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            self._connection.rollback()  # ends the transaction: it wrote nothing

    def fileno(self) -> int:
        return self._connection.fileno()

    def close(self) -> None:
        self._connection.close()


def read_only_store(url: str) -> StateStore:
    """A store on ``url`` whose connections are read-only and which never migrates."""
    store = open_store(url, retry_for=READ_RETRY, auto_migrate=False)
    store.connection_factory = connect_read_only  # type: ignore[assignment]
    store.read_only = True
    return store


class Reader:
    """The reads the page makes, serialised on one store; errors become :class:`Unavailable`."""

    def __init__(self, store: StateStore, *, max_ongoing_age: dt.timedelta = DEFAULT_MAX_AGE):
        self.store = store
        self.max_ongoing_age = max_ongoing_age
        self._lock = threading.Lock()
        self._down = False  # the last read failed: said once per outage in the log
        self.tally = LogTally()  # the log's counts: read whole once, then what is added

    def snapshot(self) -> Snapshot:
        return self._read(lambda: self.store.read_snapshot(self.max_ongoing_age))

    def log_page(self, app_name: str, *, offset: int, limit: int) -> LogPage:
        return self._read(lambda: self.store.read_log_page(app_name, offset=offset, limit=limit))

    def audit_log(self, app_name: str, *, limit: int) -> list[AuditEntry]:
        return self._read(lambda: self.store.read_audit_log(app_name, limit=limit))

    def notifications(self, app_name: str | None = None, *, limit: int) -> list[Notification]:
        return self._read(lambda: self.store.read_notifications(app_name, limit=limit))

    def notification_counts(self) -> dict[tuple[str, str], int]:
        return self._read(self.store.count_notifications)

    def log_counts(self) -> dict[str, LogCounts]:
        return self._read(lambda: self.tally.read(self.store))

    def snapshot_and_counts(self) -> tuple[Snapshot, dict[str, LogCounts]]:
        return self._read(
            lambda: (
                self.store.read_snapshot(self.max_ongoing_age),
                self.tally.read(self.store),
            )
        )

    def check(self) -> None:
        """Raise :class:`Unavailable` unless the database answers with a current schema."""
        self._read(self.store.ensure_schema)

    def close(self) -> None:
        with self._lock:
            self.store.close()

    def _read(self, read: Callable[[], T]) -> T:
        with self._lock:
            try:
                value = read()
            except CannotReach as exc:
                self._failed(exc)
                raise Unavailable("the state database does not answer") from None
            except StateStoreError as exc:
                self._failed(exc)
                raise Unavailable(
                    "the state database could not be read (its schema may need "
                    "crontabber --migrate; the server's log says more)"
                ) from None
            if self._down:
                self._down = False
                log.warning("status page: the state database answers again")
            return value

    def _failed(self, error: StateStoreError) -> None:
        if not self._down:
            self._down = True
            log.warning("status page: %s (said once until it answers again)", error)
