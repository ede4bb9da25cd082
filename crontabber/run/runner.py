"""The runner: one tick of crontabber, over plain job specs and a state store."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence

from crontabber.errors import Cancelled, LeaseLost
from crontabber.jobs.spec import JobSpec, order_jobs
from crontabber.run.interrupts import NoInterrupts, Terminated
from crontabber.run.outcomes import (
    auto_pause,
    describe_failure,
    ended,
    next_run_after,
    trigger_of,
)
from crontabber.run.reports import JobReport, Result, RunReport, unmet_dependency
from crontabber.run.sharing import TakingTurns
from crontabber.store.abc import StateStore
from crontabber.store.lease import Heartbeat, LeasePolicy
from crontabber.store.records import ClaimStatus, Holder, JobState, Outcome, Pause, Snapshot

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from crontabber.notify.watch import Notifier
    from crontabber.run.reading import DueReads

log = logging.getLogger("crontabber")

UTC = dt.timezone.utc
PRUNE_SLACK = dt.timedelta(days=1)  # log rows may outlive log_retention by this much


__all__ = ["JobReport", "Result", "RunReport", "Runner", "describe_failure", "unmet_dependency"]


class Runner(TakingTurns):
    """Runs every due job once, in dependency order, claiming each through the store.

    Time is the database's: a tick reads it with the jobs' states and counts
    from there, so a host whose clock is off neither runs a job early nor makes
    it due again early. ``run(now=...)`` fixes it instead (leases are still the
    database's).
    """

    def __init__(
        self,
        specs: Sequence[JobSpec],
        store: StateStore,
        *,
        error_retry_time: dt.timedelta = dt.timedelta(seconds=300),
        lease: LeasePolicy | None = None,
        holder: Holder | None = None,
        on_failure: Callable[[JobSpec, BaseException], None] | None = None,
        interrupts: NoInterrupts | None = None,
        log_retention: dt.timedelta | None = None,
        job_config: Callable[[JobSpec], object] | None = None,
        notifier: Notifier | None = None,
        run_output_bytes: int = 64 * 1024,
        capture_fds: bool = False,
        isolate: bool = False,
    ) -> None:
        self.specs = order_jobs(specs)
        # What a job is made with: its spec's config, or what this says (made when it runs).
        self.job_config = job_config
        self.notifier = notifier  # records and delivers events (crontabber.notify.watch)
        self.store = store
        self.error_retry_time = error_retry_time
        self.holder = holder or Holder.this_process()
        self.lease = lease or LeasePolicy(host=self.holder.host)
        self.on_failure = on_failure
        self.interrupts = interrupts or NoInterrupts()
        self.log_retention = log_retention
        # What each run printed and logged is kept with it, capped (0: nothing kept);
        # ``capture_fds``: at the file descriptors (the command's main thread only).
        self.run_output_bytes = run_output_bytes
        self.capture_fds = capture_fds
        # Each run in a child process of its own (crontabber.run.isolation), as the
        # command does; the library runs jobs in its own process by default.
        self.isolate = isolate
        self._paused: dict[str, Pause] = {}
        self._forced = False
        # How a tick reads the states: every row (None), or a daemon's run.reading.DueReads.
        self.reads: DueReads | None = None
        self.last_beat = 0.0  # time.monotonic() of the last heartbeat the database answered

    def run(
        self, now: dt.datetime | None = None, *, only: str | None = None, force: bool = False
    ) -> RunReport:
        """One tick. ``now`` fixes the time for every job; by default it is the database's.

        ``only`` limits the tick to the job of that app name; with ``force`` that
        job runs whatever its schedule and dependencies, still through the claim.
        A signal that arrived at any moment of the tick is raised before it returns.
        """
        specs = [spec for spec in self.specs if only is None or spec.app_name == only]
        if self.reads is not None and only is None and not force:
            snapshot = self.reads.read(self.store, self.specs, self.lease.max_age)
        else:
            snapshot = self.store.read_snapshot(self.lease.max_age)
        states = snapshot.states
        self._abandoned = snapshot.abandoned
        self._paused = snapshot.paused
        if self.notifier is not None and not snapshot.kept:
            self.notifier.watch(snapshot, self.specs)
        self._forced = force
        read_at = time.monotonic()
        if now is None:
            self._clock = lambda: snapshot.now + dt.timedelta(seconds=time.monotonic() - read_at)
        else:
            self._clock = lambda: now
        reports = []
        beat = self._beat
        with Heartbeat(
            beat,
            self.lease.heartbeat_interval,
            window=self.lease.window,
            on_lost=self._lease_lost,
            on_cancel=self._cancel,
            server_down=self.store.server_is_down,
        ) as self._heartbeat:
            if self._shares(specs, states, only=only, force=force):
                reports = self._run_in_turn(specs, states)  # PostgreSQL: SKIP LOCKED
            else:
                for spec in specs:
                    self.interrupts.raise_pending()  # a signal between jobs stops the run here
                    report = self._consider(spec, states, self._clock(), force=force)
                    if report is not None:
                        reports.append(report)
        self.interrupts.raise_pending()  # one that came while the last outcome was written
        self._prune_log(snapshot)
        if self.notifier is not None:
            self.notifier.tick_done()
        end = self._clock()
        waiting = {
            job.app_name
            for job in reports
            if job.result in (Result.SKIPPED, Result.ONGOING, Result.LOCKED)
        }
        next_due = self._next_due(specs, states, waiting, end, self._paused)
        return RunReport(tuple(reports), end, next_due)

    def _shares(
        self,
        specs: Sequence[JobSpec],
        states: dict[str, JobState],
        *,
        only: str | None,
        force: bool,
    ) -> bool:
        """Whether this tick claims in turn with the other hosts (``run.sharing``): on
        PostgreSQL, when something is due, and neither ``--job`` nor ``--force``."""
        if not hasattr(self.store, "claim_next") or only is not None or force:
            return False
        now = self._clock()
        return any(
            spec.is_due(state.next_run if (state := states.get(spec.app_name)) else None, now)
            for spec in specs
        )

    @staticmethod
    def _next_due(
        specs: Sequence[JobSpec],
        states: dict[str, JobState],
        waiting: set[str],
        now: dt.datetime,
        paused: dict[str, Pause],
    ) -> dt.datetime | None:
        """The earliest next run among ``specs`` but those ``waiting`` for another
        process or a dependency (seen again at the next poll); a paused job's, no
        sooner than its pause ends (never, when it ends when resumed)."""
        due = []
        for spec in specs:
            if spec.app_name in waiting:
                continue
            state = states.get(spec.app_name)
            next_run = state.next_run if state is not None else None
            when = next_run if next_run is not None else spec.first_run(now)
            pause = paused.get(spec.app_name)
            if pause is not None:
                if pause.until is None:
                    continue
                when = max(when, pause.until)
            due.append(when)
        return min(due, default=None)

    def _prune_log(self, snapshot: Snapshot) -> None:
        """Drop log rows older than ``log_retention``, about once a day: only when the
        oldest is a day past it, so an idle tick pays nothing but a look at the
        oldest row's time (in the same statement as the states)."""
        if self.log_retention is None or snapshot.oldest_log is None:
            return
        before = snapshot.now - self.log_retention
        if snapshot.oldest_log >= before - PRUNE_SLACK:
            return
        deleted = self.store.prune_log(before)
        log.info("pruned %d crontabber_log rows older than %s", deleted, before.isoformat())

    def _lease_lost(self, app_name: str, holder: Holder, reason: str) -> None:
        self.interrupts.lease_lost(LeaseLost.of(app_name, reason))

    def _cancel(self, app_name: str, holder: Holder) -> None:
        log.warning("%s: an operator cancelled the run: stopping it", app_name)
        self.interrupts.lease_lost(Cancelled(f"{app_name} was cancelled by an operator"))

    def _beat(self, app_name: str, holder: Holder) -> bool:
        held = self.store.heartbeat(app_name, holder, self.lease.window)
        self.last_beat = time.monotonic()  # the database answered: progress, for /healthz
        return held

    def _consider(
        self, spec: JobSpec, states: dict[str, JobState], now: dt.datetime, *, force: bool = False
    ) -> JobReport | None:
        state = states.get(spec.app_name)
        if not force and not spec.is_due(state.next_run if state else None, now):
            return None
        if spec.app_name in self._paused:
            return self._paused_report(spec)
        reason = None if force else unmet_dependency(spec, states, now, self._paused)
        if reason:
            log.info("skipped %s: %s", spec.app_name, reason)
            return JobReport(spec.app_name, Result.SKIPPED, reason)
        if (
            state is not None
            and state.ongoing is not None
            and spec.app_name not in self._abandoned
            and self.lease.dead_local_token(state) is None
        ):
            # The database found this claim live when the states were read: its row
            # is left alone (a claim would take its lock, in a heartbeat's way).
            return self._held_elsewhere(spec, state)
        claim = self.store.claim(
            spec.app_name,
            depends_on=spec.depends_on,
            seen=state,
            force=force,
            lease=self.lease,
            holder=Holder(self.holder.host, self.holder.pid),
            retry_after=spec.policy.retry_after(
                (state.error_count if state else 0) + 1, self.error_retry_time
            ),
        )
        if claim.status is ClaimStatus.LOCKED:
            log.info("skipped %s: another process is claiming it right now", spec.app_name)
            return JobReport(spec.app_name, Result.LOCKED, "lost the claim to another process")
        if claim.status is ClaimStatus.ONGOING:
            states[spec.app_name] = claim.state
            return self._held_elsewhere(spec, claim.state)
        if claim.status is ClaimStatus.PAUSED:
            states[spec.app_name] = claim.state
            return self._paused_report(spec)
        if claim.status is ClaimStatus.NOT_DUE:
            states[spec.app_name] = claim.state
            log.info("skipped %s: another process has just run it", spec.app_name)
            return None
        if claim.status is ClaimStatus.RECOVERED:
            return self._recovered(spec, claim.state, claim.recorded, claim.abandoned, states)
        return self._execute(spec, claim.state, claim.holder, now, states)

    def _recovered(
        self,
        spec: JobSpec,
        abandoned: JobState,
        recorded: JobState,
        reason: str,
        states: dict[str, JobState],
    ) -> JobReport:
        states[spec.app_name] = recorded
        message = (
            f"the claim by {abandoned.ongoing_host} pid {abandoned.ongoing_pid} since "
            f"{abandoned.ongoing:%Y-%m-%d %H:%M:%S} UTC is abandoned ({reason}); "
            f"recorded as failed, next try at {recorded.next_run:%Y-%m-%d %H:%M:%S} UTC"
        )
        log.warning("recovered %s: %s", spec.app_name, message)
        return JobReport(spec.app_name, Result.RECOVERED, message)

    def _paused_report(self, spec: JobSpec) -> JobReport:
        pause = self._paused.get(spec.app_name)
        reason = pause.words() if pause is not None else "paused"
        log.info("skipped %s: %s", spec.app_name, reason)
        return JobReport(spec.app_name, Result.PAUSED, reason)

    def _held_elsewhere(self, spec: JobSpec, state: JobState) -> JobReport:
        reason = f"running on {state.ongoing_host} pid {state.ongoing_pid} since {state.ongoing:%Y-%m-%d %H:%M:%S} UTC"
        log.info("skipped %s: %s", spec.app_name, reason)
        return JobReport(spec.app_name, Result.ONGOING, reason)

    def _execute(
        self,
        spec: JobSpec,
        state: JobState,
        holder: Holder,
        now: dt.datetime,
        states: dict[str, JobState],
    ) -> JobReport:
        from crontabber.run import execution  # here: an idle tick never needs it

        log.info("running %s", spec.app_name)
        error = None
        interrupted: BaseException | None = None
        cancelled = False
        started_clock = time.monotonic()
        last_success, next_run = now, next_run_after(spec, state, now)
        job = execution.Job(spec, state, holder, now, self.job_config)

        def record_date(date: dt.datetime, took: dt.timedelta) -> bool:
            return self.store.record_backfill_date(
                spec.app_name, holder, date=date, now=self._clock(), duration=took
            )

        # The lease is renewed from the claim until the outcome is committed.
        if self.notifier is not None:
            self.notifier.started(spec)
        with self._heartbeat.holding(spec.app_name, holder):
            output = {"output_bytes": self.run_output_bytes, "capture_fds": self.capture_fds}
            if self.isolate:
                apart = {"on_failure": self.on_failure, "lease": self._heartbeat.held_until}
                ran = execution.run_apart(job, record_date, self.interrupts, **output, **apart)
            else:
                ran = execution.run_here(job, record_date, self.interrupts, **output)
            error = ran.error
            if ran.value is not None:
                last_success, next_run = ran.value
            if (exc := ran.exc) is not None:
                error = describe_failure(exc)
                if isinstance(exc, Cancelled):
                    cancelled = True  # an operator's: recorded, and the tick goes on
                elif isinstance(exc, (KeyboardInterrupt, Terminated, LeaseLost)):
                    interrupted = exc  # crontabber was asked to stop: record, then stop
                elif self.on_failure is not None:
                    self.on_failure(spec, exc)
            lost = self._heartbeat.lost(holder)
            if lost is not None and not isinstance(interrupted, LeaseLost):
                # Not interrupted (no signals here, or it ended first): lost all the same.
                interrupted = LeaseLost.of(spec.app_name, lost)
                error = describe_failure(interrupted)
            duration = dt.timedelta(seconds=time.monotonic() - started_clock)
            if error is not None and not cancelled:  # a cancelled run waits for its schedule
                next_run = now + spec.policy.retry_after(
                    state.error_count + 1, self.error_retry_time
                )
            outcome = Outcome(
                started=now,
                finished=now + duration,
                duration=duration,
                next_run=next_run,
                error=error,
                last_success=last_success,
                host=holder.host,
                pid=holder.pid,
                trigger=trigger_of(spec, state, last_success, forced=self._forced),
                output=ran.output or None,
            )
            self._heartbeat.finishing(holder)
            new_state = self._record_outcome(
                spec.app_name, holder, outcome, may_claim=interrupted is None
            )
        paused = False
        if new_state is not None:
            states[spec.app_name] = new_state
            if error is not None and not cancelled:
                paused = auto_pause(self.store, spec, new_state, error, holder)
        if self.notifier is not None:
            self.notifier.finished(
                spec, state, new_state, now, error, cancelled=cancelled, paused=paused
            )
        if new_state is None:
            log.warning(
                "%s: the claim was taken over while it ran; its outcome is logged as superseded",
                spec.app_name,
            )
        if interrupted is not None:
            raise interrupted
        return ended(spec.app_name, duration, error, cancelled=cancelled)
