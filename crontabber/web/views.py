"""What the status page shows of each job, from job specs and a snapshot: pure functions.

Nothing here reads the database or renders HTML; time is the snapshot's (the
database's clock), so a test passes the instant it wants.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence

import humanize

from crontabber.errors import ConfigError
from crontabber.jobs.schedule import CronSchedule, FrequencySchedule, zone_name
from crontabber.jobs.spec import JobSpec
from crontabber.record import record
from crontabber.run.runner import unmet_dependency
from crontabber.status import JobListing, list_jobs
from crontabber.store.records import JobState, LogCounts, Pause, Snapshot

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.store.outbox import Notification

LATE_AFTER = dt.timedelta(minutes=15)  # a job this long past its next run, not running, is late


class Status(enum.Enum):
    """A job's state on the page, most urgent first."""

    RUNNING = "running"
    FAILING = "failing"
    HELD_BACK = "held back"
    NEVER_RUN = "never run"
    OK = "ok"

    @property
    def css(self) -> str:
        return self.name.lower().replace("_", "-")


@record
class JobRow:
    """One job as the page shows it: its listing (the ``--list-jobs`` data) and verdict."""

    listing: JobListing
    status: Status
    detail: str  # who runs it, or which dependency holds it back; "" otherwise
    next_run: dt.datetime  # recorded, or when a job that never ran is first due
    late: bool
    abandoned: bool  # running, but the database finds its claim abandoned

    @property
    def app_name(self) -> str:
        return self.listing.spec.app_name

    @property
    def state(self) -> JobState | None:
        return self.listing.state

    @property
    def pause(self) -> Pause | None:
        """The operator's pause in force, if any: no host runs the job meanwhile."""
        return self.listing.pause

    @property
    def run_now_asked(self) -> dt.datetime | None:
        """When an operator asked for a run that no host has started yet."""
        state = self.state
        if state is None or state.run_now is None or state.ongoing is not None:
            return None
        return state.run_now

    @property
    def cancel_asked(self) -> dt.datetime | None:
        """When an operator asked the running job's holder to stop it."""
        state = self.state
        if state is None or state.ongoing is None:
            return None
        return state.cancel_requested

    @property
    def schedule_text(self) -> str:
        return schedule_text(self.listing.spec)

    @property
    def schedule_words(self) -> str:
        return schedule_in_words(self.listing.spec)

    def as_dict(self) -> dict[str, object]:
        """The fields of ``--list-jobs --json``, and the page's verdict."""
        state = self.state
        heartbeat = state.heartbeat if state is not None else None
        return {
            **self.listing.as_dict(),
            "status": self.status.value,
            "status_detail": self.detail,
            "late": self.late,
            "heartbeat": heartbeat.isoformat() if heartbeat else None,
        }


def job_rows(
    specs: Sequence[JobSpec],
    snapshot: Snapshot,
    *,
    late_after: dt.timedelta = LATE_AFTER,
    events: Sequence[Notification] = (),
) -> list[JobRow]:
    """Every job in dependency order (as given, if the graph is broken) with its verdict
    (and its notifications among ``events``)."""
    try:
        listings = list_jobs(specs, snapshot.states, snapshot.paused, events)
    except ConfigError:
        listings = [
            JobListing(spec, snapshot.states.get(spec.app_name), snapshot.paused.get(spec.app_name))
            for spec in specs
        ]
    return [row_for(listing, snapshot, late_after) for listing in listings]


def row_for(listing: JobListing, snapshot: Snapshot, late_after: dt.timedelta) -> JobRow:
    now, state = snapshot.now, listing.state
    next_run = listing.next_run(now)
    held_by = unmet_dependency(listing.spec, snapshot.states, now, snapshot.paused)
    detail = ""
    if state is not None and state.ongoing is not None:
        status = Status.RUNNING
        detail = f"on {state.ongoing_host} pid {state.ongoing_pid}"
        if state.heartbeat is not None:
            seconds = max(int((now - state.heartbeat).total_seconds()), 0)
            detail += f", last heartbeat {seconds}s ago"
    elif state is not None and state.last_run is not None and state.failed_last_time:
        status = Status.FAILING
        detail = f"{state.error_count} error{'' if state.error_count == 1 else 's'} in a row"
    elif held_by is not None:
        status, detail = Status.HELD_BACK, held_by
    elif state is None or state.last_run is None:
        status = Status.NEVER_RUN
    else:
        status = Status.OK
    recorded = state is not None and state.next_run is not None  # else: first due at next_run
    # Not late while paused: an operator chose that it waits (the pause says why).
    waiting = status is Status.RUNNING or listing.pause is not None
    late = recorded and not waiting and now - next_run > late_after
    return JobRow(
        listing,
        status,
        detail,
        next_run,
        late,
        abandoned=listing.spec.app_name in snapshot.abandoned,
    )


