"""Signals and run-time limits: what may interrupt a running job, and when.

SIGTERM and SIGINT interrupt the job that is running (it is recorded as failed
and its claim released); between jobs they stop the run before the next one.
A job's ``max_runtime`` interrupts it with :class:`MaxRuntimeExceeded`. Both
work through signal handlers, so only in the main thread of the process (the
``crontabber`` command); :class:`NoInterrupts` is the library default.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("crontabber")


class Terminated(BaseException):
    """crontabber was asked to stop (SIGTERM). Not an Exception: job code must not swallow it."""


class MaxRuntimeExceeded(BaseException):
    """A job ran longer than its ``max_runtime``. Not an Exception: job code must not swallow it."""


class NoInterrupts:
    """Nothing interrupts a job (library use, or a thread other than the main one)."""

    @contextlib.contextmanager
    def job(self, name: str, max_runtime: float | None) -> Iterator[None]:
        yield

    def raise_pending(self) -> None:
        pass


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

    def __enter__(self) -> SignalInterrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._on_signal)
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
        if self._in_job:
            raise MaxRuntimeExceeded(f"{self._job_name} ran longer than its max_runtime")

    def raise_pending(self) -> None:
        if self._pending is not None:
            exc, self._pending = self._pending, None
            raise exc

    @contextlib.contextmanager
    def job(self, name: str, max_runtime: float | None) -> Iterator[None]:
        self.raise_pending()
        timed = bool(max_runtime) and threading.current_thread() is threading.main_thread()
        if timed:
            previous_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, float(max_runtime or 0))
        self._job_name, self._in_job = name, True
        try:
            yield
        finally:
            self._in_job = False
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous_alarm)
