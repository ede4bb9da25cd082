"""The jobs' status as a read model: what the admin commands and the status page show.

Library functions that take plain values (job specs, states read from a store,
``now``) and return data: the rows of ``--list-jobs``, the verdict of
``--nagios``, the ghosts, the dependency graph. The CLI prints them
(:mod:`crontabber.cli.printers`) and the page renders them
(:mod:`crontabber.web.views`); scripts and tests call them directly. What
operators change is :mod:`crontabber.actions`'.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence

from crontabber.errors import UnknownJob
from crontabber.jobs.schedule import CronSchedule, FrequencySchedule, format_frequency, zone_name
from crontabber.jobs.spec import JobSpec, order_jobs
from crontabber.record import record
from crontabber.store.records import JobState, LogEntry, Pause

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.store.outbox import Notification


def find_job(specs: Sequence[JobSpec], name: str) -> JobSpec:
    """The job whose app name or ``module.ClassName`` is ``name``."""
    for spec in specs:
        if name in (spec.app_name, spec.class_path):
            return spec
    raise UnknownJob(
        f"no job named {name!r} in the configuration (give an app name or module.ClassName)"
    )


def describe_schedule(spec: JobSpec) -> str:
    """The schedule as written, with its zone: ``every 1d at 03:00 UTC``, ``every 5m``,
    ``cron(0 2 * * MON-FRI) in Europe/Berlin``."""
    schedule = spec.schedule
    zone = zone_name(schedule.zone)
    if isinstance(schedule, FrequencySchedule):
        text = f"every {schedule.frequency_text or format_frequency(schedule.frequency)}"
        return text if schedule.time is None else f"{text} at {schedule.time:%H:%M} {zone}"
    return f"{schedule.text} in {zone}"


class Health(enum.Enum):
    OK = "ok"
    FAILING = "failing"
    ONGOING = "ongoing"
    HELD_BACK = "held back"  # a dependency keeps it from running (as the page says)
    NEVER_RUN = "never run"


@record
class JobListing:
    """What ``--list-jobs`` shows of one job."""

    spec: JobSpec
    state: JobState | None
    pause: Pause | None = None  # the pause in force, if any
    events: tuple[Notification, ...] = ()  # its recent notifications, newest first
    held_by: str | None = None  # why a dependency keeps it from running, if one does

    @property
    def health(self) -> Health:
        state = self.state
        if state is not None and state.ongoing is not None:
            return Health.ONGOING
        if state is not None and state.last_run is not None and state.failed_last_time:
            return Health.FAILING
        if self.held_by is not None:
            return Health.HELD_BACK
        if state is None or state.last_run is None:
            return Health.NEVER_RUN
        return Health.OK

    def next_run(self, now: dt.datetime) -> dt.datetime:
        """When the job is next due: its recorded next run or, for a job that never
        ran, when it first is (at or before ``now``: it is due now)."""
        if self.state is not None and self.state.next_run is not None:
            return self.state.next_run
        return self.spec.first_run(now)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form, timestamps in ISO 8601."""

        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        state = self.state or JobState(self.spec.app_name)
        error = state.last_error or {}
        schedule = self.spec.schedule
        frequency = schedule if isinstance(schedule, FrequencySchedule) else None
        return {
            "app_name": self.spec.app_name,
            "class": self.spec.class_path,
            "schedule": schedule.text,
            "frequency": (
                frequency.frequency_text or format_frequency(frequency.frequency)
                if frequency
                else None
            ),
            "time": frequency.time.strftime("%H:%M") if frequency and frequency.time else None,
            "cron": schedule.expression if isinstance(schedule, CronSchedule) else None,
            "timezone": zone_name(schedule.zone),
            "depends_on": list(self.spec.depends_on),
            "state": self.health.value,
            "last_run": iso(state.last_run),
            "last_success": iso(state.last_success),
            "next_run": iso(state.next_run),
            "next_run_local": iso(state.next_run.astimezone(schedule.zone))
            if state.next_run
            else None,
            "first_run": iso(state.first_run),
            "error_count": state.error_count,
            "last_error": (
                {
                    "type": error.get("type"),
                    "value": error.get("value"),
                    "traceback": error.get("traceback"),
                }
                if error
                else None
            ),
            "ongoing": (
                {"since": iso(state.ongoing), "host": state.ongoing_host, "pid": state.ongoing_pid}
                if state.ongoing
                else None
            ),
            "paused": (
                {
                    "since": iso(self.pause.since),
                    "until": iso(self.pause.until),
                    "reason": self.pause.reason,
                    "by": self.pause.actor,
                }
                if self.pause
                else None
            ),
            "run_now_asked": iso(state.run_now),
            "cancel_asked": iso(state.cancel_requested),
            "policy": policy_dict(self.spec),
            "events": [event_dict(event) for event in self.events],
        }


def list_jobs(
    specs: Sequence[JobSpec],
    states: dict[str, JobState],
    paused: Mapping[str, Pause] | None = None,
    events: Sequence[Notification] = (),
    now: dt.datetime | None = None,
) -> list[JobListing]:
    """Every configured job, in dependency order, with its state (None: never ran),
    its pause, if one is in force, its notifications among ``events`` and, given
    ``now``, whether a dependency holds it back (as the page judges it)."""
    from crontabber.run.reports import unmet_dependency

    paused = paused or {}
    by_job: dict[str, list[Notification]] = {}
    for event in events:
        by_job.setdefault(event.app_name, []).append(event)
    return [
        JobListing(
            spec,
            states.get(spec.app_name),
            paused.get(spec.app_name),
            tuple(by_job.get(spec.app_name, ())),
            unmet_dependency(spec, states, now, paused) if now is not None else None,
        )
        for spec in order_jobs(specs)
    ]


