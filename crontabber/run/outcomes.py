"""What a run's outcome records: when the job runs next, how it was started, its error."""

from __future__ import annotations

import datetime as dt
import traceback

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.jobs.spec import JobSpec
    from crontabber.store.records import JobState


def planned_at(state: JobState, now: dt.datetime) -> dt.datetime:
    """The time a run plans from: now, or, for a run-now that brought the next run
    forward, that next run (a backfill job runs its next missing date early)."""
    displaced = state.run_now_displaced if state.run_now is not None else None
    return max(now, displaced) if displaced is not None else now


def next_run_after(spec: JobSpec, state: JobState, now: dt.datetime) -> dt.datetime:
    """When a job that succeeds now runs next: after a run-now, the next run it brought
    forward, as if the job had run on time; else its schedule's next run."""
    planned = planned_at(state, now)
    return planned if planned > now else spec.next_run_after(now)


def trigger_of(
    spec: JobSpec, state: JobState, last_date: dt.datetime | None, *, forced: bool
) -> str:
    """How the run was started, as its log row keeps it: ``schedule``, ``run-now`` or
    ``forced``, and a backfill job's last date (``schedule: backfill 2026-12-01T...``)."""
    trigger = "run-now" if state.run_now is not None else "forced" if forced else "schedule"
    if spec.is_backfill and last_date is not None:
        return f"{trigger}: backfill {last_date.isoformat()}"
    return trigger


def describe_failure(exc: BaseException) -> dict[str, str]:
    """The failure recorded for a job that raised ``exc`` (``SystemExit`` included)."""
    value = str(exc)
    if isinstance(exc, SystemExit):
        value = f"the job called sys.exit({exc.code!r})"
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
        "value": value,
        "traceback": traceback.format_exc(),
    }
