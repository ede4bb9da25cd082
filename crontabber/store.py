"""The state store: where each job's state lives and how a due job is claimed.

One interface, two databases. :class:`StateStore` documents the contract and
implements it with the statements of :mod:`crontabber.sql`; PostgreSQL locks
the claimed row with ``FOR UPDATE NOWAIT``, SQLite (which has no row locks)
serialises claims with ``BEGIN IMMEDIATE``. Either way a claim is one short
transaction that locks, re-checks and writes.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from . import sql
from .errors import StateStoreError
from .lease import LeasePolicy
from .transient import retrying

T = TypeVar("T")
RETRY_FOR = dt.timedelta(seconds=60)  # how long state writes are retried through trouble

log = logging.getLogger("crontabber")


@dataclass(frozen=True)
class JobState:
    """One row of the ``crontabber`` table."""

    app_name: str
    next_run: dt.datetime | None = None
    first_run: dt.datetime | None = None
    last_run: dt.datetime | None = None
    last_success: dt.datetime | None = None
    error_count: int = 0
    depends_on: tuple[str, ...] = ()
    last_error: dict[str, Any] | None = None
    ongoing: dt.datetime | None = None
    ongoing_host: str | None = None
    ongoing_pid: int | None = None
    ongoing_token: str | None = None
    heartbeat: dt.datetime | None = None
    lease_expires: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> JobState:
        values = dict(row._mapping)
        values["depends_on"] = tuple(values.get("depends_on") or ())
        values["error_count"] = values.get("error_count") or 0
        return cls(**{name: values.get(name) for name in cls.__dataclass_fields__})

    @property
    def failed_last_time(self) -> bool:
        return bool(self.error_count) or bool(self.last_error)


@dataclass(frozen=True)
class Holder:
    """Who holds a claim: this host, this process, and a token unique to the claim."""

    host: str
    pid: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def this_process(cls, host: str | None = None) -> Holder:
        return cls(host=host or socket.gethostname(), pid=os.getpid())


class ResetStatus(enum.Enum):
    RESET = "reset"
    ABSENT = "absent"  # there was no state to forget
    ONGOING = "ongoing"  # refused: the job is running


@dataclass(frozen=True)
class Snapshot:
    """Every job's state, read in one statement, and the database's time of the read."""

    states: dict[str, JobState]
    now: dt.datetime


class ClaimStatus(enum.Enum):
    CLAIMED = "claimed"
    LOCKED = "locked"  # another process held the row lock at that instant
    ONGOING = "ongoing"  # another process is running the job
    NOT_DUE = "not due"  # someone ran it since our snapshot
    RECOVERED = "recovered"  # an abandoned claim was released and recorded as a failure


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    state: JobState | None  # the row as it was locked
    holder: Holder | None = None
    abandoned: str | None = None  # RECOVERED: why the previous holder's claim was abandoned
    recorded: JobState | None = None  # RECOVERED: the row as the recovery left it


@dataclass(frozen=True)
class Outcome:
    """How a claimed run ended."""

    started: dt.datetime
    finished: dt.datetime
    duration: dt.timedelta
    next_run: dt.datetime
    error: dict[str, str] | None = None  # {"type", "value", "traceback"}
    last_success: dt.datetime | None = None  # when not ``started`` (a backfill job's last date)


def safe_url(url: str | sa.URL) -> str:
    """The URL with any password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def abandoned_error(state: JobState, reason: str) -> dict[str, str]:
    """The failure recorded for a claim that was abandoned."""
    return {
        "type": "crontabber.Abandoned",
        "value": (
            f"the run claimed by {state.ongoing_host} pid {state.ongoing_pid} at "
            f"{state.ongoing:%Y-%m-%d %H:%M:%S} UTC was abandoned: {reason}"
        ),
        "traceback": "",
    }


