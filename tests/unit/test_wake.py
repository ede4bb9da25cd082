"""What wakes a sleeping daemon: set from a signal handler without a lock to deadlock on."""

from __future__ import annotations

import signal
import time

from crontabber.run.interrupts import Wake


def test_set_wait_and_clear() -> None:
    wake = Wake()
    try:
        assert not wake.wait(0)
        for _ in range(100_000):  # more than a pipe holds: setting it again is no error
            wake.set()
        assert wake.wait(0)
        wake.clear()
        assert not wake.wait(0.01)
    finally:
        wake.close()


def test_a_signal_handler_that_sets_it_ends_a_wait_at_once() -> None:
    wake = Wake()
    previous = signal.signal(signal.SIGALRM, lambda *_: wake.set())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        started = time.monotonic()
        assert wake.wait(30)
        assert time.monotonic() - started < 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        wake.close()
