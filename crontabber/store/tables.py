"""crontabber's tables in SQLAlchemy Core: what the migrations build and tests compare.

The statements a tick sends are text, in ``postgresql.sql`` and ``sqlite.sql``
(see :mod:`crontabber.store.queries`); a test runs each against a database built by the
migrations. This module is imported by migrations and tests, never by a tick.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from crontabber.store.schema import VERSION_TABLE

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
    # Grows with every claim: a fencing token for what jobs write elsewhere.
    sa.Column("fence", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    # An operator's run-now: when it was asked, and the next run it brought forward.
    sa.Column("run_now", UTCDateTime),
    sa.Column("run_now_displaced", UTCDateTime),
    # When an operator asked the holder of the claim to stop the run (its heartbeat reads it).
    sa.Column("cancel_requested", UTCDateTime),
    sa.Index("crontabber_unique_app_name_idx", "app_name", unique=True),
    sa.Index("crontabber_next_run_idx", "next_run"),  # a daemon's reads of the due rows
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
    sa.Column("host", sa.Text),  # where the run ran
    sa.Column("pid", sa.Integer),
    sa.Column("trigger", sa.Text),  # schedule, run-now, forced, or "backfill DATE"
    sa.Column("output", sa.Text),  # what it printed and logged, capped
    sa.Index("crontabber_log_app_name_idx", "app_name"),
    sa.Index("crontabber_log_token_idx", "token", unique=True),
    sa.Index("crontabber_log_log_time_idx", "log_time"),
)

# When each PostgreSQL timeline began, as crontabber first saw it (see the lease rule
# in sql/postgresql.sql): a promoted standby's downtime is not counted against leases.
crontabber_timeline = sa.Table(
    "crontabber_timeline",
    metadata,
    sa.Column("timeline", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("since", UTCDateTime, nullable=False),
)

# The jobs an operator paused: claims refuse a job while its pause is in force
# (``until`` NULL, or later than the database's now).
crontabber_pause = sa.Table(
    "crontabber_pause",
    metadata,
    sa.Column("app_name", sa.Text, primary_key=True),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("until", UTCDateTime),
    sa.Column("reason", sa.Text),
    sa.Column("actor", sa.Text, nullable=False),
)

# Who did what: every operator action, from any interface, in the database's time.
crontabber_audit = sa.Table(
    "crontabber_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("app_name", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Index("crontabber_audit_app_name_idx", "app_name"),
)

# The outbox: one row per event a job's hosts saw and destination, recorded once
# (the unique index), delivered by whichever host claims it (see crontabber.notify).
crontabber_notification = sa.Table(
    "crontabber_notification",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # failed, recovered, late, stuck, auto_paused
    sa.Column("about", UTCDateTime, nullable=False),  # the instant the event is about
    sa.Column("sink", sa.Text, nullable=False),  # webhook, email
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("host", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),  # sent, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),  # claimed for delivery until then
    sa.Column("sent", UTCDateTime),
    sa.Column("delivery_error", sa.Text),
    sa.Index("crontabber_notification_once_idx", "app_name", "kind", "about", "sink", unique=True),
    sa.Index("crontabber_notification_pending_idx", "status", "next_attempt"),
)

# Alembic's record of the schema revision; named so as not to collide with an
# application's own alembic_version in a shared database. Not in ``metadata``:
# Alembic owns it.
schema_revisions = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))

SCHEMA_LOCK_KEY = 0x63726F6E  # "cron": the advisory lock taken while changing the schema


def lock_schema() -> sa.Select:
    """Serialise schema changes across hosts until the transaction ends (PostgreSQL)."""
    return sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY))


def set_lock_timeout(seconds: float) -> sa.TextClause:
    """Wait at most ``seconds`` for a lock until the transaction ends (PostgreSQL)."""
    return sa.text(f"SET LOCAL lock_timeout = {max(round(seconds * 1000), 1)}")


def select_schema_revisions() -> sa.Select:
    return sa.select(schema_revisions.c.version_num)