def describe_error(exc: BaseException) -> str:
    """The first line of a database error, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class StateStore:
    """Reads and writes job state in a SQL database through SQLAlchemy Core.

    Create one with :func:`open_store`. Every public method is one short
    transaction (or one statement) and leaves nothing half-written.
    """

    def __init__(self, engine: sa.Engine, *, retry_for: dt.timedelta = RETRY_FOR) -> None:
        self.engine = engine
        self.dialect_name = engine.dialect.name
        self.retry_for = retry_for

    def ensure_schema(self, *, auto_migrate: bool = True) -> None:
        """Make sure the schema is current: one query when it is.

        Otherwise, with ``auto_migrate`` the migrations are applied (one host
        at a time; see :mod:`crontabber.migrate`), without it this raises a
        StateStoreError saying to run ``--migrate``.
        """
        from . import migrate

        with self._connect():  # an unreachable database is said plainly, before anything else
            pass
        if migrate.is_current(self.engine):
            return
        if not auto_migrate:
            raise StateStoreError(
                f"the schema of the state database {safe_url(self.engine.url)} is out of date "
                "and crontabber.auto_migrate is off: run crontabber with --migrate"
            )
        result = migrate.upgrade(self.engine)
        if result.changed:
            log.info(
                "migrated the state database from schema revision %s to %s",
                result.before or "none",
                result.after,
            )

    def migrate(self) -> tuple[str | None, str]:
        """Apply the migrations the database lacks; the revisions before and after."""
        from . import migrate

        result = migrate.upgrade(self.engine)
        return result.before, result.after

    def read_snapshot(self) -> Snapshot:
        """Every job's state, by app name, and the database's time, in one statement."""

        def read(_attempt: int) -> list[Any]:
            with self._connect() as conn:
                reader = read_only(conn)
                rows = reader.execute(*sql.select_all_states(self.dialect_name)).all()
                reader.rollback()
            return rows

        rows = self._retrying("reading the jobs' state", read, claimed=False)
        states = {row.app_name: JobState.from_row(row) for row in rows if row.app_name is not None}
        return Snapshot(states, rows[0].db_now)

    def load_states(self) -> dict[str, JobState]:
        """Every job's state, by app name, in one statement."""
        return self.read_snapshot().states

    def claim(
        self,
        app_name: str,
        *,
        depends_on: Sequence[str],
        still_due: Callable[[JobState], bool],
        lease: LeasePolicy,
        holder: Holder,
        create: bool,
        retry_after: dt.timedelta,
    ) -> Claim:
        """Try to claim a job in one transaction: lock, re-check, mark ongoing.

        ``create`` inserts the row first for a job that never ran (a row that
        exists by then is left alone). Returns LOCKED when another process holds
        the row lock; ONGOING when another process holds a live claim;
        RECOVERED when the claim it held is abandoned (``lease`` decides, on the
        locked row, in the database's clock): the abandoned attempt is then
        recorded as a failed run and the job is due again ``retry_after`` later,
        like any failure, so a job that kills its process cannot crash-loop;
        NOT_DUE when ``still_due`` says the locked state is no longer due;
        CLAIMED otherwise, leased for ``lease.window`` from the database's now.
        """

        def attempt(_attempt: int) -> Claim:
            with self.engine.connect() as conn, conn.begin():
                if create:
                    conn.execute(
                        *sql.insert_state_if_missing(self.dialect_name, app_name, depends_on)
                    )
                row = conn.execute(*sql.lock_state(self.dialect_name, app_name)).one()
                state = JobState.from_row(row)
                if state.ongoing_token == holder.token:  # an earlier attempt did commit
                    return Claim(ClaimStatus.CLAIMED, state, holder)
                if state.ongoing is not None:
                    abandoned = lease.abandoned_because(
                        state, db_now=row.db_now, lease_expired=bool(row.lease_expired)
                    )
                    if abandoned is None:
                        return Claim(ClaimStatus.ONGOING, state)
                    return self._recover(conn, state, abandoned, row.db_now, retry_after)
                if not still_due(state):
                    return Claim(ClaimStatus.NOT_DUE, state)
                conn.execute(
                    *sql.mark_ongoing(
                        self.dialect_name,
                        app_name,
                        lease=lease.window,
                        host=holder.host,
                        pid=holder.pid,
                        token=holder.token,
                        depends_on=depends_on,
                    )
                )
                return Claim(ClaimStatus.CLAIMED, state, holder)

        try:
            return retrying(f"claiming {app_name}", attempt, retry_for=self.retry_for)
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) == sql.LOCK_NOT_AVAILABLE:
                return Claim(ClaimStatus.LOCKED, None)
            raise StateStoreError(f"claiming {app_name!r} failed: {describe_error(exc)}") from exc

    def _recover(
        self,
        conn: sa.Connection,
        state: JobState,
        reason: str,
        db_now: dt.datetime,
        retry_after: dt.timedelta,
    ) -> Claim:
        """Release the abandoned claim on the locked ``state`` and log it as a failure."""
        error = abandoned_error(state, reason)
        assert state.ongoing is not None
        recorded = conn.execute(
            *sql.record_abandoned(state.app_name, error, db_now + retry_after)
        ).one()
        conn.execute(
            *sql.insert_log(
                self.dialect_name,
                state.app_name,
                log_time=db_now,
                duration=db_now - state.ongoing,
                success=None,
                error=error,
                token=f"abandoned:{state.ongoing_token}" if state.ongoing_token else None,
            )
        )
        return Claim(
            ClaimStatus.RECOVERED, state, abandoned=reason, recorded=JobState.from_row(recorded)
        )

    def finish(self, app_name: str, holder: Holder, outcome: Outcome) -> JobState | None:
        """Record a claimed run's outcome, log it and release the claim, in one transaction.

        Returns the new state, or ``None`` when the claim was no longer ours (it
        was taken over as abandoned). The log row is written either way, marked
        ``superseded`` in the second case, and exactly once: it carries the
        claim's token, so a retry after an attempt that committed unseen (the
        connection died at COMMIT) finds it and reports what that attempt did.
        Transient errors are retried for ``retry_for``.
        """

        def write(_attempt: int) -> JobState | None:
            with self.engine.connect() as conn, conn.begin():
                row = conn.execute(
                    *sql.record_outcome(
                        app_name,
                        holder.token,
                        started=outcome.started,
                        last_success=outcome.last_success or outcome.started,
                        next_run=outcome.next_run,
                        error=outcome.error,
                    )
                ).one_or_none()
                logged = conn.execute(
                    *sql.insert_log(
                        self.dialect_name,
                        app_name,
                        log_time=outcome.finished,
                        duration=outcome.duration,
                        success=None if outcome.error else outcome.last_success or outcome.started,
                        error=outcome.error,
                        token=holder.token,
                        superseded=row is None,
                    )
                ).rowcount
                if row is not None:
                    return JobState.from_row(row)
                if logged:
                    return None  # superseded: logged as such
                # An earlier attempt committed: report what it did.
                superseded = conn.execute(*sql.select_logged(holder.token)).scalar_one()
                if superseded:
                    return None
                return JobState.from_row(conn.execute(*sql.select_state(app_name)).one())

        return self._retrying(f"recording the outcome of {app_name}", write)

    def heartbeat(self, app_name: str, holder: Holder, lease: dt.timedelta) -> bool:
        """Renew the lease of a claim we hold for ``lease`` from the database's now;
        False when the claim is no longer ours. One attempt: errors are raised."""
        with self.engine.connect() as conn, conn.begin():
            renewed = conn.execute(*sql.beat(self.dialect_name, app_name, holder.token, lease))
            return bool(renewed.rowcount)

    def record_backfill_date(
        self,
        app_name: str,
        holder: Holder,
        *,
        date: dt.datetime,
        now: dt.datetime,
        duration: dt.timedelta,
    ) -> bool:
        """Record that a backfill job succeeded for ``date``, keeping the claim.

        One transaction: the date becomes ``last_success`` and gets a log row.
        Returns False when the claim is no longer ours (nothing is written).
        """

        def write(_attempt: int) -> bool:
            with self.engine.connect() as conn, conn.begin():
                updated = conn.execute(
                    *sql.record_backfill_date(app_name, holder.token, date=date, now=now)
                ).rowcount
                if updated:
                    conn.execute(
                        *sql.insert_log(
                            self.dialect_name,
                            app_name,
                            log_time=now,
                            duration=duration,
                            success=date,
                            error=None,
                            token=f"{holder.token}@{date.isoformat()}",
                        )
                    )
            return bool(updated)

        return self._retrying(f"recording {app_name}'s date {date.isoformat()}", write)

    def reset(self, app_name: str, *, force: bool) -> tuple[ResetStatus, JobState | None]:
        """Forget a job's state (its log rows stay), in one transaction.

        A job that is ongoing is left alone unless ``force`` is true. Returns
        what happened and the state as it was.
        """
        with self._connect() as conn, conn.begin():
            row = conn.execute(*sql.lock_state_waiting(self.dialect_name, app_name)).one_or_none()
            if row is None:
                return ResetStatus.ABSENT, None
            state = JobState.from_row(row)
            if state.ongoing is not None and not force:
                return ResetStatus.ONGOING, state
            conn.execute(*sql.delete_state(app_name))
            return ResetStatus.RESET, state

    def close(self) -> None:
        self.engine.dispose()

    def _retrying(self, what: str, write: Callable[[int], T], *, claimed: bool = True) -> T:
        try:
            return retrying(what, write, retry_for=self.retry_for)
        except sa.exc.DBAPIError as exc:
            consequence = "; its claim will expire and a later run recovers" if claimed else ""
            raise StateStoreError(f"{what} failed: {describe_error(exc)}{consequence}") from exc

    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise StateStoreError(
                f"cannot reach the state database {safe_url(self.engine.url)}: {describe_error(exc)}"
            ) from exc


