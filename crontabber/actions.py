"""What operators do to the jobs, as library functions: pause, resume, run now, cancel,
reset, remove ghosts; and what they read of it: a job's runs and the audit log.

Each acts through the state store, in one short transaction that also writes its
audit row (see :mod:`crontabber.store.operators`), and returns what it did in
one line; the CLI prints it, the status page's API answers with it. ``actor``
says who asked: :func:`command_line_actor` for the command line, the page's own
for the web. A mistake (an unknown job, a ghost, a time that has passed, a
reason too long) raises a :class:`~crontabber.errors.CrontabberError` whose
message is the one line to show, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence

from crontabber.errors import CrontabberError, JobIsOngoing, UnknownJob
from crontabber.jobs.spec import JobSpec
from crontabber.record import record
from crontabber.status import audit_ghosts, find_job
from crontabber.store.abc import StateStore
from crontabber.store.operators import RunNowStatus
from crontabber.store.records import JobState, ResetStatus

MAX_REASON = 1000  # characters of a reason
UTC = dt.timezone.utc
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ActionRefused(CrontabberError):
    """The job is not in a state for the action (running, paused, not running...)."""


@record
class ActionResult:
    """What an action did, in the one line operators read."""

    app_name: str
    message: str
    done: bool = True


@record
class ResetResult:
    app_name: str
    was_reset: bool

    @property
    def message(self) -> str:
        if self.was_reset:
            return f"reset {self.app_name}: it will run as if it had never run"
        return f"{self.app_name} has no state to reset (never run, or already reset)"


def command_line_actor() -> str:
    """Who runs this command: ``USER@HOST (command line)``."""
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        user = os.environ.get("USER") or f"uid {os.getuid()}"
    return f"{user}@{os.uname().nodename} (command line)"


def check_reason(reason: str | None) -> str | None:
    """The reason as stored (None when empty); over MAX_REASON characters is refused."""
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_REASON:
        raise CrontabberError(
            f"the reason is {len(reason)} characters long: at most {MAX_REASON}, please"
        )
    return reason.strip()


def parse_until(text: str) -> tuple[dt.datetime | None, float | None]:
    """``--until``: an ISO 8601 time (one without an offset is UTC), or a duration from
    the database's now such as ``90m``, ``2h``, ``3d``, ``1h30m``, ``1w``. Returns the
    time or the seconds; a ValueError-free CrontabberError for anything else."""
    words = text.strip()
    if not words:
        raise CrontabberError(
            "--until is empty: give a time (2026-12-24T06:00Z) or a duration (2h)"
        )
    parts = _DURATION.findall(words.lower())
    if parts and _DURATION.sub("", words.lower()).strip() == "":
        seconds = sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in parts)
        if seconds <= 0:
            raise CrontabberError(f"--until {text!r} is not after now")
        return None, seconds
    try:
        when = dt.datetime.fromisoformat(words.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise CrontabberError(
            f"--until {text!r} is neither a time (2026-12-24T06:00Z) nor a duration "
            "(90m, 2h, 3d, 1w)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC), None


def configured(specs: Sequence[JobSpec], name: str, store: StateStore, doing: str) -> JobSpec:
    """The configured job ``name`` names; a ghost or an unknown name is refused."""
    try:
        return find_job(specs, name)
    except UnknownJob:
        if name in store.load_states():
            raise UnknownJob(
                f"{name} is a ghost (in the state table, not in this configuration): "
                f"only a configured job can be {doing}"
            ) from None
        raise


def job_or_ghost(store: StateStore, specs: Sequence[JobSpec], name: str) -> str:
    """The app name of the configured job ``name`` names, or ``name`` itself when it is
    a ghost's (only the state table knows it); an unknown name is refused."""
    try:
        return find_job(specs, name).app_name
    except UnknownJob:
        if name not in store.load_states():
            raise
        return name


def pause_job(
    store: StateStore,
    specs: Sequence[JobSpec],
    name: str,
    *,
    actor: str,
    reason: str | None = None,
    until: str | None = None,
) -> ActionResult:
    """Pause a job on every host until ``until`` (see :func:`parse_until`) or until
    resumed. A run in progress goes on; the job's dependents are held back."""
    reason = check_reason(reason)
    at, seconds = parse_until(until) if until else (None, None)
    spec = configured(specs, name, store, "paused")
    pause = store.pause(spec.app_name, actor=actor, reason=reason, until=at, until_seconds=seconds)
    if pause is None:
        raise CrontabberError(f"--until {until!r} is not after the database's now: not paused")
    return ActionResult(
        spec.app_name, f"{pause.words().replace('paused', 'paused ' + spec.app_name, 1)}"
    )


