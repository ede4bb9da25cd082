"""The state store on PostgreSQL: one statement, one round trip, per operation."""

from __future__ import annotations

import datetime as dt
import json

from crontabber.store.abc import StateStore
from crontabber.store.operators import RunNowStatus, run_now_status
from crontabber.store.records import JobState, Pause, ResetStatus, Snapshot

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from crontabber.store.lease import LeasePolicy
    from crontabber.store.records import Holder, Outcome

UTC = dt.timezone.utc


# The types of the times crontabber reads, by their PostgreSQL OIDs: timestamptz, and
# timestamp (a naive time is taken as local, as astimezone takes it).
TIME_TYPES = frozenset({1184, 1114})


def decoded_rows(cursor: Any) -> list[dict[str, Any]]:
    """The cursor's rows by column name, times in UTC whatever the session's time zone
    (no SET is sent for it); only the time columns are looked at, a row at a time."""
    names = [column[0] for column in cursor.description]
    times = [i for i, column in enumerate(cursor.description) if column[1] in TIME_TYPES]
    rows = []
    for row in cursor.fetchall():
        if times:
            row = list(row)  # noqa: PLW2901
            for i in times:
                if row[i] is not None:
                    row[i] = row[i].astimezone(UTC)
        rows.append(dict(zip(names, row, strict=True)))
    return rows


# A claim of the next job: the claimed job's state, or None, every candidate's row and
# those paused.
NextClaim = tuple[JobState | None, dict[str, JobState], frozenset[str]]


def _next_claim_params(
    candidates: Sequence[tuple[str, Sequence[str], JobState | None]],
    lease: LeasePolicy,
    holder: Holder,
) -> dict[str, Any]:
    return {
        "app_names": [name for name, _, _ in candidates],
        "seen_next_runs": [seen.next_run if seen else None for _, _, seen in candidates],
        "depends_on_json": json.dumps({name: list(deps) for name, deps, _ in candidates}),
        "lease_seconds": lease.window.total_seconds(),
        "host": holder.host,
        "pid": holder.pid,
        "next_token": holder.token,
    }


def _next_claim(rows: list[dict[str, Any]], holder: Holder) -> NextClaim:
    """The claimed state, or None, the candidates' rows and those paused, from
    ``next_claim_rows``."""
    rows = [row for row in rows if row["kind"] in ("claimed", "seen")]
    states = {row["app_name"]: JobState.from_values(row) for row in rows}
    for row in rows:  # claimed now, or by an earlier try that committed unseen
        if row["kind"] == "claimed" or row["ongoing_token"] == holder.token:
            return states[row["app_name"]], {}, frozenset()
    return None, states, frozenset(row["app_name"] for row in rows if row["paused"])


