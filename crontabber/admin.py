"""Admin commands as library functions: each returns data, the CLI prints it.

They take plain values (job specs, states read from a store, ``now``), so
scripts and tests can call them without the command line.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import CrontabberError
from .jobs import JobSpec, order_jobs
from .schedule import CronSchedule, FrequencySchedule, format_frequency, zone_name
from .store import JobState, ResetStatus, StateStore


class UnknownJob(CrontabberError):
    """A job name given on the command line is not in the configuration."""


class JobIsOngoing(CrontabberError):
    """The job is running, so it is left alone."""


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
    NEVER_RUN = "never run"


@dataclass(frozen=True)
class JobListing:
    """What ``--list-jobs`` shows of one job."""

    spec: JobSpec
    state: JobState | None

    @property
    def health(self) -> Health:
        if self.state is None:
            return Health.NEVER_RUN
        if self.state.ongoing is not None:
            return Health.ONGOING
        if self.state.last_run is None:
            return Health.NEVER_RUN
        return Health.FAILING if self.state.failed_last_time else Health.OK

    def next_run(self, now: dt.datetime) -> dt.datetime:
        """When the job is next due: its recorded next run or, for a job that never
        ran, when it first is (at or before ``now``: it is due now)."""
        if self.state is not None and self.state.next_run is not None:
            return self.state.next_run
        return self.spec.schedule.first_run(now)

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
        }


def list_jobs(specs: Sequence[JobSpec], states: dict[str, JobState]) -> list[JobListing]:
    """Every configured job, in dependency order, with its state (None: never ran)."""
    return [JobListing(spec, states.get(spec.app_name)) for spec in order_jobs(specs)]


@dataclass(frozen=True)
class ResetResult:
    app_name: str
    was_reset: bool

    @property
    def message(self) -> str:
        if self.was_reset:
            return f"reset {self.app_name}: it will run as if it had never run"
        return f"{self.app_name} has no state to reset (never run, or already reset)"


def reset_job(
    store: StateStore, specs: Sequence[JobSpec], name: str, *, force: bool
) -> ResetResult:
    """Forget a job's state; its log rows stay. An ongoing job needs ``force``.

    ``name`` is a configured job's app name or class, or the app name of a ghost:
    a job only the state table still knows (see :func:`audit_ghosts`).
    """
    try:
        app_name = find_job(specs, name).app_name
    except UnknownJob:
        if name not in store.load_states():
            raise
        app_name = name  # a ghost
    status, state = store.reset(app_name, force=force)
    if status is ResetStatus.ONGOING:
        raise JobIsOngoing(
            f"{app_name} is running on {state.ongoing_host} pid {state.ongoing_pid} since "
            f"{state.ongoing:%Y-%m-%d %H:%M:%S} UTC; not reset (use --force to reset it anyway)"
        )
    return ResetResult(app_name, status is ResetStatus.RESET)


def audit_ghosts(specs: Sequence[JobSpec], states: dict[str, JobState]) -> list[str]:
    """App names with state in the database but absent from this configuration."""
    configured = {spec.app_name for spec in specs}
    return sorted(name for name in states if name not in configured)


def remove_ghosts(store: StateStore, specs: Sequence[JobSpec]) -> list[ResetResult]:
    """Forget every ghost's state, each in its own transaction (its log rows stay).

    A ghost is no configured job, so nothing runs it: one still marked ongoing is
    removed too.
    """
    return [
        reset_job(store, specs, name, force=True)
        for name in audit_ghosts(specs, store.load_states())
    ]


NAGIOS_VALUE_LIMIT = 200  # characters of an error value in a check result


def nagios_text(value: object) -> str:
    """An error value fit for one Nagios check line: one line, no ``|`` (Nagios reads
    what follows it as performance data), at most NAGIOS_VALUE_LIMIT characters."""
    text = " ".join(str(value).split()).replace("|", "/")
    if len(text) > NAGIOS_VALUE_LIMIT:
        text = text[: NAGIOS_VALUE_LIMIT - 3] + "..."
    return text


@dataclass(frozen=True)
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
    jobs, WARNING for backfill jobs that failed once, else OK."""
    critical = [f"misconfigured | {nagios_text(message)}" for message in misconfigured]
    warning = []
    for spec in order_jobs(specs):
        state = states.get(spec.app_name)
        if state is None:
            continue
        if state.ongoing is not None and now - state.ongoing > max_ongoing_age:
            critical.append(
                f"{spec.app_name} ({spec.class_path}) | claim by {state.ongoing_host} pid "
                f"{state.ongoing_pid} is older than {max_ongoing_age} (since {state.ongoing:%Y-%m-%d %H:%M} UTC)"
            )
        if state.failed_last_time:
            error = state.last_error or {}
            text = (
                f"{spec.app_name} ({spec.class_path}) | {error.get('type')} | "
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
