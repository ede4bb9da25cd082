"""What a tick decided for each job it considered, and the dependency rule it decides by."""

from __future__ import annotations

import datetime as dt
import enum

from crontabber.record import record

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from collections.abc import Container

    from crontabber.jobs.spec import JobSpec
    from crontabber.store.records import JobState


class Result(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency is not satisfied
    LOCKED = "locked"  # lost a simultaneous row-lock race
    ONGOING = "ongoing"  # running elsewhere
    RECOVERED = "recovered"  # an abandoned run was recorded as failed; retried later
    PAUSED = "paused"  # an operator paused it: no host claims it
    CANCELLED = "cancelled"  # an operator cancelled it while it ran; recorded as failed


@record
class JobReport:
    app_name: str
    result: Result
    reason: str = ""
    duration: dt.timedelta | None = None


@record
class RunReport:
    """What one tick did with each job it considered (jobs not due are not listed)."""

    jobs: tuple[JobReport, ...]
    now: dt.datetime | None = None  # the tick's time (the database's) when it ended
    # When the earliest job this tick did not leave to others or to its dependencies
    # is next due (None: no job at all). What a daemon sleeps until.
    next_due: dt.datetime | None = None

    def with_result(self, result: Result) -> list[str]:
        return [job.app_name for job in self.jobs if job.result is result]

    @property
    def exit_status(self) -> int:
        """3 when a due job was running elsewhere, else 2 when one lost a lock race, else 0."""
        if self.with_result(Result.ONGOING):
            return 3
        if self.with_result(Result.LOCKED):
            return 2
        return 0


def unmet_dependency(
    spec: JobSpec,
    states: dict[str, JobState],
    now: dt.datetime,
    paused: Container[str] = (),
) -> str | None:
    """Why ``spec`` may not run now because of its dependencies (``paused``: the jobs
    paused now), or None when it may."""
    for name in spec.depends_on:
        if name in paused:
            return f"dependency {name!r} is paused"
        state = states.get(name)
        if state is None or state.last_run is None:
            return f"dependency {name!r} has never run"
        if state.failed_last_time:
            return f"dependency {name!r} failed last time"
        if state.next_run is not None and state.next_run < now:
            return f"dependency {name!r} has not run recently (it was due {state.next_run:%Y-%m-%d %H:%M} UTC)"
    return None
