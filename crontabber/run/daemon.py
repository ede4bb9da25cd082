"""Daemon mode: one long-running scheduler per host, ticking when the earliest job is due.

Each tick is the same :meth:`crontabber.run.runner.Runner.run` a crontab run makes,
through the same claim, so daemons, other daemons and crontab runs share one
database in any mix. Between ticks the daemon sleeps until the earliest job it
may run is due (the database's time), and at most ``poll_seconds``, to see what
other hosts changed; a signal wakes it at once, and so does an operator's
``--run-now`` on any host: while it sleeps the daemon asks the database for the
newest operator's action once a second (:data:`ACTION_LOOK`), and ticks at once,
reading every row, after one (a run-now, a resume, a reset...). It keeps its store, so one
connection (plus the heartbeat's) serves every tick.

Signals (see :class:`crontabber.run.interrupts.DaemonSignals`): SIGTERM or SIGINT
stops claiming and lets the running job finish for up to ``shutdown_grace``
seconds (exit 0), then interrupts and records it (exit 143 or 130); SIGHUP
reads the configuration again between ticks, and a bad one is logged in one
line and the old one kept. When the state database goes away the daemon logs
one line, retries with a growing pause (at most ``poll_seconds``), logs one
line when it answers again, and goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from crontabber.db.retry import RetryPolicy
from crontabber.errors import CrontabberError, LeaseLost, StateFileCorrupt, StateFileGone
from crontabber.run.interrupts import DaemonSignals, GracefulStop, Terminated, Wake
from crontabber.run.reading import DueReads
from crontabber.run.runner import Runner
from crontabber.words import plural

log = logging.getLogger("crontabber")

ACTION_LOOK = 1.0  # seconds between a sleeping daemon's looks for an operator's action
MIN_WAIT = 0.001  # seconds: a job due "now" is run at once, never in a busy loop
WAKE_AFTER_DUE = 0.005  # seconds past a job's next run, so that it is due when the tick reads


def run_daemon(
    build: Callable[[DaemonSignals], Runner],
    *,
    poll_seconds: float = 10.0,
    shutdown_grace: float = 30.0,
    rebuild: Callable[[DaemonSignals], Runner] | None = None,
    on_stop: Callable[[], None] | None = None,
    workers: Workers | None = None,
    liveness: Liveness | None = None,
) -> int:
    """Tick until stopped; the exit status (0, or 130/143 when a job was interrupted).

    ``build(signals)`` makes the runner (with ``signals`` as its interrupts);
    ``rebuild(signals)`` makes one from the configuration read again on SIGHUP,
    raising a CrontabberError when it is bad. ``workers`` are other daemon processes
    this one started: every signal it gets is passed on to them, one that ends is
    started again, and it waits for them before it exits (the highest exit status
    wins). ``liveness`` is told of each tick and sleep (for ``/healthz``). Must run in
    the main thread.
    """
    wake = Wake()  # set by signal handlers: no lock they could find held
    forward = workers.forward if workers is not None else None
    liveness = liveness or Liveness(float("inf"))

    def mind() -> None:  # about once a second while it sleeps
        liveness.progress()
        if workers is not None:
            workers.mind()

    with DaemonSignals(shutdown_grace, wake, forward) as signals:
        runner = liveness.runner = _reading_due(build(signals), poll_seconds)
        outage = _Outage(poll_seconds)
        seen_action: int | None = None  # the newest operator's action a sleep has seen
        log.info(
            "crontabber daemon started: %s, polling every %gs",
            plural(len(runner.specs), "job"),
            poll_seconds,
        )
        while not signals.stopping:
            if signals.reload_requested and rebuild is not None:
                signals.reload_requested = False
                runner = _reading_due(_reloaded(runner, rebuild, signals), poll_seconds)
                liveness.runner = runner
            try:
                report = runner.run()
            except GracefulStop:
                break
            except (KeyboardInterrupt, Terminated):
                break  # a job was interrupted past the grace period: recorded as failed
            except LeaseLost as exc:  # the job was stopped and recorded; the daemon goes on
                log.error("%s; stopped it (another host may run it now)", exc)
                runner.reads.forget()
                wait = MIN_WAIT
            except (StateFileGone, StateFileCorrupt):
                raise  # nothing to wait for: the command says so in one line, exit 1
            except CrontabberError as exc:
                runner.reads.forget()  # read every row once it answers again
                wait = outage.failed(exc)
            else:
                outage.answered()
                wait = _until_due(report, poll_seconds)
            mind()
            seen_action, acted = _sleep(runner, wake, wait, seen_action, mind)
            if acted:  # a reset, or a resume: every row is read again
                runner.reads.forget()
            wake.clear()
        if on_stop is not None:
            on_stop()
        status = signals.exit_status()
        if workers is not None:  # each had the signal from forward()
            status = max(status, workers.wait(shutdown_grace + 30))
    wake.close()
    log.info("daemon stopped (exit status %d)", status)
    return status


class _Outage:
    """The state database's outages, each said in one line as it begins and as it ends;
    between tries the daemon waits 1 s, doubling, at most ``poll_seconds``."""

    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self.retry = RetryPolicy(first_delay=min(1.0, poll_seconds), max_delay=poll_seconds)
        self.pauses = self.retry.pauses()
        self.since: float | None = None

    def failed(self, exc: BaseException) -> float:
        """The pause before the next try."""
        if self.since is None:
            self.since = time.monotonic()
            log.error("%s; retrying until it answers (the daemon goes on)", exc)
        return self.pauses.next() or self.poll_seconds

    def answered(self) -> None:
        if self.since is not None:
            log.warning(
                "the state database answers again after %.0fs", time.monotonic() - self.since
            )
            self.since, self.pauses = None, self.retry.pauses()


def _until_due(report: Any, poll_seconds: float) -> float:
    """How long to sleep after a tick: until its earliest job is due, at most a poll."""
    if report.next_due is None or report.now is None:
        return poll_seconds
    until_due = (report.next_due - report.now).total_seconds() + WAKE_AFTER_DUE
    return max(MIN_WAIT, min(poll_seconds, until_due))


def _sleep(
    runner: Runner,
    wake: Wake,
    seconds: float,
    seen: int | None,
    mind: Callable[[], None] | None = None,
) -> tuple[int | None, bool]:
    """Sleep for ``seconds``, or until a signal, or until an operator acts (a run-now,
    a resume, a reset... on any host): every ACTION_LOOK seconds the daemon asks the
    database for the newest audit row (one small statement), and a new one ends the
    sleep. Returns the newest action seen, for the next sleep, and whether one woke it.
    (None seen: this is the daemon's first look, whose answer is taken as known.)
    ``mind`` is called as often (the workers are looked after)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if mind is not None:
            mind()
        if wake.wait(min(left, ACTION_LOOK)) or left <= ACTION_LOOK:
            return seen, False
        try:
            latest = runner.store.latest_action() or 0
        except CrontabberError:
            return seen, False  # the tick says what is wrong
        if seen is not None and latest != seen:
            return latest, True
        seen = latest
    return seen, False


def _reading_due(runner: Runner, poll_seconds: float) -> Runner:
    """The runner, reading every row now and then and the due rows in between."""
    if runner.reads is None:
        runner.reads = DueReads(dt.timedelta(seconds=poll_seconds))
    else:
        runner.reads.forget()
    return runner


def _reloaded(
    runner: Runner, rebuild: Callable[[DaemonSignals], Runner], signals: DaemonSignals
) -> Runner:
    try:
        fresh = rebuild(signals)
    except CrontabberError as exc:
        log.error("SIGHUP: the configuration was not reloaded, the old one stays: %s", exc)
        return runner
    log.warning("SIGHUP: reloaded the configuration: %s", plural(len(fresh.specs), "job"))
    return fresh


class Liveness:
    """Whether a daemon's scheduler still gets on, for ``/healthz``: it says why not when
    nothing has moved for ``stale_after`` seconds, neither a tick, nor a sleep, nor a
    running job's heartbeat that the database answered. (Thread-safe: reads floats.)"""

    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self.runner: Runner | None = None
        self._last = time.monotonic()

    def progress(self) -> None:
        self._last = time.monotonic()

    def __call__(self) -> str | None:
        beat = self.runner.last_beat if self.runner is not None else 0.0
        still = time.monotonic() - max(self._last, beat)
        if still <= self.stale_after:
            return None
        return f"the scheduler has not got on for {still:.0f}s (no tick, sleep or heartbeat)"

    @classmethod
    def of(cls, *seconds: float) -> Liveness:
        """Stale after three times the longest of ``seconds`` (a poll, a heartbeat
        interval, the retries of a write...), and never under a minute."""
        return cls(max(60.0, 3 * max(seconds, default=0.0)))


class Workers:
    """The worker daemons a daemon started (``daemon.workers``): each is passed every
    signal it gets, started again (and logged) when it ends on its own, and waited
    for at the end; each one ends with it (Linux's parent-death signal)."""

    RESTART_AFTER = 5.0  # seconds: a worker that keeps ending is started at most this often

    def __init__(self, command: Sequence[str], count: int) -> None:
        self.command = list(command)
        self.processes = [self._start() for _ in range(count)]
        self._started = [time.monotonic()] * count
        self.stopping = False  # a stop was passed on: none is started again

    def _start(self) -> subprocess.Popen:
        from crontabber.run.isolation import PARENT_ENV

        worker = subprocess.Popen(self.command, env={**os.environ, PARENT_ENV: str(os.getpid())})
        log.info("started worker daemon pid %d", worker.pid)
        return worker

    def forward(self, signum: int) -> None:
        self.stopping = self.stopping or signum != signal.SIGHUP
        for worker in self.processes:
            if worker.poll() is None:
                worker.send_signal(signum)

    def mind(self) -> None:
        """Start again each worker that ended while its daemon runs."""
        for index, worker in enumerate(self.processes):
            status = worker.poll()
            if (
                status is None
                or self.stopping
                or time.monotonic() - self._started[index] < self.RESTART_AFTER
            ):
                continue
            how = f"was killed by signal {-status}" if status < 0 else f"exited {status}"
            log.error("worker daemon pid %d %s; starting another", worker.pid, how)
            self.processes[index], self._started[index] = self._start(), time.monotonic()

    def wait(self, timeout: float) -> int:
        """The highest exit status of the workers once each has stopped."""
        return max((_wait(worker, timeout) for worker in self.processes), default=0)


def _wait(worker: subprocess.Popen, timeout: float) -> int:
    """A worker's exit status once it has stopped (killed past ``timeout``)."""
    try:
        status = worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.error("worker pid %d did not stop within %.0fs: killed", worker.pid, timeout)
        worker.kill()
        worker.wait()
        return 143
    if status < 0:  # ended by a signal
        return 128 - status
    return status
