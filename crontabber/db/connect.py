"""The one way to open a connection to the state database, without SQLAlchemy on a tick.

A tick talks to the database through the DB-API drivers (psycopg2, sqlite3):
:func:`connect` opens a connection the way a tick needs it (no extra queries
on connect). SQLAlchemy is imported only by :func:`sqlalchemy_engine`, for
migrations and tests. What is worth another attempt, and how long to wait,
is :mod:`crontabber.db.retry`'s.
"""

from __future__ import annotations

import os

from crontabber.db.retry import sqlite_busy
from crontabber.db.url import DatabaseURL

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

SQLITE_BUSY_TIMEOUT_SECONDS = 60
# libpq's settings for the state database unless its URL gives its own: a connect
# gives up after 5 s, and the kernel probes a silent connection after 10 s of
# silence, 3 times 3 s apart. A statement's own deadline is crontabber.db.deadline's.
POSTGRES_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
}


def connect(url: DatabaseURL) -> Any:
    """A new DB-API connection, ready for a tick and nothing sent beyond the connect.

    PostgreSQL: autocommit, so each statement is one round trip with no BEGIN.
    SQLite: transactions are begun explicitly (``BEGIN IMMEDIATE`` for writes), in
    WAL mode, waiting up to a minute for another process's write lock.
    """
    if url.dialect == "postgresql":
        psycopg2 = postgres_driver()
        connection = psycopg2.connect(**{**POSTGRES_DEFAULTS, **url.connect_args})
        connection.autocommit = True
        return connection
    import sqlite3

    create_sqlite_file(url.connect_args["database"])
    connection = sqlite3.connect(
        url.connect_args["database"],
        # How long another process's write lock is waited for: the store's
        # state_retry_seconds when it says (see SqliteStore), else a minute.
        timeout=url.connect_args.get("busy_timeout", SQLITE_BUSY_TIMEOUT_SECONDS),
        isolation_level=None,
        check_same_thread=False,  # the heartbeat's thread shares it, one statement at a time
    )
    try:
        use_wal(connection)
    except BaseException:  # a busy or damaged file: the connection is not left open
        connection.close()
        raise
    return connection


def postgres_driver() -> Any:
    """psycopg2, or a StateStoreError naming what to install."""
    try:
        import psycopg2
    except ImportError:
        from crontabber.errors import StateStoreError

        raise StateStoreError(
            "a PostgreSQL state database needs psycopg2: pip install 'crontabber-ng[postgres]' "
            "(or psycopg2, built from source)"
        ) from None
    return psycopg2


def use_wal(connection: Any) -> None:
    """Put a SQLite file in WAL mode, which it keeps: a connection that finds it so sends
    no more. Switching needs the file to itself, and SQLite says so at once rather than
    waiting for its busy timeout: processes that start together wait their turn here."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not sqlite_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_sqlite_file(path: str) -> None:
    """Create an empty state file readable by its owner only (its rows hold tracebacks)."""
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def sqlalchemy_engine(url: DatabaseURL) -> Any:
    """A SQLAlchemy engine on the same database, for migrations and tests.

    On SQLite its transactions begin with ``BEGIN IMMEDIATE`` (the plain pysqlite
    driver would run DDL outside any transaction), and a read-only connection
    (execution option ``crontabber_read_only``) with a plain ``BEGIN``.
    """
    import sqlalchemy as sa
    from sqlalchemy import event

    if url.dialect == "postgresql":
        psycopg2 = postgres_driver()
        args = {**POSTGRES_DEFAULTS, **url.connect_args}
        # The URL names the database in messages (several hosts: their list); the
        # connections are libpq's own, from the same arguments as a tick's.
        multiple = isinstance(args.get("port"), str)
        shown = sa.URL.create(
            "postgresql+psycopg2",
            username=args.get("user"),
            password=args.get("password"),
            host=args.get("host"),
            port=None if multiple else args.get("port"),
            database=args.get("dbname"),
        )
        return sa.create_engine(
            shown, creator=lambda: psycopg2.connect(**args), use_native_hstore=False
        )
    create_sqlite_file(url.connect_args["database"])
    engine = sa.create_engine(
        sa.URL.create("sqlite", database=url.connect_args["database"]),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        # A migration, now and then: each connection is closed when it is given back,
        # so none outlives a store nobody closed (3.13 warns of those).
        poolclass=sa.NullPool,
    )

    @event.listens_for(engine, "connect")
    def _take_over_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        use_wal(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        read_only = conn.get_execution_options().get("crontabber_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