def resume_job(
    store: StateStore,
    specs: Sequence[JobSpec],
    name: str,
    *,
    actor: str,
    reason: str | None = None,
) -> ActionResult:
    """End a job's pause: it runs at its next due time (at once when it is overdue)."""
    reason = check_reason(reason)
    try:
        app_name = find_job(specs, name).app_name
    except UnknownJob:
        if name not in store.read_snapshot().paused:
            raise
        app_name = name  # a paused ghost may be resumed
    if not store.resume(app_name, actor=actor, reason=reason):
        raise ActionRefused(f"{app_name} is not paused")
    return ActionResult(app_name, f"resumed {app_name}")


def run_now(
    store: StateStore,
    specs: Sequence[JobSpec],
    name: str,
    *,
    actor: str,
    reason: str | None = None,
) -> ActionResult:
    """Make a job due now, for whichever host claims it next; its dependencies still
    hold it back, and afterwards its schedule goes on as if it had run on time."""
    reason = check_reason(reason)
    spec = configured(specs, name, store, "run")
    status, state = store.run_now(
        spec.app_name, depends_on=spec.depends_on, actor=actor, reason=reason
    )
    if status is RunNowStatus.ONGOING:
        raise ActionRefused(f"{spec.app_name} is {_running(state)}: not asked to run again")
    if status is RunNowStatus.PAUSED:
        raise ActionRefused(f"{spec.app_name} is paused: resume it first")
    return ActionResult(
        spec.app_name, f"asked for a run of {spec.app_name}: the next host to tick runs it"
    )


def cancel_run(
    store: StateStore,
    specs: Sequence[JobSpec],
    name: str,
    *,
    actor: str,
    reason: str | None = None,
) -> ActionResult:
    """Ask the holder of a job's running claim, on whatever host, to stop the run: it
    does at its next heartbeat and records the run as cancelled."""
    reason = check_reason(reason)
    app_name = job_or_ghost(store, specs, name)  # a ghost may still run somewhere
    asked, state = store.cancel(app_name, actor=actor, reason=reason)
    if not asked:
        raise ActionRefused(f"{app_name} is not running: nothing to cancel")
    assert state is not None
    return ActionResult(
        app_name,
        f"asked {state.ongoing_host} pid {state.ongoing_pid} to cancel {app_name}: "
        "it stops at its next heartbeat",
    )


def reset_job(
    store: StateStore,
    specs: Sequence[JobSpec],
    name: str,
    *,
    force: bool,
    actor: str = "",
    reason: str | None = None,
    action: str = "reset",
) -> ResetResult:
    """Forget a job's state; its log rows and its pause stay. An ongoing job needs ``force``.

    ``name`` is a configured job's app name or class, or the app name of a ghost:
    a job only the state table still knows (see :func:`audit_ghosts`).
    """
    reason = check_reason(reason)
    app_name = job_or_ghost(store, specs, name)
    status, state = store.reset(app_name, force=force, actor=actor, reason=reason, action=action)
    if status is ResetStatus.ONGOING:
        assert state is not None
        raise JobIsOngoing(
            f"{app_name} is {_running(state)}; not reset (use --force to reset it anyway)"
        )
    return ResetResult(app_name, status is ResetStatus.RESET)


def remove_ghosts(
    store: StateStore, specs: Sequence[JobSpec], *, actor: str = ""
) -> list[ResetResult]:
    """Forget every ghost's state, each in its own transaction (its log rows stay).

    A ghost is no configured job, so nothing runs it: one still marked ongoing is
    removed too.
    """
    return [
        reset_job(store, specs, name, force=True, actor=actor, action="remove-ghost")
        for name in audit_ghosts(specs, store.load_states())
    ]


def _running(state: JobState) -> str:
    since = f"{state.ongoing:%Y-%m-%d %H:%M:%S}" if state.ongoing else "?"
    return f"running on {state.ongoing_host} pid {state.ongoing_pid} since {since} UTC"
