"""Every table and every SQL statement crontabber sends, in SQLAlchemy Core.

Nothing else in the package builds SQL: the state store calls these functions
and executes what they return.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

UTC = dt.timezone.utc


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp with time zone that always reads back as an aware UTC datetime.

    SQLite has no time zones: there the value is stored as naive UTC text, so
    that comparisons in SQL and in Python agree.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crontabber stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

# The original crontabber's table, plus who holds a claim.
crontabber = sa.Table(
    "crontabber",
    metadata,
    sa.Column("app_name", sa.Text, nullable=False),
    sa.Column("next_run", UTCDateTime),
    sa.Column("first_run", UTCDateTime),
    sa.Column("last_run", UTCDateTime),
    sa.Column("last_success", UTCDateTime),
    sa.Column("error_count", sa.Integer, server_default=sa.text("0")),
    sa.Column("depends_on", postgresql.ARRAY(sa.Text).with_variant(sa.JSON(), "sqlite")),
    sa.Column("last_error", sa.JSON),
    sa.Column("ongoing", UTCDateTime),
    sa.Column("ongoing_host", sa.Text),
    sa.Column("ongoing_pid", sa.Integer),
    sa.Column("ongoing_token", sa.Text),
    sa.Column("heartbeat", UTCDateTime),  # the database's time of the holder's last beat
    sa.Column("lease_expires", UTCDateTime),  # the database's time the claim lapses unless renewed
    sa.Index("crontabber_unique_app_name_idx", "app_name", unique=True),
)

crontabber_log = sa.Table(
    "crontabber_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_name", sa.Text, nullable=False),
    sa.Column("log_time", UTCDateTime, nullable=False, server_default=sa.func.now()),
    sa.Column("duration", sa.Interval),
    sa.Column("success", UTCDateTime),
    sa.Column("exc_type", sa.Text),
    sa.Column("exc_value", sa.Text),
    sa.Column("exc_traceback", sa.Text),
    # Which attempt wrote the row, so that a retried write cannot log it twice.
    sa.Column("token", sa.Text),
    # True when the holder wrote its outcome after its claim had been taken over.
    sa.Column("superseded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("crontabber_log_app_name_idx", "app_name"),
    sa.Index("crontabber_log_token_idx", "token", unique=True),
    sa.Index("crontabber_log_log_time_idx", "log_time"),
)

# Alembic's record of the schema revision; named so as not to collide with an
# application's own alembic_version in a shared database. Not in ``metadata``:
# Alembic owns it.
VERSION_TABLE = "crontabber_alembic_version"
schema_revisions = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lost FOR UPDATE NOWAIT
SCHEMA_LOCK_KEY = 0x63726F6E  # "cron": the advisory lock taken while changing the schema


def lock_schema() -> sa.Select:
    """Serialise schema changes across hosts until the transaction ends (PostgreSQL)."""
    return sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY))


def select_schema_revisions() -> sa.Select:
    return sa.select(schema_revisions.c.version_num)


# The statements a tick sends are built once, with bind parameters, and
# returned with the values for one call: ``conn.execute(*sql.lock_state(name))``.
Statement = tuple[sa.Executable, dict[str, Any]]

_c = crontabber.c

# --- the database's clock ------------------------------------------------------------
#
# Leases and the time of a tick are the database's, never a host's: hosts' clocks
# may disagree, the server's is one. PostgreSQL's clock_timestamp() is the time the
# statement runs (now() would be the start of the transaction, which may have waited
# for a lock). SQLite's 'now' is the clock of the one host that has the file, written
# in the text form SQLAlchemy stores datetimes in, so that the two compare as text.

SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%f000"


def _db_now(dialect_name: str) -> sa.ColumnElement[dt.datetime]:
    if dialect_name == "postgresql":
        return sa.func.clock_timestamp(type_=UTCDateTime)
    return sa.func.strftime(SQLITE_TIME_FORMAT, "now", type_=UTCDateTime)


def _db_now_plus(dialect_name: str, seconds: str) -> sa.ColumnElement[dt.datetime]:
    """The database's time plus the number of seconds bound as ``seconds``."""
    amount = sa.bindparam(seconds, type_=sa.Float)
    if dialect_name == "postgresql":
        return sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, amount)
    return sa.func.strftime(SQLITE_TIME_FORMAT, "now", sa.func.printf("%+f seconds", amount))


# Whether a claim's lease has lapsed: the one rule, evaluated by the database while it
# holds the row lock. On PostgreSQL, time the server was down does not count: nobody
# could renew a lease then, so a lease lapses no sooner than one full window (its
# length, lease_expires - heartbeat) after the server started.
_LEASE_EXPIRED = {
    "postgresql": (
        "crontabber.lease_expires IS NOT NULL AND greatest("
        "crontabber.lease_expires, "
        "pg_postmaster_start_time() + (crontabber.lease_expires - crontabber.heartbeat)"
        ") < clock_timestamp()"
    ),
    "sqlite": (
        "crontabber.lease_expires IS NOT NULL AND "
        f"crontabber.lease_expires < strftime('{SQLITE_TIME_FORMAT}', 'now')"
    ),
}


