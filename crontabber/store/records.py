"""The records passed between the state store, the runner and the admin commands."""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Mapping

from crontabber.record import field, record
from crontabber.store.schema import STATE_COLUMNS

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any


@record
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
    # Grows with every claim of the job: what a job passes on to guard data elsewhere.
    fence: int = 0
    # An operator's run-now, pending: when it was asked, and the next run it brought forward.
    run_now: dt.datetime | None = None
    run_now_displaced: dt.datetime | None = None
    # When an operator asked the holder of the claim to stop the run.
    cancel_requested: dt.datetime | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> JobState:
        """From a row's decoded values by column name (other names are ignored)."""
        known = {name: values.get(name) for name in STATE_COLUMNS}
        known["depends_on"] = tuple(known["depends_on"] or ())
        known["error_count"] = known["error_count"] or 0
        known["fence"] = known["fence"] or 0
        return cls(**known)

    @property
    def failed_last_time(self) -> bool:
        return bool(self.error_count) or bool(self.last_error)


@record
class Holder:
    """Who holds a claim: this host, this process, and a token unique to the claim."""

    host: str
    pid: int
    # 128 random bits, as a uuid4 has (uuid and socket cost a tick a few ms to import)
    token: str = field(default_factory=lambda: os.urandom(16).hex())

    @classmethod
    def this_process(cls, host: str | None = None) -> Holder:
        """This host (its name, as socket.gethostname() gives it) and this process."""
        return cls(host=host or os.uname().nodename, pid=os.getpid())


UTC = dt.timezone.utc


@record
class Pause:
    """A job an operator paused: no host claims it while the pause is in force."""

    app_name: str
    since: dt.datetime
    until: dt.datetime | None = None  # None: until resumed
    reason: str | None = None
    actor: str = ""

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Pause:
        """From the ``pauses`` JSON of either database (times as epoch seconds or as text)."""
        return cls(
            item["app_name"],
            _json_time(item["since"]) or dt.datetime.min.replace(tzinfo=UTC),
            _json_time(item.get("until")),
            item.get("reason"),
            item.get("actor") or "",
        )

    def words(self) -> str:
        """``paused until 2026-12-05 06:00 UTC (why)``, as operators read it."""
        until = f" until {self.until:%Y-%m-%d %H:%M} UTC" if self.until else ""
        return f"paused{until}" + (f" ({self.reason})" if self.reason else "")


def _json_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, UTC)
    # text: SQLite's form, 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
    return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)


@record
class Snapshot:
    """Every job's state, read in one statement, and the database's time of the read."""

    states: dict[str, JobState]
    now: dt.datetime
    # The jobs whose claims the database found abandoned (lease lapsed, or too old)
    # at the read: the others' claims are live, unless their holder is a process of
    # this host that is gone (see LeasePolicy.dead_local_token).
    abandoned: frozenset[str] = frozenset()
    oldest_log: dt.datetime | None = None  # the time of the oldest crontabber_log row
    paused: dict[str, Pause] = field(default_factory=dict)  # the pauses in force, by job
    # Not read now: a daemon's kept rows (crontabber.run.reading), ``now`` counted on
    # from its last read. Nothing is judged late or stuck on them.
    kept: bool = False

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Snapshot:
        """From the rows of ``read_states`` (or ``read_due_states``), decoded."""
        jobs = [row for row in rows if row["app_name"] is not None]
        return cls(
            {row["app_name"]: JobState.from_values(row) for row in jobs},
            rows[0]["db_now"],
            frozenset(row["app_name"] for row in jobs if row["abandoned"] is not None),
            rows[0]["oldest_log"],
            {pause.app_name: pause for pause in map(Pause.from_json, rows[0].get("paused") or ())},
        )


class ResetStatus(enum.Enum):
    RESET = "reset"
    ABSENT = "absent"  # there was no state to forget
    ONGOING = "ongoing"  # refused: the job is running


class ClaimStatus(enum.Enum):
    CLAIMED = "claimed"
    LOCKED = "locked"  # another process held the row lock at that instant
    ONGOING = "ongoing"  # another process is running the job
    NOT_DUE = "not due"  # someone ran it since our snapshot
    RECOVERED = "recovered"  # an abandoned claim was released and recorded as a failure
    PAUSED = "paused"  # an operator paused the job


