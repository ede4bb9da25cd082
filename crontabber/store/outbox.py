"""The outbox of notifications through the state store: record an event once, claim
pending ones for delivery, say how a delivery went, and read what there is.

A mixin of :class:`crontabber.store.abc.StateStore`. Recording is one statement
(PostgreSQL) whose unique index makes hosts that see the same event record it
once; claiming takes rows no other host is delivering (``FOR UPDATE SKIP LOCKED``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``), each leased for a while, so an
event whose sender died is claimed again once its lease has passed.
"""

from __future__ import annotations

import abc
import datetime as dt

from crontabber.record import record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


@record
class Notification:
    """One row of ``crontabber_notification``: an event, for one destination."""

    id: int
    app_name: str
    kind: str  # failed, recovered, late, stuck, auto_paused
    about: dt.datetime  # the instant it is about (a run's start, a missed next run...)
    sink: str  # webhook, email
    created: dt.datetime
    host: str | None = None  # the host that saw it
    error: str | None = None
    text: str = ""
    attempts: int = 0
    status: str = "pending"  # sent, failed (for good)
    next_attempt: dt.datetime | None = None
    sent: dt.datetime | None = None
    delivery_error: str | None = None


NOTIFICATION_FIELDS = frozenset(Notification.__match_args__)  # type: ignore[attr-defined]


class Outbox(abc.ABC):
    """Notifications through the store's connection and retries."""

    def record_event(
        self,
        app_name: str,
        kind: str,
        about: dt.datetime,
        *,
        sinks: Sequence[str],
        host: str,
        text: str,
        error: str | None = None,
        quiet: dt.timedelta | None = None,
    ) -> int:
        """Record an event for each of ``sinks``, unless it is recorded already (same
        job, kind, instant and sink) or, with ``quiet``, one of its kind was recorded
        for the job within that long. Returns how many rows this recorded."""
        params = {
            "app_name": app_name,
            "kind": kind,
            "about": about,
            "sinks": list(sinks),
            "host": host,
            "text": text,
            "error": error,
            "quiet_seconds": quiet.total_seconds() if quiet else 0.0,
        }
        return self._retrying(
            f"recording the {kind} event of {app_name}",
            lambda c: self._record_event(c, params),
            claimed=False,
        )

    def claim_notifications(self, *, batch: int, lease: dt.timedelta) -> list[Notification]:
        """Up to ``batch`` pending notifications due for an attempt, leased to the caller
        for ``lease`` (another host takes them over after that)."""
        params = {"batch": batch, "lease_seconds": lease.total_seconds()}
        rows = self._retrying(
            "claiming notifications", lambda c: self._claim_notifications(c, params), claimed=False
        )
        return [_notification(row) for row in rows]

    def notification_done(
        self,
        notification_id: int,
        *,
        status: str,
        error: str | None = None,
        retry_after: dt.timedelta = dt.timedelta(),
    ) -> None:
        """How a delivery went: ``sent``; ``pending`` (tried again ``retry_after``
        later); ``failed`` for good. ``error``: one line, no secret in it."""
        params = {
            "id": notification_id,
            "status": status,
            "error": error,
            "retry_seconds": retry_after.total_seconds(),
        }
        self._retrying(
            "recording a delivery",
            lambda c: self._execute(c, "notification_done", params),
            claimed=False,
        )

    def read_notifications(
        self, app_name: str | None = None, *, limit: int = 50
    ) -> list[Notification]:
        """The newest notifications, of one job or of all, newest first."""
        params = {"app_name": app_name, "limit": limit}
        rows = self._retrying(
            "reading notifications",
            lambda c: self._execute(c, "recent_notifications", params),
            claimed=False,
        )
        return [_notification(row) for row in rows]

    def count_notifications(self) -> dict[tuple[str, str], int]:
        """How many notifications there are, by (kind, status)."""
        rows = self._retrying(
            "counting notifications",
            lambda c: self._execute(c, "notification_counts", {}),
            claimed=False,
        )
        return {(row["kind"], row["status"]): int(row["count"]) for row in rows}

    # --- what each database does ------------------------------------------------------

    @abc.abstractmethod
    def _execute(self, connection: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run the statement ``name`` of this database's file; its rows, decoded."""

    @abc.abstractmethod
    def _record_event(self, connection: Any, params: dict[str, Any]) -> int:
        """Insert the event's rows (one per sink) once; how many were inserted."""

    @abc.abstractmethod
    def _claim_notifications(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Lease up to ``batch`` pending rows; the leased rows."""

    _retrying: Any  # the store's (crontabber.store.session.Session)


def _notification(row: dict[str, Any]) -> Notification:
    return Notification(**{key: value for key, value in row.items() if key in NOTIFICATION_FIELDS})