class PostgresStore(StateStore):
    """:class:`StateStore` on PostgreSQL through psycopg2, in autocommit."""

    dialect_name = "postgresql"

    def _execute(self, connection: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with connection.cursor() as cursor:
            cursor.execute(*self._bounded(cursor, name, params))
            return decoded_rows(cursor) if cursor.description else []

    def _bounded(
        self, cursor: Any, name: str, params: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The statement ``name`` after the ``timeouts`` the server ends it at (the
        session's, see :meth:`Session.server_timeouts`), in one query string: one round
        trip, and one implicit transaction, to which SET LOCAL is confined. Nothing is
        added when the connection has them as its own (crontabber.store.timeouts):
        read back on ``cursor`` before its second statement."""
        timeouts, known = self._timeouts, self._connection_timeouts
        if known.to_check(timeouts):
            cursor.execute(self.sql["session_timeouts"])
            known.checked(decoded_rows(cursor)[0])
        if not known.carried(timeouts):
            return self.sql[name], params
        return self.sql["timeouts"] + ";\n" + self.sql[name], {**params, **timeouts}

    def claim_next(
        self,
        candidates: Sequence[tuple[str, Sequence[str], JobState | None]],
        *,
        lease: LeasePolicy,
        holder: Holder,
    ) -> NextClaim:
        """Claim the first of ``candidates`` (app name, dependencies, state as seen;
        None: no row yet) that is free and unchanged since seen, skipping rows another
        process is claiming: hosts never wait on or fail against each other.

        Returns the claimed job's state (``holder`` holds it, leased for
        ``lease.window``) and nothing else; or None and every candidate's row as it
        stands, from which the caller tells a job running elsewhere, one another
        process has just run, and one it is claiming right now, and the candidates
        paused meanwhile (never claimed). One statement (two
        when a candidate has no row yet).
        """
        params = _next_claim_params(candidates, lease, holder)

        def attempt(connection: Any) -> NextClaim:
            self._insert_missing(connection, candidates, params)
            return _next_claim(self._execute(connection, "claim_next", params), holder)

        return self._retrying("claiming the next due job", attempt, holds=False)

    def finish_and_claim_next(
        self,
        app_name: str,
        holder: Holder,
        outcome: Outcome,
        candidates: Sequence[tuple[str, Sequence[str], JobState | None]],
        *,
        lease: LeasePolicy,
        next_holder: Holder,
    ) -> tuple[JobState | None, NextClaim]:
        """:meth:`finish` and :meth:`claim_next` in one statement: one round trip and
        one transaction where there would be two. Returns what each returns."""
        params = {
            **_next_claim_params(candidates, lease, next_holder),
            **self._outcome_params(outcome.params(app_name, holder.token)),
        }

        def write(connection: Any) -> tuple[JobState | None, NextClaim]:
            self._insert_missing(connection, candidates, params)
            rows = self._execute(connection, "finish_claim_next", params)
            [finished] = [row for row in rows if row["kind"] == "finished"]
            released = JobState.from_values(finished) if finished["app_name"] else None
            state = self._finished(
                connection, app_name, released, finished["logged"], finished["logged_before"]
            )
            return state, _next_claim(rows, next_holder)

        return self._retrying(f"recording the outcome of {app_name}", write)

    def read_due_snapshot(
        self, max_age: dt.timedelta, *, ahead: dt.timedelta, app_names: Sequence[str]
    ) -> Snapshot:
        """Like :meth:`read_snapshot`, but only the rows due within ``ahead`` from the
        database's now, those that never ran and those named: what a daemon reads
        between its full reads (by the index on ``next_run``). One statement; the
        schema is not checked (a full read was made first)."""
        params = {
            "dead_token": None,
            "max_age_seconds": max_age.total_seconds(),
            "ahead_seconds": ahead.total_seconds(),
            "app_names": list(app_names),
        }
        rows = self._retrying(
            "reading the due jobs' state",
            lambda connection: self._execute(connection, "read_due_states", params),
            claimed=False,
        )
        return Snapshot.from_rows(rows)

    def _insert_missing(
        self,
        connection: Any,
        candidates: Sequence[tuple[str, Sequence[str], JobState | None]],
        params: dict[str, Any],
    ) -> None:
        """The rows of candidates that have none yet (their first run)."""
        missing = [name for name, _, seen in candidates if seen is None]
        if missing:
            self._execute(
                connection,
                "insert_states",
                {"app_names": missing, "depends_on_json": params["depends_on_json"]},
            )

    @staticmethod
    def _outcome_params(params: dict[str, Any]) -> dict[str, Any]:
        # JSON goes as text, cast in SQL: psycopg2.extras (its Json) costs an import.
        return {**params, "error": json.dumps(params["error"]) if params["error"] else None}

    def _read_states(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = self._execute(connection, "read_states", params)
        if rows[0].get("unrecorded_timeline") is not None and not self.read_only:
            # The first read on a new timeline (a promoted standby): from now on the
            # lease rule counts from here, not from the standby's start.
            self._execute(connection, "record_timeline", {})
        return rows

    def _revision(self, connection: Any) -> str | None:
        return self._execute(connection, "schema_revision", {})[0]["string_agg"]

    def _claim(self, connection: Any, params: dict[str, Any], *, create: bool) -> dict[str, Any]:
        if create:
            self._execute(connection, "insert_state", params)
        rows = self._execute(connection, "claim", params)  # 55P03: see StateStore._retrying
        if not rows:  # the row went away (reset) since the caller saw it: create it
            self._execute(connection, "insert_state", params)
            rows = self._execute(connection, "claim", params)
        return rows[0]

    def _recover(self, connection: Any, state: JobState, params: dict[str, Any]) -> JobState | None:
        rows = self._execute(
            connection, "recover", {**params, "error": json.dumps(params["error"])}
        )
        return JobState.from_values(rows[0]) if rows else None

    def _finish(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[JobState | None, bool, bool | None]:
        row = self._execute(connection, "finish", self._outcome_params(params))[0]
        released = JobState.from_values(row) if row["app_name"] is not None else None
        return released, row["logged"], row["logged_before"]

    def _beat(self, connection: Any, params: dict[str, Any]) -> bool | str:
        rows = self._execute(connection, "beat", params)
        if not rows:
            return False
        return "cancel" if rows[0]["cancel"] else True

    def _record_date(self, connection: Any, params: dict[str, Any]) -> bool:
        return bool(self._execute(connection, "record_date", params)[0]["count"])

    def _reset(
        self, connection: Any, app_name: str, force: bool, audit: dict[str, Any]
    ) -> tuple[ResetStatus, JobState | None]:
        rows = self._execute(connection, "reset", {"app_name": app_name, "force": force, **audit})
        if not rows:
            return ResetStatus.ABSENT, None
        state = JobState.from_values(rows[0])
        return (ResetStatus.RESET if rows[0]["deleted"] else ResetStatus.ONGOING), state

    def _prune(self, connection: Any, params: dict[str, Any]) -> int:
        with connection.cursor() as cursor:
            cursor.execute(*self._bounded(cursor, "prune_log", params))
            return cursor.rowcount

    def _pause(self, connection: Any, params: dict[str, Any]) -> Pause | None:
        row = self._execute(connection, "pause", params)[0]
        if not row["paused"]:
            return None
        return Pause(
            params["app_name"], row["db_now"], row["until"], params["reason"], params["actor"]
        )

    def _resume(self, connection: Any, params: dict[str, Any]) -> bool:
        return self._execute(connection, "resume", params)[0]["resumed"]

    def _run_now(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[RunNowStatus, dict[str, Any]]:
        self._execute(connection, "insert_state", params)
        row = self._execute(connection, "run_now", params)[0]
        return run_now_status(row), row

    def _cancel(
        self, connection: Any, params: dict[str, Any]
    ) -> tuple[bool, dict[str, Any] | None]:
        rows = self._execute(connection, "cancel", params)
        return (bool(rows and rows[0]["asked"]), rows[0] if rows else None)

    def _record_event(self, connection: Any, params: dict[str, Any]) -> int:
        return len(self._execute(connection, "record_event", params))

    def _claim_notifications(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._execute(connection, "claim_notifications", params)

    def _log_page(self, connection: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._execute(connection, "log_page", params)

    def _log_query(
        self, connection: Any, name: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return self._execute(connection, name, params)
