"""The state database's URL, its connections and its drivers' errors, without SQLAlchemy.

A tick talks to the database through the DB-API drivers (psycopg2, sqlite3):
this module reads the URL, opens connections the way a tick needs them (no
extra queries on connect), tells transient trouble from the rest by driver
class and SQLSTATE, and masks passwords wherever a URL is shown. SQLAlchemy is
imported only by :func:`sqlalchemy_engine`, for migrations and tests.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from .errors import StateStoreError
from .record import record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

# The schema revision this crontabber works with: the newest in migrations/versions.
# A test keeps it equal to Alembic's head; a tick compares it without Alembic.
SCHEMA_REVISION = "0002_leases_in_database_time"
VERSION_TABLE = "crontabber_alembic_version"  # Alembic's record, named apart from an app's own

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lost FOR UPDATE NOWAIT
UNDEFINED_TABLE = "42P01"
# Worth another try on PostgreSQL beyond a lost connection: the transaction lost
# a serialization or deadlock check and did nothing.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
SQLITE_BUSY_TIMEOUT_SECONDS = 60


@record
class DatabaseURL:
    """A parsed state database URL: ``postgresql://...`` or ``sqlite:///path``."""

    dialect: str  # "postgresql" or "sqlite"
    text: str  # as given
    connect_args: dict[str, Any]  # psycopg2 keywords, or {"database": path} for sqlite3

    @property
    def safe(self) -> str:
        return safe_url(self.text)


def safe_url(url: object) -> str:
    """The URL with any password masked, fit for messages and logs, whatever its form.

    A password in the user part and one in a ``password=`` query parameter are both
    masked; a URL that cannot be read is not shown at all.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            credentials, _, location = netloc.rpartition("@")
            user = credentials.split(":", 1)[0]
            netloc = f"{user}:***@{location}" if ":" in credentials else netloc
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if netloc == parts.netloc and not any(key.lower() == "password" for key, _ in pairs):
            return text  # nothing to hide: as written
        query = "&".join(
            f"{key}={'***' if key.lower() == 'password' else value}" for key, value in pairs
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unreadable database URL>"


def parse_url(text: str) -> DatabaseURL:
    """Read a state database URL; a mistake is a one-line StateStoreError without secrets."""
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme in ("postgresql", "postgres"):
            return DatabaseURL("postgresql", text, postgres_params(parts))
        if scheme == "sqlite":
            return DatabaseURL("sqlite", text, {"database": _sqlite_path(parts)})
    except ValueError as exc:
        raise StateStoreError(f"bad database URL {safe_url(text)!r}: {exc}") from None
    raise StateStoreError(
        f"unsupported database {parts.scheme.split('+', 1)[0]!r} in {safe_url(text)}: "
        "use postgresql:// or sqlite:///"
    )


def postgres_params(url: str | Any) -> dict[str, Any]:
    """psycopg2 keyword arguments from ``postgresql://user:password@host:port/dbname?...``
    (a string, or its ``urlsplit`` parts). Errors never repeat the URL, which may
    hold a password; parts left empty are left to libpq."""
    parts = urlsplit(url) if isinstance(url, str) else url
    if parts.scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError("it must start with postgresql:// (or postgres://)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("its port is not a number") from None
    args: dict[str, Any] = {
        "host": unquote(parts.hostname or ""),
        "port": port,
        "dbname": unquote(parts.path.lstrip("/")),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
    }
    args.update(parse_qsl(parts.query))
    return {key: value for key, value in args.items() if value not in ("", None)}


def _sqlite_path(parts: Any) -> str:
    path = unquote(parts.path)
    if parts.netloc:
        raise ValueError("use sqlite:///relative/path or sqlite:////absolute/path")
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        raise ValueError("the state must outlive a run: name a file, not memory")
    return path


def connect(url: DatabaseURL) -> Any:
    """A new DB-API connection, ready for a tick and nothing sent beyond the connect.

    PostgreSQL: autocommit, so each statement is one round trip with no BEGIN.
    SQLite: transactions are begun explicitly (``BEGIN IMMEDIATE`` for writes), in
    WAL mode, waiting up to a minute for another process's write lock.
    """
    if url.dialect == "postgresql":
        import psycopg2

        connection = psycopg2.connect(**url.connect_args)
        connection.autocommit = True
        return connection
    import sqlite3

    create_sqlite_file(url.connect_args["database"])
    connection = sqlite3.connect(
        url.connect_args["database"], timeout=SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None
    )
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def create_sqlite_file(path: str) -> None:
    """Create an empty state file readable by its owner only (its rows hold tracebacks)."""
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def driver_errors() -> tuple[type[BaseException], ...]:
    """The drivers' error classes that are loaded (a tick loads one driver)."""
    errors: list[type[BaseException]] = []
    if "sqlite3" in sys.modules:
        import sqlite3

        errors.append(sqlite3.Error)
    if "psycopg2" in sys.modules:
        import psycopg2

        errors.append(psycopg2.Error)
    return tuple(errors)


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "pgcode", None)


def is_transient(exc: BaseException) -> bool:
    """A lost connection, a restarting server, a serialization failure, a busy SQLite file."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_LOCKED,
        )
    from .resources import is_transient_postgres_error

    return is_transient_postgres_error(exc) or sqlstate(exc) in RETRYABLE_SQLSTATES


def describe_error(exc: BaseException) -> str:
    """The first line of a database error, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def sqlalchemy_engine(url: DatabaseURL) -> Any:
    """A SQLAlchemy engine on the same database, for migrations and tests.

    On SQLite its transactions begin with ``BEGIN IMMEDIATE`` (the plain pysqlite
    driver would run DDL outside any transaction), and a read-only connection
    (execution option ``crontabber_read_only``) with a plain ``BEGIN``.
    """
    import sqlalchemy as sa
    from sqlalchemy import event

    if url.dialect == "postgresql":
        args = url.connect_args
        sa_url = sa.URL.create(
            "postgresql+psycopg2",
            username=args.get("user"),
            password=args.get("password"),
            host=args.get("host"),
            port=args.get("port"),
            database=args.get("dbname"),
            query={
                key: str(value)
                for key, value in args.items()
                if key not in ("user", "password", "host", "port", "dbname")
            },
        )
        return sa.create_engine(sa_url, use_native_hstore=False)
    create_sqlite_file(url.connect_args["database"])
    engine = sa.create_engine(
        sa.URL.create("sqlite", database=url.connect_args["database"]),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
    )

    @event.listens_for(engine, "connect")
    def _take_over_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        read_only = conn.get_execution_options().get("crontabber_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
