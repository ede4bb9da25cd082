"""What operators ask of a job through the state store: pause, resume, run now, cancel.

A mixin of :class:`crontabber.store.abc.StateStore`: the public methods are
here, each database's statements behind the abstract methods. Each action is
one transaction (one statement on PostgreSQL) that also writes its row of
``crontabber_audit``, so an action is never done without its record, nor
recorded without being done. Times are the database's. Each first checks the
schema (one query), as an action may be the first use of a database. Every host sees an
action at its next tick: the claim statements refuse a paused job, a run-now
makes the job due, and the holder's heartbeat reads a cancel.

An action that finds the job not in a state for it (running, paused, not
running) does nothing, audits nothing, and says why in what it returns.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum

from crontabber.store.records import AuditEntry, JobState, Pause

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class RunNowStatus(enum.Enum):
    ASKED = "asked"  # due now, for whichever host claims it next
    ONGOING = "ongoing"  # refused: it is running
    PAUSED = "paused"  # refused: it is paused


class OperatorActions(abc.ABC):
    """Operators' actions and the audit log, through the store's connection."""

    def pause(
        self,
        app_name: str,
        *,
        actor: str,
        reason: str | None = None,
        until: dt.datetime | None = None,
        until_seconds: float | None = None,
    ) -> Pause | None:
        """Pause a job until ``until``, or for ``until_seconds`` from the database's
        now, or until resumed (neither given). A pause replaces the job's earlier one.
        Returns the pause, or None when its end is not after the database's now."""
        params = {
            "app_name": app_name,
            "actor": actor,
            "reason": reason,
            "until": until,
            "until_seconds": until_seconds,
        }
        self.ensure_schema()
        return self._retrying(
            f"pausing {app_name}", lambda c: self._pause(c, params), claimed=False
        )

    def resume(self, app_name: str, *, actor: str, reason: str | None = None) -> bool:
        """End a job's pause; False when it had none in force."""
        params = {"app_name": app_name, "actor": actor, "reason": reason}
        self.ensure_schema()
        return self._retrying(
            f"resuming {app_name}", lambda c: self._resume(c, params), claimed=False
        )

    def run_now(
        self,
        app_name: str,
        *,
        depends_on: Sequence[str],
        actor: str,
        reason: str | None = None,
    ) -> tuple[RunNowStatus, JobState]:
        """Make a job due now for whichever host claims it next, unless it is running
        or paused. The next run it brings forward is kept: after the run the schedule
        goes on as if the job had run on time. Returns what happened and the job's row
        as it was."""
        params = {
            "app_name": app_name,
            "depends_on": list(depends_on),
            "actor": actor,
            "reason": reason,
        }
        self.ensure_schema()
        status, row = self._retrying(
            f"asking for a run of {app_name}", lambda c: self._run_now(c, params), claimed=False
        )
        return status, JobState.from_values(row)

    def cancel(
        self, app_name: str, *, actor: str, reason: str | None = None
    ) -> tuple[bool, JobState | None]:
        """Ask the holder of a job's claim, on whatever host, to stop the run: its next
        heartbeat reads the request. Returns whether there was a run to cancel, and the
        job's row (None: the job has no row)."""
        params = {"app_name": app_name, "actor": actor, "reason": reason}
        self.ensure_schema()
        asked, row = self._retrying(
            f"cancelling {app_name}", lambda c: self._cancel(c, params), claimed=False
        )
        return asked, (JobState.from_values(row) if row is not None else None)

    def read_audit_log(self, app_name: str | None = None, *, limit: int = 50) -> list[AuditEntry]:
        """The newest ``limit`` audit rows, of one job or of all, newest first."""
        params = {"app_name": app_name, "limit": limit}
        self.ensure_schema()
        rows = self._retrying(
            "reading the audit log",
            lambda c: self._execute(c, "audit_log", params),
            claimed=False,
        )
        return [AuditEntry(**row) for row in rows]

    def latest_action(self) -> int | None:
        """The id of the newest audit row (None: none yet): a sleeping daemon looks for
        a new one, to act on an operator's action at once. One small statement."""
        rows = self._retrying(
            "looking for operators' actions",
            lambda c: self._execute(c, "latest_action", {}),
            claimed=False,
        )
        return rows[0]["id"]

    # --- what each database does ------------------------------------------------------

    @abc.abstractmethod
    def _execute(self, connection: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run the statement ``name`` of this database's file; its rows, decoded."""

    @abc.abstractmethod
    def _pause(self, connection: Any, params: dict[str, Any]) -> Pause | None:
        """Set the pause and audit it; None when its end has passed."""

    @abc.abstractmethod
    def _resume(self, connection: Any, params: dict[str, Any]) -> bool:
        """Remove the pause, audited when one was in force; whether one was."""

    @abc.abstractmethod
    def _run_now(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[RunNowStatus, dict[str, Any]]:
        """Create the row if need be, ask for the run and audit it; the row as it was."""

    @abc.abstractmethod
    def _cancel(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[bool, dict[str, Any] | None]:
        """Ask for the cancel and audit it; whether the job was running, and its row."""

    _retrying: Any  # the store's (crontabber.store.session.Session)
    ensure_schema: Any  # the store's: each action first brings the schema up to date


def run_now_status(row: dict[str, Any]) -> RunNowStatus:
    """What the run_now statement did to the row as it was."""
    if row["asked"]:
        return RunNowStatus.ASKED
    return RunNowStatus.ONGOING if row["ongoing"] is not None else RunNowStatus.PAUSED
