"""Count what a state store sends, statement by statement, through its connection seam.

A tick opens its connections through ``StateStore.connection_factory`` (by
default ``crontabber.db.connect.connect``). :func:`install` replaces it, for every
store of the process, with a factory that opens the same connection and wraps
it: each statement executed through a cursor or the connection is recorded by
its name in ``postgresql.sql`` / ``sqlite.sql`` (anything else, ``BEGIN
IMMEDIATE``, ``COMMIT`` or ``ROLLBACK``, by its first word). On SQLite the
wrapper also sets SQLite's trace callback before ``connect`` returns, so what
crontabber runs while connecting (``PRAGMA journal_mode=WAL``) is seen too.

Nothing is faked: the connections are the drivers' own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from crontabber.store.queries import queries

TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "START", "END", "ABORT"}
# Statements that write and so end in a durable commit on PostgreSQL (autocommit).
WRITES = {"claim", "finish", "insert_state", "recover", "beat", "record_date", "reset"}


def _names() -> dict[str, str]:
    return {
        text: name
        for dialect in ("postgresql", "sqlite")
        for name, text in queries(dialect).items()
    }


class Counter:
    """What the store's connections sent, in order, and how many connections it opened."""

    def __init__(self) -> None:
        self.statements: list[str] = []  # names, in order (transaction control by first word)
        self.connections = 0
        self.sqlite_trace: list[str] = []  # everything SQLite ran, by its trace callback
        self._names = _names()

    def name(self, sql: str) -> str:
        found = self._names.get(sql)
        if found is not None:
            return found
        words = sql.split(maxsplit=1)
        return words[0].upper() if words else ""

    def record(self, sql: str) -> None:
        self.statements.append(self.name(sql))

    def to_json(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "connections": self.connections,
            "sqlite_trace": self.sqlite_trace,
        }


class _Cursor:
    def __init__(self, cursor: Any, counter: Counter) -> None:
        self._cursor, self._counter = cursor, counter

    def execute(self, sql: str, params: Any = None) -> Any:
        self._counter.record(sql)
        return self._cursor.execute(sql, params)

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _Connection:
    def __init__(self, connection: Any, counter: Counter) -> None:
        self._connection, self._counter = connection, counter

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(self._connection.cursor(*args, **kwargs), self._counter)

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._counter.record(sql)
        return self._connection.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def counting_factory(counter: Counter) -> Callable[[Any], Any]:
    """A ``connection_factory``: crontabber's own ``connect``, counted."""
    from crontabber.db import connect as database

    def open_counted(url: Any) -> _Connection:
        counter.connections += 1
        if url.dialect != "sqlite":
            return _Connection(database.connect(url), counter)
        real_connect = sqlite3.connect

        def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            connection = real_connect(*args, **kwargs)
            connection.set_trace_callback(counter.sqlite_trace.append)
            return connection

        seen = len(counter.sqlite_trace)
        sqlite3.connect = traced_connect  # only while crontabber's connect runs
        try:
            connection = database.connect(url)
        finally:
            sqlite3.connect = real_connect
        for sql in counter.sqlite_trace[seen:]:  # what connect ran itself (PRAGMA journal_mode)
            counter.record(sql)
        return _Connection(connection, counter)

    return open_counted


def install(counter: Counter) -> None:
    """Every store of this process opens counted connections from now on."""
    from crontabber.store import StateStore

    StateStore.connection_factory = staticmethod(counting_factory(counter))