def _param(name: str, column: sa.Column) -> sa.BindParameter:
    return sa.bindparam(name, type_=column.type)


def _this_claim() -> sa.ColumnElement[bool]:
    return sa.and_(
        _c.app_name == sa.bindparam("b_app_name"), _c.ongoing_token == sa.bindparam("b_token")
    )


_RELEASED = {
    "ongoing": None,
    "heartbeat": None,
    "lease_expires": None,
    "ongoing_host": None,
    "ongoing_pid": None,
    "ongoing_token": None,
}


@functools.cache
def _select_all(dialect_name: str) -> sa.Executable:
    # One row even when the table is empty: the time comes with the states.
    clock = sa.select(_db_now(dialect_name).label("db_now")).subquery("clock")
    return sa.select(clock.c.db_now, crontabber).select_from(clock.outerjoin(crontabber, sa.true()))


def select_all_states(dialect_name: str) -> Statement:
    """Every job's row, each with the database's time as ``db_now`` (one row with only
    ``db_now`` when there are no jobs)."""
    return _select_all(dialect_name), {}


@functools.cache
def _select_one() -> sa.Executable:
    return sa.select(crontabber).where(_c.app_name == sa.bindparam("b_app_name"))


def select_state(app_name: str) -> Statement:
    return _select_one(), {"b_app_name": app_name}


@functools.cache
def _insert_if_missing(dialect_name: str) -> sa.Executable:
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (
        insert(crontabber)
        .values(
            app_name=sa.bindparam("b_app_name"),
            depends_on=sa.bindparam("b_depends_on"),
            error_count=0,
        )
        .on_conflict_do_nothing(index_elements=["app_name"])
    )


def insert_state_if_missing(
    dialect_name: str, app_name: str, depends_on: Sequence[str]
) -> Statement:
    """Create a never-run job's row; a row that already exists is left alone."""
    return _insert_if_missing(dialect_name), {
        "b_app_name": app_name,
        "b_depends_on": list(depends_on),
    }


@functools.cache
def _lock(dialect_name: str, nowait: bool) -> sa.Executable:
    return (
        sa.select(
            crontabber,
            _db_now(dialect_name).label("db_now"),
            sa.literal_column(_LEASE_EXPIRED[dialect_name], sa.Boolean).label("lease_expired"),
        )
        .where(_c.app_name == sa.bindparam("b_app_name"))
        .with_for_update(nowait=nowait)
    )


def lock_state(dialect_name: str, app_name: str) -> Statement:
    """Lock one job's row or fail at once (``FOR UPDATE NOWAIT``; SQLite ignores it).

    The row comes with the database's time (``db_now``) and whether its lease has
    lapsed (``lease_expired``).
    """
    return _lock(dialect_name, True), {"b_app_name": app_name}


def lock_state_waiting(dialect_name: str, app_name: str) -> Statement:
    """Lock one job's row, waiting for a claim in progress to commit."""
    return _lock(dialect_name, False), {"b_app_name": app_name}


@functools.cache
def _delete() -> sa.Executable:
    return sa.delete(crontabber).where(_c.app_name == sa.bindparam("b_app_name"))


def delete_state(app_name: str) -> Statement:
    return _delete(), {"b_app_name": app_name}


@functools.cache
def _mark_ongoing(dialect_name: str) -> sa.Executable:
    return (
        sa.update(crontabber)
        .where(_c.app_name == sa.bindparam("b_app_name"))
        .values(
            ongoing=_db_now(dialect_name),
            heartbeat=_db_now(dialect_name),
            lease_expires=_db_now_plus(dialect_name, "b_lease_seconds"),
            ongoing_host=sa.bindparam("b_host"),
            ongoing_pid=sa.bindparam("b_pid"),
            ongoing_token=sa.bindparam("b_new_token"),
            depends_on=sa.bindparam("b_depends_on"),
        )
    )


def mark_ongoing(
    dialect_name: str,
    app_name: str,
    *,
    lease: dt.timedelta,
    host: str,
    pid: int,
    token: str,
    depends_on: Sequence[str],
) -> Statement:
    """Claim the locked row: ongoing since the database's now, leased for ``lease``."""
    return _mark_ongoing(dialect_name), {
        "b_app_name": app_name,
        "b_lease_seconds": lease.total_seconds(),
        "b_host": host,
        "b_pid": pid,
        "b_new_token": token,
        "b_depends_on": list(depends_on),
    }


