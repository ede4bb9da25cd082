"""Running one claimed job: in crontabber's own process, or in a process of its own.

:func:`run_here` runs the job in this process (the library's default);
:func:`run_apart` runs it in a child (:mod:`crontabber.run.isolation`), as the
``crontabber`` command does. Both return a :class:`Ran`: what the job returned,
the exception that stopped it here (a job's own, or a signal, ``max_runtime``, a
cancel or a lost lease), an error already described by the child, and what the
run printed and logged. The runner records it the same way either way.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from crontabber.errors import ClaimLost, LeaseLost, RunProcessEnded, Terminated
from crontabber.run.outcomes import describe_failure, planned_at
from crontabber.run.output import RunOutput
from crontabber.store.fencing import JobClaim

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.jobs.spec import JobSpec
    from crontabber.run.interrupts import NoInterrupts
    from crontabber.store.records import Holder, JobState

log = logging.getLogger("crontabber")

# Records a backfill date that succeeded, with how long it took; False: the claim is lost.
RecordDate = Callable[[dt.datetime, dt.timedelta], bool]
Dates = tuple["dt.datetime | None", dt.datetime]  # the last date that succeeded, the next run


class Ran(NamedTuple):
    """How a run went: ``value`` (a backfill job's dates, else None), ``exc`` (what
    stopped it in this process), ``error`` (described by a child) and ``output``."""

    value: Dates | None
    exc: BaseException | None
    error: dict[str, str] | None
    output: str


class Job:
    """What runs a claimed job, in whichever process: makes it and calls it."""

    def __init__(
        self,
        spec: JobSpec,
        state: JobState,
        holder: Holder,
        now: dt.datetime,
        config: Callable[[JobSpec], object] | None,
    ) -> None:
        self.spec, self.state, self.holder, self.now = spec, state, holder, now
        self.config = config
        self.made: object = None  # the job's configuration, once made

    def configure(self) -> object:
        """The job's configuration (made once: in crontabber's process, before a fork, so
        that a daemon's configuration read is kept for the next run)."""
        if self.made is None:
            self.made = self.spec.config if self.config is None else self.config(self.spec)
        return self.made

    def __call__(self, record_date: RecordDate) -> Dates | None:
        spec, state, holder = self.spec, self.state, self.holder
        app = spec.app_class(self.configure(), state)
        app.claim = JobClaim(
            spec.app_name, holder.token, state.fence, state.next_run or self.now, holder.host
        )
        if spec.is_backfill:
            return self._backfill(app, record_date)
        app.run()
        return None

    def _backfill(self, app: Any, record_date: RecordDate) -> Dates:
        """Run a backfill job once per missed date, each recorded as it succeeds; a
        failure stops the series there. The last date and the job's next run."""
        spec, state = self.spec, self.state
        dates, next_run = spec.backfill_plan(state.last_success, planned_at(state, self.now))
        done = state.last_success
        for index, date in enumerate(dates):
            started = time.monotonic()
            log.info("running %s for %s", spec.app_name, date.isoformat())
            app.run(date)
            took = dt.timedelta(seconds=time.monotonic() - started)
            if index < len(dates) - 1 and not record_date(date, took):
                raise ClaimLost(f"the claim on {spec.app_name} was taken over after {date}")
            done = date
        return done, next_run


def run_here(
    job: Job,
    record_date: RecordDate,
    interrupts: NoInterrupts,
    *,
    output_bytes: int,
    capture_fds: bool,
) -> Ran:
    """The job, in this process."""
    output = RunOutput(output_bytes, fds=capture_fds)
    try:
        # The capture ends after the job's interrupts do: none lands while the file
        # descriptors are put back.
        with output, interrupts.job(job.spec.app_name, job.spec.max_runtime):
            value = job(record_date)
    except BaseException as exc:
        return Ran(None, exc, None, output.text())
    return Ran(value, None, None, output.text())


def run_apart(
    job: Job,
    record_date: RecordDate,
    interrupts: NoInterrupts,
    *,
    output_bytes: int,
    capture_fds: bool,
    on_failure: Callable[[JobSpec, BaseException], None] | None,
    lease: Callable[[], tuple[float, float] | None] | None = None,
) -> Ran:
    """The job, in a child process of its own (see :mod:`crontabber.run.isolation`);
    ``on_failure`` sees the job's own exception there. This process becomes a
    subreaper (Linux): after each run, its children in other sessions are ended.
    ``lease`` says when the claim's lease must be renewed by, and when it lapses: the
    child holds itself to them (a run that stopped itself is a lost lease)."""
    from crontabber.run.isolation import RunProcess, become_subreaper, end_strays
    from crontabber.run.relay import Relay

    become_subreaper()  # once is enough; what runs leave behind is ours, not PID 1's

    def work(channel: Any) -> tuple[object, dict[str, str] | None, str]:
        def remote_date(date: dt.datetime, took: dt.timedelta) -> bool:
            channel.send(("ask", (date, took)))
            return bool(channel.receive())

        return _in_child(job, remote_date, output_bytes, channel.pipes, on_failure)

    try:
        job.configure()
    except Exception as exc:  # as it would have failed in the child
        return Ran(None, exc, None, "")
    # At the file descriptors, the run's output is read here, with no thread on either
    # side; without, the run keeps its own log records and sends them with its result.
    relay = Relay(RunOutput(output_bytes)) if capture_fds else None
    child = RunProcess(work, on_request=lambda body: record_date(*body), lease=lease, relay=relay)
    try:
        child.start()
    except OSError as exc:  # no process to be had (EAGAIN, ENOMEM): that run fails
        return Ran(None, RunProcessEnded(f"could not start the run's process: {exc}"), None, "")
    stopped: BaseException | None = None
    try:
        with interrupts.job(job.spec.app_name, job.spec.max_runtime):
            child.converse()
    except BaseException as exc:
        stopped = exc
    ended = child.end(stop=stopped is not None)
    end_strays()
    value, error, output = child.result or (None, None, "")
    if relay is not None:
        output = relay.output.text()
    if stopped is not None:
        return Ran(None, stopped, None, output)
    if ended is not None:
        return Ran(None, ended, None, output)
    if error is not None and error["type"] == "crontabber.LeaseLost":
        return Ran(None, LeaseLost.of(job.spec.app_name, error["value"]), None, output)
    return Ran(value, None, error, output)  # type: ignore[arg-type]


def _in_child(
    job: Job,
    record_date: RecordDate,
    output_bytes: int,
    pipes: tuple[int, int, int] | None,
    on_failure: Callable[[JobSpec, BaseException], None] | None,
) -> tuple[object, dict[str, str] | None, str]:
    from crontabber.run.relay import SentOutput

    value, error = None, None
    output = RunOutput(output_bytes) if pipes is None else SentOutput(pipes)
    with output:
        try:
            value = job(record_date)
        except BaseException as exc:
            error = describe_failure(exc)
            if on_failure is not None and not isinstance(exc, (Terminated, LeaseLost)):
                on_failure(job.spec, exc)
                from crontabber.run import error_reporting

                error_reporting.flush()
    return value, error, output.text()