def policy_dict(spec: JobSpec) -> dict[str, object]:
    """A job's policies, JSON-ready (a ping URL only as whether there is one: it is a
    secret)."""
    policy = spec.policy
    return {
        "error_retry_time": policy.error_retry_time,
        "error_retry_backoff": policy.error_retry_backoff,
        "max_error_retry_time": policy.max_error_retry_time,
        "max_consecutive_failures": policy.max_consecutive_failures,
        "jitter_seconds": policy.jitter_seconds,
        "exclude": policy.exclude.text if policy.exclude is not None else None,
        "ping": bool(policy.ping_url),
    }


def event_dict(event: Notification) -> dict[str, object]:
    """A notification, JSON-ready."""
    return {
        "id": event.id,
        "event": event.kind,
        "about": _iso(event.about),
        "sink": event.sink,
        "status": event.status,
        "attempts": event.attempts,
        "sent": _iso(event.sent),
        "delivery_error": event.delivery_error,
        "text": event.text,
    }


def audit_ghosts(specs: Sequence[JobSpec], states: dict[str, JobState]) -> list[str]:
    """App names with state in the database but absent from this configuration."""
    configured = {spec.app_name for spec in specs}
    return sorted(name for name in states if name not in configured)


NAGIOS_VALUE_LIMIT = 200  # characters of an error value in a check result


def nagios_text(value: object) -> str:
    """An error value fit for one Nagios check line: one line, no ``|`` (Nagios reads
    what follows it as performance data), at most NAGIOS_VALUE_LIMIT characters."""
    text = " ".join(str(value).split()).replace("|", "/")
    if len(text) > NAGIOS_VALUE_LIMIT:
        text = text[: NAGIOS_VALUE_LIMIT - 3] + "..."
    return text


@record
class NagiosVerdict:
    status: int  # 0 OK, 1 WARNING, 2 CRITICAL
    line: str


def nagios(
    specs: Sequence[JobSpec],
    states: dict[str, JobState],
    now: dt.datetime,
    max_ongoing_age: dt.timedelta,
    misconfigured: Sequence[str] = (),
) -> NagiosVerdict:
    """The Nagios/Icinga verdict: CRITICAL for failed jobs, stale claims and misconfigured
    jobs, WARNING for backfill jobs that failed once, else OK. No ``|`` in the line:
    Nagios would show only what comes before it and read the rest as performance data."""
    critical = [f"misconfigured: {nagios_text(message)}" for message in misconfigured]
    warning = []
    for spec in order_jobs(specs):
        state = states.get(spec.app_name)
        if state is None:
            continue
        if state.ongoing is not None and now - state.ongoing > max_ongoing_age:
            critical.append(
                f"{spec.app_name} ({spec.class_path}): claim by {state.ongoing_host} pid "
                f"{state.ongoing_pid} is older than {max_ongoing_age} (since {state.ongoing:%Y-%m-%d %H:%M} UTC)"
            )
        if state.failed_last_time:
            error = state.last_error or {}
            text = (
                f"{spec.app_name} ({spec.class_path}): {error.get('type')}: "
                f"{nagios_text(error.get('value'))}"
            )
            if spec.is_backfill and state.error_count == 1:
                warning.append(text)
            else:
                critical.append(text)
    if critical:
        return NagiosVerdict(2, "CRITICAL - " + "; ".join(critical + warning))
    if warning:
        return NagiosVerdict(1, "WARNING - " + "; ".join(warning))
    return NagiosVerdict(0, "OK - All systems nominal")


_COLOURS = {
    Health.OK: "palegreen",
    Health.FAILING: "salmon",
    Health.ONGOING: "gold",
    Health.HELD_BACK: "lightblue",
    Health.NEVER_RUN: "lightgrey",
}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(specs: Sequence[JobSpec], states: dict[str, JobState]) -> str:
    """The dependency graph in Graphviz DOT, nodes coloured by state."""
    lines = [
        "digraph crontabber {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for listing in list_jobs(specs, states):
        label = (
            f"{listing.spec.app_name}\\n{describe_schedule(listing.spec)}\\n{listing.health.value}"
        )
        lines.append(
            f"    {_dot_quote(listing.spec.app_name)} "
            f'[label="{label.replace(chr(34), "")}", fillcolor={_COLOURS[listing.health]}];'
        )
        lines.extend(
            f"    {_dot_quote(dependency)} -> {_dot_quote(listing.spec.app_name)};"
            for dependency in listing.spec.depends_on
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_dict(entry: LogEntry) -> dict[str, object]:
    """One run of ``crontabber_log`` as ``--history --json`` and ``/api/jobs/NAME/runs``
    give it: when, where, how it ended, how it was started, and what it printed."""
    started = entry.log_time - entry.duration if entry.duration is not None else None
    return {
        "id": entry.id,
        "started": _iso(started),
        "finished": _iso(entry.log_time),
        "duration_seconds": entry.duration.total_seconds() if entry.duration else None,
        "host": entry.host,
        "pid": entry.pid,
        "outcome": outcome(entry),
        "trigger": entry.trigger,
        "error": first_line(entry.exc_value) if entry.failed else None,
        "error_type": entry.exc_type,
        "superseded": entry.superseded,
        "output": entry.output,
    }


def outcome(entry: LogEntry) -> str:
    """succeeded, failed, cancelled or superseded."""
    if entry.superseded:
        return "superseded"
    if entry.exc_type == "crontabber.Cancelled":
        return "cancelled"
    return "failed" if entry.failed else "succeeded"


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""