@functools.cache
def _record_outcome(failed: bool) -> sa.Executable:
    values: dict[str, Any] = {
        "next_run": sa.bindparam("b_next_run"),
        "last_run": _param("b_started", _c.last_run),
        "first_run": sa.func.coalesce(_c.first_run, _param("b_started", _c.first_run)),
        **_RELEASED,
    }
    if failed:
        values.update(
            error_count=sa.func.coalesce(_c.error_count, 0) + 1, last_error=sa.bindparam("b_error")
        )
    else:
        values.update(last_success=sa.bindparam("b_last_success"), error_count=0, last_error={})
    return sa.update(crontabber).where(_this_claim()).values(**values).returning(*crontabber.c)


def record_outcome(
    app_name: str,
    token: str,
    *,
    started: dt.datetime,
    last_success: dt.datetime,
    next_run: dt.datetime,
    error: dict[str, str] | None,
) -> Statement:
    """Write a finished run's outcome and release the claim held under ``token``."""
    params: dict[str, Any] = {
        "b_app_name": app_name,
        "b_token": token,
        "b_started": started,
        "b_next_run": next_run,
    }
    if error is None:
        params["b_last_success"] = last_success
    else:
        params["b_error"] = error
    return _record_outcome(error is not None), params


@functools.cache
def _record_abandoned() -> sa.Executable:
    return (
        sa.update(crontabber)
        .where(_c.app_name == sa.bindparam("b_app_name"))
        .values(
            error_count=sa.func.coalesce(_c.error_count, 0) + 1,
            last_error=sa.bindparam("b_error"),
            last_run=_c.ongoing,
            first_run=sa.func.coalesce(_c.first_run, _c.ongoing),
            next_run=sa.bindparam("b_next_run"),
            **_RELEASED,
        )
        .returning(*crontabber.c)
    )


def record_abandoned(app_name: str, error: dict[str, str], next_run: dt.datetime) -> Statement:
    """Release an abandoned claim and count it as a failed run, retried at ``next_run``."""
    return _record_abandoned(), {"b_app_name": app_name, "b_error": error, "b_next_run": next_run}


@functools.cache
def _beat(dialect_name: str) -> sa.Executable:
    return (
        sa.update(crontabber)
        .where(_this_claim())
        .values(
            heartbeat=_db_now(dialect_name),
            lease_expires=_db_now_plus(dialect_name, "b_lease_seconds"),
        )
    )


def beat(dialect_name: str, app_name: str, token: str, lease: dt.timedelta) -> Statement:
    """Renew the lease of the claim held under ``token`` for ``lease`` from the database's now."""
    return _beat(dialect_name), {
        "b_app_name": app_name,
        "b_token": token,
        "b_lease_seconds": lease.total_seconds(),
    }


@functools.cache
def _record_backfill_date() -> sa.Executable:
    return (
        sa.update(crontabber)
        .where(_this_claim())
        .values(
            last_success=sa.bindparam("b_date"),
            first_run=sa.func.coalesce(_c.first_run, _param("b_now", _c.first_run)),
        )
    )


def record_backfill_date(
    app_name: str, token: str, *, date: dt.datetime, now: dt.datetime
) -> Statement:
    """A backfill job's progress: ``date`` succeeded; the claim stays held."""
    return _record_backfill_date(), {
        "b_app_name": app_name,
        "b_token": token,
        "b_date": date,
        "b_now": now,
    }


LOG_COLUMNS = (
    "app_name",
    "log_time",
    "duration",
    "success",
    "exc_type",
    "exc_value",
    "exc_traceback",
    "token",
    "superseded",
)


@functools.cache
def _insert_log(dialect_name: str) -> sa.Executable:
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (
        insert(crontabber_log)
        .values({name: sa.bindparam(f"b_{name}") for name in LOG_COLUMNS})
        .on_conflict_do_nothing(index_elements=["token"])
    )


def insert_log(
    dialect_name: str,
    app_name: str,
    *,
    log_time: dt.datetime,
    duration: dt.timedelta,
    success: dt.datetime | None,
    error: dict[str, str] | None,
    token: str | None,
    superseded: bool = False,
) -> Statement:
    """One row of ``crontabber_log``. A row whose ``token`` is already logged is not
    written again (a retried write that had committed after all)."""
    error = error or {}
    return _insert_log(dialect_name), {
        "b_app_name": app_name,
        "b_log_time": log_time,
        "b_duration": duration,
        "b_success": success,
        "b_exc_type": error.get("type"),
        "b_exc_value": error.get("value"),
        "b_exc_traceback": error.get("traceback"),
        "b_token": token,
        "b_superseded": superseded,
    }


@functools.cache
def _select_logged() -> sa.Executable:
    return sa.select(crontabber_log.c.superseded).where(
        crontabber_log.c.token == sa.bindparam("b_token")
    )


def select_logged(token: str) -> Statement:
    """Whether the log row written under ``token`` exists, and if it was superseded."""
    return _select_logged(), {"b_token": token}
