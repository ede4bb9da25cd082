"""See every statement a state store sends, by its name in ``sql/postgresql.sql`` / ``sql/sqlite.sql``.

A diagnostic seam, for tests, benchmarks and anyone who wants to know what
crontabber sends: ``trace(store, hook)`` wraps the store's connections (real
ones: nothing is faked) through ``StateStore.connection_factory``;
``hook(event, name, connection)`` is called with ``"before"`` and ``"after"``
around each statement, ``connection`` being the driver's own. A statement
that is not one of the named ones (``BEGIN IMMEDIATE``, ``COMMIT``) is named
by its first word; the ``timeouts`` sent in front of a PostgreSQL statement are
not named apart. :class:`Recorder` keeps the names and counts connections; it
keeps the read-back of a new connection's own timeouts (``session_timeouts``,
once per connection, see :mod:`crontabber.store.timeouts`) apart from the
statements, in ``checks``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crontabber.db.connect import connect
from crontabber.db.url import DatabaseURL
from crontabber.store.queries import queries

Hook = Callable[[str, str, Any], None]


def statement_name(sql: str) -> str:
    timeouts = queries("postgresql")["timeouts"] + ";\n"
    if sql.startswith(timeouts):
        sql = sql[len(timeouts) :]
    for dialect in ("postgresql", "sqlite"):
        for name, text in queries(dialect).items():
            if text == sql:
                return name
    return sql.split(maxsplit=1)[0].upper() if sql.split() else ""


class TracedCursor:
    def __init__(self, cursor: Any, connection: Any, hook: Hook) -> None:
        self._cursor, self._connection, self._hook = cursor, connection, hook

    def execute(self, sql: str, params: Any = None) -> Any:
        name = statement_name(sql)
        self._hook("before", name, self._connection)
        result = self._cursor.execute(sql, params)
        self._hook("after", name, self._connection)
        return result

    def __enter__(self) -> TracedCursor:
        enter = getattr(self._cursor, "__enter__", None)
        if enter is None:
            return self
        # A cursor, or what a connection's cursor() gives as a context manager (the
        # page's read-only transactions): what it enters is what is traced.
        return TracedCursor(enter(), self._connection, self._hook)

    def __exit__(self, *exc_info: Any) -> None:
        leave = getattr(self._cursor, "__exit__", None)
        if leave is None:
            self._cursor.close()
        else:
            leave(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class TracedConnection:
    def __init__(self, connection: Any, hook: Hook) -> None:
        self._connection, self._hook = connection, hook

    def cursor(self, *args: Any, **kwargs: Any) -> TracedCursor:
        return TracedCursor(self._connection.cursor(*args, **kwargs), self._connection, self._hook)

    def execute(self, sql: str, params: Any = ()) -> Any:
        name = statement_name(sql)
        self._hook("before", name, self._connection)
        result = self._connection.execute(sql, params)
        self._hook("after", name, self._connection)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def traced_connect(hook: Hook) -> Callable[[DatabaseURL], Any]:
    def open_traced(url: DatabaseURL) -> TracedConnection:
        return TracedConnection(connect(url), hook)

    return open_traced


def trace(store: Any, hook: Hook) -> None:
    """From now on ``store`` opens traced connections (open ones are closed first)."""
    store.close()
    store.connection_factory = traced_connect(hook)


class Recorder:
    """Records the names of the statements sent and the connections opened."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.checks = 0  # connections whose own timeouts were read back
        self.connections = 0

    def hook(self, event: str, name: str, _connection: Any) -> None:
        if event == "before" and name == "session_timeouts":
            self.checks += 1
        elif event == "before":
            self.statements.append(name)

    def connect(self, url: DatabaseURL) -> TracedConnection:
        self.connections += 1
        return TracedConnection(connect(url), self.hook)
