"""Signals and run-time limits: what may interrupt a running job, and when.

SIGTERM and SIGINT interrupt the job that is running (it is recorded as failed
and its claim released); between jobs they stop the run before the next one.
A job's ``max_runtime`` interrupts it with :class:`MaxRuntimeExceeded`, and a
lost lease with :class:`~crontabber.errors.LeaseLost`. All work through signal
handlers, so only in the main thread of the process (the
``crontabber`` command); :class:`NoInterrupts` is the library default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

from crontabber.errors import GracefulStop, MaxRuntimeExceeded, Terminated

TYPE_CHECKING = False  # typing is for type checkers: a tick does not import it
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("crontabber")


class NoInterrupts:
    """Nothing interrupts a job (library use, or a thread other than the main one)."""

    @contextlib.contextmanager
    def job(self, name: str, max_runtime: float | None) -> Iterator[None]:
        yield

    def raise_pending(self) -> None:
        pass

    def stop_pending(self) -> bool:
        """Whether :meth:`raise_pending` would raise: claim nothing more."""
        return False

    def lease_lost(self, exc: BaseException) -> None:
        """The running job's lease is lost: without signals the job runs on, and the
        runner records it as lost when it returns."""

    def give_up(self) -> bool:
        """Whether writes to the state database should stop retrying: crontabber was
        asked to stop, and may wait no longer (the claim then expires)."""
        return False


class SignalInterrupts(NoInterrupts):
    """Installs SIGTERM/SIGINT handlers for the duration of a ``with`` block.

    The first signal raises in the job that is running, or, between jobs, at the
    next :meth:`raise_pending`; later signals are ignored so that recording the
    interrupted job's outcome is not interrupted in turn.
    """

    def __init__(self) -> None:
        self._in_job = False
        self._fired = False
        self._pending: BaseException | None = None
        self._previous: dict[int, Any] = {}
        self._job_name = ""
        self._lost: BaseException | None = None
        self._in_job_lock = threading.Lock()

    def __enter__(self) -> SignalInterrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._on_signal)
            # max_runtime's timer and a lost lease both interrupt through SIGALRM; the
            # handler stays for the whole block, so a late one is ignored, never fatal.
            self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if exc_type is None:
            self.raise_pending()  # a signal that came after the last safe point

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._fired:
            log.warning("received %s again; finishing the shutdown", signal.Signals(signum).name)
            return
        self._fired = True
        name = signal.Signals(signum).name
        exc: BaseException = (
            KeyboardInterrupt(f"interrupted by {name}")
            if signum == signal.SIGINT
            else Terminated(f"terminated by {name}")
        )
        if self._in_job:
            raise exc
        self._pending = exc

    def _on_alarm(self, _signum: int, _frame: object) -> None:
        if not self._in_job:
            return
        if self._lost is not None:
            exc, self._lost = self._lost, None
            raise exc
        raise MaxRuntimeExceeded(f"{self._job_name} ran longer than its max_runtime")

    def lease_lost(self, exc: BaseException) -> None:
        """Interrupt the running job with ``exc`` now (from any thread), through SIGALRM
        to the main thread, so that even a sleeping job stops at once."""
        with self._in_job_lock:
            if not self._in_job or signal.SIGALRM not in self._previous:
                return
            self._lost = exc
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)

    def raise_pending(self) -> None:
        if self._pending is not None:
            exc, self._pending = self._pending, None
            raise exc

    def stop_pending(self) -> bool:
        return self._pending is not None

    def give_up(self) -> bool:
        return self._fired  # a crontab run stops when told: it does not wait on retries

    def _before_job(self) -> None:
        self.raise_pending()

    def _after_job(self) -> None:
        pass

    @contextlib.contextmanager
    def job(self, name: str, max_runtime: float | None) -> Iterator[None]:
        self._before_job()
        timed = bool(max_runtime) and signal.SIGALRM in self._previous
        if timed:
            signal.setitimer(signal.ITIMER_REAL, float(max_runtime or 0))
        self._job_name, self._in_job, self._lost = name, True, None
        try:
            yield
        finally:
            # No SIGALRM handler may raise in here: one sent now is handled after the job.
            masked = signal.SIGALRM in self._previous
            if masked:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            try:
                with self._in_job_lock:
                    self._in_job = False
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            finally:
                if masked:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
            self._after_job()


SAME_SIGNAL_SECONDS = 1.0  # a second stop signal sooner than this is the same stop


class Wake:
    """What wakes a sleeping daemon, safe to set from a signal handler: a byte down a
    pipe. (``threading.Event.set()`` in a handler deadlocks when the signal lands while
    the main thread holds that Event's own lock, entering or leaving ``wait()``.)"""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: it is set many times over
            os.write(self._write, b"\0")

    def wait(self, timeout: float | None = None) -> bool:
        """Whether it was set within ``timeout`` seconds (a signal handler that sets it
        ends the wait at once: PEP 475 retries the select after the handler)."""
        import select

        return bool(select.select([self._read], [], [], timeout)[0])

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class DaemonSignals(SignalInterrupts):
    """Signals for a daemon (main thread only).

    The first SIGTERM or SIGINT stops claiming: the next safe point raises
    :class:`GracefulStop`, and a running job may finish for up to ``grace``
    seconds before it is interrupted as :class:`SignalInterrupts` would (and
    ``interrupted`` is set). A second one interrupts at once. SIGHUP sets
    ``reload_requested``. Each signal sets ``wake``, so a sleeping daemon acts at once.
    """

    def __init__(
        self,
        grace: float,
        wake: Wake,
        forward: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.grace = grace
        self.wake = wake
        self.forward = forward  # called with each signal received (to pass it on to workers)
        self.stop_signal: int | None = None
        self._stop_at = 0.0
        self.reload_requested = False
        self.interrupted = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> DaemonSignals:
        super().__enter__()
        if threading.current_thread() is threading.main_thread():
            self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
            self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, self._on_grace_over)
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        self._cancel_timer()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def stopping(self) -> bool:
        return self.stop_signal is not None

    def exit_status(self) -> int:
        """0 after a graceful stop; 130 or 143 when a job had to be interrupted."""
        if not self.interrupted:
            return 0
        return 130 if self.stop_signal == signal.SIGINT else 143

    def _on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.forward is not None:
            self.forward(signum)
        if self.stop_signal is None:
            self.stop_signal = signum
            self._stop_at = time.monotonic()
            self.wake.set()
            log.warning("received %s: stopping after the running job, if any", name)
            if self._in_job:
                self._start_timer()
            return
        if time.monotonic() - self._stop_at < SAME_SIGNAL_SECONDS:
            return  # the same stop, sent twice (a service manager and a parent daemon)
        log.warning("received %s again: interrupting %s", name, self._job_name or "the running job")
        self._interrupt()

    def _on_hangup(self, signum: int, _frame: object) -> None:
        if self.forward is not None:
            self.forward(signum)
        self.reload_requested = True
        self.wake.set()

    def _on_grace_over(self, _signum: int, _frame: object) -> None:
        if self._in_job:
            log.warning(
                "%s did not finish within the grace period (%gs): interrupting it",
                self._job_name,
                self.grace,
            )
            self._interrupt()

    def _interrupt(self) -> None:
        if not self._in_job:
            return
        self.interrupted = True
        raise (
            KeyboardInterrupt("interrupted by SIGINT")
            if self.stop_signal == signal.SIGINT
            else Terminated("terminated by SIGTERM")
        )

    def raise_pending(self) -> None:
        if self.stop_signal is not None:
            raise GracefulStop()

    def stop_pending(self) -> bool:
        return self.stop_signal is not None

    def give_up(self) -> bool:
        """Past the grace period of a stop: a daemon does not wait on retries longer."""
        return self.stop_signal is not None and time.monotonic() - self._stop_at > self.grace

    def _before_job(self) -> None:
        # A job claimed before the signal runs, within the grace period.
        if self.stop_signal is not None:
            self._start_timer()

    def _after_job(self) -> None:
        self._cancel_timer()

    def _start_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.grace, os.kill, (os.getpid(), signal.SIGUSR1))
            self._timer.daemon = True
            self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