def read_only(conn: sa.Connection) -> sa.Connection:
    """``conn`` set up for a read: no write lock on SQLite.

    On PostgreSQL the read is a plain transaction, rolled back. Autocommit would
    save its BEGIN, but the pool then resets the connection's isolation level
    when it is returned; a connection that dies during that reset raises the
    driver's own error past SQLAlchemy, and is lost to the pool.
    """
    if conn.dialect.name == "postgresql":
        return conn
    return conn.execution_options(crontabber_read_only=True)


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _take_over_transactions(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below decide how a transaction starts.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: sa.Connection) -> None:
        # Take the write lock up front, so a claim's read and write are atomic;
        # a plain read needs no write lock.
        read_only = conn.get_execution_options().get("crontabber_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def open_store(url: str | sa.URL, *, retry_for: dt.timedelta = RETRY_FOR) -> StateStore:
    """A store for a SQLAlchemy URL (``postgresql://...`` or ``sqlite:///path``)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise StateStoreError(f"bad database URL {safe_url(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg2")
        # No pre-ping: a connection lost since its last use fails its next
        # statement, and every write is retried on a new one (see transient.py).
        # hstore is never used: skip the type lookup it costs on every connect.
        engine = sa.create_engine(parsed, use_native_hstore=False)
    else:
        raise StateStoreError(
            f"unsupported database {parsed.get_backend_name()!r} in {safe_url(parsed)}: "
            "use postgresql:// or sqlite:///"
        )
    return StateStore(engine, retry_for=retry_for)