@record
class Claim:
    status: ClaimStatus
    state: JobState | None  # the row as it was locked
    holder: Holder | None = None
    abandoned: str | None = None  # RECOVERED: why the previous holder's claim was abandoned
    recorded: JobState | None = None  # RECOVERED: the row as the recovery left it


@record
class Outcome:
    """How a claimed run ended."""

    started: dt.datetime
    finished: dt.datetime
    duration: dt.timedelta
    next_run: dt.datetime
    error: dict[str, str] | None = None  # {"type", "value", "traceback"}
    last_success: dt.datetime | None = None  # when not ``started`` (a backfill job's last date)
    host: str | None = None  # where it ran
    pid: int | None = None
    trigger: str | None = None  # schedule, run-now, forced, or "backfill DATE"
    output: str | None = None  # what it printed and logged, capped

    def params(self, app_name: str, token: str) -> dict[str, Any]:
        """The parameters of the statements that record it (``finish``)."""
        error = self.error or {}
        return {
            "app_name": app_name,
            "token": token,
            "started": self.started,
            "next_run": self.next_run,
            "failed": self.error is not None,
            "last_success": self.last_success or self.started,
            "error": self.error,
            "finished": self.finished,
            "duration": self.duration,
            "success": None if self.error else self.last_success or self.started,
            "exc_type": error.get("type"),
            "exc_value": error.get("value"),
            "exc_traceback": error.get("traceback"),
            "host": self.host,
            "pid": self.pid,
            "trigger": self.trigger,
            "output": self.output,
        }


def abandoned_error(state: JobState, reason: str) -> dict[str, str]:
    """The failure recorded for a claim that was abandoned."""
    since = f"{state.ongoing:%Y-%m-%d %H:%M:%S}" if state.ongoing else "?"
    return {
        "type": "crontabber.Abandoned",
        "value": (
            f"the run claimed by {state.ongoing_host} pid {state.ongoing_pid} at "
            f"{since} UTC was abandoned: {reason}"
        ),
        "traceback": "",
    }


@record
class LogEntry:
    """One row of ``crontabber_log``: a run's outcome (or a backfill job's date)."""

    id: int
    app_name: str
    log_time: dt.datetime
    duration: dt.timedelta | None = None
    success: dt.datetime | None = None  # None: the run failed
    exc_type: str | None = None
    exc_value: str | None = None
    exc_traceback: str | None = None
    superseded: bool = False  # written after the claim had been taken over
    host: str | None = None  # where it ran (None: before crontabber kept it)
    pid: int | None = None
    trigger: str | None = None  # schedule, run-now, forced, or "backfill DATE"
    output: str | None = None  # what it printed and logged, capped

    @property
    def failed(self) -> bool:
        return self.exc_type is not None


@record
class LogPage:
    """A page of one job's log rows, newest first, and how many rows the job has."""

    entries: tuple[LogEntry, ...]
    total: int


@record
class LogCounts:
    """What ``crontabber_log`` holds of one job: its rows, the failed ones among
    them, and the duration of the newest."""

    runs: int
    failures: int
    last_duration: dt.timedelta | None = None


@record
class LogTotals:
    """``crontabber_log`` counted at one instant: per job its counts and its newest row
    (log_time, id); the highest id, and the ids present among the window below it."""

    counts: dict[str, LogCounts]
    newest: dict[str, tuple[dt.datetime, int]]
    top: int
    recent: frozenset[int]


@record
class LogAdded:
    """One ``crontabber_log`` row as a tally counts it."""

    id: int
    app_name: str
    failed: bool
    log_time: dt.datetime
    duration: dt.timedelta | None = None


@record
class AuditEntry:
    """One row of ``crontabber_audit``: who did what to a job, when (the database's time)."""

    id: int
    at: dt.datetime
    action: str  # pause, resume, run-now, cancel, reset, remove-ghost
    app_name: str
    actor: str
    reason: str | None = None
    detail: str | None = None
