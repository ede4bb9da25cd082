"""The state store's contract: where each job's state lives and how a due job is claimed.

One contract, two databases. :class:`StateStore` writes the contract down once
(each public method's docstring) and holds what both share; the abstract
methods are what each database does, in :mod:`crontabber.store.postgresql` and
:mod:`crontabber.store.sqlite`, which run the named statements of
``sql/postgresql.sql`` and ``sql/sqlite.sql`` through the DB-API drivers, with
no SQLAlchemy on the way.

On PostgreSQL the connection is in autocommit and each operation is one
statement, so one round trip: the claim locks the row with ``FOR UPDATE
NOWAIT``, applies the lease rule and marks it ongoing in one statement; the
outcome releases the claim and logs it in one. SQLite, which has no row locks,
runs the same steps as a few statements in one ``BEGIN IMMEDIATE`` transaction.
Either way nothing is ever half-written.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging

from crontabber.errors import NO_MIGRATION_MENDS, LockNotAvailable, StateStoreError
from crontabber.store.operators import OperatorActions
from crontabber.store.outbox import Outbox
from crontabber.store.queries import queries
from crontabber.store.records import Claim, ClaimStatus, JobState, Snapshot
from crontabber.store.schema import SCHEMA_REVISION
from crontabber.store.session import RETRY_FOR, TIMEOUT, Session
from crontabber.store.views import LogViews

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from crontabber.db.url import DatabaseURL
    from crontabber.store.lease import LeasePolicy
    from crontabber.store.records import Holder, Outcome, ResetStatus

DEFAULT_MAX_AGE = dt.timedelta(hours=12)
PRUNE_BATCH = 1000  # crontabber_log rows deleted per statement

log = logging.getLogger("crontabber")


class StateStore(LogViews, OperatorActions, Outbox, Session, abc.ABC):
    """Reads and writes job state. Create one with :func:`crontabber.store.open_store`.

    Every public method is one short transaction (one statement on PostgreSQL)
    and leaves nothing half-written. Writes are retried through transient
    trouble (a lost connection, a restarting server) for ``retry_for``.
    """

    dialect_name: str
    read_only = False  # True for the status page's store: reads write nothing, not even
    # the first sight of a new timeline (see ``record_timeline`` in sql/postgresql.sql)

    def __init__(
        self,
        url: DatabaseURL,
        *,
        retry_for: dt.timedelta = RETRY_FOR,
        timeout: dt.timedelta | None = TIMEOUT,
        auto_migrate: bool = True,
        give_up: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(url, retry_for=retry_for, timeout=timeout, give_up=give_up)
        self.auto_migrate = auto_migrate
        self.sql = queries(self.dialect_name)

    # --- the contract -------------------------------------------------------------

    def read_snapshot(self, max_age: dt.timedelta = DEFAULT_MAX_AGE) -> Snapshot:
        """Every job's state, by app name, the database's time, and which claims the
        lease rule finds abandoned (claims older than ``max_age`` included), and the
        pauses in force, in one statement.

        The same statement reads the schema's revision: when it is not this
        crontabber's, the schema is brought up to date first (see
        :meth:`ensure_schema`) and the states read again.
        """
        params = {"dead_token": None, "max_age_seconds": max_age.total_seconds()}

        def read(connection: Any) -> list[dict[str, Any]]:
            return self._read_states(connection, params)

        try:
            rows = self._retrying("reading the jobs' state", read, claimed=False)
        except NO_MIGRATION_MENDS:
            raise
        except StateStoreError:
            if self.ensure_schema():  # the schema was current: the error stands
                raise
            rows = self._retrying("reading the jobs' state", read, claimed=False)
        else:
            if rows[0]["revision"] != SCHEMA_REVISION:
                self.ensure_schema()
                rows = self._retrying("reading the jobs' state", read, claimed=False)
        return Snapshot.from_rows(rows)

    def load_states(self) -> dict[str, JobState]:
        """Every job's state, by app name, in one statement."""
        return self.read_snapshot().states

    def claim(
        self,
        app_name: str,
        *,
        depends_on: Sequence[str],
        seen: JobState | None,
        force: bool,
        lease: LeasePolicy,
        holder: Holder,
        retry_after: dt.timedelta,
    ) -> Claim:
        """Try to claim a job: lock its row, apply the lease rule, mark it ongoing.

        ``seen`` is the job's state as the caller found it due (None: no row yet,
        which is then created). Returns LOCKED when another process holds the row
        lock; ONGOING when another process holds a live claim; RECOVERED when the
        claim it held is abandoned (the database decides, see ``lease.py``): the
        abandoned attempt is recorded as a failed run and the job is due again
        ``retry_after`` later, like any failure, so a job that kills its process
        cannot crash-loop; PAUSED when an operator paused the job (``force`` or
        not); NOT_DUE when the row changed since ``seen`` (someone ran it) and
        ``force`` is false; CLAIMED otherwise, leased for
        ``lease.window`` from the database's now.
        """
        params = {
            "app_name": app_name,
            "depends_on": list(depends_on),
            "dead_token": lease.dead_local_token(seen),
            "max_age_seconds": lease.max_age.total_seconds(),
            "lease_seconds": lease.window.total_seconds(),
            "host": holder.host,
            "pid": holder.pid,
            "token": holder.token,
            "force": force,
            "seen_next_run": seen.next_run if seen else None,
        }

        def attempt(connection: Any) -> Claim:
            row = self._claim(connection, params, create=seen is None)
            state = JobState.from_values(row)
            if row["claimed"] or state.ongoing_token == holder.token:  # (an earlier try did)
                return Claim(ClaimStatus.CLAIMED, state, holder)
            if state.ongoing is None:
                paused = row.get("paused")
                return Claim(ClaimStatus.PAUSED if paused else ClaimStatus.NOT_DUE, state)
            if row["abandoned"] is None:
                return Claim(ClaimStatus.ONGOING, state)
            reason = lease.reason(row["abandoned"], state, row["db_now"])
            recorded = self._recover(
                connection, state, lease.recovery(state, reason, params, retry_after, row["db_now"])
            )
            if recorded is None:  # renewed or taken meanwhile: see it again next time
                return Claim(ClaimStatus.ONGOING, state)
            return Claim(ClaimStatus.RECOVERED, state, abandoned=reason, recorded=recorded)

        try:
            return self._retrying(f"claiming {app_name}", attempt, holds=False)
        except LockNotAvailable:
            return Claim(ClaimStatus.LOCKED, None)

    def finish(self, app_name: str, holder: Holder, outcome: Outcome) -> JobState | None:
        """Record a claimed run's outcome, log it and release the claim, in one transaction.

        Returns the new state, or ``None`` when the claim was no longer ours (it
        was taken over as abandoned). The log row is written either way, marked
        ``superseded`` in the second case, and exactly once: it carries the
        claim's token, so a retry after an attempt that committed unseen (the
        connection died at COMMIT) finds it and reports what that attempt did.
        """
        params = outcome.params(app_name, holder.token)

        def write(connection: Any) -> JobState | None:
            released, logged, logged_before = self._finish(connection, params)
            return self._finished(connection, app_name, released, logged, logged_before)

        return self._retrying(f"recording the outcome of {app_name}", write)

    def _finished(
        self,
        connection: Any,
        app_name: str,
        released: JobState | None,
        logged: bool,
        logged_before: bool | None,
    ) -> JobState | None:
        """What a written outcome left: the released row, or None when superseded."""
        if released is not None:
            return released
        if logged or logged_before:
            return None  # superseded, and logged as such (now or by an earlier try)
        return self._select_state(connection, app_name)  # an earlier try applied it

    def heartbeat(self, app_name: str, holder: Holder, lease: dt.timedelta) -> bool | str:
        """Renew the lease of a claim we hold for ``lease`` from the database's now.

        False when the claim is no longer ours; ``"cancel"`` (renewed) when an
        operator asked for the run to stop (:meth:`cancel`). One attempt (from the heartbeat's
        thread), never a retry: errors are raised (the server's lock or statement timeout
        as a one-line StateStoreError). It uses the store's one
        connection, between the statements of the thread that runs the jobs, so a
        process never needs a second connection to keep its lease.
        """
        params = {
            "app_name": app_name,
            "token": holder.token,
            "lease_seconds": lease.total_seconds(),
        }
        seconds = self.deadline_seconds(lease.total_seconds() / 3)
        return self._once(lambda connection: self._beat(connection, params), seconds)

    def record_backfill_date(
        self,
        app_name: str,
        holder: Holder,
        *,
        date: dt.datetime,
        now: dt.datetime,
        duration: dt.timedelta,
        output: str | None = None,
    ) -> bool:
        """Record that a backfill job succeeded for ``date``, keeping the claim.

        One transaction: the date becomes ``last_success`` and gets a log row
        (once). Returns False when the claim is no longer ours (nothing is written).
        """
        params = {
            "app_name": app_name,
            "token": holder.token,
            "date": date,
            "now": now,
            "duration": duration,
            "log_token": f"{holder.token}@{date.isoformat()}",
            "host": holder.host,
            "pid": holder.pid,
            "trigger": f"backfill {date.isoformat()}",
            "output": output,
        }
        return self._retrying(
            f"recording {app_name}'s date {date.isoformat()}",
            lambda connection: self._record_date(connection, params),
        )

    def prune_log(self, before: dt.datetime, *, batch: int = PRUNE_BATCH) -> int:
        """Delete the ``crontabber_log`` rows logged before ``before``, oldest first, in
        statements of at most ``batch`` rows (each its own short transaction, so a
        large backlog never holds a long lock). Returns how many were deleted."""
        params = {"before": before, "batch": batch}
        deleted = 0
        while True:
            count = self._retrying(
                "pruning crontabber_log", lambda c: self._prune(c, params), claimed=False
            )
            deleted += count
            if count < batch:
                return deleted

    def reset(
        self,
        app_name: str,
        *,
        force: bool,
        actor: str = "",
        reason: str | None = None,
        action: str = "reset",
    ) -> tuple[ResetStatus, JobState | None]:
        """Forget a job's state (its log rows and its pause stay), in one transaction
        that audits it as ``action`` (``reset``, or ``remove-ghost``) by ``actor``.

        A job that is ongoing is left alone unless ``force`` is true. Returns
        what happened and the state as it was.
        """
        self.ensure_schema()
        audit = {"action": action, "reason": reason, "detail": None, "actor": actor or "library"}
        if force:
            audit["detail"] = "forced"
        return self._retrying(
            f"resetting {app_name}",
            lambda connection: self._reset(connection, app_name, force, audit),
            claimed=False,
        )

    def ensure_schema(self) -> bool:
        """Make sure the schema is current: one query when it is (returns True).

        Otherwise, with ``auto_migrate`` the migrations are applied (one host at
        a time; see :mod:`crontabber.store.migrate`, which imports SQLAlchemy and
        Alembic) and this returns False; without it this raises a
        StateStoreError saying to run ``--migrate``.
        """
        try:
            revision = self._retrying("checking the schema", self._revision, claimed=False)
        except NO_MIGRATION_MENDS:
            raise
        except StateStoreError:
            revision = None  # most likely no version table yet: upgrade() decides
        if revision == SCHEMA_REVISION:
            return True
        self.check_integrity()  # a damaged SQLite file reads as an old schema: never migrate it
        if not self.auto_migrate:
            raise StateStoreError(
                f"the schema of the state database {self.url.safe} is out of date "
                "and crontabber.auto_migrate is off: run crontabber with --migrate"
            )
        from crontabber.store import migrate

        result = migrate.upgrade(self.engine, lock_timeout=self.lock_timeout_seconds)
        if result.changed:
            log.info(
                "migrated the state database from schema revision %s to %s",
                result.before or "none",
                result.after,
            )
        return False

    def migrate(self) -> tuple[str | None, str]:
        """Apply the migrations the database lacks; the revisions before and after.
        A damaged SQLite file is refused (StateFileCorrupt), never migrated."""
        from crontabber.store import migrate

        self.check_integrity()
        result = migrate.upgrade(self.engine, lock_timeout=self.lock_timeout_seconds)
        return result.before, result.after

    # --- what each database does: each runs on ``connection`` and commits what it writes -----

    @abc.abstractmethod
    def _execute(self, connection: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run the statement ``name`` of this database's file; its rows, decoded."""

    @abc.abstractmethod
    def _read_states(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``read_states`` rows, decoded: one per job (STATE_COLUMNS, ``abandoned``),
        each with ``db_now``, ``revision`` and ``oldest_log``; one row of those alone
        (``app_name`` None) when there is no job."""

    @abc.abstractmethod
    def _revision(self, connection: Any) -> str | None:
        """The schema revision recorded in the database (None: none recorded)."""

    @abc.abstractmethod
    def _claim(self, connection: Any, params: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """The locked row (decoded), ``db_now``, ``abandoned`` (the verdict) and
        ``claimed``; raises LockNotAvailable when another process holds the lock.
        ``create``: insert the row first (it was not there when the job was seen)."""

    @abc.abstractmethod
    def _recover(self, connection: Any, state: JobState, params: dict[str, Any]) -> JobState | None:
        """Record the abandoned claim in ``state`` as a failed run and log it, in one
        transaction; the new state, or None when the claim was renewed or taken meanwhile.
        ``params``: the claim's, with the recovery's (``error``, ``retry_after_seconds``,
        ``abandoned_since``, ``abandoned_token``, ``exc_type``, ``exc_value``,
        ``log_token``, ``db_now``)."""

    @abc.abstractmethod
    def _finish(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[JobState | None, bool, bool | None]:
        """The released row (None: not ours), whether this logged, and whether an
        earlier try had logged (None: it had not; else its ``superseded``)."""

    @abc.abstractmethod
    def _beat(self, connection: Any, params: dict[str, Any]) -> bool | str:
        """Renew the lease of ``params["token"]``'s claim; False when it is not held,
        ``"cancel"`` when an operator asked for the run to stop."""

    @abc.abstractmethod
    def _record_date(self, connection: Any, params: dict[str, Any]) -> bool:
        """A backfill date's success and its log row (once); False when the claim is gone."""

    def _select_state(self, connection: Any, app_name: str) -> JobState:
        """The job's row as it is now."""
        return JobState.from_values(
            self._execute(connection, "select_state", {"app_name": app_name})[0]
        )

    @abc.abstractmethod
    def _prune(self, connection: Any, params: dict[str, Any]) -> int:
        """Delete at most ``batch`` log rows logged before ``before``; how many went."""

    @abc.abstractmethod
    def _reset(
        self, connection: Any, app_name: str, force: bool, audit: dict[str, Any]
    ) -> tuple[ResetStatus, JobState | None]:
        """Delete the job's row unless it is ongoing and not ``force``, audited as
        ``audit`` says; what happened, and the row as it was."""