@record
class Summary:
    """How many jobs are in each state, and how many are late."""

    counts: dict[Status, int]
    late: int
    total: int
    paused: int = 0


def summarise(rows: Sequence[JobRow]) -> Summary:
    counts = dict.fromkeys(Status, 0)
    for row in rows:
        counts[row.status] += 1
    paused = sum(row.pause is not None for row in rows)
    return Summary(counts, sum(row.late for row in rows), len(rows), paused)


def ago(value: dt.datetime, now: dt.datetime) -> str:
    """``3 minutes ago``, ``in 2 hours``: relative to the database's now."""
    return humanize.naturaltime(value, when=now)


def schedule_text(spec: JobSpec) -> str:
    """The schedule as written in the jobs line, with its zone when not UTC."""
    zone = zone_name(spec.schedule.zone)
    return spec.schedule.text if zone == "UTC" else f"{spec.schedule.text}|{zone}"


_UNITS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_WEEKDAYS = {"MON-FRI": "on weekdays", "1-5": "on weekdays", "SAT,SUN": "at weekends"}


def every(seconds: int) -> str:
    """``every day``, ``every 5 minutes``."""
    for unit, size in _UNITS:
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    return f"every {seconds} seconds"


def schedule_in_words(spec: JobSpec) -> str:
    """``every day at 03:00 Europe/Berlin``, ``every 5 minutes``, ``at 02:00 on weekdays
    UTC``; a cron expression without a plain reading is ``when cron(...) matches``."""
    schedule = spec.schedule
    zone = zone_name(schedule.zone)
    if isinstance(schedule, FrequencySchedule):
        text = every(int(schedule.frequency.total_seconds()))
        return text if schedule.time is None else f"{text} at {schedule.time:%H:%M} {zone}"
    if isinstance(schedule, CronSchedule):
        return cron_in_words(schedule.expression, zone)
    return schedule.text


def cron_in_words(expression: str, zone: str) -> str:
    nicknames = {
        "@hourly": "every hour, on the hour",
        "@daily": f"every day at 00:00 {zone}",
        "@midnight": f"every day at 00:00 {zone}",
        "@weekly": f"every Sunday at 00:00 {zone}",
        "@monthly": f"on the 1st of every month at 00:00 {zone}",
        "@yearly": f"every 1 January at 00:00 {zone}",
        "@annually": f"every 1 January at 00:00 {zone}",
    }
    if expression.lower() in nicknames:
        return nicknames[expression.lower()]
    fields = expression.split()
    if len(fields) == 5:
        minute, hour, day, month, weekday = fields
        anyday = day == "*" and month == "*"
        if anyday and minute.isdigit() and hour.isdigit():
            when = f"at {int(hour):02d}:{int(minute):02d}"
            if weekday == "*":
                return f"every day {when} {zone}"
            return f"{when} {_WEEKDAYS.get(weekday.upper(), f'on days {weekday}')} {zone}"
        if anyday and weekday == "*" and hour == "*" and minute.startswith("*/"):
            step = minute[2:]
            if step.isdigit():
                return every(int(step) * 60)
        if anyday and weekday == "*" and hour == "*" and minute.isdigit():
            return f"every hour at minute {int(minute)}"
    return f"when cron({expression}) matches in {zone}"


def pause_words(pause: Pause) -> str:
    """``until 2026-12-05 06:00 UTC, by alice@host (command line): why``, or
    ``until resumed, by ...``: the pause as the page shows it after "paused"."""
    until = f"until {pause.until:%Y-%m-%d %H:%M} UTC" if pause.until else "until resumed"
    by = f", by {pause.actor}" if pause.actor else ""
    return f"{until}{by}" + (f": {pause.reason}" if pause.reason else "")


def log_counts_for(counts: dict[str, LogCounts], app_name: str) -> LogCounts:
    return counts.get(app_name) or LogCounts(0, 0, None)
