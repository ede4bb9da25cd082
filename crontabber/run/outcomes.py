"""What a run's outcome records: when the job runs next, how it was started, its error."""

from __future__ import annotations

import datetime as dt
import logging
import traceback

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.jobs.spec import JobSpec
    from crontabber.run.reports import JobReport
    from crontabber.store.abc import StateStore
    from crontabber.store.records import Holder, JobState

log = logging.getLogger("crontabber")


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


def ended(
    app_name: str, duration: dt.timedelta, error: dict[str, str] | None, *, cancelled: bool
) -> JobReport:
    """How a run that ended (and was recorded) is reported, and logged."""
    from crontabber.run.reports import JobReport, Result

    seconds = duration.total_seconds()
    if cancelled:
        log.warning("%s was cancelled by an operator after %.2fs", app_name, seconds)
        return JobReport(app_name, Result.CANCELLED, "cancelled by an operator", duration)
    if error is None:
        log.info("ran %s in %.2fs", app_name, seconds)
        return JobReport(app_name, Result.SUCCEEDED, duration=duration)
    log.error("%s failed after %.2fs:\n%s", app_name, seconds, error["traceback"].rstrip())
    return JobReport(app_name, Result.FAILED, f"{error['type']}: {error['value']}", duration)


def auto_pause(
    store: StateStore, spec: JobSpec, state: JobState, error: dict[str, str], holder: Holder
) -> bool:
    """Pause ``spec`` when its failures in a row (``state``, as its failure left it) have
    reached its ``max_consecutive_failures``; whether it did. The pause is an
    operator's pause, audited, with the reason saying why (and the last error)."""
    limit = spec.policy.max_consecutive_failures
    if not limit or state.error_count < limit:
        return False
    value = " ".join(str(error.get("value", "")).split())[:200]
    reason = f"auto-paused after {state.error_count} failures in a row (last: {error.get('type')}: {value})"
    store.pause(spec.app_name, actor=f"crontabber on {holder.host} (auto-pause)", reason=reason)
    log.error("%s: %s; --resume it once it is fixed", spec.app_name, reason)
    return True


def describe_failure(exc: BaseException) -> dict[str, str]:
    """The failure recorded for a job that raised ``exc`` (``SystemExit`` included)."""
    value = str(exc)
    if isinstance(exc, SystemExit):
        value = f"the job called sys.exit({exc.code!r})"
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
        "value": value,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
